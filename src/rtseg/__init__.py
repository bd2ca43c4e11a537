"""rtseg: real-time semantic segmentation, experiment-tracked."""

import os

# albumentations pings the network for updates at import time unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
