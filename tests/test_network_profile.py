"""experiments/network_profile/run.py: every layer of the shipped architecture lands in a named block,
the FLOPs per block add up to the reported total, both runtimes' profiles are read and grouped, and
bad input is one line."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch

from rtseg.infer.registry import create_backend
from rtseg.models.cost import count_gflops
from rtseg.models.lite import create
from rtseg.utils.paths import REPO_ROOT
from tests.support import load_script

SCRIPT = REPO_ROOT / "experiments" / "network_profile" / "run.py"


@pytest.fixture(scope="module")
def profile():
    return load_script(SCRIPT, "network_profile_run")


@pytest.fixture(scope="module")
def net():
    """camvid's architecture (PP-LiteSeg on EfficientNet-Lite0, out_stride 4), random weights."""
    return create("ppliteseg", 11, encoder_weights=None, out_stride=4).eval()


def test_every_layer_has_a_block_and_the_flops_add_up(profile, net):
    flops = profile.block_flops(net, (64, 96))
    assert "other" not in flops, flops
    assert {"stem", "encoder 1/16", "SPPM", "UAFM 1/4", "seg head"} <= set(flops)
    assert sum(flops.values()) == pytest.approx(count_gflops(net, (64, 96)), rel=1e-9)


def test_onnx_and_runtime_names_map_to_blocks(profile):
    b = profile.block_of
    assert b("/net/encoder/model/blocks.3/blocks.3.0/conv_dw/Conv") == "encoder 1/16"
    assert b("/net/head/fuse.0/low/low.0/Conv/WithoutBiases") == "UAFM 1/16"
    assert b("/net/head/fuse.2/Sigmoid") == "UAFM 1/4"
    assert b("/net/Resize") == "final upsample" and b("/Slice_1") == "pad/crop"
    assert b("/net/head/sppm/Resize_output_0_QuantizeLinear") == profile.LAYOUT
    assert profile.precision("jit_avx2_1x1_I8") == "i8"
    assert profile.precision("brgconv_avx512_amx_bf16") == "bf16"
    assert profile.precision("uint8") == "i8" and profile.precision("float") == "f32"


def test_both_profiles_are_read_and_grouped(profile, net, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    size = (64, 96)
    g = torch.Generator().manual_seed(0)
    images = [torch.randn(1, 3, *size, generator=g) for _ in range(2)]
    path = create_backend("openvino-int8", net, size, 1, 1, images, tmp_path).path
    x = images[0]
    ov, ov_wall, logits = profile.profile_openvino(path, size, 1, x, 1, 3)
    ort, ort_wall, runs = profile.profile_onnxruntime(path, size, 1, x, 1, 3, tmp_path)
    assert runs == 3 and ov_wall > 0 and ort_wall > 0 and logits.shape[-2:] == size
    flops = profile.block_flops(net, size)
    for runtime, nodes in (("openvino-int8", ov), ("onnxruntime-int8", ort)):
        rows = profile.block_table(runtime, nodes, flops, 0.1)
        blocks = {r["block"]: r for r in rows}
        assert blocks["encoder 1/16"]["ms"] > 0 and "i8" in blocks["encoder 1/16"]["precision"]
        assert sum(r["time_share"] for r in rows) == pytest.approx(1.0, abs=1e-3)
        assert sum(r["flops_share"] for r in rows) == pytest.approx(1.0, abs=1e-3)
        assert blocks.get("other", {"ms": 0})["ms"] < 0.05 * sum(r["ms"] for r in rows), rows
    profile.write_csv(tmp_path / "blocks.csv", rows)
    profile.plot(rows, tmp_path / "blocks.png")
    assert next(csv.DictReader(open(tmp_path / "blocks.csv")))["block"] == "stem"
    assert (tmp_path / "blocks.png").stat().st_size > 1000


@pytest.mark.parametrize("args", [["--iterations", "0"], ["--warmup", "-1"], ["--threads", "x"]])
def test_bad_input_is_one_line(args, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not (tmp_path / "out").exists()
