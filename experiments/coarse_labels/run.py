"""The class map at the logits' stride (issue 34, item 2): what skipping the final upsampling costs
in mIoU and gives in speed, measured on the same weights.

The shipped network predicts 11 logit maps at 1/4 of the input (PP-LiteSeg with ``out_stride=4``);
today they are upsampled bilinearly to 360x480 inside the graph and the class map is the argmax
over those 11 full-size maps (experiments/network_profile: the upsampling and the argmax are 9.0%
and 6.5% of the int8 frame on an AVX2 EPYC, no FLOPs). The variants, from the same logits:

- ``bilinear`` (today): logits upsampled bilinearly to the input size, argmax there;
- ``stride2``: logits upsampled bilinearly to 1/2, argmax there, the labels nearest x2;
- ``stride4``: argmax at the logits' own stride (1/4), the labels nearest x4.

mIoU: each given checkpoint (fold runs: its held-out sequence, the data config it recorded) in
eager fp32, all variants from one forward pass, scored with ``rtseg.metrics.SegMetrics`` (the
``bilinear`` row is rtseg-eval's plain figure). Speed: the shipped network (``--speed-checkpoint``)
exported once per variant (``bilinear``: the network as it ships; ``stride2``/``stride4``: the same
weights ending at the coarse logits, cropped to the input's share), quantised by the project's own
``quantize_onnx_int8`` on the same calibration frames, run by ``rtseg.infer.registry.from_file`` in
OpenVINO and ONNX Runtime int8; per frame the network and the postprocess to a uint8 class map at
the input size (torch max over the classes, then for the coarse variants a nearest resize of the
labels with OpenCV), interleaved rounds, medians.

    .venv/bin/python experiments/coarse_labels/run.py \\
        --checkpoints logs/camvid_folds/ft360_0016E5_s42 logs/camvid_folds/ft360_0016E5_s7 \\
        --out experiments/coarse_labels/results
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rtseg.checkpoints.meta import recorded_data_config
from rtseg.checkpoints.reading import load_network
from rtseg.errors import RtsegError
from rtseg.infer.calibration import dataset_images
from rtseg.infer.onnx import export_onnx, int8_recipe, quantize_onnx_int8
from rtseg.infer.registry import from_file
from rtseg.metrics import SegMetrics
from rtseg.models.lite import LiteSegNet
from rtseg.models.padding import PadToMultiple
from rtseg.utils.cli import user_errors_as_one_line
from rtseg.utils.machine import cpu_flags, cpu_name, usable_cpus
from rtseg.utils.markdown import markdown_table
from rtseg.utils.paths import write_atomic

VARIANTS = {"bilinear": 1, "stride2": 2, "stride4": 4}  # name -> stride of the argmax
RUNTIMES = ("openvino-int8", "onnxruntime-int8")
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8")


def parts(net: nn.Module) -> tuple[PadToMultiple, LiteSegNet]:
    """The padding wrapper and the PP-LiteSeg/LR-ASPP network inside it (what the variants cut)."""
    if isinstance(net, PadToMultiple) and isinstance(net.net, LiteSegNet):
        return net, net.net
    raise RtsegError(
        f"{type(net).__name__}: expected a PadToMultiple(LiteSegNet) (a lite.py model)"
    )


def coarse_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The head's logits before the final upsampling, for the padded input (B, K, H/4, W/4 for
    camvid)."""
    pad, lite = parts(net)
    out = lite.head_logits(pad.pad(x))
    return out[0] if isinstance(out, tuple) else out


