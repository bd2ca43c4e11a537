"""rtseg-export: checkpoint -> ONNX / OpenVINO file + sidecar, loadable by the benchmark and realtime."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from rtseg.checkpoints.reading import load_network
from rtseg.errors import ExportError
from rtseg.infer.auto import agreement, reference_labels
from rtseg.infer.export import export_checkpoint, run_export
from rtseg.infer.registry import load_exported
from rtseg.utils.config import compose_config as compose_cfg


def _images(size, n=2):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, 3, *size, generator=g) for _ in range(n)]


def test_onnx_round_trip_with_sidecar(tiny_checkpoint, tmp_path):
    cfg = compose_cfg(
        "export",
        [f"checkpoint={tiny_checkpoint}", "format=onnx", f"out_dir={tmp_path}", "name=tiny"],
    )
    GlobalHydra.instance().clear()
    path, sidecar = run_export(cfg)
    assert path == tmp_path / "tiny.onnx" and sidecar == tmp_path / "tiny.json"
    meta = json.loads(sidecar.read_text())
    net, ckpt_meta = load_network(tiny_checkpoint)
    assert meta["class_names"] == ckpt_meta["class_names"] and meta["num_classes"] == 7
    assert (
        meta["palette"] == ckpt_meta["palette"]
        and meta["mean"] == ckpt_meta["mean"]
        and meta["std"] == ckpt_meta["std"]
    )
    assert meta["input_size"] == [32, 32] and meta["val_miou"] == pytest.approx(
        ckpt_meta["val_miou"]
    )
    assert meta["source_checkpoint"] == str(tiny_checkpoint.resolve())

    backend, loaded = load_exported(path, threads=1)
    assert loaded == meta and backend.input_size == (32, 32) and backend.precision == "fp32"
    assert agreement(backend, reference_labels(net), _images((32, 32))) == pytest.approx(
        1.0, abs=1e-3
    )


def test_openvino_and_int8_exports_load(tiny_checkpoint, tmp_path):
    pytest.importorskip("openvino")
    net, _ = load_network(tiny_checkpoint)
    xml, sidecar = export_checkpoint(tiny_checkpoint, "openvino", tmp_path, name="tiny")
    assert (
        xml.suffix == ".xml" and xml.with_suffix(".bin").is_file() and sidecar.name == "tiny.json"
    )
    backend, meta = load_exported(xml, threads=1)
    assert meta["format"] == "openvino"
    assert agreement(backend, reference_labels(net), _images((32, 32))) == pytest.approx(
        1.0, abs=1e-3
    )

    q, q_sidecar = export_checkpoint(
        tiny_checkpoint,
        "onnx",
        tmp_path / "q",
        int8=True,
        calibration=_images((32, 32), 4),
        name="tiny",
    )
    assert q.name == "tiny.int8.onnx" and json.loads(q_sidecar.read_text())["precision"] == "int8"
    backend, _ = load_exported(q, threads=1)
    assert backend.precision == "int8" and backend(torch.randn(1, 3, 32, 32)).shape == (
        1,
        7,
        32,
        32,
    )


def test_coreml_without_coremltools_is_one_clear_line(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "coremltools", None)
    with pytest.raises(ExportError, match=r"^format=coreml needs coremltools"):
        export_checkpoint(tiny_checkpoint, "coreml", tmp_path)


def test_unknown_format_and_missing_sidecar(tiny_checkpoint, tmp_path):
    with pytest.raises(
        ExportError, match="format='tflite': expected one of onnx, openvino, coreml"
    ):
        export_checkpoint(tiny_checkpoint, "tflite", tmp_path)
    (tmp_path / "lone.onnx").write_bytes(b"")
    with pytest.raises(ExportError, match="no sidecar lone.json"):
        load_exported(tmp_path / "lone.onnx")


def test_int8_export_calibrates_on_training_images(tiny_checkpoint, tmp_path):
    cfg = compose_cfg(
        "export",
        [
            f"checkpoint={tiny_checkpoint}",
            "int8=true",
            "calibration.images=2",
            "reduced_precision.eval_images=2",
            "data.input_size=[32,32]",
            f"out_dir={tmp_path}",
            "name=tiny",
        ],
    )
    GlobalHydra.instance().clear()
    path, sidecar = run_export(cfg)
    side = json.loads(sidecar.read_text())
    assert path.name == "tiny.int8.onnx" and side["precision"] == "int8"
    assert sidecar.name == "tiny.int8.json"  # beside an fp32 tiny.onnx, each keeps its own record
    assert side["calibration"] == {"source": "synthetic/train images (the first 2)", "images": 2}
    q = side["quality"]["onnxruntime-int8"]
    assert q["eval_images"] == 2 and "miou_drop_points" in q and "accepted" in q


def test_coreml_conversion_when_coremltools_is_installed(tiny_checkpoint, tmp_path):
    pytest.importorskip("coremltools")
    path, sidecar = export_checkpoint(tiny_checkpoint, "coreml", tmp_path, name="tiny")
    assert (
        path.name == "tiny.mlpackage"
        and path.is_dir()
        and json.loads(sidecar.read_text())["format"] == "coreml"
    )


def test_benchmark_runs_an_exported_file_against_its_source(tiny_checkpoint, tmp_path):
    from rtseg.bench.cli import run_benchmark

    path, _ = export_checkpoint(tiny_checkpoint, "onnx", tmp_path / "x", name="tiny")
    quick = [
        "measure.warmup=1",
        "measure.min_runs=2",
        "measure.min_seconds=0.01",
        "peak.enabled=false",
        "e2e=false",
        "threads=[1]",
    ]
    cfg = compose_cfg(
        "benchmark",
        [
            f"paths.output_dir={tmp_path}",
            f"checkpoint={path}",
            "input_size=[16,16]",
            "backends=[eager,onnxruntime,openvino]",
            *quick,
        ],
    )
    GlobalHydra.instance().clear()
    rows = {r["backend"]: r for r in run_benchmark(cfg)}
    assert rows["onnxruntime"]["input_size"] == "32x32"  # the file's size wins
    assert (
        rows["onnxruntime"]["agreement"] == pytest.approx(1.0, abs=1e-3)
        and rows["eager"]["gflops"] > 0
    )
    assert rows["openvino"]["fps"] > 0 or rows["openvino"]["note"].startswith("skipped")
    assert rows["onnxruntime"]["model"] == "tiny.onnx"


def test_export_never_overwrites_or_deletes_what_it_did_not_write(tiny_checkpoint, tmp_path):
    first = compose_cfg(
        "export", [f"checkpoint={tiny_checkpoint}", "format=onnx", f"out_dir={tmp_path}", "name=m"]
    )
    GlobalHydra.instance().clear()
    path, sidecar = run_export(first)
    before = (path.read_bytes(), sidecar.read_text())
    ov = compose_cfg(
        "export",
        [f"checkpoint={tiny_checkpoint}", "format=openvino", f"out_dir={tmp_path}", "name=m"],
    )
    GlobalHydra.instance().clear()
    with pytest.raises(ExportError, match="already exists"):
        run_export(ov)  # its sidecar m.json would replace the ONNX export's
    assert (path.read_bytes(), sidecar.read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, sidecar.name])


@pytest.mark.parametrize("bins", [3, 6])
def test_adaptive_pooling_exports_where_its_bins_do_not_divide_the_map(tmp_path, bins):
    """torch's converter refuses such pooling (smp PSPNet/UPerNet at 128x128); ours writes MatMuls."""
    ort = pytest.importorskip("onnxruntime")
    from rtseg.infer.onnx import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=4, padding=1),  # 32x32 -> an 8x8 map
        torch.nn.AdaptiveAvgPool2d(bins),
        torch.nn.Upsample(size=(32, 32)),
    ).eval()
    path = export_onnx(net, tmp_path / "pool.onnx", (32, 32))
    x = torch.randn(1, 3, 32, 32)
    out = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(out), net(x).detach(), atol=1e-5, rtol=1e-5)


def test_fastscnn_exports_at_a_small_input_without_killing_the_process(tmp_path):
    """At 128x128 the 1/32 map is 4x4, pooled into 6 bins: the exporter died with SIGFPE (no
    message, the user's process gone). Run in a child so a regression fails here, not the suite."""
    pytest.importorskip("onnx")
    import subprocess

    code = (
        "import sys; from rtseg.models.fastscnn import FastSCNN; "
        "from rtseg.infer.onnx import export_onnx; "
        "export_onnx(FastSCNN(11).eval(), sys.argv[1], (128, 128)); print('exported')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "f.onnx")], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "exported" in proc.stdout, (
        proc.returncode,
        proc.stderr[-2000:],
    )
