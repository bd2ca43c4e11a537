"""The recipe questions the 2-core CPU could not afford, run in one call on a lent GPU.

    python3 experiments/camvid_generalisation/gpu_sweep.py --camvid DIR --out DIR [--budget-s 500]

Runs ``rtseg-train`` jobs (the sequence-disjoint ablation recipe of ablation.sh, plus trainval
candidates for the shipped model) several at a time on one GPU, longest and most important first,
and starts a job only while its estimated time still fits the budget; jobs still running at the
deadline are stopped and reported as such (their metrics.csv says how far they got). Everything
worth keeping lands in --out as at most 8 files (the device tool's limit): summary.csv, runs.tgz
(run.json, metrics.csv, config and log of every run) and a slim last.ckpt (weights + metadata, no
optimizer) of each finished trainval run. --camvid may be the SegNet layout or the JPEG pack that
gpu_pack.py makes (decoded back to PNG first). ``--dry`` runs each job for two tiny epochs on the
CPU: the rehearsal before spending device time.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEQ_FRAMES, ALL_FRAMES = 367, 468

# ablation.sh's BASE: the recipe before the ablations, fixed epochs, fp32 + channels_last, csv logs
BASE = [
    "experiment=camvid_ppliteseg_lite0",
    "module.scheduler.time_budget_s=null",
    "trainer.max_time=null",
    "trainer.precision=32-true",
    "memory_format=channels_last",
    "threads=1",
    "logger=csv",
    "~callbacks.progress_bar",
    "test=false",
]
SEQ = ["data.val_protocol=sequence", "data.val_sequence=0006R0"]
TRAINVAL = ["data.val_protocol=trainval"]
DS = ["model.aux_heads=true", "module.aux_weight=1.0"]
NO_DS = ["model.aux_heads=false"]
AUG = ["data/augment=camvid_robust"]
OHEM = ["module.loss.ohem_thresh=0.7", "module.loss.ohem_min_kept=100000"]
EMA = ["+callbacks.ema={_target_:rtseg.training.callbacks.EMA,decay:0.9995}"]


def job(name: str, epochs: int, protocol: list[str], *changes: list[str], seed: int = 42) -> dict:
    overrides = [*protocol, *(o for c in changes for o in c), f"trainer.max_epochs={epochs}"]
    if seed != 42:
        overrides.append(f"seed={seed}")
    frames = ALL_FRAMES if protocol is TRAINVAL else SEQ_FRAMES
    return {"name": name, "overrides": overrides, "images": epochs * frames}


# start order = priority: the longer-budget curve and the trainval candidates first, then second
# seeds, then the 16-epoch rows that check the GPU ranks as the CPU ablation did
PLAN = [
    job("final_ds_e80", 80, TRAINVAL, DS),
    job("ds_e80", 80, SEQ, DS),
    job("ds_e40", 40, SEQ, DS),
    job("ds_e60", 60, SEQ, DS),
    job("final_ds_e60", 60, TRAINVAL, DS),
    job("ds_aug_e80", 80, SEQ, DS, AUG),
    job("final_ds_aug_e80", 80, TRAINVAL, DS, AUG),
    job("ds_e80_s7", 80, SEQ, DS, seed=7),
    job("ds_e40_s7", 40, SEQ, DS, seed=7),
    job("ds_e60_s7", 60, SEQ, DS, seed=7),
    job("ds_aug_e80_s7", 80, SEQ, DS, AUG, seed=7),
    job("ds_e16", 16, SEQ, DS),
    job("base_e16", 16, SEQ, NO_DS),
    job("ds_e16_s7", 16, SEQ, DS, seed=7),
    job("base_e16_s7", 16, SEQ, NO_DS, seed=7),
    job("ohem_e16", 16, SEQ, NO_DS, OHEM),
    job("ohem_e16_s7", 16, SEQ, NO_DS, OHEM, seed=7),
    job("ema_e16", 16, SEQ, NO_DS, EMA),
    job("ema_e16_s7", 16, SEQ, NO_DS, EMA, seed=7),
    job("ds_e120", 120, SEQ, DS),
    job("ds_aug_e120", 120, SEQ, DS, AUG),
]


def _to_png(args: tuple[str, str]) -> None:
    import cv2

    src, dst = args
    cv2.imwrite(dst, cv2.imread(src))


def segnet_layout(camvid: Path, scratch: Path) -> Path:
    """The SegNet layout the data module reads: a JPEG pack is decoded back to PNG frames."""
    if not any(camvid.glob("train/*.jpg")):
        return camvid
    todo = []
    for split in ("train", "val"):
        for sub in (split, f"{split}annot"):
            (scratch / sub).mkdir(parents=True, exist_ok=True)
        for f in sorted((camvid / split).glob("*.jpg")):
            todo.append((str(f), str(scratch / split / f"{f.stem}.png")))
        for f in sorted((camvid / f"{split}annot").glob("*.png")):
            (scratch / f"{split}annot" / f.name).write_bytes(f.read_bytes())
    with Pool(min(16, os.cpu_count() or 1)) as pool:
        pool.map(_to_png, todo)
    return scratch


def last_row(metrics: Path) -> tuple[int, float | None]:
    """(epochs done, last val mIoU in %) from a run's metrics.csv."""
    if not metrics.is_file():
        return 0, None
    epochs, miou = 0, None
    for row in csv.DictReader(metrics.open()):
        if row.get("epoch"):
            epochs = max(epochs, int(float(row["epoch"])) + 1)
        if row.get("val/miou"):
            miou = 100 * float(row["val/miou"])
    return epochs, miou


