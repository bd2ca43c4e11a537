#!/usr/bin/env bash
# The speed of each change's network at the size it runs at (issue 25: accuracy against fps on
# the folds): rtseg-bench on one fold checkpoint per change (speed does not depend on the weights),
# eager fp32 and OpenVINO int8, plain and with flip. Run it alone on the machine: it is a timing.
#   bash experiments/camvid_folds/speed.sh [CHANGE ...]     # default: every change with a run
# Env: CAMVID (../shared/data/camvid: int8 calibration images), RUNS (logs/camvid_folds),
#      OUT (logs/camvid_folds_speed), FOLD (0016E5), SEED (42), THREADS (2), REPEAT (1: how many
#      rounds over the changes; frontier.py takes each change's fastest round, since a shared VM
#      only adds time).
set -euo pipefail
CAMVID=${CAMVID:-../shared/data/camvid}
RUNS=${RUNS:-logs/camvid_folds}
OUT=${OUT:-logs/camvid_folds_speed}
FOLD=${FOLD:-0016E5}
SEED=${SEED:-42}
changes=("$@")
if [ ${#changes[@]} -eq 0 ]; then
  for run in "$RUNS"/*_"${FOLD}"_s"${SEED}"; do changes+=("$(basename "${run%_${FOLD}_s${SEED}}")"); done
fi
for round in $(seq 1 "${REPEAT:-1}"); do
  for change in "${changes[@]}"; do
    ckpt="$RUNS/${change}_${FOLD}_s${SEED}/checkpoints/last.ckpt"
    [ -f "$ckpt" ] || { echo "!! $change: no $ckpt"; continue; }
    echo "== $change, round $round ($(date +%H:%M))"
    .venv/bin/rtseg-bench "checkpoint=$ckpt" "name=$change" data=camvid "data.root=$CAMVID" \
      'backends=[eager,openvino-int8]' 'tta=[none,flip]' e2e=false peak.enabled=false \
      "threads=[${THREADS:-2}]" "hydra.run.dir=$OUT/$change/r$round" > "$OUT.$change.log" 2>&1 \
      || echo "!! $change failed (see $OUT.$change.log)"
  done
done
