#!/usr/bin/env bash
# Recipe ranking that can be trusted (issue 25): every change trained on each of CamVid's three
# labelled sequences held out in turn (data.val_protocol=sequence, data.val_sequence=FOLD) and at
# several seeds, one run at a time, fixed epochs (so mIoU does not depend on machine load).
#   bash experiments/camvid_folds/folds.sh CHANGE [CHANGE ...]     # e.g. base lite1
# Env: CAMVID (../shared/data/camvid), EPOCHS (8), SEEDS ("42 7"), FOLDS ("0001TP 0006R0 0016E5"),
#      OUT (logs/camvid_folds), NICE (19: trainings yield the CPU to interactive work),
#      THREADS (2; 1 when two lanes run side by side).
# Runs land in $OUT/<change>_<fold>_s<seed>; table.py prints the mean and spread per change.
set -euo pipefail
CAMVID=${CAMVID:-../shared/data/camvid}
OUT=${OUT:-logs/camvid_folds}
EPOCHS=${EPOCHS:-8}
SEEDS=${SEEDS:-42 7}
FOLDS=${FOLDS:-0001TP 0006R0 0016E5}
RTSEG_TRAIN=${RTSEG_TRAIN:-.venv/bin/rtseg-train}

# the shipped recipe (experiment=camvid_ppliteseg_lite0: deep supervision, poly lr) at EPOCHS
BASE=(experiment=camvid_ppliteseg_lite0 "data.root=$CAMVID" data.val_protocol=sequence
      "trainer.max_epochs=$EPOCHS" test=false threads=${THREADS:-2} logger=csv "~callbacks.progress_bar")

change() {  # the overrides of one change against the recipe
  case "$1" in
    base) ;;
    lite1) echo "model.encoder_name=efficientnet_lite1 model.encoder_weights=efficientnet-lite1" ;;
    lite2) echo "model.encoder_name=efficientnet_lite2 model.encoder_weights=efficientnet-lite2" ;;
    ohem) echo "module.loss.ohem_thresh=0.7 module.loss.ohem_min_kept=100000" ;;
    res450) echo "data.input_size=[450,600] data.crop_size=[360,480]" ;;  # trained for 1.25x frames
    *) echo "unknown change $1" >&2; exit 2 ;;
  esac
}

mkdir -p "$OUT"
for name in "$@"; do
  read -r -a extra <<< "$(change "$name")"
  for seed in $SEEDS; do
    for fold in $FOLDS; do
      run="$OUT/${name}_${fold}_s${seed}"
      if [ -f "$run/run.json" ] && grep -q '"status": "finished"' "$run/run.json"; then
        echo "== $run: finished already"; continue
      fi
      echo "== $run ($(date +%H:%M))"
      nice -n "${NICE:-19}" "$RTSEG_TRAIN" "${BASE[@]}" "${extra[@]}" "data.val_sequence=$fold" "seed=$seed" \
        "hydra.run.dir=$run" > "$run.log" 2>&1 || echo "!! $run failed (see $run.log)"
    done
  done
done
