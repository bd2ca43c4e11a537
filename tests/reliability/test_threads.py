"""One loaded model called from several threads (a web service's workers): no error and masks
identical to one thread's, on every backend (issue 36: OpenVINO's one infer request raised "Infer
Request is busy" and now and then returned another call's mask)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import rtseg
from rtseg.errors import BackendUnavailable, MissingExtra

THREADS, CALLS = 4, 12


def images(n: int = 8) -> list[np.ndarray]:
    """Images unlike each other (their masks differ), of two sizes (resized in and out)."""
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (32, 48, 3) if i % 2 else (40, 30, 3), dtype=np.uint8)
        for i in range(n)
    ]


@pytest.mark.parametrize("backend", ["eager", "onnxruntime", "openvino"])
def test_threads_get_the_masks_one_thread_gets(tiny_ckpt, backend):
    try:
        model = rtseg.load(str(tiny_ckpt), backend=backend, threads=1)
    except (BackendUnavailable, MissingExtra) as e:
        pytest.skip(f"{backend}: {e}")
    ims = images()
    expected = [model.predict(im) for im in ims]
    assert len({m.tobytes() for m in expected}) > 1  # a mask handed to the wrong call would show
    errors: list[BaseException] = []
    wrong: list[tuple[int, int]] = []
    start = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        start.wait()
        for k in range(CALLS):
            i = (t + k) % len(ims)  # the threads ask for different images at the same moment
            try:
                if not np.array_equal(model.predict(ims[i]), expected[i]):
                    wrong.append((t, k))
            except BaseException as e:  # noqa: BLE001 - every failure counts, of any type
                errors.append(e)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a predict call never returned"
    assert not errors, f"{len(errors)} of {THREADS * CALLS} calls failed: {errors[0]!r}"
    assert not wrong, f"{len(wrong)} of {THREADS * CALLS} masks differ from one thread's"
