#!/usr/bin/env bash
# Recipe ranking that can be trusted (issue 25): every change trained on each of CamVid's three
# labelled sequences held out in turn (data.val_protocol=sequence, data.val_sequence=FOLD) and at
# several seeds, one run at a time, fixed epochs (so mIoU does not depend on machine load).
#   bash experiments/camvid_folds/folds.sh CHANGE [CHANGE ...]     # e.g. base lite1
# CHANGE: base lite1 lite2 ohem res450 distill ft360 ft450 ft540 kdft360 kdcwd360 kdft540 kd
#         kdagree360 ft450long kdlong360 ftdice360 ftohem360 ftbound360
# (distill needs lite2 of the same fold and seed first, ft* the base run; kd* the fold's teacher,
# ft450 of seed 42, and its targets, which the first kd* run of a fold builds under $OUT/targets)
# Env: CAMVID (../shared/data/camvid), EPOCHS (8), FT_EPOCHS (4), SEEDS ("42 7"), FOLDS ("0001TP 0006R0 0016E5"),
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
      test=false threads=${THREADS:-2} logger=csv "~callbacks.progress_bar")
# fine-tuning (ft*) continues the fold's base run for FT_EPOCHS at a quarter of the recipe's lr
FT_EPOCHS=${FT_EPOCHS:-4}
FT=(module.optimizer.lr=0.0005 module.scheduler.warmup_steps=10)

change() {  # the overrides of one change against the recipe
  case "$1" in
    base) ;;
    lite1) echo "model.encoder_name=efficientnet_lite1 model.encoder_weights=efficientnet-lite1" ;;
    lite2) echo "model.encoder_name=efficientnet_lite2 model.encoder_weights=efficientnet-lite2" ;;
    ohem) echo "module.loss.ohem_thresh=0.7 module.loss.ohem_min_kept=100000" ;;
    res450) echo "data.input_size=[450,600] data.crop_size=[360,480]" ;;  # trained for 1.25x frames
    # fine-tune the fold's base run: at its own size (the control: what more epochs give), or
    # for 450x600 frames (input and crop x1.25), as a model shipped for 1.25x frames would be
    # made from camvid (init_weights=camvid)
    ft360) echo "${FT[*]} init_weights=$OUT/base_$2_s$3/checkpoints/last.ckpt" ;;
    ft450) echo "${FT[*]} init_weights=$OUT/base_$2_s$3/checkpoints/last.ckpt data.input_size=[450,600] data.crop_size=[360,480]" ;;
    # the same for 540x720 frames (x1.5: the frame size where camvid's thin classes gained most
    # when fed larger frames untrained, issue 33 item 4); kdft540: with the fold's teacher targets
    ft540) echo "${FT[*]} init_weights=$OUT/base_$2_s$3/checkpoints/last.ckpt data.input_size=[540,720] data.crop_size=[360,480]" ;;
    kdft540) echo "$(change ft540 "$2" "$3") $(teacher "$2")" ;;
    # a stronger fold teacher: ft450 trained 3x as long (FT_EPOCHS x 3); kdlong360: kdft360 learning
    # its targets (does the teacher's quality decide? the ft450 teacher agrees with its own
    # training frames' labels at mIoU 64.9, pedestrian 27: distillation/agreement.py)
    ft450long) change ft450 "$2" "$3" ;;
    kdlong360) echo "${FT[*]} init_weights=$OUT/base_$2_s$3/checkpoints/last.ckpt $(teacher "$2" ft450long)" ;;
    # the Lite2 run of the same fold and seed teaches (it never saw the held-out sequence);
    # channel-wise distillation, T=4, weight 3 (Shu et al.'s setting for segmentation)
    distill) echo "+module.distill={_target_:rtseg.training.distill.Distillation,teacher:$OUT/lite2_$2_s$3/checkpoints/last.ckpt,kind:cwd,weight:3.0,temperature:4.0}" ;;
    # offline distillation (issue 33): the fold's own camvid_450 (ft450, seed 42: it never saw the
    # held-out sequence) with multi-scale + flip predicts the fold's training frames once; the
    # student learns its stored probabilities beside the labels (teacher_targets/camvid_450.yaml
    # with the fold's teacher). kdft360: ft360 with the targets (the shipped camvid's recipe);
    # kd: the recipe from ImageNet with them. kdcwd360: kdft360 with channel-wise distillation
    # at Shu et al.'s segmentation setting (T=4, weight 3) instead of the per-pixel KL.
    kdft360) echo "${FT[*]} init_weights=$OUT/base_$2_s$3/checkpoints/last.ckpt $(teacher "$2")" ;;
    kdcwd360) echo "$(change kdft360 "$2" "$3") teacher_targets.kind=cwd teacher_targets.temperature=4.0 teacher_targets.weight=3.0" ;;
    # kdagree360: kdft360 learning the teacher only where its argmax is the label
    kdagree360) echo "$(change kdft360 "$2" "$3") teacher_targets.pixels=agreeing" ;;
    kd) teacher "$2" ;;
    # the thin classes (issue 33 item 5): ft360 with a loss the literature uses for them, each
    # against ft360: soft Dice beside the CE (weight 1), OHEM (p < 0.7, >= 100k pixels a batch),
    # boundary-aware CE (pixels within 2 px of a label edge weigh 3x: thin objects are all edge)
    ftdice360) echo "$(change ft360 "$2" "$3") module.loss.dice_weight=1.0" ;;
    ftohem360) echo "$(change ft360 "$2" "$3") $(change ohem)" ;;
    ftbound360) echo "$(change ft360 "$2" "$3") module.loss.boundary_weight=2.0 module.loss.boundary_width=2" ;;
    *) echo "unknown change $1" >&2; exit 2 ;;
  esac
}

