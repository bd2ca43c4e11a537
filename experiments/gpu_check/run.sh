#!/usr/bin/env bash
# make gpu-check: on a lent GPU machine, in at most ~8 minutes: train the GPU recipe, evaluate it
# on val, benchmark the CUDA backends, and copy everything worth keeping under OUT (default
# $OUT if the device tool set it, else logs/gpu_check). Prepared and dry-run on CPU; see README.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${CAMVID_DIR:-../shared/data/camvid}
DEST=${OUT:-logs/gpu_check}
RUN=logs/gpu_check_run
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
mkdir -p "$DEST"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$DEST/gpu.csv" 2>&1 || true
.venv/bin/rtseg-train experiment=camvid_ppliteseg_gpu data.root="$ROOT" test=false \
  '~callbacks.progress_bar' hydra.run.dir=$RUN/train ${TRAIN_ARGS:-} 2>&1 | tail -40 > "$DEST/train.txt"
.venv/bin/rtseg-eval checkpoint=$RUN/train data=camvid data.root="$ROOT" split=val \
  hydra.run.dir=$RUN/eval 2>&1 | tail -25 > "$DEST/eval.txt"
.venv/bin/rtseg-bench checkpoint=$(ls $RUN/train/checkpoints/best-*.ckpt) data=camvid data.root="$ROOT" \
  input_size=[360,480] batch_sizes=[1,8] backends=[eager,cuda,cuda-fp16,cuda-compile] \
  hydra.run.dir=$RUN/bench 2>&1 | tail -30 > "$DEST/bench.txt"
cp $RUN/train/run.json $RUN/train/metrics.csv $RUN/eval/eval.json $RUN/bench/results.* "$DEST/" 2>/dev/null || true
echo "results in $DEST"
