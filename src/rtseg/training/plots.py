"""Per-run PNGs: normalised confusion matrix, per-class IoU bars, learning curves (matplotlib, Agg).

Pure functions of numbers, so the training callback, notebooks and tests draw the same pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training machines; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rtseg.metrics import scores_from_confusion
from rtseg.utils.paths import atomic_path


def confusion_matrix_png(
    cm: np.ndarray, class_names: Sequence[str], path: Path, title: str
) -> Path:
    """Rows (true class) normalised to 1: the diagonal is each class's recall."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(class_names)
    size = max(5.0, 0.5 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's pixels")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if rows[i, 0] > 0:
                    v = norm[i, j]
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if v > 0.5 else "black")  # fmt: skip
    return _save(fig, path)


def class_iou_png(cm: np.ndarray, class_names: Sequence[str], path: Path, title: str) -> Path:
    """Horizontal IoU bars per class from the same confusion matrix; absent classes marked."""
    import torch

    scores = scores_from_confusion(torch.as_tensor(np.asarray(cm)))
    iou = scores["iou"].numpy()
    miou = float(scores["miou"])
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.35 * k + 1.5)))
    y = np.arange(k)
    ax.barh(y, np.nan_to_num(iou), color="tab:blue")
    for i, v in enumerate(iou):
        ax.text((0 if np.isnan(v) else v) + 0.01, i, "absent" if np.isnan(v) else f"{100 * v:.1f}",
                va="center", fontsize=8)  # fmt: skip
    ax.axvline(miou, color="tab:red", ls="--", label=f"mIoU {100 * miou:.1f}")
    ax.set_yticks(y, class_names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("IoU")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def learning_curves_png(history: Sequence[dict], path: Path, title: str) -> Path:
    """Train/val loss and val mIoU per epoch (``history``: dicts with epoch and those keys)."""
    fig, (loss_ax, miou_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("train_loss", "train loss"), ("val_loss", "val loss")):
        pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            loss_ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title("loss")
    loss_ax.legend()
    pts = [(h["epoch"], 100 * h["val_miou"]) for h in history if h.get("val_miou") is not None]
    if pts:
        epochs, miou = zip(*pts, strict=True)
        miou_ax.plot(epochs, miou, marker="o", color="tab:green", label="val mIoU")
        best = int(np.argmax(miou))
        miou_ax.plot(epochs[best], miou[best], "*", ms=14, color="tab:red",
                     label=f"best {miou[best]:.1f} (epoch {epochs[best]})")  # fmt: skip
        miou_ax.legend()
    miou_ax.set_xlabel("epoch")
    miou_ax.set_ylabel("mIoU %")
    miou_ax.set_title("val mIoU")
    for ax in (loss_ax, miou_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
