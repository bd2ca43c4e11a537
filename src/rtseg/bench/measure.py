"""Peak memory of a backend, measured on its own pass so that sampling never disturbs timing."""

from __future__ import annotations


class PeakRSS:
    """Peak resident memory (MB) above the level at entry, sampled by a thread every few ms.

    CPU runtimes allocate outside torch's allocator (oneDNN, ONNX Runtime, OpenVINO), so the
    process RSS is the one figure that sees them all. Used on a short separate pass, never while
    timing, so the sampler cannot disturb the latency figures.
    """

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.peak_mb = 0.0

    def __enter__(self):
        import threading

        import psutil

        self._proc = psutil.Process()
        self._base = self._proc.memory_info().rss
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.peak_mb = (self._peak - self._base) / 2**20
        return False
