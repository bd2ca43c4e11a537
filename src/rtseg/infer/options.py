"""How a backend is chosen and judged: one options object for ``auto``, the reduced-precision limits
and calibration, composed from the one config group ``conf/infer/`` by rtseg-bench, rtseg-realtime
and rtseg-export (and built with its defaults by the Python API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


@dataclass
class Limits:
    """A reduced-precision backend (int8, bf16, fp16) is accepted against eager fp32 when its val
    mIoU drop (points, 0-100) is at most ``max_miou_drop`` where labelled images exist (what users
    care about), else when its argmax agreement is at least ``min_agreement``."""

    max_miou_drop: float = 0.5
    min_agreement: float = 0.995


@dataclass
class InferOptions:
    # auto: the candidates tried (None: every fast path of this machine), seconds of interleaved
    # timing, the margin within which the simplest wins, and where the measured artifact is cached
    candidates: list[str] | None = None
    seconds: float = 4.0
    margin: float = 0.05
    cache_dir: Path | None = None
    # False: with nothing measured yet, auto runs eager at once instead of measuring (a live
    # source cannot wait the minutes measuring takes); a later run with measure=True caches it
    measure: bool = True
    # fp32 backends must agree with eager fp32 on this share of argmax pixels
    agreement_tol: float = 0.995
    limits: Limits = field(default_factory=Limits)
    # labelled val images on which a reduced precision's mIoU drop is measured
    eval_images: int = 16
    # a reduced precision named explicitly (not by auto) outside the limits: stop (True) or run it
    # with one warning line, recorded as accepted: false (False)
    enforce: bool = False
    # int8 calibration: the first ``calibration_images`` of ``calibration_split`` of the data
    calibration_images: int = 32
    calibration_split: str = "train"

    @classmethod
    def from_cfg(cls, cfg: DictConfig | dict) -> InferOptions:
        """From a composed config holding the ``conf/infer`` blocks (auto, reduced_precision,
        calibration, agreement); a block left out keeps its defaults."""

        def block(name: str) -> dict:
            node = cfg.get(name)
            if isinstance(node, DictConfig):  # resolved alone: the rest may need Hydra's run state
                return OmegaConf.to_container(node, resolve=True)
            return dict(node or {})

        auto, rp = block("auto"), block("reduced_precision")
        cal, agree = block("calibration"), block("agreement")
        d = cls()
        return cls(
            candidates=list(auto["candidates"]) if auto.get("candidates") else None,
            seconds=float(auto.get("seconds", d.seconds)),
            margin=float(auto.get("margin", d.margin)),
            cache_dir=Path(auto["cache_dir"]) if auto.get("cache_dir") else None,
            agreement_tol=float(agree.get("tol", d.agreement_tol)),
            limits=Limits(
                float(rp.get("max_miou_drop", d.limits.max_miou_drop)),
                float(rp.get("min_agreement", d.limits.min_agreement)),
            ),
            eval_images=int(rp.get("eval_images", d.eval_images)),
            enforce=bool(rp.get("enforce", d.enforce)),
            calibration_images=int(cal.get("images", d.calibration_images)),
            calibration_split=str(cal.get("split", d.calibration_split)),
        )
