"""The model shipped with the package loads by name, offline, everywhere a checkpoint is accepted."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from rtseg.checkpoints import zoo
from rtseg.checkpoints.reading import load_network
from rtseg.checkpoints.spec import choose_checkpoint


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


SHIPPED = ["camvid", "camvid_450"]


def test_the_two_camvid_models_are_shipped():
    assert set(SHIPPED) <= set(zoo.names())


@pytest.mark.parametrize("name", SHIPPED)
def test_camvid_is_shipped_as_safetensors_and_json(name):
    path = zoo.ZOO_DIR / f"{name}.safetensors"
    assert path.stat().st_size < 20 * 2**20
    card = zoo.card(name)
    assert card["meta"]["class_names"][3] == "road" and len(card["meta"]["palette"]) == 11
    assert card["command"].startswith("rtseg-train")
    # trained on train + val with no selection: no val score is claimed, the protocol says why
    assert card["val_protocol"] == "trainval" and card["val_miou"] is None
    assert card["splits"]["train"]["images"] == 468


def test_camvid_450_is_camvid_fine_tuned_for_450x600_frames():
    card = zoo.card("camvid_450")
    assert card["meta"]["input_size"] == [450, 600] and card["epochs"] == 4
    # it names the weights it started from: the shipped camvid, by hash
    assert card["init_weights"]["source"] == "camvid"
    assert card["init_weights"]["sha256"] == zoo.card("camvid")["sha256"]
    assert "camvid_ppliteseg_lite0_450" in card["command"]
    assert card["int8"]["eval"].endswith("at 450x600")


@pytest.mark.parametrize(("name", "size"), [("camvid", [360, 480]), ("camvid_450", [450, 600])])
def test_loads_by_name_offline_and_predicts(no_network, tmp_path, name, size):
    choice = choose_checkpoint(name, tmp_path)
    assert str(choice.path) == name and "shipped" in choice.reason
    net, meta = load_network(name)
    assert meta["num_classes"] == 11 and meta["input_size"] == size
    mean = torch.tensor(meta["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(meta["std"]).view(1, 3, 1, 1)
    # a grey sky over a dark road: the top is sky (0), the bottom road (3)
    img = torch.zeros(1, 3, *size)
    img[..., :150, :] = 0.75
    img[..., 250:, :] = 0.3
    with torch.no_grad():
        labels = net((img - mean) / std).argmax(1)[0].numpy()
    assert np.bincount(labels.ravel(), minlength=11).argmax() in (0, 1, 3)


def test_a_tampered_weights_file_is_refused(tmp_path, monkeypatch):
    from rtseg.errors import CheckpointError

    (tmp_path / "camvid.json").write_text((zoo.ZOO_DIR / "camvid.json").read_text())
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    (tmp_path / "camvid.safetensors").write_bytes(b"not the shipped tensors")
    with pytest.raises(CheckpointError, match="sha256"):
        zoo.weights("camvid")


@pytest.mark.camvid
@pytest.mark.parametrize("name", SHIPPED)
def test_reproduces_its_recorded_val_miou_on_a_camvid_subset(compose_cfg, camvid_dir, name):
    root = camvid_dir
    from rtseg.training.eval import evaluate

    subset = zoo.card(name)["val_subset"]
    cfg = compose_cfg(
        "eval",
        [
            f"checkpoint={name}",
            "data=camvid",
            f"data.root={root}",
            "split=val",
            f"data.val_batch_size={subset['batch_size']}",
            f"trainer.limit_val_batches={subset['batches']}",
            "trainer.enable_progress_bar=false",
            "threads=2",
        ],
    )
    scores = evaluate(cfg)
    assert abs(scores["miou"] - subset["miou"]) <= 0.005
