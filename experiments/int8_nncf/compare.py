"""int8 by ONNX Runtime's static QDQ quantiser vs NNCF (OpenVINO's own), same network, same images.

For one network (a checkpoint, or a model config) and one input size, in one process:
  fp32        the exported ONNX file, run by OpenVINO (f32 precision hint)
  qdq-int8    ONNX Runtime static QDQ int8 (rtseg's current path), run by OpenVINO
  nncf-int8   nncf.quantize on the fp32 OpenVINO model, run by OpenVINO
  nncf-ac     nncf.quantize_with_accuracy_control (max val mIoU drop --max-drop points), run by OpenVINO
Every int8 variant calibrates on the same training images; each variant's latency is the median of
interleaved rounds (A B C D, B C D A, ...) and its quality the val mIoU (and drop) and argmax
agreement with eager fp32 on the same val images. Writes results.csv, results.md and run.json.

    python experiments/int8_nncf/compare.py --checkpoint camvid data.root=../shared/data/camvid
    python experiments/int8_nncf/compare.py --model lraspp data=camvid data.root=../shared/data/camvid
    python experiments/int8_nncf/compare.py --quick          # tiny net, 2 images: does it run?
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
from hydra.utils import instantiate  # noqa: E402

from rtseg.infer.artifacts import runtime_versions  # noqa: E402
from rtseg.infer.backends import OpenVinoBackend  # noqa: E402
from rtseg.infer.calibration import DatasetImages  # noqa: E402
from rtseg.infer.onnx import export_onnx, quantize_onnx_int8  # noqa: E402
from rtseg.infer.quality import eval_miou, measure  # noqa: E402
from rtseg.timing import time_interleaved  # noqa: E402
from rtseg.utils.config import compose_config  # noqa: E402
from rtseg.utils.machine import cpu_name  # noqa: E402
from rtseg.utils.markdown import markdown_table  # noqa: E402

QUICK = [
    "model=baseline",
    "model.width=8",
    "data.input_size=[32,32]",
    "data.lengths={train:4,val:2,test:2}",
]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", help="best | a .ckpt | a run folder | camvid (shipped)")
    p.add_argument("--model", help="a conf/model name (random weights) instead of a checkpoint")
    p.add_argument("--input-size", type=int, nargs=2, help="H W (default: the data's input size)")
    p.add_argument("--calib", type=int, default=32, help="training images to calibrate on")
    p.add_argument("--val", type=int, default=101, help="val images for mIoU and agreement")
    p.add_argument("--seconds", type=float, default=30.0, help="interleaved timing, in total")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-drop", type=float, default=0.5, help="nncf-ac: max val mIoU drop, points")
    p.add_argument("--no-accuracy-control", action="store_true", help="skip nncf-ac (slow)")
    p.add_argument("--out", type=Path, default=Path("experiments/int8_nncf/out"))
    p.add_argument("--quick", action="store_true", help="tiny net, 2 images, 0.2 s: a smoke run")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. data.root=...")
    args = p.parse_args(argv)
    if args.quick:
        args.checkpoint, args.model = None, None
        args.calib, args.val, args.seconds = 2, 2, 0.2
        args.overrides = QUICK + args.overrides
    return args


def subject(args):
    """(name, net, meta, data config) from --checkpoint or --model (+ overrides)."""
    if args.checkpoint:
        from rtseg.checkpoints.reading import load_network
        from rtseg.checkpoints.spec import choose_checkpoint

        path = choose_checkpoint(args.checkpoint, os.environ.get("RTSEG_LOG_DIR", "logs")).path
        net, meta = load_network(path)
        over = [f"data={meta['dataset']}", *args.overrides]
        cfg = compose_config("benchmark", [o for o in over if o.startswith("data")])
        return f"{meta.get('model') or 'checkpoint'}:{args.checkpoint}", net, meta, cfg.data
    over = ([f"model={args.model}"] if args.model else []) + args.overrides
    cfg = compose_config("benchmark", over)
    torch.manual_seed(int(cfg.seed))
    net = instantiate(cfg.model).eval()
    mean, std = getattr(net, "input_normalization", None) or (
        list(cfg.data.mean),
        list(cfg.data.std),
    )
    meta = {"mean": list(mean), "std": list(std), "num_classes": int(cfg.data.num_classes),
            "dataset": cfg.data.name, "ignore_index": cfg.data.get("ignore_index", 255)}  # fmt: skip
    return args.model or cfg.model._target_.rsplit(".", 1)[-1], net, meta, cfg.data


def nncf_variants(fp32: Path, out: Path, calib, pairs, num_classes, ignore, max_drop, control):
    """nncf.quantize (and with accuracy control) of the fp32 model: {name: (xml path, seconds)}."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    calib_ds = nncf.Dataset(list(calib), lambda x: x.numpy())
    done = {}
    t0 = time.perf_counter()
    q = nncf.quantize(model, calib_ds, preset=nncf.QuantizationPreset.PERFORMANCE,
                      subset_size=len(calib))  # fmt: skip
    ov.save_model(q, str(out / "nncf.xml"))
    done["nncf-int8"] = (out / "nncf.xml", time.perf_counter() - t0)
    if control and pairs:

        def validate(compiled, items):
            from rtseg.metrics import SegMetrics

            metric = SegMetrics(num_classes, ignore_index=ignore)
            for x, mask in items:
                logits = torch.from_numpy(compiled([x.numpy()])[0])
                metric.update(logits.argmax(1), mask)
            return float(metric.compute()["miou"]), None

        t0 = time.perf_counter()
        qa = nncf.quantize_with_accuracy_control(
            model, calib_ds, nncf.Dataset(list(pairs), lambda p: p[0].numpy()), validate,
            max_drop=max_drop / 100, drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(calib),
        )  # fmt: skip
        ov.save_model(qa, str(out / "nncf_ac.xml"))
        done["nncf-ac"] = (out / "nncf_ac.xml", time.perf_counter() - t0)
    return done


