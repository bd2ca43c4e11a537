"""rtseg: real-time semantic segmentation, experiment-tracked."""

import os

# albumentations pings the network for updates at import time unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"


def load(spec="best", **kwargs):
    """``rtseg.load(spec)``: a trained model with ``predict(image)`` (see ``rtseg.api``)."""
    from rtseg.api import load as _load

    return _load(spec, **kwargs)
