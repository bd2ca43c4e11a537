"""Files that describe other files are tied to them: an exported model and its sidecar (the sidecar
records the model's sha256 and a digest of its own fields), the artifact cache and the files its
entries point to (inside its artifacts/ only), and int8 exports (deterministic: the same checkpoint
and images give the same bytes)."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from rtseg.errors import ExportError
from rtseg.infer.export import export_checkpoint, run_export
from rtseg.infer.registry import load_exported
from rtseg.infer.sidecar import digest
from rtseg.utils.config import compose_config
from rtseg.utils.paths import file_sha256

pytest.importorskip("onnxruntime")


@pytest.fixture
def exported(tiny_ckpt, tmp_path):
    path, sidecar = export_checkpoint(tiny_ckpt, "onnx", tmp_path / "out", name="m")
    return path, sidecar


def test_the_sidecar_records_the_model_hash_and_its_own_digest(exported):
    path, sidecar = exported
    side = json.loads(sidecar.read_text())
    assert side["sha256"] == file_sha256(path) and side["digest"] == digest(side)
    backend, meta = load_exported(path)
    assert backend(torch.randn(1, 3, 32, 48)).shape[1] == meta["num_classes"]


def test_an_edited_sidecar_is_one_line_not_trusted(exported):
    path, sidecar = exported
    side = json.loads(sidecar.read_text())
    side.update(val_miou=0.99, miou_drop=-5)
    sidecar.write_text(json.dumps(side))
    with pytest.raises(ExportError, match="was edited after it was written") as err:
        load_exported(path)
    assert "\n" not in str(err.value)


def test_a_model_file_with_flipped_bytes_is_refused(exported):
    path, _ = exported
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="does not match its sidecar m.json"):
        load_exported(path)


def test_another_exports_model_under_this_sidecar_is_refused(tiny_ckpt, tmp_path, exported):
    path, _ = exported
    other, _ = export_checkpoint(
        tiny_ckpt, "onnx", tmp_path / "other", name="m", input_size=[64, 64]
    )
    path.write_bytes(other.read_bytes())
    with pytest.raises(ExportError, match="sha256 differs"):
        load_exported(path)


def test_concurrent_exports_to_one_name_one_wins_the_others_refuse(tiny_ckpt, tmp_path):
    """Three rtseg-export processes started at once all pass the start check (the name is free);
    publishing lets exactly one take it, the others stop in one line and write nothing, and the
    published model matches its sidecar."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    sizes = ([32, 48], [64, 64], [48, 48])
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from rtseg.infer.export import main; main()",
                f"checkpoint={tiny_ckpt}",
                "format=onnx",
                "name=m",
                f"out_dir={out}",
                f"input_size=[{h},{w}]",
                f"hydra.run.dir={tmp_path / f'run{i}'}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for i, (h, w) in enumerate(sizes)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1, results
    for rc, _, err in losers:
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert "already exists" in lines[0]
    _, meta = load_exported(out / "m.onnx")  # verified: the pair belongs together
    winner_size = next(s for s, r in zip(sizes, results, strict=True) if r[0] == 0)
    assert meta["input_size"] == winner_size
    assert sorted(p.name for p in out.iterdir()) == ["m.json", "m.onnx"]  # nothing half-written


def test_int8_export_is_deterministic(tiny_checkpoint, tmp_path):
    """The same checkpoint and calibration images give the same int8 file, byte for byte (the
    training augmentations used to make each calibration, and so each file, different)."""
    hashes = []
    for i in range(2):
        cfg = compose_config(
            "export",
            [
                f"checkpoint={tiny_checkpoint}",
                "int8=true",
                "calibration.images=4",
                "reduced_precision.eval_images=2",
                "data.input_size=[32,32]",
                f"out_dir={tmp_path / str(i)}",
                "name=m",
            ],
        )
        GlobalHydra.instance().clear()
        path, _ = run_export(cfg)
        hashes.append(file_sha256(path))
    assert hashes[0] == hashes[1]


def test_a_cache_entry_pointing_outside_the_cache_is_not_run(tiny_net, tmp_path):
    from rtseg.infer import auto
    from rtseg.infer.artifacts import ArtifactCache
    from rtseg.infer.options import InferOptions
    from rtseg.infer.quality import Evidence

    images = [
        torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)
    ]
    opts = InferOptions(candidates=["onnxruntime"], cache_dir=tmp_path / "cache", seconds=0.05)

    def resolve():
        return auto.resolve_backend(
            "auto", tiny_net, (32, 32), threads=1, options=opts, evidence=Evidence(images=images)
        )

    first = resolve()
    index = tmp_path / "cache" / "auto.json"
    entries = json.loads(index.read_text())
    ((key, entry),) = entries.items()
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes(first.path.read_bytes())  # a file with the right sha256, outside the cache
    entry["artifact"] = str(outside)
    index.write_text(json.dumps(entries))
    assert ArtifactCache(tmp_path / "cache").lookup(key, entry["weights_hash"])[0] is None
    second = resolve()
    assert second.path != outside and ArtifactCache(tmp_path / "cache").holds(second.path)


def test_a_damaged_model_without_a_recorded_hash_is_one_line(exported):
    """An older sidecar without sha256 cannot catch the damage; loading it is still one line."""
    path, sidecar = exported
    side = json.loads(sidecar.read_text())
    del side["sha256"]
    side["digest"] = digest(side)
    sidecar.write_text(json.dumps(side))
    path.write_bytes(b"\x08\x07not a protobuf" + path.read_bytes()[:40])
    with pytest.raises(ExportError) as err:
        load_exported(path)
    assert "onnxruntime cannot load it" in str(err.value) and "\n" not in str(err.value)
