"""Where the shipped network's time goes: a per-layer profile of its int8 forms on this machine, grouped by block.

The network is exported and quantised through the project's own seam (``rtseg.infer.open.open_model``
with ``openvino-int8``, as rtseg-bench and realtime do), then that very int8 file runs in OpenVINO with
its performance counters (``PERF_COUNT``, ``request.get_profiling_info()``) and in ONNX Runtime with
its profiler (``SessionOptions.enable_profiling``). Every executed node is mapped to a block of the
network by its name (the ONNX export keeps the module path, ``/net/encoder/model/blocks.3/...``;
OpenVINO keeps it as the node's name and its ``originalLayersNames``): the stem, the encoder's
depthwise stages by stride, SPPM, each UAFM, the segmentation head, the final upsampling, the
pad/crop to a multiple of 32, and the layout/convert ops the runtimes add (reorders, transposes,
(de)quantisation); the argmax to the class map (the stream's postprocess, outside the network) is
timed beside it in torch. Per block: median ms per inference, its share of the time, its GOPs
(2 per multiply-add, ``rtseg.models.cost.gflops_by_module``: the same counter as the 3.75 GFLOPs
the project reports) and share of them, and the precisions its layers executed in (OpenVINO's
``exec_type``: I8/f32/bf16; ONNX Runtime's input types), weighted by time.

Writes blocks.csv, nodes.csv (every node), blocks.png (time share vs FLOP share per block) and
README.md (the command, the CPU, the load, the table) into ``--out`` (default: a fresh folder under
``$RTSEG_LOG_DIR/network_profile/``; the committed figures are ``--out
experiments/network_profile/results``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from rtseg.errors import RtsegError
from rtseg.infer.frames import maps_from_logits
from rtseg.infer.open import open_model
from rtseg.infer.options import InferOptions
from rtseg.infer.registry import from_file
from rtseg.models.cost import gflops_by_module
from rtseg.utils.cli import user_errors_as_one_line
from rtseg.utils.machine import cpu_flags, cpu_name, usable_cpus
from rtseg.utils.paths import write_atomic

#: EfficientNet(-Lite)'s ``blocks.i`` -> the stride it runs at (the same for lite0..lite4)
ENCODER_STRIDES = {0: 2, 1: 4, 2: 8, 3: 16, 4: 16, 5: 32, 6: 32}
LAYOUT = "layout/convert"
ARGMAX = "argmax (class map, torch)"
ORDER = [
    "stem", *(f"encoder 1/{s}" for s in (2, 4, 8, 16, 32)), "SPPM",
    *(f"UAFM 1/{s}" for s in (16, 8, 4)), "seg head", "final upsample", ARGMAX, "pad/crop",
    LAYOUT, "other",
]  # fmt: skip
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
LAYOUT_TYPES = {"Reorder", "Convert", "FakeQuantize", "Transpose", "QuantizeLinear",
                "DequantizeLinear", "ReorderInput", "ReorderOutput", "Cast"}  # fmt: skip


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad input: one line, exit 2
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected > 0, got {text}")
        return value

    return parse


def block_of(name: str) -> str | None:
    """The block a node or module belongs to, from its ONNX name (``/net/head/fuse.1/...``) or
    module path (``net.head.fuse.1.low.0``); None when the name says nothing."""
    n = name.replace("/", ".")
    if re.search(r"QuantizeLinear|DequantizeLinear", n):
        return LAYOUT
    if m := re.search(r"encoder\.model\.blocks\.(\d+)", n):
        return f"encoder 1/{ENCODER_STRIDES.get(int(m[1]), '?')}"
    if re.search(r"encoder\.model\.(conv_stem|bn1)", n):
        return "stem"
    if "head.sppm" in n:
        return "SPPM"
    if m := re.search(r"head\.fuse\.(\d+)", n):  # fuse.0 is the deepest: 1/16, then 1/8, 1/4
        return f"UAFM 1/{32 >> (int(m[1]) + 1)}"
    if "head.head" in n:
        return "seg head"
    if re.match(r"\.?net\.(Resize|Shape|Slice|Concat|Gather|Cast|Constant|Unsqueeze)", n):
        return "final upsample"  # LiteSegNet._finish: the logits to the input size
    if re.match(r"\.?(Pad|Slice|Constant|Shape|Gather|Concat|Sub|Cast|ConstantOfShape)", n):
        return "pad/crop"  # PadToMultiple, outside ``net``
    return None


def precision(exec_type: str) -> str:
    """i8, f32, bf16, f16 from OpenVINO's ``exec_type`` (``jit_avx2_1x1_I8``) or a tensor type."""
    t = exec_type.lower().rsplit("_", 1)[-1]
    return {"u8": "i8", "uint8": "i8", "int8": "i8", "fp32": "f32", "float": "f32"}.get(t, t)


