"""How much a stored teacher target set says beyond the labels: its argmax against the training
frames' own labels (pixel accuracy, mIoU, per-class IoU) and its mean top probability.

    .venv/bin/python experiments/camvid_folds/distillation/agreement.py \\
        logs/camvid_folds/targets/<set> ../shared/data/camvid --protocol sequence --held-out 0016E5

A teacher that fits its training frames gives back the labels (agreement near 100%: nothing to
learn beyond them); one that is wrong where the student is weak (thin classes) pulls the student
toward its errors. Labels are compared at the targets' stored resolution (nearest neighbour).
Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rtseg.data.camvid import protocol_pairs
from rtseg.data.soft_targets import TargetSet, image_hashes
from rtseg.errors import RtsegError
from rtseg.metrics import scores_from_confusion
from rtseg.utils.config import compose_config


def agreement(target_set: TargetSet, pairs: list[tuple[Path, Path]]) -> dict:
    k = target_set.num_classes
    cm = np.zeros((k, k), np.int64)
    top, missing = [], 0
    for (_, mask), sha in zip(pairs, image_hashes([p for p, _ in pairs]), strict=True):
        probs = target_set.read(sha)
        if probs is None:
            missing += 1
            continue
        h, w = probs.shape[1:]
        label = np.asarray(Image.open(mask).resize((w, h), Image.NEAREST))
        valid = label < k
        pred = probs.argmax(0)
        cm += np.bincount(label[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
        top.append(float(probs.max(0)[valid].mean()) / 255)
    scores = scores_from_confusion(torch.from_numpy(cm).double())
    return {
        "frames": len(top),
        "missing": missing,
        "pixel_acc": float(np.diag(cm).sum() / max(cm.sum(), 1)),
        "miou": float(scores["miou"]),
        "iou": [float(v) for v in scores["iou"]],
        "top_prob": float(np.mean(top)) if top else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )  # fmt: skip
    ap.add_argument("target_set", type=Path, help="a target set folder (it holds manifest.json)")
    ap.add_argument("camvid", type=Path, help="the CamVid root (train/ trainannot/ val/ valannot/)")
    ap.add_argument("--protocol", default="trainval", choices=["trainval", "sequence"])
    ap.add_argument("--held-out", nargs="*", default=[], help="sequences held out (sequence)")
    args = ap.parse_args(argv)
    try:
        target_set = TargetSet.open(args.target_set)
        pairs = protocol_pairs(args.camvid, "train", args.protocol, args.held_out)
    except RtsegError as e:
        print(e, file=sys.stderr)
        return 2
    r = agreement(target_set, pairs)
    print(
        f"{args.target_set.name}: {r['frames']} training frames ({r['missing']} without an entry)"
    )
    print(f"pixel agreement with the labels {100 * r['pixel_acc']:.2f}%, mIoU {100 * r['miou']:.2f}, "
          f"mean top probability {r['top_prob']:.3f}")  # fmt: skip
    names = compose_config("train", ["data=camvid"]).data.class_names
    print(" | ".join(f"{n} {100 * v:.1f}" for n, v in zip(names, r["iou"], strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
