"""Offline distillation: a teacher's test-time-augmented class probabilities, computed once per
training image, stored (``rtseg.data.soft_targets``) and learnt beside the hard labels.

The online ``module.distill`` runs the teacher inside every step: fine for a teacher that fits
the step, ruinous for the best one the project has (``camvid_450`` with multi-scale + flip: eight
passes at up to 675x900 per image). Here the teacher runs once per image, ever; training reads
its probabilities from disk at the cost of a decompression, and the augmentations move them with
the image (``rtseg.data.transforms.build_transform``: same scale, crop and flip).

The loss (``kind``) is Hinton et al.'s knowledge distillation per pixel (``logit``: KL(teacher ||
student) of the class distributions at temperature T, times T^2, averaged over the labelled pixels
of the crop: padding and void carry no targets) or channel-wise distillation (``cwd``, Shu et al.:
each class a distribution over the crop's labelled pixels), times ``weight``; it adds to the
cross-entropy on the labels. ``pixels=agreeing`` keeps only the labelled pixels where the
teacher's argmax is the label: a teacher wrong where the student is weak (thin classes) pulls it
toward its errors, and the labels already say what a right teacher would. The stored
log-probabilities stand in for the teacher's logits: per pixel they differ by a constant, which the
class softmax ignores and the spatial one does not.

    rtseg-targets teacher_targets=camvid_450 data=camvid data.root=... data.val_protocol=trainval
    rtseg-train experiment=camvid_ppliteseg_lite0 teacher_targets=camvid_450 data.root=...
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from rtseg.checkpoints.reading import load_network, weights_identity
from rtseg.data.soft_targets import SoftTargets, TargetSet, image_hashes, stored_size
from rtseg.data.verify import cache_dir
from rtseg.errors import CheckpointError, DataError, RtsegError
from rtseg.models.tta import TTA, tta_logits
from rtseg.training.losses import distillation_loss

log = logging.getLogger(__name__)

_LOSSES = {  # kind -> what run.json and the model card say the loss was
    "logit": "pixel-wise KL(teacher || student) at T, x T^2 (Hinton et al.)",
    "cwd": "channel-wise KL(teacher || student) over pixels at T, x T^2 (Shu et al., ICCV 2021)",
}


class TeacherTargets:
    """Which teacher, how it predicts (``tta``, ``input_size``), how its targets are kept
    (``stride``, ``root``) and how they are learnt (``weight``, ``temperature``)."""

    def __init__(
        self,
        teacher: str,
        tta: str = "ms_flip",
        input_size: Sequence[int] | None = None,
        stride: int = 2,
        weight: float = 1.0,
        temperature: float = 1.0,
        root: str | None = None,
        kind: str = "logit",
        pixels: str = "labelled",
    ):
        if TTA.parse(tta) is None and tta != "none":
            raise RtsegError(f"teacher_targets.tta={tta!r}: expected none, flip, ms or ms_flip")
        if kind not in _LOSSES:
            raise RtsegError(f"teacher_targets.kind={kind!r}: expected one of {', '.join(_LOSSES)}")
        if pixels not in ("labelled", "agreeing"):
            raise RtsegError(f"teacher_targets.pixels={pixels!r}: expected labelled or agreeing")
        if int(stride) < 1:
            raise RtsegError(f"teacher_targets.stride={stride}: expected an integer >= 1")
        if float(weight) < 0 or float(temperature) <= 0:
            raise RtsegError(
                f"teacher_targets: weight={weight} must be >= 0 and temperature={temperature} > 0"
            )
        self.teacher = str(teacher)
        self.tta = str(tta)
        self.input_size = [int(v) for v in input_size] if input_size else None
        self.stride = int(stride)
        self.weight, self.temperature = float(weight), float(temperature)
        self.kind, self.pixels = str(kind), str(pixels)
        self.root = Path(root).expanduser() if root else cache_dir() / "teacher_targets"
        who = weights_identity(self.teacher)
        if not who["sha256"]:
            raise CheckpointError(
                f"teacher_targets.teacher={self.teacher}: not a checkpoint file or shipped model name"
            )
        self.teacher_sha256 = who["sha256"]
        self.teacher_source = who["source"]
        self.digest: str | None = None  # of the entries this run reads, once prepared

    # -- building -----------------------------------------------------------------------------

    def prepare(self, dataset, num_classes: int, batch_size: int = 1) -> SoftTargets:
        """The targets of every image of ``dataset`` (a training split before augmentation), built
        where missing or invalid (another teacher, another image, unreadable), then checked.

        Each entry is written as soon as it is computed, so an interrupted build resumes where it
        stopped; a run whose entries are all valid runs no teacher pass."""
        paths = [Path(img) for img, _ in getattr(dataset, "pairs", [])]
        if not paths:
            raise DataError("teacher_targets: the training split names no image files")
        hashes = image_hashes(paths)
        sizes = [_image_hw(dataset, i) for i in range(len(paths))]
        target_set = self._target_set(num_classes)
        todo = [
            i
            for i, (sha, hw) in enumerate(zip(hashes, sizes, strict=True))
            if target_set.read(sha, hw) is None
        ]
        if todo:
            self._build(target_set, dataset, todo, hashes, num_classes, batch_size)
        soft = SoftTargets(target_set, hashes, sizes)
        self.digest = soft.digest()
        log.info(
            "teacher targets: %d images from %s (%s), %s, %.1f MB on disk, digest %s",
            len(hashes),
            self.teacher,
            self.tta,
            target_set.folder,
            target_set.size_on_disk(hashes) / 1e6,
            self.digest[:16],
        )
        return soft

    def _target_set(self, num_classes: int) -> TargetSet:
        size = self.input_size or list(self._teacher_meta()["input_size"])
        return TargetSet.create(
            self.root,
            {
                "teacher": self.teacher_source,
                "teacher_sha256": self.teacher_sha256,
                "tta": self.tta,
                "input_size": [int(v) for v in size],
                "stride": self.stride,
                "num_classes": int(num_classes),
                "dtype": "uint8 probabilities x 255",
            },
        )

    def _teacher_meta(self) -> dict:
        if not hasattr(self, "_loaded"):
            net, meta = load_network(self.teacher)
            self._loaded = (net.eval().requires_grad_(False), meta)
        return self._loaded[1]

    def _build(self, target_set, dataset, todo, hashes, num_classes, batch_size) -> None:
        meta = self._teacher_meta()
        net = self._loaded[0]
        if int(meta["num_classes"]) != num_classes:
            raise CheckpointError(
                f"teacher_targets.teacher={self.teacher} predicts {meta['num_classes']} classes, "
                f"the data {num_classes}: use a teacher trained on the same classes"
            )
        size = tuple(target_set.manifest["input_size"])
        mean = torch.tensor(meta["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(meta["std"]).view(1, 3, 1, 1)
        tta = TTA.parse(self.tta)
        bar = tqdm(
            total=len(todo), desc=f"teacher targets ({self.teacher}, {self.tta})", unit="img"
        )
        with torch.inference_mode(), bar:
            for start in range(0, len(todo), max(1, batch_size)):
                chunk = todo[start : start + max(1, batch_size)]
                images = [dataset.load(i)[0] for i in chunk]
                x = torch.stack([_to_input(img, size) for img in images])
                probs = tta_logits(net, (x - mean) / std, tta).exp()
                for i, img, p in zip(chunk, images, probs, strict=True):
                    h, w = stored_size(img.shape[:2], self.stride)
                    small = F.interpolate(
                        p[None], (h, w), mode="bilinear", align_corners=False, antialias=True
                    )[0]
                    target_set.write(hashes[i], small.clamp_(0, 1).numpy())
                bar.update(len(chunk))

    # -- learning -----------------------------------------------------------------------------

    def loss(
        self,
        student: torch.Tensor,
        soft: torch.Tensor,
        valid: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``weight`` x the ``kind`` of KD between the student's logits and the stored
        probabilities (uint8 x 255, the same (B, K, H, W) size), over ``valid`` pixels; with
        ``pixels=agreeing``, only those whose ``labels`` the teacher's argmax agrees with."""
        if self.pixels == "agreeing" and labels is not None:
            valid = valid & (soft.argmax(1) == labels)
        probs = soft.float().div_(255.0).clamp_min_(1e-4)
        return self.weight * distillation_loss(
            student, probs.log_(), kind=self.kind, temperature=self.temperature, valid=valid
        )

    def record(self) -> dict:
        """What run.json and a model card keep of the targets a run learnt from."""
        return {
            "teacher": self.teacher_source,
            "teacher_sha256": self.teacher_sha256,
            "tta": self.tta,
            "input_size": self.input_size,
            "stride": self.stride,
            "weight": self.weight,
            "temperature": self.temperature,
            "kind": self.kind,
            "pixels": self.pixels,
            "loss": _LOSSES[self.kind],
            "targets_digest": self.digest,
        }


def _to_input(image: np.ndarray, size: Sequence[int]) -> torch.Tensor:
    """HxWx3 uint8 -> (3, h, w) float in [0, 1] at the teacher's input size, resized as the data
    pipeline resizes (``albumentations.Resize``: OpenCV bilinear)."""
    h, w = int(size[0]), int(size[1])
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255.0)


def _image_hw(dataset, index: int) -> tuple[int, int]:
    from rtseg.data.base import image_size

    return image_size(Path(dataset.pairs[index][0]))
