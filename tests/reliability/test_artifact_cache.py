"""The backend=auto artifact cache is trusted storage: a damaged or truncated cached file is never
run (it is replaced from a fresh export), and concurrent runs on one cache measure once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from rtseg.infer import auto
from rtseg.infer.artifacts import ArtifactCache
from rtseg.infer.options import InferOptions
from rtseg.infer.quality import Evidence
from rtseg.utils.paths import file_sha256

SIZE = (32, 32)
pytest.importorskip("onnxruntime")


def _images(n=2):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, 3, *SIZE, generator=g) for _ in range(n)]


def _auto(net, cache_dir, candidates=("onnxruntime",)):
    opts = InferOptions(candidates=list(candidates), cache_dir=cache_dir, seconds=0.05)
    return auto.resolve_backend(
        "auto", net, SIZE, threads=1, options=opts, evidence=Evidence(images=_images())
    )


def _masks(backend) -> torch.Tensor:
    return torch.cat([backend.labels(x) for x in _images(4)])


def _artifact(cache_dir: Path) -> Path:
    (entry,) = json.loads((cache_dir / "auto.json").read_text()).values()
    return Path(entry["artifact"])


@pytest.mark.parametrize(
    "damage, runtime",
    [
        ("flipped byte", "onnxruntime"),
        ("flipped byte", "openvino"),
        ("truncated", "onnxruntime"),
        ("deleted", "onnxruntime"),
    ],
)
def test_a_damaged_cached_artifact_is_replaced_not_run(tiny_net, tmp_path, damage, runtime, caplog):
    if runtime == "openvino":
        pytest.importorskip("openvino")
    first = _auto(tiny_net, tmp_path, [runtime])
    expected = _masks(first)
    path = _artifact(tmp_path)
    good = file_sha256(path)
    data = bytearray(path.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        path.unlink()
    caplog.set_level("INFO", logger="rtseg")
    second = _auto(tiny_net, tmp_path, [runtime])
    assert torch.equal(_masks(second), expected)  # the next run's masks equal the first run's
    assert file_sha256(path) == good and second.path == path
    assert "replaced by a fresh export" in caplog.text
    assert "measuring candidates" not in caplog.text.split("replaced by a fresh export")[-1]
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]


def test_a_damaged_file_is_replaced_when_measuring_again(tiny_net, tmp_path):
    """When an entry cannot be repaired (here: its record names another sha256), measuring again
    stores a good file over the damaged one instead of keeping it."""
    _auto(tiny_net, tmp_path)
    path = _artifact(tmp_path)
    good = file_sha256(path)
    path.write_bytes(path.read_bytes()[:100])
    index = json.loads((tmp_path / "auto.json").read_text())
    for entry in index.values():
        entry["sha256"] = "0" * 64
    (tmp_path / "auto.json").write_text(json.dumps(index))
    backend = _auto(tiny_net, tmp_path)
    assert file_sha256(path) == good and file_sha256(backend.path) == good


def test_concurrent_runs_on_one_cache_measure_once(tiny_net, tmp_path, caplog, monkeypatch):
    measured = []
    judge = auto.judge

    def counting_judge(backend, *a, **kw):
        measured.append(backend.name)
        return judge(backend, *a, **kw)

    monkeypatch.setattr(auto, "judge", counting_judge)
    caplog.set_level("INFO", logger="rtseg")
    results, errors = [], []

    def run():
        try:
            results.append(_auto(tiny_net, tmp_path))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2
    assert measured == ["onnxruntime"]  # one run measured, the other used its entry
    assert results[0].path == results[1].path
    assert "another run is measuring" in caplog.text


def test_cache_lock_is_released_after_a_failure(tmp_path):
    cache = ArtifactCache(tmp_path)
    with pytest.raises(RuntimeError), cache.locked():
        raise RuntimeError("measuring failed")
    with cache.locked():  # would block forever if the failure had kept the lock
        pass


def test_an_entry_edited_to_another_models_file_is_measured_again(tiny_net, tmp_path, caplog):
    """An entry whose path and sha256 were both edited to another model's ONNX of another class
    count passed the sha256 check and died in ONNX Runtime with INVALID_ARGUMENT (issue 36): its
    sidecar names the other model, so this one is measured again and runs its own file."""
    from rtseg.models.baseline import ThreeConvNet

    torch.manual_seed(1)
    other = ThreeConvNet(num_classes=3, width=8).eval()
    _auto(other, tmp_path)
    (other_entry,) = json.loads((tmp_path / "auto.json").read_text()).values()
    mine = _auto(tiny_net, tmp_path)
    expected = _masks(mine)
    index = json.loads((tmp_path / "auto.json").read_text())
    key = next(k for k, e in index.items() if e["sha256"] != other_entry["sha256"])
    index[key].update(artifact=other_entry["artifact"], sha256=other_entry["sha256"])
    (tmp_path / "auto.json").write_text(json.dumps(index))

    caplog.set_level("INFO", logger="rtseg")
    again = _auto(tiny_net, tmp_path)
    assert "another model's file (not run)" in caplog.text and "measuring candidates" in caplog.text
    assert again.path != Path(other_entry["artifact"])
    assert torch.equal(_masks(again), expected)
    assert file_sha256(Path(other_entry["artifact"])) == other_entry["sha256"]  # left as it was
