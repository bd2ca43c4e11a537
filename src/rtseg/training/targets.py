"""rtseg-targets: build a teacher's stored probabilities for a training split ahead of training."""

from __future__ import annotations

import json
import logging

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from rtseg.training.teacher_targets import TeacherTargets
from rtseg.utils.cli import command_line_checked, user_errors_as_one_line
from rtseg.utils.config import output_dir
from rtseg.utils.machine import set_threads
from rtseg.utils.paths import CONF_DIR, write_atomic

log = logging.getLogger("rtseg.training.targets")


def build_targets(cfg: DictConfig) -> dict:
    """Every training image's entry built (where missing or invalid) and checked; the report."""
    set_threads(cfg.get("threads"))
    datamodule = instantiate(cfg.data, _convert_="all")
    targets: TeacherTargets = instantiate(cfg.teacher_targets)
    train = datamodule.dataset("train")
    soft = targets.prepare(train, datamodule.num_classes)
    report = {
        **targets.record(),
        "folder": str(soft.target_set.folder),
        "images": len(soft),
        "bytes_on_disk": soft.target_set.size_on_disk(soft.hashes),
        "data": {"name": datamodule.name, "splits": datamodule.describe_splits()},
    }
    write_atomic(output_dir(cfg) / "targets.json", json.dumps(report, indent=2))
    print(
        f"teacher targets: {report['images']} images, {report['bytes_on_disk'] / 1e6:.1f} MB in "
        f"{report['folder']}\ndigest {report['targets_digest']}"
    )
    return report


@command_line_checked
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="targets")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    build_targets(cfg)


if __name__ == "__main__":
    main()
