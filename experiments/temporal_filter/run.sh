#!/usr/bin/env bash
# The temporal filter's speed record, end to end: rtseg-realtime benchmark=true with temporal=none,
# ema, flow and auto on the dash-cam clip (the shipped CamVid model) and on the synthetic video (a
# model trained on the built-in scenes), the clip played live, then the table and PNG (table.py). Every run also reports TC,
# the change rate and, on the synthetic video, the stream mIoU.
# Run it ALONE on an idle machine: fps and latency are wall-clock measurements.
#   bash experiments/temporal_filter/run.sh [VIDEO] [SYNTHETIC_CHECKPOINT]
# SYNTHETIC_CHECKPOINT: a run folder or .ckpt trained on the built-in scenes, e.g. make demo's
# logs/demo/train (default), or: rtseg-train experiment=demo hydra.run.dir=logs/demo/train
set -euo pipefail
cd "$(dirname "$0")/../.."
VIDEO=${1:-../shared/data/video/solidWhiteRight.mp4}
DEMO=${2:-logs/demo/train}
OUT=${OUT:-logs/temporal_filter}
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
# as a user without CamVid runs the shipped model (backend=auto: int8 by the model card's evidence),
# REPS times each, interleaved (the machine's drift shifts every variant alike); auto chooses by
# measurement; then auto on the clip played live (a 25 fps camera): drops and latency
REPS=${REPS:-3}
for r in $(seq 1 "$REPS"); do
  for t in none ema flow auto; do
    .venv/bin/rtseg-realtime checkpoint=camvid "source=$VIDEO" sink=file "output=$OUT/dashcam_${t}_r$r.mp4" overwrite=true \
      benchmark=true temporal=$t progress.enabled=false "hydra.run.dir=$OUT/dashcam_${t}_r$r"
    .venv/bin/rtseg-realtime "checkpoint=$DEMO" source=synthetic sink=file "output=$OUT/synthetic_${t}_r$r.mp4" overwrite=true \
      benchmark=true temporal=$t progress.enabled=false "hydra.run.dir=$OUT/synthetic_${t}_r$r"
  done
  .venv/bin/rtseg-realtime checkpoint=camvid "source=$VIDEO" live=true sink=none progress.enabled=false \
    "hydra.run.dir=$OUT/live_auto_r$r"
done
.venv/bin/python experiments/temporal_filter/table.py "$OUT"
