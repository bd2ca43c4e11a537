"""Opening a model: a ``checkpoint=`` spec, a backend request, a size, threads and ``InferOptions``
-> the network and its metadata, the backend that runs it, and why each was chosen.

The one function that ``rtseg.load``, rtseg-realtime and rtseg-bench call (the role Ultralytics'
AutoBackend plays), so that a spec, an exported file, calibration and the reduced-precision rule
mean the same everywhere:

- ``load_model``: the spec resolved (``rtseg.checkpoints.spec``) to a trained network, or to an
  exported file with its sidecar (and its source checkpoint's network when that still exists, the
  eager fp32 reference);
- ``gather_evidence``: the real images a backend is calibrated and judged on: the checkpoint's
  own data (``data=`` or the data config it recorded), else frames of the caller's source;
- ``open_model``: both, then the backend (``auto`` or a name) and the reduced-precision verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rtseg.checkpoints.meta import describe_model, stored_model_config
from rtseg.checkpoints.reading import load_network
from rtseg.checkpoints.spec import Choice, choose_checkpoint
from rtseg.errors import RtsegError
from rtseg.infer.auto import resolve_backend
from rtseg.infer.backends import Backend
from rtseg.infer.calibration import Calibration, dataset_images, recheck_images
from rtseg.infer.options import InferOptions
from rtseg.infer.quality import Evidence
from rtseg.infer.registry import load_exported
from rtseg.infer.sidecar import read_sidecar

log = logging.getLogger("rtseg.infer")

#: ``frames(size, mean, std) -> (list of (1, 3, H, W) tensors, description)``: real frames of a source
FrameSampler = Callable[[tuple[int, int], list, list], tuple[list[torch.Tensor], str]]


@dataclass
class Loaded:
    """A resolved spec: the network (None for an exported file whose source is gone), its metadata,
    the choice (path + reason) and, for an exported file, that file."""

    net: nn.Module | None
    meta: dict
    choice: Choice
    exported: Path | None = None


@dataclass
class Opened(Loaded):
    backend: Backend | None = None
    size: tuple[int, int] = (0, 0)
    # calibration source, the images agreement was judged on, the measured quality, the artifact
    record: dict = field(default_factory=dict)


def load_model(spec, log_dir: str | Path) -> Loaded:
    """The network and metadata behind any ``checkpoint=`` spec; logs which and why."""
    choice = choose_checkpoint(spec, log_dir)
    log.info("model: %s (%s)", choice.path, choice.reason)
    if not choice.exported:
        net, meta = load_network(choice.path)
        meta = {**meta, "model": meta.get("model") or describe_model(stored_model_config(meta))}
        return Loaded(net, meta, choice)
    path = Path(choice.path)
    if not path.is_file():
        raise RtsegError(f"exported model not found: {path}")
    meta = read_sidecar(path)
    meta = {**meta, "model": meta.get("model") or path.stem}
    net, source = None, meta.get("source_checkpoint")
    if source and Path(source).is_file():
        net, _ = load_network(source)
    else:
        log.warning(
            "%s: source checkpoint %s not found: no eager fp32 reference", path.name, source
        )
    return Loaded(net, meta, choice, exported=path)


def input_size(loaded: Loaded, size) -> tuple[int, int]:
    """The size a backend runs at: an exported file's own (a different request is ignored, said
    once), else the request, else the size the checkpoint was trained at."""
    if loaded.exported is not None:
        own = tuple(int(v) for v in loaded.meta["input_size"])
        if size and tuple(int(v) for v in size) != own:
            log.warning(
                "size %s ignored: %s was exported for %s",
                list(size),
                loaded.exported.name,
                list(own),
            )
        return own
    return tuple(int(v) for v in (size or loaded.meta["input_size"]))


def card_int8(meta: dict, size: tuple[int, int]) -> tuple[Calibration, list]:
    """A shipped model whose data is not here: int8 from the ranges its card was measured with
    (the same file on every machine), judged by the card, re-checked on this runtime's output for
    the built-in scenes. Returns the calibration and those re-check images."""
    card = meta["int8_evidence"]
    calib = Calibration(
        source=f"the model card's calibration ranges ({card['calibration']['source']})",
        ranges=card["ranges"],
        count=card["calibration"].get("images"),
    )
    return calib, recheck_images(size, meta["mean"], meta["std"], card["recheck"]["images"])


def gather_evidence(
    loaded: Loaded,
    size: tuple[int, int],
    options: InferOptions,
    data=None,
    frames: FrameSampler | None = None,
) -> tuple[Evidence, dict]:
    """Calibration, agreement and labelled images at ``size``, and a record of where they came from.

    int8 calibrates on the checkpoint's training images (``data`` or the recorded data config), else
    on the source's frames, never on noise; agreement is judged on the frames when given (the
    stream the model will see), else on the val images.
    """
    meta = loaded.meta
    sampled, described = frames(size, meta["mean"], meta["std"]) if frames else ([], None)
    calib, pairs = Calibration(), []
    images = dataset_images(data, meta)
    if images is not None:
        calib = images.calibration(options.calibration_split, options.calibration_images, size)
        pairs = images.pairs("val", options.eval_images, size)
        if images.unavailable:
            log.warning("calibration data: %s", images.unavailable)
    card = meta.get("int8_evidence")
    recheck = []
    if card and not pairs:
        calib, recheck = card_int8(meta, size)
    if not calib and sampled:
        calib = Calibration(sampled, described)
        log.warning("int8 calibrates on %s: the checkpoint's dataset cannot be read", described)
    evidence = Evidence(
        images=sampled or [x for x, _ in pairs] or recheck,
        pairs=pairs,
        calibration=calib or None,
        num_classes=meta.get("num_classes"),
        ignore_index=int(meta.get("ignore_index") or 255),
        card=card if recheck else None,
        recheck=recheck,
    )
    record = {"agreement_source": described if sampled else "val images of the dataset"}
    return evidence, record


def open_model(
    spec,
    backend: str = "auto",
    size=None,
    threads: int | None = None,
    options: InferOptions | None = None,
    log_dir: str | Path = "logs",
    data=None,
    frames: FrameSampler | None = None,
    workdir: Path | None = None,
) -> Opened:
    """Spec + backend request -> network, metadata, backend and the record of how it was chosen.

    A reduced precision named explicitly outside ``options.limits`` runs with one warning line
    (recorded ``accepted: false``) or, with ``options.enforce``, stops with one line; ``auto``
    never picks one.
    """
    options = options or InferOptions()
    loaded = load_model(spec, log_dir)
    size = input_size(loaded, size)
    threads = int(threads or torch.get_num_threads())
    if loaded.exported is not None:
        name = None if backend in (None, "auto", "eager") else backend
        be = load_exported(loaded.exported, name, threads)[0]
        opened = Opened(**vars(loaded), backend=be, size=size)
        opened.record = {"calibration": be.calibration, "artifact": str(be.path)}
        return opened
    # auto judges what it measures; it measures nothing when told not to wait (a live source)
    needs_images = (backend == "auto" and options.measure) or "int8" in backend or "bf16" in backend
    evidence, record = (
        gather_evidence(loaded, size, options, data, frames) if needs_images else (Evidence(), {})
    )
    if "int8" in backend and not evidence.calibration:
        raise RtsegError(
            f"backend={backend} needs real images to calibrate on and none could be read: pass "
            f"data=... data.root=... (the checkpoint's {loaded.meta.get('dataset')} data), a "
            "readable source, or an fp32 backend such as openvino"
        )
    be = resolve_backend(backend, loaded.net, size, 1, threads, options, evidence, workdir)
    _verdict(be, backend, loaded.meta, options)
    record.update(
        calibration=be.calibration,
        quality=be.quality,
        artifact=str(be.path) if be.path else None,
        auto={k: v for k, v in (be.auto or {}).items() if k != "trials"} or None,
    )
    return Opened(**vars(loaded), backend=be, size=size, record=record)


def _verdict(backend: Backend, requested: str, meta: dict, options: InferOptions) -> None:
    """A reduced precision outside the limits: one warning, or one error under ``enforce``."""
    q = backend.quality
    if backend.precision == "fp32" or not q:
        return
    calibrated = (
        f"; calibrated on {backend.calibration['images']} {backend.calibration['source']}"
        if backend.calibration
        else ""
    )
    backend.note = "; ".join(filter(None, [backend.note, f"{q['reason']}{calibrated}"]))
    if q["accepted"]:
        return
    hint = (
        ""
        if "miou_drop_points" in q
        else f"; the val mIoU drop, where reduced precision usually passes, needs labelled "
        f"{meta.get('dataset')} images: pass data={meta.get('dataset')} data.root=..."
    )
    line = f"backend={requested}: {backend.precision} is outside the limits ({q['reason']}{calibrated}){hint}"
    if options.enforce:
        raise RtsegError(
            f"{line}; use an fp32 backend, or reduced_precision.enforce=false to run it"
        )
    log.warning("%s (running it as asked; reduced_precision.enforce=true refuses)", line)
