"""Benchmark output: the machine header, a sorted markdown table, CSV/JSON, PNG plots, the multirun summary."""

from __future__ import annotations

import json
import logging
import math
import platform
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rtseg.bench.benchmark import RESULT_COLUMNS
from rtseg.utils.markdown import markdown_table
from rtseg.utils.paths import atomic_path, write_atomic

log = logging.getLogger("rtseg.bench")

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")

# (column, heading, format) of the printed table; the CSV has every column
DISPLAY = [
    ("model", "model", "{}"),
    ("input_size", "input", "{}"),
    ("backend", "backend", "{}"),
    ("tta", "tta", "{}"),
    ("precision", "prec", "{}"),
    ("batch", "batch", "{}"),
    ("threads", "thr", "{}"),
    ("latency_ms_median", "median ms", "{:.2f}"),
    ("latency_ms_p90", "p90 ms", "{:.2f}"),
    ("fps", "fps", "{:.1f}"),
    ("throughput", "img/s", "{:.1f}"),
    ("e2e_latency_ms_median", "e2e ms", "{:.2f}"),
    ("e2e_fps", "e2e fps", "{:.1f}"),
    ("peak_mem_mb", "mem MB", "{:.0f}"),
    ("params", "params M", "{:.2f}"),
    ("gflops", "GFLOPs", "{:.2f}"),
    ("achieved_gflops", "GFLOP/s", "{:.1f}"),
    ("pct_of_peak", "% peak", "{:.1f}"),
    ("agreement", "agree %", "{:.2f}"),
    # the checkpoint's recorded val mIoU, and the mIoU this run measured (eval_miou=true) per backend
    ("miou", "recorded mIoU", "{:.2f}"),
    ("miou_eval", "measured mIoU", "{:.2f}"),
    ("miou_drop", "drop", "{:.2f}"),
    ("note", "note", "{}"),
]


def machine_header(threads=None, peaks: dict | None = None) -> dict:
    """CPU, ISA flags that decide which backends are fast, library versions, measured peaks."""
    import torch

    from rtseg.utils.machine import cpu_flags, cpu_name

    flags = cpu_flags()
    versions = {"torch": torch.__version__}
    for mod in ("onnxruntime", "openvino"):
        try:
            versions[mod] = __import__(mod).__version__.split("-")[0]
        except ImportError:
            versions[mod] = None
    header = {
        "cpu": cpu_name(),
        "cores": __import__("os").cpu_count(),
        "threads": list(threads) if threads else None,
        "isa": {f: f in flags for f in ISA_FLAGS},
        "python": platform.python_version(),
        "versions": versions,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "peak_gflops": peaks or {},
    }
    return header


def header_text(h: dict) -> str:
    isa = " ".join(f"{k}{'+' if v else '-'}" for k, v in h["isa"].items())
    vers = " ".join(f"{k} {v}" for k, v in h["versions"].items() if v)
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in h.get("peak_gflops", {}).items())
    lines = [
        f"CPU: {h['cpu']} ({h['cores']} logical cores), threads {h['threads']}",
        f"ISA: {isa}",
        f"versions: {vers}" + (f", GPU {h['cuda']}" if h.get("cuda") else ""),
    ]
    if peaks:
        lines.append(f"GEMM peak GFLOP/s (int8: GOP/s): {peaks}")
    return "\n".join(lines)


def sort_rows(rows: list[dict]) -> list[dict]:
    """Grouped by model, input, batch and threads; fastest first; skipped rows last."""
    return sorted(
        rows,
        key=lambda r: (
            r["model"], r["input_size"], r["batch"], r["threads"],
            not r.get("latency_ms_median"), r.get("latency_ms_median") or 0.0,
        ),
    )  # fmt: skip


def _cell(row: dict, col: str, fmt: str) -> str:
    v = row.get(col)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if col == "params":
        v = v / 1e6
    if col in ("agreement", "miou", "miou_eval", "miou_drop") and isinstance(v, float):
        v = 100 * v
        text = fmt.format(v)
        return text + (" (!)" if row.get("agrees") is False and col == "agreement" else "")
    if col == "backend" and row.get("resolved"):
        return f"auto->{row['resolved']}"
    return fmt.format(v).replace("|", "/")


def results_markdown(rows: list[dict]) -> str:
    """The benchmark rows as a markdown table, in the DISPLAY columns and formats."""
    return markdown_table(
        [h for _, h, _ in DISPLAY], ([_cell(r, c, f) for c, _, f in DISPLAY] for r in rows)
    )


