#!/usr/bin/env bash
# The Pareto networks on the sequence-disjoint protocol (val = every frame of 0006R0, train = the
# other 367 labelled frames): each with its own experiment=camvid_<name> recipe, the same fixed
# EPOCHS (not a wall-clock budget: the runs may share the machine), one thread each, LANES at once.
# The ppliteseg row is the ablation's 16-epoch "current recipe" run when EPOCHS=16.
#   bash experiments/camvid_pareto/seq_column.sh [CAMVID_ROOT] [EPOCHS]
# then: .venv/bin/python experiments/camvid_pareto/table.py logs/pareto --seq logs/pareto_seq
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:-../shared/data/camvid}
EPOCHS=${2:-6}
OUT=${OUT:-logs/pareto_seq}
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
train() {
  .venv/bin/rtseg-train experiment=camvid_$1 data.root="$ROOT" data.val_protocol=sequence \
    trainer.max_epochs="$EPOCHS" trainer.max_time=null ++module.scheduler.time_budget_s=null \
    trainer.check_val_every_n_epoch=1 threads=1 test=false logger=csv '~callbacks.progress_bar' \
    hydra.run.dir="$OUT/$1" > "$OUT/$1.log" 2>&1
}
mkdir -p "$OUT"
(train baseline; train lraspp_lite0) &
(train unet_lite0; train ppliteseg_lite0) &
wait
