"""CamVid's validation protocols: a held-out sequence is disjoint from training and every
labelled frame is used exactly once; trainval has no val split."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from rtseg.data.camvid import camvid
from rtseg.data.sequences import sequence_counts, sequence_of
from rtseg.errors import DataError, SplitNotFound

SEQUENCES = {
    "train": ["0001TP"] * 3 + ["0006R0"] * 4 + ["0016E5"] * 5,
    "val": ["0016E5"] * 3,
    "test": ["Seq05VD"] * 2,
}


@pytest.fixture
def root(tmp_path, layouts):
    return layouts.camvid(tmp_path / "camvid", sequences=SEQUENCES)


def _names(ds) -> set[str]:
    return {img.name for img, _ in ds.pairs}


def test_sequence_of_reads_the_file_name_prefix():
    assert sequence_of("x/0006R0_f02370.png") == "0006R0"
    assert sequence_of("Seq05VD_f00000.png") == "Seq05VD"
    assert sequence_of("frame.png") is None
    assert sequence_counts(["a_1.png", "b_1.png", "a_2.png"]) == {"a": 2, "b": 1}
    assert sequence_counts(["a_1.png", "nosequence.png"]) == {}


def test_sequence_protocol_is_disjoint_and_complete(root):
    train = camvid(str(root), "train", val_protocol="sequence", val_sequence="0006R0", verify=False)
    val = camvid(str(root), "val", val_protocol="sequence", val_sequence="0006R0", verify=False)
    train_seq = {sequence_of(i) for i, _ in train.pairs}
    val_seq = {sequence_of(i) for i, _ in val.pairs}
    assert val_seq == {"0006R0"} and "0006R0" not in train_seq
    standard = [camvid(str(root), s, verify=False) for s in ("train", "val")]
    every = [img.name for ds in standard for img, _ in ds.pairs]
    # every labelled frame once: nothing lost, nothing on both sides
    assert sorted(_names(train) | _names(val)) == sorted(every)
    assert not _names(train) & _names(val)
    assert len(train) + len(val) == len(every) == 15
    assert train.protocol == val.protocol == "sequence"
    # the test split never changes
    test = camvid(str(root), "test", val_protocol="sequence", verify=False)
    assert {sequence_of(i) for i, _ in test.pairs} == {"Seq05VD"}


def test_held_out_sequence_is_configurable_and_may_be_a_list(root):
    val = camvid(
        str(root), "val", val_protocol="sequence", val_sequence=["0001TP", "0006R0"], verify=False
    )
    assert sequence_counts(i for i, _ in val.pairs) == {"0001TP": 3, "0006R0": 4}
    train = camvid(str(root), "train", val_protocol="sequence", val_sequence="0016E5", verify=False)
    assert sequence_counts(i for i, _ in train.pairs) == {"0001TP": 3, "0006R0": 4}


def test_trainval_trains_on_every_labelled_frame_and_has_no_val(root):
    train = camvid(str(root), "train", val_protocol="trainval", verify=False)
    assert len(train) == 15
    with pytest.raises(SplitNotFound, match="trainval"):
        camvid(str(root), "val", val_protocol="trainval", verify=False)


def test_bad_protocol_values_are_one_line(root):
    with pytest.raises(DataError, match="val_protocol='seq'"):
        camvid(str(root), "train", val_protocol="seq", verify=False)
    with pytest.raises(DataError, match="no labelled frames of 0009XX"):
        camvid(str(root), "val", val_protocol="sequence", val_sequence="0009XX", verify=False)
    with pytest.raises(DataError, match="nothing left to train on"):
        camvid(
            str(root),
            "train",
            val_protocol="sequence",
            val_sequence=["0001TP", "0006R0", "0016E5"],
            verify=False,
        )


def test_datamodule_reports_protocol_and_splits(root, layouts):
    cfg = layouts.compose(
        "data=camvid", f"data.root={root}", "data.num_workers=0", "data.val_protocol=sequence",
        "data.val_sequence=0006R0", "data.crop_size=[32,48]", "data.input_size=[32,48]",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    assert dm.val_protocol() == "sequence"
    splits = dm.describe_splits()
    assert splits["val"] == {"images": 4, "sequences": {"0006R0": 4}}
    assert splits["train"]["sequences"] == {"0001TP": 3, "0016E5": 8}


def test_trainval_datamodule_has_no_val_loader(root, layouts):
    cfg = layouts.compose(
        "data=camvid", f"data.root={root}", "data.num_workers=0", "data.val_protocol=trainval",
        "data.crop_size=[32,48]", "data.input_size=[32,48]",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    assert not dm.has_split("val") and dm.val_dataloader() == []
    assert len(dm.dataset("train")) == 15