def write_results(
    rows: list[dict], out_dir: Path, header: dict, extra: dict | None = None
) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    paths = {
        "csv": out_dir / "results.csv",
        "json": out_dir / "results.json",
        "md": out_dir / "results.md",
    }
    write_atomic(paths["csv"], df.to_csv(index=False))
    write_atomic(
        paths["json"],
        json.dumps({"machine": header, **(extra or {}), "rows": rows}, indent=2, default=str),
    )
    write_atomic(paths["md"], header_text(header) + "\n\n" + results_markdown(rows))
    return paths


def plot_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """fps per backend per model (bars), and mIoU vs fps when mIoU is known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    done = df[df["fps"].notna()].copy()
    if done.empty:
        return []
    done["label"] = done.apply(
        lambda r: f"auto->{r['resolved']}" if isinstance(r.get("resolved"), str) else r["backend"],
        axis=1,
    )
    done["group"] = done["model"] + " " + done["input_size"].astype(str)
    pivot = done.pivot_table(index="group", columns="label", values="fps", aggfunc="max")
    fig, ax = plt.subplots(
        figsize=(max(6, 1.2 * len(pivot) + 0.4 * pivot.size / max(len(pivot), 1)), 4.5)
    )
    pivot.plot.bar(ax=ax, width=0.85)
    ax.set_ylabel("fps (model only, batch as run)")
    ax.set_xlabel("")
    ax.set_title("fps per backend")
    ax.legend(fontsize=7, ncol=2)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    paths = [out_dir / "fps.png"]
    with atomic_path(paths[0]) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    known = done[done["miou"].notna()]
    if not known.empty:
        best = known.loc[known.groupby("model")["fps"].idxmax()]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.scatter(best["fps"], 100 * best["miou"].astype(float))
        for _, r in best.iterrows():
            ax.annotate(
                f"{r['model']} ({r['label']})", (r["fps"], 100 * float(r["miou"])), fontsize=7
            )
        ax.set_xlabel("fps (fastest agreeing backend)")
        ax.set_ylabel("val mIoU %")
        ax.set_title("accuracy vs speed")
        fig.tight_layout()
        paths.append(out_dir / "miou_vs_fps.png")
        with atomic_path(paths[-1]) as tmp:
            fig.savefig(tmp, dpi=120)
        plt.close(fig)
    return paths


def summarize_bench_sweep(sweep_dir: Path) -> Path | None:
    """Concatenate every job's results.csv under a multirun folder into summary.csv + summary.md,
    with a ``job`` column naming each row's job folder."""
    sweep_dir = Path(sweep_dir)
    frames = []
    for p in sorted(sweep_dir.glob("**/results.csv")):
        df = pd.read_csv(p)
        # the job's folder under the sweep (Hydra's job number), so each row leads back to its run
        df.insert(0, "job", p.parent.relative_to(sweep_dir).as_posix())
        frames.append(df)
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    write_atomic(sweep_dir / "summary.csv", df.to_csv(index=False))
    rows = sort_rows(
        [{k: (None if _isnan(v) else v) for k, v in r.items()} for r in df.to_dict("records")]
    )
    header_file = next(iter(sorted(sweep_dir.glob("**/results.json"))), None)
    header = json.loads(header_file.read_text())["machine"] if header_file else None
    text = (header_text(header) + "\n\n" if header else "") + results_markdown(rows)
    from rtseg.bench.benchmark import speedups

    lines = speedups(rows)
    if lines:
        text += "\n" + "\n".join(f"- {ln}" for ln in lines) + "\n"
    write_atomic(sweep_dir / "summary.md", text)
    try:
        plot_results(df, sweep_dir)
    except Exception as e:  # noqa: BLE001 - a plot must never lose the table
        log.warning("summary plots failed: %s", e)
    print(f"\nsummary of {len(frames)} jobs ({sweep_dir / 'summary.csv'}):\n")
    print(text)
    return sweep_dir / "summary.csv"


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


class SummaryCallback(Callback):
    """Hydra callback: at the end of ``rtseg-bench -m ...`` write the sweep's summary.csv and summary.md.

    ``conf/benchmark.yaml`` puts it in the ``sweep_summary`` slot of ``conf/hydra/default.yaml``, in
    place of the training summary, so one summary (with the machine header) is written per sweep.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        summarize_bench_sweep(Path(config.hydra.sweep.dir))
