"""Trained models as files: safe checkpoint reading, the ``checkpoint=`` spec resolver and the zoo of
shipped models. Below ``infer/``: evaluation and export of plain checkpoints need nothing above it."""
