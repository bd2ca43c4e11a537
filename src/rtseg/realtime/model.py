"""The chosen model behind the benchmark's Backend seam, ready for pipeline workers and the baselines.

Eager torch takes any batch size, so one backend serves every batch. Exported/compiled backends
(ONNX Runtime, OpenVINO, inductor) have a fixed batch: each worker gets one for batch 1 and one
for ``max_batch`` (partial batches are padded). Each extra worker builds its own backends, since an
OpenVINO infer request must not be shared between threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rtseg.checkpoints.spec import Choice, choose_checkpoint
from rtseg.errors import RtsegError
from rtseg.infer.quality import Int8Limits
from rtseg.realtime.pipeline import Infer

log = logging.getLogger("rtseg.realtime")


@dataclass
class BackendChoice:
    """How realtime builds its backend (conf/realtime.yaml: backend, data, calibration, int8, auto)."""

    name: str = "auto"
    data: object = None  # data config for int8 calibration / mIoU drop (None: the checkpoint's own)
    calibration_images: int = 32
    int8_eval_images: int = 16
    int8_limits: Int8Limits = field(default_factory=Int8Limits)
    int8_enforce: bool = False  # outside the limits: stop (True) or run with a warning, recorded
    auto_cache_dir: Path | None = None
    auto_seconds: float = 4.0
    auto_margin: float = 0.05
    auto_candidates: list[str] | None = None
    # a live source does not wait the minutes auto measuring takes: nothing cached -> eager now
    live: bool = False


class RealtimeModel:
    def __init__(
        self,
        checkpoint,
        log_dir: str | Path,
        backend: str | BackendChoice = "auto",
        size: tuple[int, int] | None = None,
        max_batch: int = 1,
        threads: int | None = None,
        workdir: Path | None = None,
        calibration_frames=None,
    ):
        """``calibration_frames(size, mean, std) -> (list of (1, 3, H, W) tensors, description)``:
        real frames of the source, on which agreement with eager fp32 is judged (and int8 is
        calibrated when the checkpoint's dataset cannot be read).

        ``threads`` None means torch's count for this machine, passed explicitly to every runtime:
        ONNX Runtime and OpenVINO left to their defaults spin threads on every core, which slows the
        pipeline's own decode/overlay/encode threads, and differs from what ``auto`` measured."""
        from rtseg.infer.backends import TorchBackend
        from rtseg.infer.registry import load_exported

        opts = backend if isinstance(backend, BackendChoice) else BackendChoice(name=backend)
        self.choice: Choice = choose_checkpoint(checkpoint, log_dir)
        log.info("model: %s (%s)", self.choice.path, self.choice.reason)
        threads = int(threads or torch.get_num_threads())
        self.max_batch, self.threads, self.workdir = max(1, int(max_batch)), threads, workdir
        self.net = None
        self._workers = 0
        self.calibration, self.calibration_info = None, None
        if self.choice.exported:
            self.backend_name = None if opts.name == "auto" else opts.name
            self.backend, meta = load_exported(self.choice.path, self.backend_name, threads)
            self.meta = {**meta, "model": meta.get("model") or self.choice.path.stem}
            self.size = tuple(self.backend.input_size)
            if size and tuple(size) != self.size:
                log.warning(
                    "size=%s ignored: %s was exported for %s",
                    list(size),
                    self.choice.path.name,
                    list(self.size),
                )
        else:
            from rtseg.checkpoints.meta import describe_model, stored_model_config
            from rtseg.checkpoints.reading import load_network

            self.net, meta = load_network(self.choice.path)
            self.meta = {**meta, "model": describe_model(stored_model_config(meta))}
            self.size = tuple(int(v) for v in (size or meta["input_size"]))
            self._resolve(opts, meta, calibration_frames)
        if self.backend.note:
            log.info(
                "backend: %s (%s): %s", self.backend.name, self.backend.precision, self.backend.note
            )
        self.dynamic = type(self.backend) is TorchBackend

    def _resolve(self, opts: BackendChoice, meta: dict, calibration_frames) -> None:
        """int8 calibrates on the checkpoint's training images (else frames of the source, never
        noise) and is refused outside ``int8_limits``; ``auto`` runs its cached artifact."""
        from rtseg.infer.auto import has_choice, resolve_backend
        from rtseg.infer.calibration import Calibration, dataset_images

        name, waived = opts.name, None
        if name == "auto" and opts.live:
            if not has_choice(self.net, self.size, 1, self.threads, opts.auto_cache_dir):
                log.warning(
                    "backend=auto: nothing measured for this model at %dx%d with threads=%d on this "
                    "machine yet, and a live source does not wait the minutes measuring takes: "
                    "running eager (fp32, the reference) now. Measure once on a file (live=false) "
                    "or with rtseg-bench backends=[auto]; later live runs use that choice",
                    *self.size,
                    self.threads,
                )
                name = "eager"
                waived = "auto: nothing measured here yet; a live source does not wait: eager"
        frames, described = [], None
        calib, pairs = Calibration(), []
        if name == "auto" or "int8" in name:
            if calibration_frames is not None:
                frames, described = calibration_frames(self.size, meta["mean"], meta["std"])
            data = dataset_images(opts.data, meta)
            if data is not None:
                calib = data.calibration("train", opts.calibration_images, self.size)
                pairs = data.pairs("val", opts.int8_eval_images, self.size)
                if data.unavailable:
                    log.warning("int8 calibration: %s", data.unavailable)
            if not calib and frames:
                calib = Calibration(frames, described)
                log.warning(
                    "int8 calibrates on %s: the checkpoint's dataset cannot be read", described
                )
            if "int8" in name and not calib:
                raise RtsegError(
                    f"backend={name} needs real images to calibrate on and none could be read: pass "
                    f"data=... data.root=... (the checkpoint's {meta.get('dataset')} data), a readable "
                    "source=..., or backend=openvino (fp32)"
                )
        self.calibration = calib or None
        self.backend = resolve_backend(
            name,
            self.net,
            self.size,
            batch_size=1,
            threads=self.threads,
            workdir=self.workdir,
            calibration=self.calibration,
            images=frames or [x for x, _ in pairs] or None,
            pairs=pairs,
            num_classes=meta.get("num_classes"),
            int8_limits=opts.int8_limits,
            cache_dir=opts.auto_cache_dir,
            seconds=opts.auto_seconds,
            margin=opts.auto_margin,
            candidates=opts.auto_candidates,
        )
        self.backend_name = self.backend.name
        self.backend.note = waived or self.backend.note
        q = self.backend.quality
        if self.backend.precision == "int8" and q and not q["accepted"]:
            hint = (
                ""
                if "miou_drop_points" in q
                else f"; the val mIoU drop, where int8 usually passes, needs labelled "
                f"{meta.get('dataset')} images: pass data={meta.get('dataset')} data.root=..."
            )
            line = (
                f"backend={name}: int8 is outside the limits ({q['reason']}; calibrated on "
                f"{self.backend.calibration['images']} {self.backend.calibration['source']}){hint}"
            )
            if opts.int8_enforce:
                raise RtsegError(
                    f"{line}; use backend=openvino, or int8.enforce=false to run it anyway"
                )
            log.warning("%s (running it as asked; int8.enforce=true refuses)", line)
        if self.backend.precision == "int8":
            self.backend.note = f"int8 calibrated on {self.backend.calibration['images']} {self.backend.calibration['source']}; {q['reason']}"
        self.calibration_info = {
            "calibration": self.backend.calibration,
            "agreement_source": described if frames else "val images of the dataset",
            "quality": q,
            "artifact": str(self.backend.path) if self.backend.path else None,
            "auto": {k: v for k, v in (self.backend.auto or {}).items() if k != "trials"} or None,
        }

    def _build(self, batch: int, threads: int | None):
        """Another backend like the first: the very same file when the batch matches."""
        from rtseg.infer.registry import create_backend, from_file, load_exported

        if self.backend.path is not None and batch == self.backend.batch_size:
            return from_file(self.backend_name, self.backend.path, self.size, batch, threads)
        if self.choice.exported:
            return load_exported(self.choice.path, self.backend_name, threads)[0]
        return create_backend(
            self.backend_name,
            self.net,
            self.size,
            batch,
            threads,
            calibration=self.calibration,
            workdir=self.workdir,
        )

    def make_infer(self) -> Infer:
        """An ``Infer`` for one more pipeline worker (the first reuses the backend already built)."""
        self._workers += 1
        if self.dynamic:
            return Infer({0: self.backend})
        first = self._workers == 1
        sets = {
            self.backend.batch_size: self.backend
            if first
            else self._build(self.backend.batch_size, self.threads)
        }
        if self.max_batch > max(sets) and not self.choice.exported:
            sets[self.max_batch] = self._build(self.max_batch, self.threads)
        return Infer(sets)

    def standalone_infer(self, threads: int | None) -> Infer:
        """Batch-1 inference with ``threads`` (None: the pipeline's) for the sequential loop and model-only timing."""
        threads = threads or self.threads
        if threads == self.threads:
            return Infer(
                {0: self.backend} if self.dynamic else {self.backend.batch_size: self.backend}
            )
        if self.dynamic:  # torch threads are process-wide: set them while this Infer runs
            return _TorchThreads(Infer({0: self.backend}), threads)
        return Infer({1: self._build(1, threads)})


class _TorchThreads:
    """Runs an Infer with a given torch thread count (None: torch's default for this machine)."""

    default_threads = torch.get_num_threads()

    def __init__(self, infer: Infer, threads: int | None):
        self.infer, self.threads = infer, threads or self.default_threads

    def __call__(self, xs):
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self.infer(xs)
        finally:
            torch.set_num_threads(before)
