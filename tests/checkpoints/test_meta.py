"""describe_model names a network as its config, run records and cards do (issue 37)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import rtseg
from rtseg.checkpoints.meta import describe_model
from rtseg.utils.paths import CONF_DIR


def test_the_shipped_model_is_named_as_its_card_says():
    card = json.loads((Path(rtseg.__file__).parent / "zoo" / "camvid.json").read_text())
    described = describe_model(yaml.safe_load(card["meta"]["model_yaml"]))
    assert described == f"{card['model']}/efficientnet_lite0 (11 classes)"  # not create/tu-...


def test_lite_heads_are_named_by_their_config():
    for name in ("ppliteseg", "lraspp_lite"):
        cfg = yaml.safe_load((CONF_DIR / "model" / f"{name}.yaml").read_text())
        assert describe_model(cfg).split("/")[0] == name
