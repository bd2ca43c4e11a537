#!/usr/bin/env bash
# The CamVid Pareto record: four networks, each trained by its CamVid recipe with the SAME
# wall-clock budget (BUDGET_S, lr decayed to 0 by then), then benchmarked at 360x480 (batch 1,
# 2 threads) in eager fp32, OpenVINO fp32 and OpenVINO int8 (calibrated on CamVid train images),
# with val mIoU per backend; the leaderboard table and Pareto PNG come from rtseg-compare.
# Run it alone on the machine: every figure is a wall-clock measurement.
#   bash experiments/camvid_pareto/run.sh [CAMVID_ROOT] [BUDGET_S]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:-../shared/data/camvid}
BUDGET=${2:-480}
OUT=${OUT:-logs/pareto}
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
max_time=$(printf '00:00:%02d:%02d' $(((BUDGET + 30) / 60)) $(((BUDGET + 30) % 60)))
for exp in camvid_baseline camvid_unet_lite0 camvid_lraspp_lite0 camvid_ppliteseg_lite0; do
  .venv/bin/rtseg-train experiment=$exp data.root="$ROOT" threads=2 test=false \
    trainer.max_epochs=1000 trainer.max_time=$max_time ++module.scheduler.time_budget_s=$BUDGET \
    '~callbacks.progress_bar' hydra.run.dir=$OUT/train/$exp
done
for exp in camvid_baseline camvid_unet_lite0 camvid_lraspp_lite0 camvid_ppliteseg_lite0; do
  .venv/bin/rtseg-bench checkpoint=$(ls $OUT/train/$exp/checkpoints/best-*.ckpt) name=$exp \
    data=camvid data.root="$ROOT" input_size=[360,480] threads=[2] batch_sizes=[1] \
    backends=[eager,openvino,openvino-int8] eval_miou=true eval_images=101 hydra.run.dir=$OUT/bench/$exp
done
.venv/bin/rtseg-compare $OUT/train