def profile_openvino(path: Path, size, threads: int, x, warmup: int, iterations: int):
    """Per node: its block, type, exec_type and median ms over ``iterations``; and the wall ms."""
    backend = from_file("openvino-int8", path, size, 1, threads, profile=path)
    original = {}
    for op in backend.compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        names = rt["originalLayersNames"].astype(str) if "originalLayersNames" in rt else ""
        original[op.get_friendly_name()] = [n for n in names.split(",") if n]
    times, info, wall = defaultdict(list), {}, []
    for i in range(warmup + iterations):
        t0 = time.perf_counter()
        logits = backend(x)
        if i < warmup:
            continue
        wall.append((time.perf_counter() - t0) * 1e3)
        for p in backend.request.get_profiling_info():
            if not str(p.status).endswith("EXECUTED"):
                continue
            times[p.node_name].append(p.real_time.total_seconds() * 1e3)
            if p.node_name not in info:
                kind = p.node_type
                block = LAYOUT if kind in LAYOUT_TYPES else None
                for name in [p.node_name, *original.get(p.node_name, [])]:
                    block = block or block_of(name)
                info[p.node_name] = {"type": kind, "exec": p.exec_type, "block": block or "other"}
    nodes = [
        {"node": n, **info[n], "precision": precision(info[n]["exec"]), "ms": np.median(t)}
        for n, t in times.items()
    ]
    backend.close()
    return nodes, float(np.median(wall)), logits


