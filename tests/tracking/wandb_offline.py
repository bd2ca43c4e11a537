"""Reads offline W&B runs back (``run-*.wandb``) so the tests can check grouping, config and summary.

wandb >= 0.19 writes no config.yaml/summary JSON for offline runs, and wandb 0.31 ships no Python
reader of its run files (its ``wandb sync`` reader is in the Go core), hence this small parser.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of checksummed chunks
_HEADER = 7  # ":W&B" + magic (2 bytes) + version (1 byte); each chunk header: crc32, length, type


@dataclass
class OfflineRun:
    """What an offline run file holds: enough to check grouping, config and summary without W&B."""

    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def _chunks(data: bytes):
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # block trailer too short for a header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0:
            break
        if kind == 1:  # full record
            yield chunk
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            yield pending + chunk
            pending = b""


def read_offline_run(path: str | Path) -> OfflineRun:
    """Parse ``run-*.wandb`` (wandb >= 0.19 writes no config.yaml/summary json for offline runs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        path = next(path.glob("run-*.wandb"))
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    run = OfflineRun(path=path)

    def value(item):
        try:
            return json.loads(item.value_json)
        except ValueError:
            return item.value_json

    for chunk in _chunks(data):
        rec = pb.Record()
        rec.ParseFromString(chunk)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.name, run.group, run.job_type = (
                r.run_id,
                r.display_name,
                r.run_group,
                r.job_type,
            )
            run.tags = list(r.tags)
            run.config.update({it.key: value(it) for it in r.config.update})
        elif kind == "config":
            run.config.update({it.key: value(it) for it in rec.config.update})
        elif kind == "summary":
            run.summary.update(
                {it.key or "/".join(it.nested_key): value(it) for it in rec.summary.update}
            )
    # config values arrive as {"value": v} (W&B's config format)
    run.config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in run.config.items()}
    return run


def offline_runs(root: str | Path) -> list[OfflineRun]:
    """Every offline W&B run under ``root`` (e.g. a sweep folder), in folder order."""
    return [read_offline_run(p) for p in sorted(Path(root).rglob("offline-run-*/run-*.wandb"))]
