"""Package a trained checkpoint as a shipped model: ``python tools/ship_model.py CKPT NAME --command "..."``.

Writes ``src/rtseg/zoo/NAME.safetensors`` (the network's tensors only) and ``NAME.json`` (metadata,
the data config, the run's val scores, the command, the weights' sha256). A maintainer tool: the
runtime only reads what it writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omegaconf import OmegaConf

from rtseg.checkpoints import zoo
from rtseg.checkpoints.meta import build_network, stored_model_config
from rtseg.checkpoints.reading import checkpoint_meta, read_checkpoint
from rtseg.models.lite import training_only
from rtseg.tracking.runs import RECORD_NAME, RunRecord
from rtseg.utils.paths import file_sha256


def inference_model_yaml(model_yaml: str) -> str:
    """The network config without training-only parts: deep-supervision heads are dropped from the
    shipped weights, so the shipped config must not build them either."""
    cfg = OmegaConf.create(model_yaml)
    if cfg.get("aux_heads"):
        cfg.aux_heads = False
    return OmegaConf.to_yaml(cfg)


def inference_data_yaml(data_yaml: str) -> str:
    """The data config users evaluate and calibrate the shipped model with: the standard splits
    (how the weights were trained is the card's ``val_protocol``: under ``trainval`` there is no val
    split at all) and no path of the machine that trained it (CamVid: ``$CAMVID_DIR``, else
    ``data/camvid``; each split follows ``data.root``)."""
    data = OmegaConf.create(data_yaml)
    trained_root = data.get("root")
    if data.get("name") == "camvid":
        data.root = "${oc.env:CAMVID_DIR,data/camvid}"
    if "val_protocol" in data:
        data.val_protocol = "standard"
    for split in (data.get("datasets") or {}).values():
        if "val_protocol" in split:
            split.val_protocol = "${data.val_protocol}"
        if "val_sequence" in split:
            split.val_sequence = "${data.val_sequence}"
        if split.get("root") == trained_root:
            split.root = "${data.root}"
    return OmegaConf.to_yaml(data)


def ship(
    ckpt_path: str, name: str, command: str, description: str = "", targets_command: str = ""
) -> Path:
    from safetensors.torch import save_file

    ckpt = read_checkpoint(ckpt_path)
    meta = dict(checkpoint_meta(ckpt))
    meta["model_yaml"] = inference_model_yaml(meta["model_yaml"])
    state = {
        k[len("net.") :]: v.contiguous()
        for k, v in ckpt["state_dict"].items()
        if k.startswith("net.")
    }
    model_cfg = stored_model_config(meta)
    model_cfg["encoder_weights"] = None
    wanted = set(build_network(model_cfg).state_dict())
    dropped = sorted(set(state) - wanted)
    if not all(training_only(k) for k in dropped) or wanted - set(state):
        raise SystemExit(
            f"{ckpt_path}: its weights do not match the inference network of its config"
        )
    state = {k: v for k, v in state.items() if k in wanted}
    if dropped:
        print(f"left out {len(dropped)} training-only tensors (deep-supervision heads)")
    run_dir = Path(ckpt_path).resolve().parent.parent
    record = RunRecord.load(run_dir / RECORD_NAME) if (run_dir / RECORD_NAME).is_file() else None
    if "data_yaml" not in meta and (run_dir / "config.yaml").is_file():
        cfg = OmegaConf.load(run_dir / "config.yaml")
        meta["data_yaml"] = OmegaConf.to_yaml(cfg.data)
    if "data_yaml" in meta:
        meta["data_yaml"] = inference_data_yaml(meta["data_yaml"])
    out = zoo.ZOO_DIR / f"{name}.safetensors"
    save_file(state, str(out))
    card = {
        "name": name,
        "description": description,
        "model": record.model if record else None,
        # the data the weights saw: a val_miou only means something where val was held out
        "val_protocol": record.val_protocol if record else None,
        "splits": record.splits if record else None,
        "val_miou": record.val_miou_best if record else None,
        "val_iou": record.val_iou if record else None,
        "epochs": record.epochs if record else None,
        # a fine-tuned model names the weights it started from (rtseg-train init_weights=)
        "init_weights": record.extra.get("init_weights") if record else None,
        # a distilled model names its teacher, how it predicted and the exact targets it learnt
        # (the digest of the stored probabilities), with the command that built them
        "teacher_targets": (
            {**record.extra["teacher_targets"], "command": targets_command or None}
            if record and record.extra.get("teacher_targets")
            else None
        ),
        "train_wall_time_s": record.wall_time_s if record else None,
        "command": command,
        "git_commit": record.git_commit if record else None,
        "sha256": file_sha256(out),
        "meta": meta,
    }
    (zoo.ZOO_DIR / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("name")
    ap.add_argument("--command", required=True, help="the exact command that trained it")
    ap.add_argument("--description", default="")
    ap.add_argument(
        "--targets-command", default="", help="the command that built its teacher targets, if any"
    )
    args = ap.parse_args()
    out = ship(args.checkpoint, args.name, args.command, args.description, args.targets_command)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
