"""Small shared helpers, one module per job: paths, config (Hydra), cli (entrypoint guards),
machine facts, image conventions, markdown."""

from rtseg.utils.config import register_resolvers

# ``${rtseg.uid:}`` in the run-folder names must exist before any config is composed
register_resolvers()
