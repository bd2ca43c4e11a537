"""The chosen model behind the benchmark's Backend seam, ready for pipeline workers and the baselines.

Eager torch takes any batch size, so one backend serves every batch. Exported/compiled backends
(ONNX Runtime, OpenVINO, inductor) have a fixed batch: each worker gets one for batch 1 and one
for ``max_batch`` (partial batches are padded). Each extra worker builds its own backends, since an
OpenVINO infer request must not be shared between threads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from rtseg.errors import RtsegError
from rtseg.infer.spec import Choice, choose_checkpoint
from rtseg.realtime.pipeline import Infer

log = logging.getLogger("rtseg.realtime")


class RealtimeModel:
    def __init__(
        self,
        checkpoint,
        log_dir: str | Path,
        backend: str = "auto",
        size: tuple[int, int] | None = None,
        max_batch: int = 1,
        threads: int | None = None,
        workdir: Path | None = None,
        calibration_frames=None,
    ):
        """``calibration_frames(size, mean, std) -> (list of (1, 3, H, W) tensors, description)``:
        real frames for int8 calibration and for judging agreement with eager fp32."""
        from rtseg.infer.auto import resolve_backend
        from rtseg.infer.backends import TorchBackend
        from rtseg.infer.registry import load_exported

        self.choice: Choice = choose_checkpoint(checkpoint, log_dir)
        log.info("model: %s (%s)", self.choice.path, self.choice.reason)
        self.max_batch, self.threads, self.workdir = max(1, int(max_batch)), threads, workdir
        self.net = None
        self._workers = 0
        self.calibration, self.calibration_info = None, None
        if self.choice.exported:
            self.backend_name = None if backend == "auto" else backend
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
            from rtseg.checkpoint import describe_model, load_network, stored_model_config

            self.net, meta = load_network(self.choice.path)
            self.meta = {**meta, "model": describe_model(stored_model_config(meta))}
            self.size = tuple(int(v) for v in (size or meta["input_size"]))
            needs_real = backend == "auto" or "int8" in backend
            frames, described = (None, None)
            if needs_real and calibration_frames is not None:
                frames, described = calibration_frames(self.size, meta["mean"], meta["std"])
            if "int8" in backend and not frames:
                raise RtsegError(
                    f"backend={backend} needs real images to calibrate on and none could be read "
                    "from the source: pass a readable source=..., or backend=openvino (fp32)"
                )
            self.calibration = frames
            self.backend = resolve_backend(
                backend,
                self.net,
                self.size,
                batch_size=1,
                threads=threads,
                workdir=workdir,
                calibration=frames,
                images=frames[:8] if frames else None,
            )
            self.backend_name = self.backend.name
            if frames:
                from rtseg.infer.auto import agreement, reference_labels

                self.agreement = agreement(self.backend, reference_labels(self.net), frames)
                if self.backend.precision == "int8":
                    self.backend.note = f"int8 calibrated on {len(frames)} {described}"
                self.calibration_info = {
                    "source": described,
                    "images": len(frames),
                    "agreement_with_fp32": round(self.agreement, 5),
                }
        if self.backend.note:
            log.info(
                "backend: %s (%s): %s", self.backend.name, self.backend.precision, self.backend.note
            )
        self.dynamic = type(self.backend) is TorchBackend

    def _build(self, batch: int, threads: int | None):
        from rtseg.infer.registry import create_backend, load_exported

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
        """Batch-1 inference with ``threads`` (the sequential loop and model-only timing run at their best)."""
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