def profile_onnxruntime(path: Path, size, threads: int, x, warmup: int, iterations: int, tmp):
    """As ``profile_openvino`` from ONNX Runtime's profile (each kernel assigned to its run)."""
    backend = from_file("onnxruntime-int8", path, size, 1, threads, profile=Path(tmp) / "ort")
    wall = []
    for i in range(warmup + iterations):
        t0 = time.perf_counter()
        backend(x)
        if i >= warmup:
            wall.append((time.perf_counter() - t0) * 1e3)
    events = json.loads(Path(backend.session.end_profiling()).read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e["name"] == "model_run")
    keep = runs[warmup:]
    times, info = defaultdict(list), {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        if not any(a <= e["ts"] <= b for a, b in keep):
            continue
        node, op = e["name"][: -len("_kernel_time")], e["args"].get("op_name", "?")
        times[node].append(e["dur"] / 1e3)
        if node not in info:
            types = [next(iter(t)) for t in e["args"].get("input_type_shape", [])] or ["float"]
            block = LAYOUT if op in LAYOUT_TYPES else block_of(node)
            info[node] = {"type": op, "exec": types[0], "block": block or "other"}
    n_runs = len(keep)
    nodes = [  # a node that ran fewer times than the runs (none should) counts its median anyway
        {"node": n, **info[n], "precision": precision(info[n]["exec"]), "ms": np.median(t)}
        for n, t in times.items()
    ]
    return nodes, float(np.median(wall)), n_runs


def argmax_ms(logits: torch.Tensor, iterations: int) -> float:
    """The stream's postprocess on these logits: the class map (``maps_from_logits``)."""
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        maps_from_logits(logits)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def block_table(runtime: str, nodes: list[dict], flops: dict[str, float], argmax: float):
    """One row per block: ms, share of time, GOPs, share of GOPs, precisions by time, nodes."""
    ms, mix, count = defaultdict(float), defaultdict(lambda: defaultdict(float)), defaultdict(int)
    for n in nodes:
        ms[n["block"]] += n["ms"]
        mix[n["block"]][n["precision"]] += n["ms"]
        count[n["block"]] += 1
    ms[ARGMAX], mix[ARGMAX]["f32"], count[ARGMAX] = argmax, argmax, 1
    total_ms, total_flops = sum(ms.values()), sum(flops.values())
    rows = []
    for block in [b for b in ORDER if b in ms or b in flops]:
        t = ms.get(block, 0.0)
        shares = sorted(mix[block].items(), key=lambda kv: -kv[1])
        rows.append({
            "runtime": runtime, "block": block, "ms": round(t, 3),
            "time_share": round(t / total_ms, 4) if total_ms else None,
            "gops": round(flops.get(block, 0.0), 4),
            "flops_share": round(flops.get(block, 0.0) / total_flops, 4),
            "precision": ", ".join(f"{p} {v / t:.0%}" for p, v in shares if t and v / t >= 0.005),
            "nodes": count.get(block, 0),
        })  # fmt: skip
    return rows


def block_flops(net, size) -> dict[str, float]:
    """GOPs per block: each module's own FLOPs (2 per multiply-add) summed by ``block_of``."""
    out = defaultdict(float)
    for path, g in gflops_by_module(net, size).items():
        out[block_of(path) or "other"] += g
    return dict(out)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = [b for b in ORDER if any(r["block"] == b for r in rows)]
    series = {"FLOPs (GOPs)": {r["block"]: r["flops_share"] for r in rows}}
    for runtime in dict.fromkeys(r["runtime"] for r in rows):
        series[f"time, {runtime}"] = {
            r["block"]: r["time_share"] for r in rows if r["runtime"] == runtime
        }
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(blocks) + 1.5))
    height = 0.8 / len(series)
    y = np.arange(len(blocks))
    for i, (label, share) in enumerate(series.items()):
        ax.barh(y + i * height, [100 * (share.get(b) or 0) for b in blocks], height, label=label)
    ax.set_yticks(y + height * (len(series) - 1) / 2, blocks)
    ax.invert_yaxis()
    ax.set_xlabel("% of the network's time (per runtime) or of its FLOPs")
    ax.set_title("camvid int8: share of time vs share of FLOPs per block")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def markdown(rows: list[dict]) -> str:
    lines = [
        "| runtime | block | ms | % time | GOPs | % FLOPs | precision (by time) | nodes |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['runtime']} | {r['block']} | {r['ms']:.2f} | {100 * r['time_share']:.1f} | "
            f"{r['gops']:.3f} | {100 * r['flops_share']:.1f} | {r['precision']} | {r['nodes']} |"
        )
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


def machine() -> dict:
    flags = cpu_flags()
    return {
        "cpu": cpu_name(),
        "cpus": usable_cpus(),
        "flags": {f: f in flags for f in FLAGS},
        "load": os.getloadavg(),
    }


def parse_args(argv=None):
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="camvid", help="a shipped name, .ckpt or run folder")
    ap.add_argument("--threads", type=positive(int), default=None,
                    help="runtime threads (default: the CPUs this process may use)")  # fmt: skip
    ap.add_argument("--iterations", type=positive(int), default=300, help="profiled inferences")
    ap.add_argument("--warmup", type=int, default=30, help="inferences before profiling")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for the results (default: a new one under "
                    "$RTSEG_LOG_DIR/network_profile/; committed: experiments/network_profile/"
                    "results)")  # fmt: skip
    return ap.parse_args(argv)


