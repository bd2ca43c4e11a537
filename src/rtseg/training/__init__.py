"""Training: the LightningModule, its losses, metrics, schedules, callbacks, precision probe and
distillation, and the rtseg-train / rtseg-eval entrypoints."""