def main(argv=None) -> list[dict]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    name, net, meta, data_cfg = subject(args)
    data = DatasetImages(data_cfg, meta)
    size = tuple(args.input_size or data_cfg.input_size)
    calib = data.calibration("train", args.calib, size)
    pairs = data.pairs("val", args.val, size)
    if not calib or not pairs:
        raise SystemExit(
            f"no readable images: {data.unavailable or 'empty split'}: pass data.root=..."
        )
    args.out.mkdir(parents=True, exist_ok=True)
    num_classes, ignore = int(meta["num_classes"]), int(meta.get("ignore_index") or 255)
    with tempfile.TemporaryDirectory(prefix="int8-nncf-") as tmp:
        tmp = Path(tmp)
        fp32 = export_onnx(net, tmp / "model.onnx", size)
        t0 = time.perf_counter()
        quantize_onnx_int8(fp32, tmp / "model.int8.onnx", list(calib))
        files = {
            "fp32": (fp32, 0.0),
            "qdq-int8": (tmp / "model.int8.onnx", time.perf_counter() - t0),
        }
        files.update(nncf_variants(fp32, tmp, calib, pairs, num_classes, ignore, args.max_drop,
                                   not args.no_accuracy_control))  # fmt: skip
        backends = {
            k: OpenVinoBackend(None, size, 1, args.threads, name=k,
                               hint="f32" if k == "fp32" else None, path=p)
            for k, (p, _) in files.items()
        }  # fmt: skip
        images = [x for x, _ in pairs]
        quality = {
            k: measure(b, net, images, pairs, num_classes, ignore) for k, b in backends.items()
        }
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
        times = time_interleaved({k: (lambda b=b: b(x)) for k, b in backends.items()}, args.seconds)
    eager_miou = eval_miou(lambda t: net(t).argmax(1), pairs, num_classes, None, ignore)
    rows = []
    for k, q in quality.items():
        ms = np.asarray(times[k])
        rows.append({
            "network": name, "input": f"{size[0]}x{size[1]}", "variant": k, "runtime": "openvino",
            "threads": args.threads, "median_ms": round(float(np.median(ms)), 3),
            "p25_ms": round(float(np.percentile(ms, 25)), 3), "p75_ms": round(float(np.percentile(ms, 75)), 3),
            "runs": len(ms), "speedup_vs_fp32": None, "val_miou": round(100 * q["miou"], 2),
            "miou_drop_points": round(q["miou_drop_points"], 2), "agreement_pct": round(100 * q["agreement"], 3),
            "quantise_s": round(files[k][1], 1), "calib_images": len(calib), "val_images": len(pairs),
        })  # fmt: skip
    base = next(r["median_ms"] for r in rows if r["variant"] == "fp32")
    for r in rows:
        r["speedup_vs_fp32"] = round(base / r["median_ms"], 2)
    write(args.out, rows, {
        "argv": argv, "cpu": cpu_name(), "versions": runtime_versions(), "eager_val_miou": 100 * eager_miou,
        "calibration": calib.describe(), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    })  # fmt: skip
    return rows


def write(out: Path, rows: list[dict], run: dict) -> None:
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cols = list(rows[0])
    table = markdown_table(cols, ([r[c] for c in cols] for r in rows))
    (out / "results.md").write_text(table)
    try:
        import nncf

        run["versions"]["nncf"] = nncf.__version__
    except ImportError:
        pass
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str))
    print(table)


if __name__ == "__main__":
    main()