teacher() {  # FOLD [RUN]: the fold's teacher targets: its RUN (ft450) of seed 42 at 450x600 with ms_flip
  echo "teacher_targets=camvid_450 teacher_targets.teacher=$OUT/${2:-ft450}_$1_s42/checkpoints/last.ckpt teacher_targets.input_size=[450,600] teacher_targets.root=$OUT/targets"
}

for name in "$@"; do change "$name" x 0 > /dev/null || exit 2; done  # unknown names stop here
mkdir -p "$OUT"
for name in "$@"; do
  for seed in $SEEDS; do
    for fold in $FOLDS; do
      read -r -a extra <<< "$(change "$name" "$fold" "$seed")"
      run="$OUT/${name}_${fold}_s${seed}"
      if [ -f "$run/run.json" ] && grep -q '"status": "finished"' "$run/run.json"; then
        echo "== $run: finished already"; continue
      fi
      case "$name" in  # the runs this one starts from or learns from
        distill) needs="$OUT/lite2_${fold}_s${seed}" ;;
        ft*) needs="$OUT/base_${fold}_s${seed}" ;;
        kdft360|kdcwd360|kdagree360|kdft540) needs="$OUT/base_${fold}_s${seed} $OUT/ft450_${fold}_s42" ;;
        kdlong360) needs="$OUT/base_${fold}_s${seed} $OUT/ft450long_${fold}_s42" ;;
        kd) needs="$OUT/ft450_${fold}_s42" ;;
        *) needs="" ;;
      esac
      for need in $needs; do
        if ! grep -qs '"status": "finished"' "$need/run.json"; then
          echo "!! $run: it needs $need, which has not finished (run folds.sh on it first)"; continue 2
        fi
      done
      epochs=$EPOCHS
      case "$name" in *long) epochs=$((FT_EPOCHS * 3)) ;; ft*|kd?*) epochs=$FT_EPOCHS ;; esac
      echo "== $run ($(date +%H:%M))"
      nice -n "${NICE:-19}" "$RTSEG_TRAIN" "${BASE[@]}" "trainer.max_epochs=$epochs" "${extra[@]}" "data.val_sequence=$fold" "seed=$seed" \
        "hydra.run.dir=$run" > "$run.log" 2>&1 || echo "!! $run failed (see $run.log)"
    done
  done
done
