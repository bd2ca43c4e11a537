"""ONNX files from a network: the TorchScript exporter (opset 17) and static QDQ int8 quantisation.

The one place that writes ONNX: rtseg-export, the benchmark's runtime rows and realtime all go
through these two functions, so an int8 file means the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.errors import BackendUnavailable
from rtseg.models.pooling import pooling_matrix
from rtseg.utils.cli import require
from rtseg.utils.machine import int8_saturates
from rtseg.utils.paths import atomic_path

ONNX_OPSET = 17


def export_onnx(
    net: nn.Module, path: Path, input_size, batch_size: int = 1, dynamic_batch: bool = False
) -> Path:
    """TorchScript-based exporter (the dynamo one needs onnxscript, not installed), opset 17."""
    require("onnx", "ONNX export")  # torch.onnx.export writes the file with it
    path = Path(path)
    x = torch.zeros(batch_size, 3, *input_size)
    module = net.eval()
    with torch.no_grad(), _quiet(), _adaptive_pooling_at_any_size(), atomic_path(path) as tmp:
        torch.onnx.export(
            module,
            (x,),
            str(tmp),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
        )
    return path


@contextlib.contextmanager
def _adaptive_pooling_at_any_size():
    """Export ``adaptive_avg_pool2d`` whose bins do not divide the map as two MatMuls with constant
    pooling matrices (the same numbers), for the length of one export.

    torch's converter refuses such pooling ("output size that are not factor of input size"):
    smp's PSPNet and UPerNet at 128x128, where pyramid bins of 3 and 6 meet a 16x16 or 4x4 map.
    Sizes that divide keep torch's own conversion (an AveragePool).
    """
    from torch.onnx import symbolic_helper, symbolic_opset9

    def symbolic(g, x, output_size):
        sizes = symbolic_helper._get_tensor_sizes(x)
        out = symbolic_helper._maybe_get_const(output_size, "is")
        hw = sizes[-2:] if sizes and len(sizes) == 4 else None
        if (
            hw is None
            or any(not isinstance(n, int) for n in hw)
            or not isinstance(out, list | tuple)
            or any(not isinstance(o, int) for o in out)
            or all(n % o == 0 for n, o in zip(hw, out, strict=True))
        ):
            return symbolic_opset9.adaptive_avg_pool2d(g, x, output_size)
        like = torch.zeros(())
        rows = g.op("Constant", value_t=pooling_matrix(hw[0], out[0], like))
        cols = g.op("Constant", value_t=pooling_matrix(hw[1], out[1], like).T.contiguous())
        return g.op("MatMul", g.op("MatMul", rows, x), cols)

    torch.onnx.register_custom_op_symbolic("aten::adaptive_avg_pool2d", symbolic, ONNX_OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::adaptive_avg_pool2d", ONNX_OPSET)


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def int8_recipe(reduce_range: bool | None = None) -> str:
    """How ``quantize_onnx_int8`` quantises on this machine (recorded with every int8 artifact)."""
    reduce_range = int8_saturates() if reduce_range is None else reduce_range
    return f"QDQ, MinMax u8 activations, per-channel {7 if reduce_range else 8}-bit weights"


def quantize_onnx_int8(
    fp32_path: Path,
    int8_path: Path,
    calibration: Iterable[torch.Tensor],
    reduce_range: bool | None = None,
    save_ranges: Path | None = None,
    ranges: dict | None = None,
) -> Path:
    """Static QDQ int8 (per-channel weights, MinMax activations) with ONNX Runtime's quantiser.

    ``reduce_range`` (7-bit weights) defaults to on where the CPU lacks VNNI: ONNX Runtime's u8 x s8
    kernels saturate there (on an AVX2-only EPYC the shipped CamVid model lost 2.78 val mIoU points
    with 8-bit weights and 0.13 with 7-bit; experiments/int8_saturation).

    ``ranges``: activation ranges from an earlier calibration (ONNX Runtime's calibration cache, as
    a shipped model's card holds them) instead of images; ``save_ranges``: keep this one's there.
    """
    q = require("onnxruntime.quantization", "int8 quantisation")
    reduce_range = int8_saturates() if reduce_range is None else reduce_range

    if ranges is None:  # a shipped model's ranges (its card): no images to read
        ranges = getattr(calibration, "ranges", None)
    batches = [np.ascontiguousarray(b.numpy(), dtype=np.float32) for b in calibration]
    if not batches and ranges is None:
        raise BackendUnavailable("int8 needs calibration images (got none)")

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"input": b}

    logging.disable(logging.WARNING)  # the quantiser warns on the root logger about pre-processing
    try:
        with atomic_path(int8_path) as tmp, tempfile.TemporaryDirectory() as work:
            # the activation ranges go through ONNX Runtime's calibration cache: given (a shipped
            # model's), they replace the images; asked for (``save_ranges``), they are kept
            cache = Path(save_ranges) if save_ranges else Path(work) / "ranges.json"
            if ranges is not None:
                cache.write_text(json.dumps(with_constant_ranges(ranges, fp32_path)))
            try:
                q.quantize_static(
                    str(fp32_path),
                    str(tmp),
                    Reader() if ranges is None else None,
                    quant_format=q.QuantFormat.QDQ,
                    activation_type=q.QuantType.QUInt8,
                    weight_type=q.QuantType.QInt8,
                    per_channel=True,
                    reduce_range=reduce_range,
                    calibration_cache_path=str(cache),
                )
            except ValueError as e:
                missing = re.search(r"not specified for param (\S+?)\.?(\s|$)", str(e))
                if ranges is None or not missing:
                    raise
                raise BackendUnavailable(
                    f"the int8 ranges given have none for {missing.group(1)} of "
                    f"{Path(fp32_path).name}: they were measured on another graph (another input "
                    "size or network); calibrate on images instead (the model's data=)"
                ) from None
    finally:
        logging.disable(logging.NOTSET)
    return Path(int8_path)


def with_constant_ranges(ranges: dict, onnx_path: Path) -> dict:
    """``ranges`` (ONNX Runtime's calibration cache) with every Constant node's range read from the
    graph itself, replacing any given for that name.

    A constant's MinMax range is its own min and max; ranges measured on the graph of another input
    size name the size-dependent constants (SPPM's pooling matrices and scales) alike but hold other
    values there, or lack them (at 384x512 the pooling exports differently).
    """
    onnx = require("onnx", "int8 quantisation")
    from onnx import numpy_helper

    data = dict(ranges.get("data") or {})
    for node in onnx.load(str(onnx_path), load_external_data=False).graph.node:
        if node.op_type != "Constant" or not node.attribute or node.attribute[0].name != "value":
            continue
        value = numpy_helper.to_array(node.attribute[0].t)
        if value.dtype.kind != "f" or value.size == 0:
            continue
        data[node.output[0]] = {
            "CLS": "TensorData",
            **{
                side: {"CLS": "numpy.array", "dtype": "float32", "data": [float(v)]}
                for side, v in (("lowest", value.min()), ("highest", value.max()))
            },
        }
    return {**ranges, "data": data}
