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
