"""int8 weights use 7 bits where the CPU's u8 x s8 dot product saturates (x86 without VNNI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rtseg.infer import onnx as rt_onnx
from rtseg.utils import machine


@pytest.mark.parametrize(
    "flags, saturates",
    [
        ({"sse2", "avx2", "fma"}, True),  # AVX2-only EPYC / Xeon
        ({"sse2", "avx2", "avx512f"}, True),  # AVX-512 before VNNI (Skylake-SP)
        ({"sse2", "avx2", "avx512f", "avx512_vnni"}, False),
        ({"sse2", "avx2", "avx_vnni"}, False),  # Alder Lake and later client chips
        ({"sse2", "avx2", "amx_int8", "amx_tile"}, False),
        ({"fp", "asimd", "asimddp"}, False),  # Arm: other kernels, no pmaddubsw
        (set(), False),  # unknown CPU (no /proc/cpuinfo)
    ],
)
def test_int8_saturates_only_on_x86_without_vnni(monkeypatch, flags, saturates):
    monkeypatch.setattr(machine, "cpu_flags", lambda: flags)
    assert machine.int8_saturates() is saturates


def _int8_weight_range(path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    values = [
        numpy_helper.to_array(t)
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and numpy_helper.to_array(t).size > 1
    ]
    assert values, "no int8 weight tensors in the quantised file"
    return int(max(np.abs(v.astype(np.int32)).max() for v in values))


@pytest.mark.parametrize("saturates, top", [(True, 64), (False, 127)])
def test_quantiser_follows_the_cpu_unless_told(tmp_path, monkeypatch, saturates, top):
    pytest.importorskip("onnxruntime.quantization")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    fp32 = rt_onnx.export_onnx(net, tmp_path / "m.onnx", (16, 16))
    calib = [torch.randn(1, 3, 16, 16) for _ in range(4)]
    monkeypatch.setattr(rt_onnx, "int8_saturates", lambda: saturates)

    auto = rt_onnx.quantize_onnx_int8(fp32, tmp_path / "auto.int8.onnx", calib)
    # per-channel symmetric weights: 7 bits reach +-64, 8 bits +-127
    assert _int8_weight_range(auto) == top
    assert f"{7 if saturates else 8}-bit weights" in rt_onnx.int8_recipe()
    forced = rt_onnx.quantize_onnx_int8(
        fp32, tmp_path / "forced.int8.onnx", calib, reduce_range=not saturates
    )
    assert _int8_weight_range(forced) == (127 if saturates else 64)