@user_errors_as_one_line
def main(argv=None) -> None:
    args = parse_args(argv)
    if args.warmup < 0:
        raise RtsegError(f"--warmup={args.warmup}: expected >= 0")
    log_dir = Path(os.environ.get("RTSEG_LOG_DIR", "logs"))
    out = args.out or log_dir / "network_profile" / time.strftime("%Y%m%d-%H%M%S")
    threads = args.threads or usable_cpus()
    torch.set_num_threads(threads)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="network-profile-") as tmp:
        opened = open_model(
            args.checkpoint, "openvino-int8", None, threads, InferOptions(), log_dir,
            workdir=Path(tmp) / "export",
        )  # fmt: skip
        net, size, path = opened.net, opened.size, Path(opened.backend.path)
        calibration = opened.backend.calibration or {}
        opened.backend.close()
        if net is None:
            raise RtsegError(f"{args.checkpoint}: no network to count FLOPs on (an exported file)")
        flops = block_flops(net, size)
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
        ov, ov_wall, logits = profile_openvino(path, size, threads, x, args.warmup, args.iterations)
        ort, ort_wall, ort_runs = profile_onnxruntime(
            path, size, threads, x, args.warmup, args.iterations, tmp
        )
    argmax = argmax_ms(logits, args.iterations)
    rows = block_table("openvino-int8", ov, flops, argmax)
    rows += block_table("onnxruntime-int8", ort, flops, argmax)
    nodes = [{"runtime": "openvino-int8", **n} for n in ov]
    nodes += [{"runtime": "onnxruntime-int8", **n} for n in ort]
    for n in nodes:
        n["ms"] = round(float(n["ms"]), 4)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "blocks.csv", rows)
    write_csv(out / "nodes.csv", nodes)
    plot(rows, out / "blocks.png")
    facts = {
        "machine": (before, machine()), "threads": threads, "size": size,
        "gops": sum(flops.values()), "calibration": calibration.get("source", "?"),
        "wall": (ov_wall, ort_wall), "nodes": (sum(n["ms"] for n in ov), sum(n["ms"] for n in ort)),
    }  # fmt: skip
    write_atomic(out / "README.md", readme(args, argv, facts, rows))
    print(markdown(rows))
    print(f"results: {out} (openvino-int8 {ov_wall:.2f} ms, onnxruntime-int8 {ort_wall:.2f} ms "
          f"a frame; {ort_runs} profiled runs)")  # fmt: skip


def readme(args, argv, facts: dict, rows: list[dict]) -> str:
    import onnxruntime
    import openvino

    command = " ".join(["experiments/network_profile/run.py", *(argv or sys.argv[1:])])
    before, after = facts["machine"]
    flags = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in before["flags"].items())
    load = f"{before['load'][0]:.2f} before, {after['load'][0]:.2f} after (1-min load average)"
    (ov_wall, ort_wall), (ov_sum, ort_sum) = facts["wall"], facts["nodes"]
    threads, size, calibrated = facts["threads"], facts["size"], facts["calibration"]
    return f"""# Per-layer profile of `{args.checkpoint}` int8, by block

```bash
.venv/bin/python {command}
```

- CPU: {before["cpu"]}, {before["cpus"]} usable CPUs; {flags}
- load: {load}; a loaded machine inflates every figure and skews the shares
- runtimes: OpenVINO {openvino.__version__}, ONNX Runtime {onnxruntime.__version__}, torch
  {torch.__version__}; {threads} threads; input {size[0]}x{size[1]}, batch 1
- {args.iterations} profiled inferences after {args.warmup} warm-up ones, per runtime; ms are
  per-node medians summed per block
- the int8 file: exported and quantised by `open_model(..., "openvino-int8")` (rtseg-bench's and
  realtime's path), calibrated on {calibrated}; both runtimes run that same file
- wall time per inference: OpenVINO {ov_wall:.2f} ms (its nodes sum to {ov_sum:.2f} ms), ONNX
  Runtime {ort_wall:.2f} ms (nodes {ort_sum:.2f} ms)
- FLOPs: {facts["gops"]:.2f} GOPs a frame, 2 per multiply-add
  (`rtseg.models.cost.gflops_by_module`, the counter behind the reported GFLOPs); the argmax row is
  the stream's postprocess (`maps_from_logits`, torch), outside the network and its FLOPs

{markdown(rows)}

![time share vs FLOP share](blocks.png)

Every node with its block, type, exec type and precision: `nodes.csv`.
"""


if __name__ == "__main__":
    main()
