"""make gpu-check: the whole product on a lent GPU machine that has nothing prepared.

On the GPU machine (the device tool; its image has torch, lightning, torchmetrics, OpenCV and ONNX
Runtime, not rtseg's other packages), with ``carry=[.whl, .gpu_carry]`` from
``experiments/camvid_generalisation/gpu_pack.py``:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
    PYTHONPATH=/tmp/site:$PWD/.gpu_carry/site python3 experiments/gpu_check/check.py \
        --camvid .gpu_carry/camvid --out $OUT

Rehearsal on the CPU, before spending device time (``make gpu-check-dry``): ``--dry`` runs every
step tiny, CUDA rows skipped with their reason.

Steps, each a console entrypoint as a user runs it (``python -m``), its exit status, seconds and
the figures that matter collected into ``summary.json`` in --out, with the runs' own records:
1. train the CamVid recipe on the GPU for --epochs (``trainer=gpu``), 2. rtseg-eval on val,
3. rtseg-bench with the CUDA rows (eager, cuda, cuda-fp16, cuda-compile; batch 1 and 8),
4. rtseg-realtime on the built-in live scene with ``backend=cuda-fp16``, ``benchmark=true``.
A failed step is recorded and the next still runs; the exit status is 1 when any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments" / "camvid_generalisation"))
from gpu_sweep import segnet_layout  # noqa: E402 - the JPEG pack decoded back to PNG


def step(name: str, module: str, args: list[str], log_dir: Path, env: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", module, *args]
    t0 = time.monotonic()
    log = log_dir / f"{name}.log"
    with log.open("w") as f:
        try:
            rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            rc = "timeout"
    took = time.monotonic() - t0
    tail = log.read_text(errors="replace").splitlines()[-3:]
    print(
        f"[{name}] exit {rc} in {took:.0f} s" + ("" if rc == 0 else f": {' | '.join(tail)}"),
        flush=True,
    )
    return {"step": name, "command": " ".join(cmd[2:]), "exit": rc, "seconds": round(took, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--camvid", required=True, help="CamVid: the SegNet layout or gpu_pack.py's pack"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default="/tmp/rtseg_gpu_check")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--dry", action="store_true", help="CPU rehearsal: every step tiny")
    args = ap.parse_args()
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir(parents=True)
    root = segnet_layout(Path(args.camvid).resolve(), runs / "camvid")
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "RTSEG_LOG_DIR": str(runs / "logs"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    import torch

    facts = {
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "dry": args.dry,
    }
    print(f"[env] {facts}", flush=True)
    train_dir, data = runs / "train", ["data=camvid", f"data.root={root}"]
    device = ["trainer=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
              "trainer.limit_val_batches=2", "trainer.check_val_every_n_epoch=1",
              "data.num_workers=0"] if args.dry else [
              "trainer=gpu", f"trainer.max_epochs={args.epochs}",
              "trainer.check_val_every_n_epoch=2", "data.batch_size=16", "data.num_workers=8"]  # fmt: skip
    steps = [
        ("train", "rtseg.training.train",
         ["experiment=camvid_ppliteseg_lite0", *data[1:], *device, "test=false", "logger=csv",
          "~callbacks.progress_bar", f"hydra.run.dir={train_dir}"], 600),
        ("eval", "rtseg.training.eval",
         [f"checkpoint={train_dir}", *data, "split=val", f"hydra.run.dir={runs / 'eval'}",
          *(["trainer.limit_val_batches=2"] if args.dry else [])], 300),
        ("bench", "rtseg.bench.cli",
         [f"checkpoint={train_dir}", *data, "input_size=[360,480]", "frame_size=[540,960]",
          "backends=[eager,cuda,cuda-fp16,cuda-compile]", f"batch_sizes=[1{'' if args.dry else ',8'}]",
          f"hydra.run.dir={runs / 'bench'}", "peak.enabled=false",
          *(["measure.min_runs=2", "measure.min_seconds=0.2", "e2e=false"] if args.dry else [])], 600),
        ("realtime", "rtseg.realtime.cli",
         [f"checkpoint={train_dir}", "source=synthetic", f"synthetic.frames={30 if args.dry else 300}",
          "sink=none", "benchmark=true", f"backend={'eager' if args.dry else 'cuda-fp16'}",
          "progress.enabled=false", f"hydra.run.dir={runs / 'realtime'}"], 300),
    ]  # fmt: skip
    done = [step(name, module, a, out, env, timeout) for name, module, a, timeout in steps]
    summary = {"env": facts, "steps": done, "figures": figures(runs)}
    for src in ("train/run.json", "train/metrics.csv", "eval/eval.json", "bench/results.csv",
                "realtime/realtime.json"):  # fmt: skip
        if (runs / src).is_file():
            shutil.copy(runs / src, out / src.replace("/", "_"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary["figures"], indent=1, default=str), flush=True)
    sys.exit(0 if all(s["exit"] == 0 for s in done) else 1)


def figures(runs: Path) -> dict:
    """The numbers worth reading first: val mIoU, per-row fps, the stream's fps."""
    out: dict = {}
    try:
        out["val_miou"] = json.loads((runs / "eval" / "eval.json").read_text())["miou"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        rows = json.loads((runs / "bench" / "results.json").read_text())
        rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
        out["bench"] = [
            {k: r.get(k) for k in ("backend", "batch", "precision", "fps", "e2e_fps", "note")}
            for r in rows
        ]
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    try:
        rt = json.loads((runs / "realtime" / "realtime.json").read_text())
        out["realtime"] = {
            k: rt["summary"].get(k) for k in ("backend", "pipeline_fps", "model_only_fps")
        }
    except (OSError, ValueError, KeyError):
        pass
    return out


if __name__ == "__main__":
    main()
