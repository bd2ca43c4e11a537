"""tools/ship_model.py: what ships is the inference network, without training-only heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from rtseg.checkpoints import zoo
from rtseg.checkpoints.meta import build_network
from rtseg.checkpoints.reading import load_network
from tests.support import load_script

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ship_model.py"
MODEL = {
    "_target_": "rtseg.models.lite.create",
    "head": "ppliteseg",
    "num_classes": 3,
    "encoder_name": "efficientnet_lite0",
    "encoder_weights": None,
    "out_stride": 4,
    "decoder_channels": [8, 8, 16, 16],
    "inter_channels": 16,
    "head_channels": 8,
    "aux_heads": True,
}


def _ship_tool():
    if not TOOL.is_file():
        pytest.skip("tools/ship_model.py is not in this installation (a repository tool)")
    return load_script(TOOL)


def _checkpoint(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    net = build_network(dict(MODEL))
    meta = {
        "dataset": "toy",
        "num_classes": 3,
        "class_names": ["a", "b", "c"],
        "ignore_index": 255,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "input_size": [64, 96],
        "model_yaml": OmegaConf.to_yaml(OmegaConf.create(MODEL)),
    }
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": state, "hyper_parameters": {"meta": meta}}, path)
    return path, net


def test_shipping_leaves_out_the_deep_supervision_heads(tmp_path, monkeypatch):
    tool = _ship_tool()
    ckpt, trained = _checkpoint(tmp_path)
    assert any(".aux." in k for k in trained.state_dict())
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    zoo.ZOO_DIR.mkdir()
    out = tool.ship(str(ckpt), "toy", command="rtseg-train ...")

    assert not [k for k in load_file(str(out)) if ".aux." in k]
    card = json.loads(out.with_suffix(".json").read_text())
    assert OmegaConf.create(card["meta"]["model_yaml"]).aux_heads is False
    shipped, _ = load_network("toy")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(shipped(x), trained.eval()(x))


def test_a_fine_tuned_model_names_the_weights_it_started_from(tmp_path, monkeypatch):
    from rtseg.tracking.runs import RunRecord

    tool = _ship_tool()
    ckpt, _ = _checkpoint(tmp_path)
    start = {"source": "camvid", "sha256": "ab" * 32, "source_input_size": [360, 480]}
    record = RunRecord(run_dir=str(ckpt.parent.parent), epochs=4, val_protocol="trainval")
    record.extra["init_weights"] = start
    record.save()
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    zoo.ZOO_DIR.mkdir()
    out = tool.ship(str(ckpt), "toy", command="rtseg-train init_weights=camvid ...")
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["init_weights"] == start and card["epochs"] == 4


def test_shipping_refuses_weights_that_do_not_fit_the_config(tmp_path, monkeypatch):
    tool = _ship_tool()
    ckpt, _ = _checkpoint(tmp_path)
    saved = torch.load(ckpt, weights_only=True)
    saved["state_dict"] = {
        k: v for k, v in saved["state_dict"].items() if "encoder" not in k or "aux" in k
    }
    torch.save(saved, ckpt)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    zoo.ZOO_DIR.mkdir()
    with pytest.raises(SystemExit, match="do not match"):
        tool.ship(str(ckpt), "toy", command="x")
    assert not list(zoo.ZOO_DIR.iterdir())


def test_the_shipped_data_config_has_the_standard_splits_and_no_local_path(monkeypatch):
    tool = _ship_tool()
    monkeypatch.delenv("CAMVID_DIR", raising=False)
    trained = {
        "_target_": "rtseg.data.SegDataModule",
        "name": "camvid",
        "root": "/home/someone/camvid",
        "val_protocol": "trainval",
        "val_sequence": "0006R0",
        "datasets": {
            split: {
                "_target_": "rtseg.data.camvid.camvid",
                "root": "/home/someone/camvid",
                "split": split,
                "val_protocol": "trainval",
                "val_sequence": "0006R0",
            }
            for split in ("train", "val")
        },
    }
    shipped = OmegaConf.create(
        {"data": OmegaConf.create(tool.inference_data_yaml(OmegaConf.to_yaml(trained)))}
    )
    assert "/home/someone" not in OmegaConf.to_yaml(shipped)
    assert shipped.data.root == "data/camvid"  # $CAMVID_DIR unset
    assert shipped.data.datasets.val.root == "data/camvid"
    # trained on train + val, but users evaluate and calibrate it on the standard val split
    assert shipped.data.datasets.val.val_protocol == "standard"
    assert shipped.data.datasets.train.val_sequence == "0006R0"
