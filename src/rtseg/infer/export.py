"""rtseg-export: a checkpoint -> a deployable model file + a JSON sidecar with what a consumer needs.

    rtseg-export checkpoint=logs/train/runs/<run> format=onnx   # or best, a .ckpt, camvid
    rtseg-export checkpoint=... format=openvino            # model.xml + model.bin
    rtseg-export checkpoint=... format=onnx int8=true      # static QDQ int8, calibrated on training images
    rtseg-export checkpoint=... format=coreml              # .mlpackage (conversion only; needs coremltools)

The sidecar (``<file>.json``) holds class names, palette, input size, mean/std, num_classes, the
checkpoint's val mIoU and the source checkpoint; ``rtseg.infer.registry.load_exported`` reads both.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from rtseg.errors import ExportError, OutputExists, RtsegError
from rtseg.infer.calibration import NO_IMAGES, Calibration, describe_calibration
from rtseg.infer.onnx import ONNX_OPSET, export_onnx, int8_recipe, quantize_onnx_int8
from rtseg.infer.sidecar import sidecar_path, write_sidecar
from rtseg.utils.cli import command_line_checked, require, user_errors_as_one_line
from rtseg.utils.config import output_dir
from rtseg.utils.paths import CONF_DIR, check_writable_folder, publish_together, temporary_name

log = logging.getLogger("rtseg.export")

FORMATS = ("onnx", "openvino", "coreml")


def export_checkpoint(
    ckpt_path: str | Path,
    fmt: str,
    out_dir: Path,
    input_size=None,
    int8: bool = False,
    calibration: list[torch.Tensor] | None = None,
    batch_size: int = 1,
    name: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.<ext>`` and its sidecar; returns both paths."""
    from rtseg.checkpoints.reading import load_network

    if fmt not in FORMATS:
        raise ExportError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    net, meta = load_network(ckpt_path)
    size = [int(v) for v in (input_size or meta.get("input_size") or ())]
    if len(size) != 2:
        raise ExportError(
            f"input_size must be [H, W] (the checkpoint records {meta.get('input_size')})"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or Path(ckpt_path).stem.replace(".", "_").replace("=", "_")
    precision = "int8" if int8 else "fp32"
    extra = (
        {"calibration": describe_calibration(calibration), "quantization": int8_recipe()}
        if int8
        else None
    )
    if fmt == "coreml":
        if int8:
            raise ExportError(
                "int8=true is for onnx/openvino; Core ML quantisation is not wired here"
            )
        path = _coreml(net, out_dir / f"{stem}.mlpackage", size, batch_size)
        return path, write_sidecar(path, meta, size, fmt, precision, batch_size, extra)
    return _export_via_temp(
        net, meta, fmt, out_dir, stem, size, batch_size, int8, calibration, extra
    )


def _export_via_temp(
    net, meta, fmt, out_dir: Path, stem: str, size, batch_size, int8, calibration, extra
) -> tuple[Path, Path]:
    """ONNX (and OpenVINO) files and their sidecar built in a temporary folder, then published into
    ``out_dir`` as one unit (``rtseg.utils.paths.publish_together``).

    Nothing already in ``out_dir`` is deleted or overwritten: a taken name stops the export in one
    line, before the slow work when it is taken at the start, and without writing anything when
    another export took it meanwhile (two exports to one name: one wins, the other refuses; the
    published model always matches its sidecar, which records its sha256).
    """
    import shutil
    import tempfile

    if int8 and not calibration:
        raise ExportError(NO_IMAGES)
    planned = [out_dir / f"{stem}{'.int8' if int8 else ''}{ext}" for ext in _extensions(fmt)]
    _refuse_taken([*planned, sidecar_path(planned[0])])
    with tempfile.TemporaryDirectory(prefix="rtseg-export-") as tmp:
        tmp = Path(tmp)
        onnx_path = export_onnx(net, tmp / f"{stem}.onnx", size, batch_size)
        if int8:
            onnx_path = quantize_onnx_int8(onnx_path, tmp / f"{stem}.int8.onnx", calibration)
        produced = [onnx_path]
        if fmt == "openvino":
            xml = _openvino(onnx_path, tmp / (onnx_path.name[: -len(".onnx")] + ".xml"))
            produced = [xml, xml.with_suffix(".bin")]
        side = write_sidecar(
            produced[0], meta, size, fmt, "int8" if int8 else "fp32", batch_size, extra,
            sidecar=tmp / "sidecar.json",
        )  # fmt: skip
        targets = [out_dir / p.name for p in produced] + [sidecar_path(out_dir / produced[0].name)]
        staged = []
        try:  # copied beside the targets first (another file system: a plain rename fails)
            for src, dst in zip([*produced, side], targets, strict=True):
                staged.append(temporary_name(dst))
                shutil.copy2(src, staged[-1])
            publish_together(list(zip(staged, targets, strict=True)))
        except OutputExists as e:
            raise ExportError(
                f"{e} (another export wrote it meanwhile): rtseg-export never overwrites; nothing "
                "was written; pass name=... or another out_dir=..."
            ) from None
        finally:
            for path in staged:
                path.unlink(missing_ok=True)
    return targets[0], targets[-1]


def _extensions(fmt: str) -> list[str]:
    return [".xml", ".bin"] if fmt == "openvino" else [".onnx"]


def _refuse_taken(targets: list[Path]) -> None:
    taken = [t for t in targets if t.exists()]
    if taken:
        raise ExportError(
            f"{taken[0]} already exists: rtseg-export never overwrites; pass name=... or another out_dir=..."
        )


def _openvino(onnx_path: Path, xml_path: Path) -> Path:
    ov = require("openvino", "format=openvino")
    # compress_to_fp16=False: keep fp32 weights; the runtime picks its precision at load time
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)
    return xml_path


