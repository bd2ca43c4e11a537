"""auto chooses by interleaved medians, prefers the simpler within the margin, and caches artifacts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from rtseg.errors import BackendUnavailable
from rtseg.infer import auto, registry
from rtseg.infer.artifacts import ArtifactCache
from rtseg.infer.backends import Backend
from rtseg.infer.calibration import Calibration
from rtseg.infer.options import InferOptions
from rtseg.infer.quality import Evidence
from rtseg.infer.sidecar import sidecar_path
from rtseg.timing import time_interleaved

SIZE = (32, 32)


def _images(n=2):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, 3, *SIZE, generator=g) for _ in range(n)]


class SleepyBackend(Backend):
    """Exact logits (eager's), after sleeping a fixed time: a backend of known speed."""

    def __init__(self, net, input_size, batch_size=1, threads=None, *, ms, **_):
        super().__init__(input_size)
        self.net, self.ms = net, ms

    @torch.inference_mode()
    def __call__(self, x):
        time.sleep(self.ms / 1e3)
        return self.net(x)


@pytest.fixture
def sleepy(monkeypatch):
    """``simple`` (simpler) and ``complex`` registered with given sleep times."""

    def register(simple_ms, complex_ms):
        for name, ms in (("simple", simple_ms), ("complex", complex_ms)):
            monkeypatch.setitem(
                registry.BACKENDS, name, registry.BackendSpec(SleepyBackend, {"ms": ms})
            )
        monkeypatch.setattr(registry, "SIMPLICITY", ["simple", "complex"])

    return register


def _auto(net, tmp_path, candidates, margin=0.05, cache_key=None, seconds=0.2):
    opts = InferOptions(candidates=candidates, cache_dir=tmp_path, seconds=seconds, margin=margin)
    evidence = Evidence(images=_images())
    return auto.resolve_backend(
        "auto", net, SIZE, threads=1, options=opts, evidence=evidence, cache_key=cache_key
    )


def test_interleaved_rounds_rotate():
    order = []
    times = time_interleaved(
        {n: (lambda n=n: order.append(n)) for n in "ABC"}, seconds=0, min_rounds=3, warmup=0
    )
    assert order == list("ABCBCACAB") and all(len(t) == 3 for t in times.values())


def test_within_the_margin_the_simpler_wins(tiny_net, tmp_path, sleepy):
    sleepy(simple_ms=6.0, complex_ms=5.8)  # complex is faster, but by less than the margin
    backend = _auto(tiny_net, tmp_path, ["complex", "simple"], margin=0.25)
    assert backend.name == "simple"
    assert backend.auto["fastest"] in ("simple", "complex") and backend.auto["margin"] == 0.25
    medians = {t["backend"]: t["median_ms"] for t in backend.auto["trials"]}
    assert set(medians) == {"simple", "complex"} and all(m >= 5 for m in medians.values())


def test_clearly_faster_wins_over_simpler(tiny_net, tmp_path, sleepy):
    sleepy(simple_ms=12.0, complex_ms=1.0)
    backend = _auto(tiny_net, tmp_path, ["simple", "complex"], margin=0.05)
    assert backend.name == "complex" and "fastest" in backend.note


def test_int8_without_images_refuses(tiny_net, tmp_path):
    for name in ("onnxruntime-int8", "openvino-int8"):
        with pytest.raises(BackendUnavailable, match="real calibration images.*data="):
            registry.create_backend(name, tiny_net, SIZE, threads=1, workdir=tmp_path)


def test_int8_sidecar_records_calibration_and_quality(tiny_net, tmp_path):
    calib = Calibration(_images(4), "synthetic/train images (the first 4)")
    evidence = Evidence(images=_images(), calibration=calib)
    backend = auto.resolve_backend(
        "onnxruntime-int8", tiny_net, SIZE, threads=1, evidence=evidence, workdir=tmp_path
    )
    side = json.loads(sidecar_path(backend.path).read_text())
    assert side["calibration"] == {"source": "synthetic/train images (the first 4)", "images": 4}
    q = side["quality"]["onnxruntime-int8"]
    assert 0.5 < q["agreement"] <= 1 and q["agreement_images"] == 2 and "accepted" in q
    assert backend.quality["reason"].startswith("argmax agreement")


def test_cache_holds_the_artifact_and_remeasures_when_stale(tiny_net, tmp_path):
    first = _auto(tiny_net, tmp_path, ["onnxruntime"])
    entry = first.auto
    art = Path(entry["artifact"])
    assert art.is_file() and art.is_relative_to(tmp_path / "artifacts") and first.path == art
    for k in ("sha256", "weights_hash", "versions", "cpu", "threads", "input_size", "margin"):
        assert entry[k] is not None, k
    assert entry["trials"][0]["median_ms"] > 0
    again = _auto(tiny_net, tmp_path, ["onnxruntime"])
    assert "cached" in again.note and again.path == art
    art.unlink()  # artifact gone: exported again (the very same file), not measured again
    third = _auto(tiny_net, tmp_path, ["onnxruntime"])
    assert "cached" in third.note and third.path == art and art.is_file()
    with torch.no_grad():  # other weights, same key: measured again
        next(tiny_net.parameters()).add_(1.0)
    key = next(iter(json.loads((tmp_path / "auto.json").read_text())))
    entry, why = ArtifactCache(tmp_path).lookup(key, "other")
    assert entry is None and "weights" in why
    fourth = _auto(tiny_net, tmp_path, ["onnxruntime"], cache_key=key.split("|")[1], seconds=0.1)
    assert "cached" not in fourth.note and fourth.auto["weights_hash"] != third.auto["weights_hash"]


def test_cache_entry_with_other_versions_is_remeasured(tiny_net, tmp_path):
    first = _auto(tiny_net, tmp_path, ["eager"])
    assert first.auto["artifact"] is None  # in-process torch: the weights are the artifact
    index = json.loads((tmp_path / "auto.json").read_text())
    for e in index.values():
        e["versions"]["torch"] = "0.0"
    (tmp_path / "auto.json").write_text(json.dumps(index))
    assert "cached" not in _auto(tiny_net, tmp_path, ["eager"]).note
