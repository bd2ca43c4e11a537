#!/usr/bin/env bash
# Recipe ablations on the sequence-disjoint protocol (val = every frame of 0006R0, train = the other
# 367 labelled frames), each a single change against the current recipe, all at one fixed budget
# (EPOCHS, not wall clock: the runs share the machine two at a time, one thread each, and a fixed
# epoch count makes their mIoU independent of that load).
#   bash experiments/camvid_generalisation/ablation.sh LANE       # LANE = a | b | c | d (see below)
# Runs land in logs/camvid_generalisation/<name>; summarise with table.py.
set -euo pipefail
CAMVID=${CAMVID:-../shared/data/camvid}
OUT=${OUT:-logs/camvid_generalisation}
EPOCHS=${EPOCHS:-16}
RTSEG_TRAIN=${RTSEG_TRAIN:-.venv/bin/rtseg-train}

# the recipe as it was before these ablations (no deep supervision: the experiment config has it on
# now), epochs fixed instead of its old 3600 s wall-clock lr budget, on the held-out sequence
BASE=(experiment=camvid_ppliteseg_lite0 "data.root=$CAMVID" data.val_protocol=sequence data.val_sequence=0006R0
      module.scheduler.time_budget_s=null trainer.max_time=null "trainer.max_epochs=$EPOCHS"
      trainer.precision=32-true memory_format=channels_last threads=1 logger=csv "~callbacks.progress_bar")
OHEM=(module.loss.ohem_thresh=0.7 module.loss.ohem_min_kept=100000)
DS=(model.aux_heads=true module.aux_weight=1.0)
# a run has deep supervision only when its overrides ask for it
NO_DS=(model.aux_heads=false)
AUG=(data/augment=camvid_robust)
EMA=("+callbacks.ema={_target_:rtseg.training.callbacks.EMA,decay:0.9995}")
# distillation into the student with deep supervision, from the teacher's last weights (lane b trains it)
KD=("+module.distill={_target_:rtseg.training.distill.Distillation,teacher:$OUT/teacher_lite2/checkpoints/last.ckpt,kind:cwd,weight:3.0,temperature:4.0}")
# the teacher: PP-LiteSeg on EfficientNet-Lite2 with a wider decoder, the same recipe
TEACHER=(model.encoder_name=efficientnet_lite2 model.encoder_weights=efficientnet-lite2
         "model.decoder_channels=[32,64,96,128]" model.head_channels=64)

run() {  # run NAME OVERRIDES...: skipped when it already finished
  local name=$1; shift
  if [ -f "$OUT/$name/run.json" ] && grep -q '"status": "finished"' "$OUT/$name/run.json"; then
    echo "== $name: finished already"; return
  fi
  echo "== $name: $*"
  local ds=("${NO_DS[@]}")
  [[ " $* " == *" model.aux_heads=true "* ]] && ds=()
  "$RTSEG_TRAIN" "${BASE[@]}" "${ds[@]}" "$@" hydra.run.dir="$OUT/$name" > "$OUT/$name.log" 2>&1 || echo "!! $name failed (see $OUT/$name.log)"
}

mkdir -p "$OUT"
case "${1:?lane}" in
  a) run base; run ds "${DS[@]}"; run ema "${EMA[@]}" ;;
  b) run ohem "${OHEM[@]}"; run aug "${AUG[@]}"; run teacher_lite2 "${TEACHER[@]}" "trainer.max_epochs=${TEACHER_EPOCHS:-24}" ;;
  # a longer budget, with and without the robust augmentation; then the second seeds of the small deltas
  c) run ds_aug_e32 "${DS[@]}" "${AUG[@]}" trainer.max_epochs=32; run ohem_seed2 "${OHEM[@]}" seed=7; run ema_seed2 "${EMA[@]}" seed=7 ;;
  # distillation (after lane b's teacher), the longer budget without augmentation, the base's second seed
  d) run ds_e32 "${DS[@]}" trainer.max_epochs=32; run ds_kd "${DS[@]}" "${KD[@]}"; run base_seed2 seed=7 ;;
  *) echo "unknown lane $1"; exit 2 ;;
esac