def _coreml(net, path: Path, size, batch_size: int) -> Path:
    try:
        import coremltools as ct
    except ImportError:
        raise ExportError(
            "format=coreml needs coremltools, which is not installed (pip install coremltools; conversion runs on Linux, prediction needs macOS)"
        ) from None
    x = torch.zeros(batch_size, 3, *size)
    with torch.no_grad():
        traced = torch.jit.trace(net.eval(), x)
    try:
        model = ct.convert(
            traced,
            inputs=[ct.TensorType(name="input", shape=tuple(x.shape))],
            outputs=[ct.TensorType(name="logits")],
            convert_to="mlprogram",
        )
    except Exception as e:  # noqa: BLE001 - an unsupported op: one line naming it
        raise ExportError(
            f"coremltools cannot convert this network: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from None
    model.save(str(path))
    return path


def record_int8_quality(path: Path, net, meta: dict, evidence, options) -> dict:
    """Run the written int8 file against eager fp32 on real images; the result goes into its sidecar."""
    from rtseg.infer.auto import judge
    from rtseg.infer.registry import load_exported

    backend, _ = load_exported(path)  # an int8 file: onnxruntime-int8 / openvino-int8
    return judge(backend, net, evidence, options)


def run_export(cfg: DictConfig) -> tuple[Path, Path]:
    from rtseg.checkpoints.reading import load_network
    from rtseg.checkpoints.spec import choose_checkpoint
    from rtseg.infer.calibration import DatasetImages
    from rtseg.infer.options import InferOptions
    from rtseg.infer.quality import Evidence

    choice = choose_checkpoint(cfg.get("checkpoint"), cfg.paths.log_dir)
    if choice.exported:
        raise RtsegError(
            f"checkpoint={choice.path} is already exported: pass the checkpoint it came from"
        )
    ckpt_path = str(choice.path)
    out = Path(cfg.out_dir) if cfg.get("out_dir") else output_dir(cfg)
    # read-only, full or a file in the way: one line before the export and the calibration
    check_writable_folder(out, "out_dir" if cfg.get("out_dir") else "hydra.run.dir")
    calibration, evidence = Calibration(), None
    options = InferOptions.from_cfg(cfg)
    if cfg.get("int8"):
        net, meta = load_network(ckpt_path)
        size = cfg.get("input_size") or meta["input_size"]
        data = DatasetImages(cfg.data, meta)  # training images of the checkpoint's dataset
        calibration = data.calibration(options.calibration_split, options.calibration_images, size)
        pairs = data.pairs("val", options.eval_images, size)
        evidence = Evidence(
            images=[x for x, _ in pairs] or list(calibration)[:4],
            pairs=pairs,
            num_classes=meta.get("num_classes"),
            ignore_index=int(meta.get("ignore_index") or 255),
        )
    path, sidecar = export_checkpoint(
        ckpt_path,
        cfg.format,
        out,
        cfg.get("input_size"),
        bool(cfg.get("int8")),
        calibration or None,
        int(cfg.batch_size),
        cfg.get("name"),
    )
    print(f"wrote {path} (opset {ONNX_OPSET} source) and {sidecar}")
    if cfg.get("int8"):
        q = record_int8_quality(path, net, meta, evidence, options)
        print(f"int8 calibrated on {len(calibration)} {calibration.source}: {q['reason']}")
    return path, sidecar


@command_line_checked
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    run_export(cfg)


if __name__ == "__main__":
    main()
