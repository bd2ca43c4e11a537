"""Adaptive average pooling as matrix products: the same numbers as torch's, exportable to ONNX
at any input size (pyramid pooling in Fast-SCNN and PP-LiteSeg's context module; ``rtseg.infer.onnx``
exports torch's own adaptive pooling the same way)."""

from __future__ import annotations

import torch


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Exactly ``F.adaptive_avg_pool2d(x, bins)``, written as two small matrix products.

    ONNX cannot export adaptive pooling whose bins do not divide the map (360x480 input gives a
    12x15 map at 1/32, which 2, 3 and 6 bins do not divide); a pooling matrix exports anywhere.
    """
    h, w = x.shape[-2:]
    return pooling_matrix(h, bins, x) @ x @ pooling_matrix(w, bins, x).T


def pooling_matrix(n: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, n) matrix whose row i averages cells floor(i*n/bins) to ceil((i+1)*n/bins).

    Built from Python numbers, so the ONNX exporter sees one constant. Filling a zero matrix by
    slices traced to ``index_put``, whose conversion killed the process with SIGFPE when bins > n
    (Fast-SCNN at 128x128: a 4x4 map at 1/32 pooled into 6 bins).
    """
    n, bins = int(n), int(bins)
    rows = []
    for i in range(bins):
        start, end = (i * n) // bins, -(-(i + 1) * n // bins)
        rows.append([1.0 / (end - start) if start <= j < end else 0.0 for j in range(n)])
    return torch.tensor(rows, dtype=like.dtype, device=like.device)
