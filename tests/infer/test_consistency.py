"""Temporal consistency on synthetic motion: a translated scene holds still, random masks do not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtseg.data.synthetic import render_scene
from rtseg.infer.consistency import temporal_consistency, to_gray


def panned_scene(frames: int, step: int, size=(120, 160)):
    """Crops of one rendered scene moving ``step`` px right per frame: (grays, masks)."""
    h, w = size
    rgb, mask = render_scene(np.random.default_rng(3), h, w + step * frames)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    crops = [slice(i * step, i * step + w) for i in range(frames)]
    return [gray[:, c].copy() for c in crops], [mask[:, c].copy() for c in crops]


def test_translated_scene_reads_about_full_consistency():
    grays, masks = panned_scene(6, step=3)
    res = temporal_consistency(masks, grays)
    assert res["pairs"] == 5
    assert res["tc"] > 0.97, res
    # the raw change rate counts the motion itself: flow compensation is what TC adds
    assert res["change_rate"] > 1 - res["tc"]


def test_shuffled_masks_read_about_one_over_num_classes():
    rng = np.random.default_rng(0)
    grays, _ = panned_scene(5, step=2)
    k = 7
    masks = [rng.integers(0, k, grays[0].shape, dtype=np.uint8) for _ in grays]
    res = temporal_consistency(masks, grays)
    assert res["tc"] == pytest.approx(1 / k, abs=0.03)
    assert res["change_rate"] == pytest.approx(1 - 1 / k, abs=0.03)


def test_static_and_degenerate_inputs():
    grays, masks = panned_scene(3, step=0)
    assert temporal_consistency(masks, grays)["tc"] == 1.0
    assert temporal_consistency(masks[:1], grays[:1])["tc"] is None
    with pytest.raises(ValueError, match="masks"):
        temporal_consistency(masks, grays[:2])
    assert to_gray(np.zeros((40, 60, 3), np.uint8), (20, 30)).shape == (20, 30)
