"""Sky painted as signsymbol on road video from elsewhere: before/after frames and a number.

    .venv/bin/python experiments/camvid_generalisation/sky_check.py \
        --models camvid_v1=OLD_SPEC camvid=NEW_SPEC --video ../shared/data/video/solidWhiteRight.mp4

Every ``--every``-th frame of the clip goes through each model (``rtseg.load(spec)``, eager fp32,
the same preprocessing as rtseg-realtime). In a dash-cam frame the top third is sky, trees and
distant buildings, never a sign for most of its width, so the share of its pixels labelled
``signsymbol`` measures the failure the issue names; the share labelled ``sky`` is shown beside it.
Writes sky_check.csv (per model: mean over frames) and before_after.png (three frames, each model's
overlay) beside this file, or into --out. A clip with no readable frame writes nothing (exit 2).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

import rtseg

HERE = Path(__file__).parent


def frames(video: Path, every: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    out, i = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % every == 0:
            out.append(np.ascontiguousarray(bgr[..., ::-1]))
        i += 1
    cap.release()
    if not out:
        print(f"error: no frames could be read from {video}: nothing written", file=sys.stderr)
        sys.exit(2)
    return out


def shares(model, images: list[np.ndarray], top: float) -> dict:
    names = model.classes
    sign, sky = names.index("signsymbol"), names.index("sky")
    per = []
    for im in images:
        lab = model.predict(im)
        band = lab[: int(top * lab.shape[0])]
        per.append((float((band == sign).mean()), float((band == sky).mean())))
    arr = np.asarray(per)
    return {
        "signsymbol_top": arr[:, 0].mean(),
        "sky_top": arr[:, 1].mean(),
        "worst": arr[:, 0].max(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", required=True, help="label=checkpoint spec")
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--top", type=float, default=1 / 3, help="share of the frame height checked")
    ap.add_argument(
        "--out", type=Path, default=HERE, help="where to write (default: beside this file)"
    )
    args = ap.parse_args()
    out = args.out
    images = frames(args.video, args.every)
    models = {k: rtseg.load(v) for k, v in (m.split("=", 1) for m in args.models)}
    rows = []
    for label, model in models.items():
        s = shares(model, images, args.top)
        rows.append(
            {"model": label, "frames": len(images), **{k: round(100 * v, 2) for k, v in s.items()}}
        )
        print(f"{label}: top third of {len(images)} frames: signsymbol {100 * s['signsymbol_top']:.2f}% "
              f"(worst frame {100 * s['worst']:.2f}%), sky {100 * s['sky_top']:.2f}%")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with (out / "sky_check.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    picks = [images[i] for i in np.linspace(0, len(images) - 1, 3).astype(int)]
    grid = [
        np.concatenate([picks[r]] + [m.overlay(picks[r]) for m in models.values()], axis=1)
        for r in range(len(picks))
    ]
    sheet = np.concatenate(grid, axis=0)
    h = 40
    header = np.full((h, sheet.shape[1], 3), 255, np.uint8)
    titles = ["input", *models]
    w = sheet.shape[1] // len(titles)
    for i, t in enumerate(titles):
        cv2.putText(header, t, (i * w + 10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    sheet = np.concatenate([header, sheet], axis=0)
    scale = 1800 / sheet.shape[1]
    sheet = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out / "before_after.png"), sheet[..., ::-1])
    print(f"wrote {out / 'before_after.png'} and {out / 'sky_check.csv'}")


if __name__ == "__main__":
    main()
