"""The chosen model behind the benchmark's Backend seam, ready for pipeline workers and the baselines.

Eager torch takes any batch size, so one backend serves every batch. Exported/compiled backends
(ONNX Runtime, OpenVINO, inductor) have a fixed batch: each worker gets one for batch 1 and one
for ``max_batch`` (partial batches are padded). Each extra worker builds its own backends, since an
OpenVINO infer request must not be shared between threads.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from rtseg.infer.frames import fit_batch, maps_from_logits
from rtseg.infer.open import Opened


class RealtimeModel:
    """Per-worker backends around one opened model (``rtseg.infer.open.open_model``).

    ``threads`` is passed explicitly to every runtime: ONNX Runtime and OpenVINO left to their
    defaults spin threads on every core, which slows the pipeline's own decode/overlay/encode
    threads, and differs from what ``auto`` measured."""

    def __init__(
        self, opened: Opened, max_batch: int = 1, threads: int | None = None, workdir=None
    ):
        self.opened = opened
        self.net, self.meta, self.choice = opened.net, opened.meta, opened.choice
        self.backend, self.size = opened.backend, opened.size
        self.backend_name = self.backend.name
        self.calibration = opened.backend.calibration
        self.threads = int(threads or torch.get_num_threads())
        self.max_batch, self.workdir = max(1, int(max_batch)), workdir
        self._workers = 0
        self.dynamic = self.backend.dynamic

    def _build(self, batch: int, threads: int | None):
        """Another backend like the first: the very same file when the batch matches."""
        from rtseg.infer.registry import create_backend, from_file

        if self.backend.path is not None and (batch == self.backend.batch_size or self.net is None):
            return from_file(self.backend_name, self.backend.path, self.size, batch, threads)
        return create_backend(
            self.backend_name, self.net, self.size, batch, threads, self.calibration, self.workdir
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
        if self.max_batch > max(sets) and self.opened.exported is None:
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


class Infer:
    """Batches of preprocessed frames -> uint8 class maps, over backends built for fixed batch sizes.

    ``backends`` maps a batch size to a backend; a dynamic-shape backend (eager torch) is listed
    under 0 and takes any batch. Otherwise a batch runs on the smallest backend that fits, padded.
    """

    def __init__(self, backends: dict[int, object]):
        self.backends = dict(sorted(backends.items()))

    def __call__(self, xs: list[np.ndarray], post=None) -> np.ndarray:
        return self.timed(xs, post)[0]

    def timed(self, xs: list[np.ndarray], post=None) -> tuple[np.ndarray, float]:
        """The class maps, and the ms of it spent turning logits into them (the postprocess stage).

        ``post(logits, n)``: logits -> the first ``n`` class maps (default ``maps_from_logits``; a
        temporal filter passes its own), called once per chunk, in frame order."""
        if 0 in self.backends:
            return self._run(self.backends[0], xs, None, post)
        largest = max(self.backends)
        if len(xs) > largest:  # more frames than any fixed-batch backend takes: run in chunks
            parts = [self.timed(xs[i : i + largest], post) for i in range(0, len(xs), largest)]
            return np.concatenate([m for m, _ in parts]), sum(ms for _, ms in parts)
        size = next(b for b in self.backends if b >= len(xs))
        return self._run(self.backends[size], xs, size, post)

    @staticmethod
    def _run(backend, xs, size: int | None = None, post=None) -> tuple[np.ndarray, float]:
        n = len(xs)
        x = torch.from_numpy(np.stack(xs))
        if size is not None:  # pad a partial batch to the backend's fixed batch
            x = fit_batch(x, size)
        logits = backend(x)
        t0 = time.perf_counter()
        maps = (post or maps_from_logits)(logits, n)
        return maps, (time.perf_counter() - t0) * 1e3
