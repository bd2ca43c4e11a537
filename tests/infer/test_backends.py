"""Backends, agreement, auto, skipping: on a tiny network so every test runs in seconds."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from rtseg.bench.benchmark import (
    RESULT_COLUMNS,
    Inputs,
    Knobs,
    Plan,
    Subject,
    benchmark_network,
    random_frames,
)
from rtseg.bench.peak import gemm_gflops
from rtseg.errors import BackendUnavailable
from rtseg.infer import auto, registry
from rtseg.infer.backends import Backend
from rtseg.infer.frames import FramePipeline
from rtseg.infer.options import InferOptions
from rtseg.infer.quality import Evidence

SIZE = (32, 32)
FAST = Knobs(warmup=1, min_runs=3, min_seconds=0.05)
QUICK_AUTO = InferOptions(seconds=0.05)


def _inputs(n=2):
    g = torch.Generator().manual_seed(0)
    return Inputs(Evidence(images=[torch.randn(1, 3, *SIZE, generator=g) for _ in range(n)]))


def _bench(net, backends, inputs, workdir, miou=None, **plan):
    subject = Subject("baseline", net, SIZE, miou=miou)
    return benchmark_network(
        subject, inputs, Plan(backends, knobs=FAST, options=QUICK_AUTO, workdir=workdir, **plan)
    )


class WrongBackend(Backend):
    """Deliberately wrong: the logits with their class order reversed, returned instantly."""

    def __init__(self, net, input_size, batch_size=1, threads=None, **_):
        super().__init__(input_size, batch_size, threads)
        self.net = net

    @torch.inference_mode()
    def __call__(self, x):
        return self.net(x).flip(1)


@pytest.fixture
def wrong_registered(monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "wrong", registry.BackendSpec(WrongBackend))


def test_quick_benchmark_fills_every_column(tiny_net, tmp_path):
    rows = _bench(
        tiny_net, ["eager", "onnxruntime"], _inputs(), tmp_path, miou=0.5, peaks={"fp32": 100.0}
    )
    assert [r["backend"] for r in rows] == ["eager", "onnxruntime"]
    optional = {"resolved", "miou_eval", "miou_drop", "note", "tta"}  # tta: None = plain
    for r in rows:
        assert list(r) == RESULT_COLUMNS
        missing = [c for c in RESULT_COLUMNS if c not in optional and r[c] is None]
        assert not missing, f"{r['backend']} has no {missing}"
        assert r["latency_ms_p90"] >= r["latency_ms_median"] > 0
        assert r["fps"] == pytest.approx(1e3 / r["latency_ms_median"])
        assert r["achieved_gflops"] == pytest.approx(r["gflops"] / (r["latency_ms_median"] / 1e3))
        assert r["pct_of_peak"] == pytest.approx(r["achieved_gflops"])  # peak 100 GFLOP/s
        assert r["agreement"] == pytest.approx(1.0, abs=1e-3) and r["agrees"]
    assert (tmp_path / "ThreeConvNet_32x32_b1.onnx").is_file()


def test_agreement_flags_a_wrong_backend(tiny_net, tmp_path, wrong_registered):
    rows = _bench(tiny_net, ["eager", "wrong"], _inputs(), tmp_path)
    by = {r["backend"]: r for r in rows}
    assert by["eager"]["agrees"] and by["eager"]["agreement"] == 1.0
    assert not by["wrong"]["agrees"] and by["wrong"]["agreement"] < 0.9


def test_auto_never_picks_a_disagreeing_backend(tiny_net, tmp_path, wrong_registered):
    evidence = _inputs().evidence
    opts = InferOptions(candidates=["wrong", "eager"], cache_dir=tmp_path, seconds=0.05)
    # "wrong" is the fastest candidate (no work at all), but it disagrees
    backend = auto.resolve_backend("auto", tiny_net, SIZE, options=opts, evidence=evidence)
    assert backend.name == "eager"
    trials = {t["backend"]: t for t in backend.auto["trials"]}
    assert trials["wrong"]["accepted"] is False and trials["eager"]["accepted"] is True
    # the choice is cached per machine + model + size + batch + threads and reused
    cache = (tmp_path / "auto.json").read_text()
    assert "ThreeConvNet" in cache and "32x32" in cache
    opts = InferOptions(candidates=["wrong"], cache_dir=tmp_path, seconds=0.01)
    again = auto.resolve_backend("auto", tiny_net, SIZE, options=opts, evidence=evidence)
    assert again.name == "eager" and "cached" in again.note
    # nothing agrees: a clear error, never a wrong pick
    with pytest.raises(BackendUnavailable, match="no candidate agrees"):
        auto.resolve_backend(
            "auto", tiny_net, SIZE, options=opts, evidence=evidence, cache_key="other"
        )


def test_unsupported_backends_are_skipped_with_a_reason(tiny_net, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = _bench(tiny_net, ["cuda", "openvino", "no-such-backend", "eager"], _inputs(1), tmp_path)
    notes = {r["backend"]: r["note"] or "" for r in rows}
    assert notes["cuda"] == "skipped: no CUDA device"
    assert (
        notes["openvino"] == "skipped: backend=openvino needs OpenVINO: pip install 'rtseg[deploy]'"
    )
    assert notes["no-such-backend"].startswith("skipped: unknown backend")
    skipped = [r for r in rows if r["backend"] != "eager"]
    assert all(r["latency_ms_median"] is None and r["fps"] is None for r in skipped)
    assert next(r for r in rows if r["backend"] == "eager")["fps"] > 0


@pytest.mark.parametrize(
    "name", ["channels_last", "bf16", "onnxruntime-int8", "openvino", "openvino-int8"]
)
def test_cpu_backends_build_and_give_logits(tiny_net, tmp_path, name):
    try:
        backend = registry.create_backend(
            name, tiny_net, SIZE, threads=1, calibration=_inputs(4).agreement, workdir=tmp_path
        )
    except BackendUnavailable as e:
        pytest.skip(str(e))
    x = torch.randn(1, 3, *SIZE)
    out = backend(x)
    assert out.shape == (1, 5, *SIZE) and out.dtype == torch.float32
    assert backend.precision in ("fp32", "bf16", "int8")
    ref = auto.reference_labels(tiny_net)
    # int8 / bf16 on an untrained net: close to eager, not necessarily within tolerance
    assert auto.agreement(backend, ref, [x]) > 0.8


def test_batch_size_is_respected(tiny_net, tmp_path):
    backend = registry.create_backend(
        "onnxruntime", tiny_net, SIZE, batch_size=2, threads=1, workdir=tmp_path
    )
    assert backend(torch.randn(2, 3, *SIZE)).shape == (2, 5, *SIZE)
    # a single image is repeated to the exported batch for the agreement check
    assert auto.agreement(
        backend, auto.reference_labels(tiny_net), [torch.randn(1, 3, *SIZE)]
    ) == pytest.approx(1.0, abs=1e-3)


def test_frame_pipeline_returns_class_maps_at_frame_size(tiny_net):
    backend = registry.create_backend("eager", tiny_net, SIZE)
    pipe = FramePipeline(backend, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    frames = random_frames(1, (45, 60))
    maps = pipe(frames)
    assert maps.shape == (1, 45, 60) and maps.dtype == np.uint8 and maps.max() < 5
    # pre-processing is (x / 255 - mean) / std
    x = pipe.preprocess(np.full((1, *SIZE, 3), 255, np.uint8))
    assert torch.allclose(x, torch.full_like(x, 2.0))


def test_peak_gemm_is_measured():
    assert gemm_gflops("fp32", n=256, min_seconds=0.01) > 0.1


@pytest.mark.slow
def test_compile_backend_on_a_one_conv_net(tmp_path):
    net = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    backend = registry.create_backend("compile", net, (16, 16), threads=1)
    assert auto.agreement(
        backend, auto.reference_labels(net), [torch.randn(1, 3, 16, 16)]
    ) == pytest.approx(1.0)


def test_backends_never_modify_the_callers_network(tiny_net):
    before = {k: (v.clone(), v.stride()) for k, v in tiny_net.state_dict().items()}
    for name in ("channels_last", "bf16"):
        registry.create_backend(name, tiny_net, SIZE)(torch.randn(1, 3, *SIZE))
    for k, v in tiny_net.state_dict().items():
        assert torch.equal(v, before[k][0]) and v.stride() == before[k][1], k


def test_a_reduced_precision_peak_below_fp32_is_a_fallback_kernel_and_left_out():
    from rtseg.bench.peak import without_fallback_kernels

    # an AVX2-only CPU: torch's int8 and bf16 matmuls are reference loops, not the CPU's ceiling
    assert without_fallback_kernels({"fp32": 161.0, "bf16": 0.4, "int8": 2.0}) == {"fp32": 161.0}
    amx = {"fp32": 150.0, "bf16": 900.0, "int8": 1800.0}
    assert without_fallback_kernels(amx) == amx


def test_openvino_models_freed_out_of_order_leave_the_signal_stack_alone(tiny_net, tmp_path):
    """OpenVINO's CPU plugin installs its own signal stack per compiled model and puts back the one
    it found when the model is freed: two models freed in the order they were made left the thread
    on the first one's freed stack, where the next signal handler corrupted the heap (issue 24)."""
    pytest.importorskip("openvino")
    import gc

    from rtseg.utils.signal_stack import signal_stack

    before = signal_stack()
    first = registry.create_backend(
        "openvino", tiny_net, (32, 32), threads=1, workdir=tmp_path / "a"
    )
    second = registry.create_backend(
        "openvino", tiny_net, (32, 32), threads=1, workdir=tmp_path / "b"
    )
    assert signal_stack() == before
    del first
    gc.collect()
    assert signal_stack() == before
    second.close()
    assert signal_stack() == before
