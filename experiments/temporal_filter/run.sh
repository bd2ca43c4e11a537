#!/usr/bin/env bash
# The temporal filter's speed record, end to end: rtseg-realtime benchmark=true with temporal=none,
# ema and flow on the dash-cam clip (the shipped CamVid model) and on the synthetic video (a model
# trained on the built-in scenes), then the table and PNG (table.py). Every run also reports TC,
# the change rate and, on the synthetic video, the stream mIoU.
# Run it ALONE on an idle machine: fps and latency are wall-clock measurements.
#   bash experiments/temporal_filter/run.sh [VIDEO] [SYNTHETIC_CHECKPOINT]
# SYNTHETIC_CHECKPOINT: a run folder or .ckpt trained on the built-in scenes, e.g. make demo's
# logs/demo/train (default), or: rtseg-train experiment=demo hydra.run.dir=logs/demo/train
set -euo pipefail
cd "$(dirname "$0")/../.."
VIDEO=${1:-../shared/data/video/solidWhiteRight.mp4}
DEMO=${2:-logs/demo/train}
CAMVID=${CAMVID_DIR:-../shared/data/camvid}
OUT=${OUT:-logs/temporal_filter}
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
# as make demo runs the shipped model: auto (int8 judged by the CamVid val mIoU drop when CamVid is there)
DATA=()
if [ -d "$CAMVID/train" ]; then DATA=(data=camvid "data.root=$CAMVID"); fi
for t in none ema flow; do
  .venv/bin/rtseg-realtime checkpoint=camvid "source=$VIDEO" sink=file "output=$OUT/dashcam_$t.mp4" \
    benchmark=true threads=2 temporal=$t "${DATA[@]}" progress.enabled=false "hydra.run.dir=$OUT/dashcam_$t"
  .venv/bin/rtseg-realtime "checkpoint=$DEMO" source=synthetic sink=file "output=$OUT/synthetic_$t.mp4" \
    benchmark=true threads=2 temporal=$t progress.enabled=false "hydra.run.dir=$OUT/synthetic_$t"
done
.venv/bin/python experiments/temporal_filter/table.py "$OUT"
