"""int8 on a CPU without VNNI: 8-bit vs 7-bit weights (``reduce_range``), same network, same images.

x86 CPUs without VNNI (AVX2, AVX-512 before VNNI) multiply u8 activations by s8 weights with
pmaddubsw, which sums pairs of products in 16 bits and saturates; ONNX Runtime's CPU kernels run
that path, so an int8 model can lose accuracy there that it does not lose on a VNNI machine. The
usual remedy is 7-bit weights. This script quantises one network both ways (rtseg's QDQ recipe,
the same 32 training images) and measures each file under ONNX Runtime and OpenVINO: val mIoU and
its drop against eager fp32, argmax agreement, and latency (interleaved rounds, 2 threads).

    .venv/bin/python experiments/int8_saturation/run.py --checkpoint camvid data.root=../shared/data/camvid
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rtseg.checkpoints.reading import load_network  # noqa: E402
from rtseg.infer.artifacts import runtime_versions  # noqa: E402
from rtseg.infer.backends import OpenVinoBackend, OrtBackend  # noqa: E402
from rtseg.infer.calibration import DatasetImages  # noqa: E402
from rtseg.infer.onnx import export_onnx, int8_recipe, quantize_onnx_int8  # noqa: E402
from rtseg.infer.quality import measure  # noqa: E402
from rtseg.timing import time_interleaved  # noqa: E402
from rtseg.utils.config import compose_config  # noqa: E402
from rtseg.utils.machine import cpu_flags, cpu_name, int8_saturates  # noqa: E402
from rtseg.utils.markdown import markdown_table  # noqa: E402

HERE = Path(__file__).parent
ISA = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--checkpoint", default="camvid", help="a shipped name or a .ckpt")
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--val", type=int, default=101)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("overrides", nargs="*", help="data overrides, e.g. data.root=...")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net, meta = load_network(args.checkpoint)
    cfg = compose_config("benchmark", [f"data={meta['dataset']}", *args.overrides])
    data = DatasetImages(cfg.data, meta)
    size = tuple(cfg.data.input_size)
    calib = data.calibration("train", args.calib, size)
    pairs = data.pairs("val", args.val, size)
    if not calib or not pairs:
        raise SystemExit(f"no readable images: {data.unavailable or 'empty split'} (data.root=...)")
    num_classes, ignore = int(meta["num_classes"]), int(meta.get("ignore_index") or 255)
    rows = []
    with tempfile.TemporaryDirectory(prefix="int8-saturation-") as tmp:
        fp32 = export_onnx(net, Path(tmp) / "model.onnx", size)
        files = {"fp32": fp32}
        for bits, reduce in ((8, False), (7, True)):
            files[f"int8, {bits}-bit weights"] = quantize_onnx_int8(
                fp32, Path(tmp) / f"model.w{bits}.int8.onnx", list(calib), reduce_range=reduce
            )
        backends = {}
        for variant, path in files.items():
            backends[("onnxruntime", variant)] = OrtBackend(None, size, 1, args.threads, path=path)
            backends[("openvino", variant)] = OpenVinoBackend(
                None, size, 1, args.threads, path=path, hint="f32" if variant == "fp32" else None
            )
        images = [x for x, _ in pairs]
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
        times = time_interleaved(
            {f"{r}|{v}": (lambda b=b: b(x)) for (r, v), b in backends.items()}, args.seconds
        )
        for (runtime, variant), backend in backends.items():
            q = measure(backend, net, images, pairs, num_classes, ignore)
            ms = np.asarray(times[f"{runtime}|{variant}"])
            rows.append({
                "runtime": runtime, "variant": variant, "val_miou": round(100 * q["miou"], 2),
                "miou_drop_points": round(q["miou_drop_points"], 2),
                "agreement_pct": round(100 * q["agreement"], 2),
                "median_ms": round(float(np.median(ms)), 2), "runs": len(ms),
            })  # fmt: skip
            print(rows[-1], flush=True)
    write(rows, {
        "argv": [args.checkpoint, *args.overrides], "cpu": cpu_name(),
        "isa": [f for f in ISA if f in cpu_flags()], "int8_saturates": int8_saturates(),
        "default_recipe_here": int8_recipe(), "versions": runtime_versions(),
        "fp32_val_miou": round(100 * q["miou_fp32"], 2), "calibration": calib.describe(),
        "val_images": len(pairs), "threads": args.threads, "time": time.strftime("%Y-%m-%d %H:%M"),
    })  # fmt: skip


def write(rows: list[dict], run: dict) -> None:
    with (HERE / "results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cols = list(rows[0])
    table = markdown_table(cols, ([r[c] for c in cols] for r in rows))
    (HERE / "results.md").write_text(table)
    (HERE / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    print(table)


if __name__ == "__main__":
    main()
