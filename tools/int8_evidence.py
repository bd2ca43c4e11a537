"""Measure a shipped model's int8 once, where its labelled data is, and write the evidence into its card.

    python tools/int8_evidence.py camvid --data-root ../shared/data/camvid

A user without the dataset cannot measure the val mIoU drop that decides whether int8 is fit, and
argmax agreement on other frames is a poor stand-in (97.8% on built-in scenes for a model whose int8
loses 0.28 points on CamVid). So the card carries it: the activation ranges int8 is calibrated with
(ONNX Runtime's calibration cache: every machine quantises the same file from them, no images
needed), the val mIoU drop per runtime and weight recipe (7-bit weights on CPUs without VNNI, 8-bit
elsewhere), and the agreement with fp32 on the built-in re-check scenes
(``rtseg.infer.calibration.recheck_images``), which ``auto`` measures again on the user's runtime
before trusting the card (``rtseg.infer.auto.judge``). A maintainer tool: the runtime only reads it.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from rtseg.checkpoints import zoo
from rtseg.checkpoints.meta import recorded_data_config
from rtseg.infer.calibration import DatasetImages, recheck_images
from rtseg.infer.onnx import export_onnx, int8_recipe, quantize_onnx_int8
from rtseg.infer.quality import measure
from rtseg.infer.registry import from_file
from rtseg.utils.machine import cpu_name
from rtseg.utils.paths import write_atomic

RUNTIMES = ("onnxruntime-int8", "openvino-int8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="a shipped model (src/rtseg/zoo/NAME.json)")
    p.add_argument("--data-root", required=True, help="its dataset (CamVid: the SegNet layout)")
    p.add_argument("--calibration-images", type=int, default=32)
    p.add_argument("--eval-images", type=int, default=101)
    p.add_argument("--recheck-images", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    net, meta = zoo.load_shipped(args.name)
    size = tuple(meta["input_size"])
    data_cfg = recorded_data_config(meta)
    data_cfg["root"] = str(Path(args.data_root).resolve())
    data = DatasetImages(data_cfg, meta)
    if data.unavailable:
        raise SystemExit(f"error: {data.unavailable}")
    calib = data.calibration("train", args.calibration_images, size)
    pairs = data.pairs("val", args.eval_images, size)
    recheck = recheck_images(size, meta["mean"], meta["std"], args.recheck_images)
    quality, ranges = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = export_onnx(net, tmp / "model.onnx", size)
        cache = tmp / "ranges.json"
        for reduce_range in (True, False):
            bits = 7 if reduce_range else 8
            path = quantize_onnx_int8(
                fp32, tmp / f"model{bits}.int8.onnx", calib, reduce_range, save_ranges=cache
            )
            for runtime in RUNTIMES:
                backend = from_file(runtime, path, size, 1, args.threads)
                q = measure(backend, net, recheck, pairs, meta["num_classes"], 255)
                quality[f"{runtime}|{bits}-bit"] = {
                    "miou_drop_points": round(q["miou_drop_points"], 3),
                    "miou_fp32": round(q["miou_fp32"], 5),
                    "miou": round(q["miou"], 5),
                    "eval_images": q["eval_images"],
                    "recheck_agreement": round(q["agreement"], 5),
                }
                print(f"{runtime} {bits}-bit weights: {quality[f'{runtime}|{bits}-bit']}")
        ranges = json.loads(cache.read_text())
    import onnxruntime
    import openvino

    card_path = zoo.ZOO_DIR / f"{args.name}.json"
    card = json.loads(card_path.read_text())
    card["int8"] = {
        "calibration": {
            **calib.describe(),
            "recipe": int8_recipe(True).replace("7-bit", "7- or 8-bit"),
        },
        "ranges": ranges,
        "eval": f"{meta.get('dataset')} val, {len(pairs)} images at {size[0]}x{size[1]}",
        "recheck": {
            "images": len(recheck),
            "source": "built-in scenes (rtseg.infer.calibration.recheck_images)",
        },
        "quality": quality,
        "measured_on": {
            "cpu": cpu_name(),
            "machine": platform.machine(),
            "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.__version__,
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
        },
        "command": f"python tools/int8_evidence.py {args.name} --data-root DATA",
    }
    write_atomic(card_path, json.dumps(card, indent=1) + "\n")
    print(f"wrote the int8 evidence into {card_path}")


if __name__ == "__main__":
    main()