def input_share(logits: torch.Tensor, size, stride: int) -> torch.Tensor:
    """Logits at 1/``stride`` of the padded input cropped to the input's own cells (ceil; not
    ``-(-h // s)``, which the ONNX export turns into a truncating division: models/padding.py)."""
    h, w = size
    return logits[..., : (h + stride - 1) // stride, : (w + stride - 1) // stride]


def labels_from_coarse(coarse: torch.Tensor, size, padded, variant: str) -> torch.Tensor:
    """(B, H, W) class map at the input ``size`` from the padded input's coarse logits."""
    h, w = size
    stride = VARIANTS[variant]
    if stride == 1:
        up = F.interpolate(coarse, size=padded, mode="bilinear", align_corners=False)
        return up[..., :h, :w].max(1).indices
    labels = input_share(coarse_at(coarse, padded, stride), size, stride).max(1).indices
    return labels.repeat_interleave(stride, 1).repeat_interleave(stride, 2)[:, :h, :w]


def coarse_at(coarse: torch.Tensor, padded, stride: int) -> torch.Tensor:
    """The coarse logits at 1/``stride`` of the padded input (bilinear when finer than their own)."""
    size = (padded[0] // stride, padded[1] // stride)
    if tuple(coarse.shape[-2:]) == size:
        return coarse
    if size[0] < coarse.shape[-2]:
        raise RtsegError(
            f"argmax at 1/{stride}: coarser than the network's logits "
            f"({coarse.shape[-2]}x{coarse.shape[-1]} for {padded[0]}x{padded[1]}): not a variant"
        )
    return F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


class CoarseNet(nn.Module):
    """The network ending at the logits at 1/``stride`` of the input, cropped to its share."""

    def __init__(self, net: nn.Module, stride: int):
        super().__init__()
        self.net, self.stride = net, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pad, _ = parts(self.net)
        logits = coarse_at(coarse_logits(self.net, x), pad.padded_size(*size), self.stride)
        return input_share(logits, size, self.stride)


# ----------------------------------------------------------------------------------- mIoU


def frames(meta: dict, root: str | None):
    """The checkpoint's recorded data config (its root replaced by ``root`` when given) as images."""
    data_cfg = recorded_data_config(meta)
    if data_cfg is not None and root:
        data_cfg.root = root
    return dataset_images(data_cfg, meta)


def score(checkpoint: str, threads: int, root: str | None) -> dict:
    """mIoU (%) and per-class IoU of every variant on the checkpoint's recorded val split."""
    path = checkpoint
    if Path(checkpoint).is_dir():  # a fold run: its last epoch, as the fold table scores it
        path = str(Path(checkpoint) / "checkpoints" / "last.ckpt")
    net, meta = load_network(path)
    size = [int(v) for v in meta.get("input_size") or (360, 480)]
    images = frames(meta, root)
    if images is None:
        raise RtsegError(f"{checkpoint}: records no data config to score on")
    pairs = images.pairs("val", 10**6, size)
    if not pairs:
        raise RtsegError(f"{checkpoint}: no val images ({images.unavailable})")
    k = int(meta["num_classes"])
    metrics = {v: SegMetrics(k, ignore_index=int(meta.get("ignore_index", 255))) for v in VARIANTS}
    pad, _ = parts(net)
    padded = pad.padded_size(*size)
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for i, (x, mask) in enumerate(pairs):
            coarse = coarse_logits(net, x)
            for v, m in metrics.items():
                m.update(labels_from_coarse(coarse, size, padded, v), mask)
            if (i + 1) % 50 == 0:
                print(f"  {checkpoint}: {i + 1}/{len(pairs)} frames", file=sys.stderr)
    names = list(meta.get("class_names") or range(k))
    rows = {}
    for v, m in metrics.items():
        s = m.compute()
        rows[v] = {"miou": 100 * float(s["miou"]),
                   **{f"iou_{n}": 100 * float(x) for n, x in zip(names, s["iou"], strict=True)}}  # fmt: skip
    return {"checkpoint": checkpoint, "frames": len(pairs), "size": size, "rows": rows}


# ----------------------------------------------------------------------------------- speed


def speed(
    checkpoint: str,
    threads: int,
    rounds: int,
    per_round: int,
    warmup: int,
    tmp: Path,
    root: str | None = None,
):
    """Median ms of network, postprocess and both, per runtime and variant (interleaved rounds)."""
    net, meta = load_network(checkpoint)
    size = [int(v) for v in meta.get("input_size") or (360, 480)]
    images = frames(meta, root)
    calibration = images.calibration("val", 16, size) if images is not None else []
    if not len(calibration):
        raise RtsegError(f"{checkpoint}: no frames to calibrate int8 on (its recorded data config)")
    torch.set_num_threads(threads)
    backends = {}
    for v, stride in VARIANTS.items():
        module = net if stride == 1 else CoarseNet(net, stride)
        fp32 = export_onnx(module, tmp / f"{v}.onnx", size)
        int8 = quantize_onnx_int8(fp32, tmp / f"{v}.int8.onnx", calibration)
        for r in RUNTIMES:
            backends[r, v] = from_file(r, int8, size, 1, threads)
    x = calibration[0]
    times = {key: {"network": [], "post": []} for key in backends}
    h, w = size
    for i in range(rounds):
        for key, backend in backends.items():
            stride = VARIANTS[key[1]]
            for j in range(per_round + (warmup if i == 0 else 0)):
                t0 = time.perf_counter()
                logits = backend(x)
                t1 = time.perf_counter()
                labels = logits.max(1).indices[0].to(torch.uint8).numpy()
                if stride > 1:
                    labels = cv2.resize(labels, (labels.shape[1] * stride, labels.shape[0] * stride),
                                        interpolation=cv2.INTER_NEAREST)[:h, :w]  # fmt: skip
                t2 = time.perf_counter()
                if j >= (warmup if i == 0 else 0):
                    times[key]["network"].append((t1 - t0) * 1e3)
                    times[key]["post"].append((t2 - t1) * 1e3)
        print(f"  speed: round {i + 1}/{rounds}", file=sys.stderr)
    for b in backends.values():
        getattr(b, "close", lambda: None)()  # OpenVINO frees its compiled model now
    out = []
    for (runtime, v), t in times.items():
        total = [a + b for a, b in zip(t["network"], t["post"], strict=True)]
        out.append({"runtime": runtime, "variant": v, "network_ms": np.median(t["network"]),
                    "post_ms": np.median(t["post"]), "total_ms": np.median(total),
                    "fps": 1e3 / np.median(total), "frames": len(total)})  # fmt: skip
    return out, calibration.source


# ----------------------------------------------------------------------------------- report


def plot(miou: list[dict], timing: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    variants = list(VARIANTS)
    for r in RUNTIMES:
        rows = {t["variant"]: t for t in timing if t["runtime"] == r}
        a.plot(variants, [rows[v]["total_ms"] for v in variants], "o-", label=r)
    a.set_ylabel("ms a frame (network + class map)")
    a.set_title("speed (shipped camvid, int8)")
    a.legend()
    for s in miou:
        b.plot(
            variants,
            [s["rows"][v]["miou"] for v in variants],
            "o-",
            label=Path(s["checkpoint"]).name,
        )
    b.set_ylabel("val mIoU (%)")
    b.set_title("fold mIoU (held-out sequence, fp32)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(args, argv, miou, timing, calibration, load) -> str:
    flags = cpu_flags()
    have = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS)
    lines = [
        "# The class map at the logits' stride (issue 34, item 2)",
        "",
        "Written by `experiments/coarse_labels/run.py` (its docstring says what each variant is):",
        "",
        "```bash",
        ".venv/bin/python experiments/coarse_labels/run.py " + " ".join(argv),
        "```",
        "",
        f"CPU: {cpu_name()}, {usable_cpus()} usable cores ({have}); threads {args.threads}; "
        f"load average before/after {load[0]:.2f}/{load[1]:.2f}; int8: {int8_recipe()}, "
        f"calibrated on {calibration}.",
        "",
        "## Speed: the shipped network, per frame (median ms; network + class map at the input size)",
        "",
        table(timing),
        "",
        "## Fold mIoU (fp32, each checkpoint's held-out val split; per class: IoU change in points)",
        "",
    ]
    rows = []
    for s in miou:
        base = s["rows"]["bilinear"]
        for v, r in s["rows"].items():
            rows.append({"checkpoint": s["checkpoint"], "frames": s["frames"], "variant": v,
                         "miou": f"{r['miou']:.2f}", "vs bilinear": f"{r['miou'] - base['miou']:+.2f}",
                         **{k[4:]: f"{r[k] - base[k]:+.1f}" for k in r if k.startswith("iou_")}})  # fmt: skip
    lines.append(table(rows))
    lines += ["", "![speed and mIoU per variant](coarse_labels.png)", ""]
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    """Rows of one shape as a markdown table, floats to two decimals."""

    def cell(v):
        return f"{v:.2f}" if isinstance(v, float | np.floating) else str(v)

    return markdown_table(list(rows[0]), [[cell(v) for v in r.values()] for r in rows])


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected an integer >= 1")
    return value


@user_errors_as_one_line
def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", nargs="*", default=[], help="fold runs (or .ckpt) to score")
    ap.add_argument("--speed-checkpoint", default="camvid", help="the network timed (shipped name)")
    ap.add_argument(
        "--data-root",
        default=os.environ.get("CAMVID_DIR"),
        help="the CamVid copy (default: CAMVID_DIR, else each checkpoint's recorded root)",
    )
    ap.add_argument("--threads", type=positive, default=usable_cpus())
    ap.add_argument("--rounds", type=positive, default=6)
    ap.add_argument("--per-round", type=positive, default=50)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument(
        "--out", type=Path, default=Path(os.environ.get("RTSEG_LOG_DIR", "logs")) / "coarse_labels"
    )
    args = ap.parse_args(argv)
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="coarse-labels-") as tmp:
        timing, calibration = speed(args.speed_checkpoint, args.threads, args.rounds,
                                    args.per_round, args.warmup, Path(tmp), args.data_root)  # fmt: skip
    miou = [score(c, args.threads, args.data_root) for c in args.checkpoints]
    after = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.csv").open("w", newline="") as f:
        rows = [{"checkpoint": s["checkpoint"], "variant": v, **r}
                for s in miou for v, r in s["rows"].items()]  # fmt: skip
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    with (args.out / "speed.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(timing[0]))
        writer.writeheader()
        writer.writerows(timing)
    plot(miou, timing, args.out / "coarse_labels.png")
    write_atomic(
        args.out / "README.md", report(args, argv, miou, timing, calibration, (before, after))
    )
    print((args.out / "README.md").read_text())


if __name__ == "__main__":
    main()