def slim_checkpoint(src: Path, dst: Path) -> None:
    """The weights and metadata of a Lightning checkpoint, without optimizer and loop state."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    keep = (
        "epoch",
        "global_step",
        "pytorch-lightning_version",
        "state_dict",
        "hparams_name",
        "hyper_parameters",
    )
    torch.save({k: ckpt[k] for k in keep if k in ckpt}, dst)


def bundle(runs: Path, out: Path) -> None:
    """runs.tgz: every run's small files (no checkpoints), rewritten after each job ends."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for run in sorted(p for p in runs.iterdir() if p.is_dir()):
            for rel in (
                "run.json",
                "metrics.csv",
                "config.yaml",
                "train.log",
                ".hydra/overrides.yaml",
            ):
                if (run / rel).is_file():
                    tar.add(run / rel, arcname=f"{run.name}/{rel}")
            log = runs / f"{run.name}.log"
            if log.is_file():
                tar.add(log, arcname=f"{run.name}/job.log")
    (out / "runs.tgz").write_bytes(buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--camvid", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default="/tmp/rtseg_gpu_sweep")
    ap.add_argument("--budget-s", type=float, default=500.0)
    ap.add_argument("--slots", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2, help="data loader workers per job")
    ap.add_argument(
        "--rate", type=float, default=200.0, help="assumed images/s per job until measured"
    )
    ap.add_argument("--only", nargs="*", help="job names to run (default: the whole plan)")
    ap.add_argument("--dry", action="store_true", help="CPU rehearsal: two tiny epochs per job")
    args = ap.parse_args()
    t0 = time.monotonic()
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    root = segnet_layout(Path(args.camvid).resolve(), runs / "camvid")
    print(f"[{time.monotonic() - t0:5.0f}s] data at {root}", flush=True)

    device = (
        ["trainer.accelerator=cpu"]
        if args.dry
        else ["trainer.accelerator=gpu", "trainer.devices=1", "+trainer.benchmark=true"]
    )
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    plan = [j for j in PLAN if not args.only or j["name"] in args.only]
    queue, running, done = list(plan), {}, []
    rate = args.rate  # images/s of one job while the others run: re-measured as jobs end
    last_status = 0.0

    def start(j: dict) -> None:
        cmd = [
            sys.executable,
            "-m",
            "rtseg.training.train",
            *BASE,
            f"data.root={root}",
            f"data.num_workers={args.workers}",
            *device,
            *j["overrides"],
            f"hydra.run.dir={runs / j['name']}",
        ]
        if args.dry:
            cmd += [
                "trainer.max_epochs=2",
                "trainer.limit_train_batches=2",
                "trainer.limit_val_batches=2",
                "trainer.check_val_every_n_epoch=1",
            ]
        log = (runs / f"{j['name']}.log").open("w")
        j["cmd"] = cmd
        j["proc"] = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        j["t_start"] = time.monotonic()
        running[j["name"]] = j
        print(
            f"[{j['t_start'] - t0:5.0f}s] start {j['name']}: {' '.join(j['overrides'])}", flush=True
        )

    def finish(j: dict, status: str) -> None:
        j["wall_s"] = time.monotonic() - j["t_start"]
        j["status"] = status
        j["epochs_done"], j["val_miou"] = last_row(runs / j["name"] / "metrics.csv")
        done.append(j)
        running.pop(j["name"], None)
        print(
            f"[{time.monotonic() - t0:5.0f}s] {status} {j['name']}: {j['epochs_done']} epochs, "
            f"val {j['val_miou']}, {j['wall_s']:.0f} s",
            flush=True,
        )
        if status != "finished":
            print(
                "".join((runs / f"{j['name']}.log").read_text().splitlines(True)[-15:]), flush=True
            )
        ckpt = runs / j["name"] / "checkpoints" / "last.ckpt"
        if status == "finished" and j["name"].startswith("final_") and ckpt.is_file():
            slim_checkpoint(ckpt, out / f"{j['name']}.ckpt")
        write_summary()
        bundle(runs, out)

    def write_summary() -> None:
        with (out / "summary.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["name", "status", "epochs_done", "val_miou_last", "wall_s", "overrides"])
            for j in done:
                w.writerow(
                    [
                        j["name"],
                        j["status"],
                        j["epochs_done"],
                        "" if j["val_miou"] is None else f"{j['val_miou']:.2f}",
                        f"{j['wall_s']:.0f}",
                        " ".join(j["overrides"]),
                    ]
                )

    while queue or running:
        now = time.monotonic() - t0
        for j in list(running.values()):
            rc = j["proc"].poll()
            if rc is not None:
                ok = (
                    rc == 0
                    and (runs / j["name"] / "run.json").is_file()
                    and '"finished"' in (runs / j["name"] / "run.json").read_text()
                )
                finish(j, "finished" if ok else f"failed(rc={rc})")
                if ok and not args.dry:
                    rate = j["images"] / max(j["wall_s"] - 20, 1.0)
        failed = [j for j in done if j["status"].startswith("failed")]
        if len(failed) >= 2 and not any(j["status"] == "finished" for j in done):
            print("two jobs failed before any finished: stopping the sweep", flush=True)
            queue.clear()
            for j in list(running.values()):
                j["proc"].kill()
                j["proc"].wait()
                finish(j, "stopped")
            break
        if now >= args.budget_s:
            queue.clear()
            for j in list(running.values()):
                j["proc"].send_signal(signal.SIGTERM)
            time.sleep(8)
            for j in list(running.values()):
                j["proc"].kill()
                j["proc"].wait()
                finish(j, "stopped")
            break
        while queue and len(running) < args.slots:
            fits = [j for j in queue if args.dry or now + 30 + j["images"] / rate <= args.budget_s]
            if not fits:
                queue.clear()
                break
            queue.remove(fits[0])
            start(fits[0])
        if now - last_status >= 30:
            last_status = now
            prog = ", ".join(f"{n} e{last_row(runs / n / 'metrics.csv')[0]}" for n in running)
            print(
                f"[{now:5.0f}s] running: {prog}; {len(queue)} queued, {len(done)} done; "
                f"rate {rate:.0f} img/s/job",
                flush=True,
            )
        time.sleep(2)
    write_summary()
    bundle(runs, out)
    (out / "sweep.json").write_text(
        json.dumps(
            {
                "budget_s": args.budget_s,
                "slots": args.slots,
                "workers": args.workers,
                "wall_s": time.monotonic() - t0,
                "base": BASE,
                "jobs": [
                    {
                        k: j[k]
                        for k in ("name", "status", "epochs_done", "val_miou", "wall_s", "cmd")
                    }
                    for j in done
                ],
            },
            indent=1,
        )
    )
    print(
        f"[{time.monotonic() - t0:5.0f}s] done: {sum(j['status'] == 'finished' for j in done)} "
        f"finished of {len(done)} started, {len(plan) - len(done)} not started",
        flush=True,
    )


if __name__ == "__main__":
    main()
