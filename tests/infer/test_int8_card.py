"""A shipped model's int8 is judged by the evidence its card carries where its data is not on disk:
quantised from the card's calibration ranges (the file the card measured), accepted by the card's
val mIoU drop when this runtime's agreement on the built-in re-check scenes matches the card's."""

from __future__ import annotations

import copy

import pytest

from rtseg.infer.auto import judge
from rtseg.infer.open import gather_evidence, load_model
from rtseg.infer.options import InferOptions
from rtseg.infer.registry import create_backend

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    loaded = load_model("camvid", tmp_path_factory.mktemp("logs"))
    assert loaded.meta.get("int8_evidence"), "the camvid card carries int8 evidence"
    data = {**_data_without_files(loaded.meta)}
    evidence, _ = gather_evidence(loaded, (360, 480), InferOptions(), data=data)
    return loaded, evidence


def _data_without_files(meta):
    from omegaconf import OmegaConf

    from rtseg.checkpoints.meta import recorded_data_config

    cfg = OmegaConf.to_container(recorded_data_config(meta))
    cfg["root"] = "/nonexistent/camvid"  # a user without CamVid
    return cfg


def test_without_the_data_int8_comes_from_the_cards_ranges(shipped):
    _, evidence = shipped
    assert evidence.calibration.ranges and not evidence.pairs
    assert "the model card's calibration ranges" in evidence.calibration.source
    assert evidence.card and len(evidence.recheck) == evidence.card["recheck"]["images"]


def test_the_card_accepts_int8_when_this_runtime_matches_it(shipped, tmp_path):
    loaded, evidence = shipped
    backend = create_backend(
        "onnxruntime-int8", loaded.net, (360, 480), 1, 2, evidence.calibration, tmp_path
    )
    q = judge(backend, loaded.net, evidence, InferOptions())
    assert q["accepted"] and q["evidence"] == "model card", q["reason"]
    assert "re-checked here" in q["reason"] and "model card: val mIoU drop" in q["reason"]
    # a card that claims more than this runtime shows is not trusted
    tampered = copy.deepcopy(evidence)
    for entry in tampered.card["quality"].values():
        entry["recheck_agreement"] = min(1.0, entry["recheck_agreement"] + 0.05)
    q = judge(backend, loaded.net, tampered, InferOptions())
    assert not q["accepted"] and "the card does not hold" in q["reason"]


def test_constants_take_their_range_from_the_graph_at_any_size(shipped, tmp_path):
    """The card's ranges were measured at 360x480, where SPPM's pooling constants (1/15, 1/6, ...)
    have other values than at 450x600 (1/19, 1/8, ...): each Constant's range is read from the graph
    being quantised, never carried over by name."""
    from onnx import load, numpy_helper

    from rtseg.infer.onnx import export_onnx, with_constant_ranges

    loaded, evidence = shipped
    card = evidence.calibration.ranges["data"]
    path = export_onnx(loaded.net, tmp_path / "m.onnx", (450, 600))
    ranges = with_constant_ranges(evidence.calibration.ranges, path)["data"]
    constants = {
        n.output[0]: numpy_helper.to_array(n.attribute[0].t)
        for n in load(str(path)).graph.node
        if n.op_type == "Constant" and numpy_helper.to_array(n.attribute[0].t).dtype.kind == "f"
    }
    changed = 0
    for name, value in constants.items():
        lo, hi = ranges[name]["lowest"]["data"][0], ranges[name]["highest"]["data"][0]
        assert (lo, hi) == pytest.approx((float(value.min()), float(value.max()))), name
        changed += name in card and card[name]["highest"]["data"][0] != pytest.approx(hi)
    assert changed >= 2, "the card's pooling constants were measured at another size"
    # every activation range is the card's
    assert all(ranges[k] == v for k, v in card.items() if k not in constants)


def test_ranges_of_another_graph_stop_int8_with_one_line(shipped, tmp_path):
    """At 384x512 the graph has no padding step, so its tensors are not those the card measured:
    the int8 row is skipped with a line of ours, not the quantiser's ValueError."""
    from rtseg.errors import BackendUnavailable

    loaded, evidence = shipped
    with pytest.raises(BackendUnavailable, match="measured on another graph") as e:
        create_backend(
            "onnxruntime-int8", loaded.net, (384, 512), 1, 2, evidence.calibration, tmp_path
        )
    assert "\n" not in str(e.value) and "calibrate on images" in str(e.value)


def test_at_the_cards_own_size_the_int8_file_is_the_one_it_measured(shipped, tmp_path, monkeypatch):
    """Reading the constants from the graph changes nothing where the card's ranges fit."""
    import rtseg.infer.onnx as onnx_io

    loaded, evidence = shipped
    ranges = evidence.calibration.ranges
    fp32 = onnx_io.export_onnx(loaded.net, tmp_path / "m.onnx", (360, 480))
    read = onnx_io.quantize_onnx_int8(fp32, tmp_path / "read.onnx", [], ranges=ranges)
    monkeypatch.setattr(onnx_io, "with_constant_ranges", lambda r, _path: r)
    card = onnx_io.quantize_onnx_int8(fp32, tmp_path / "card.onnx", [], ranges=ranges)
    assert read.read_bytes() == card.read_bytes()
