"""Losses: OHEM keeps the hardest pixels and never void ones; distillation vanishes at equality."""

from __future__ import annotations

import pytest
import torch

from rtseg.training.losses import SegLoss, distillation_loss, near_label_edge, ohem_keep


def _logits_with_known_confidence():
    # 1 image, 2 classes, 1x6 pixels: true class 0 everywhere, probability of class 0 rising
    p0 = torch.tensor([0.1, 0.3, 0.5, 0.8, 0.95, 0.99])
    logits = torch.stack([p0.log(), (1 - p0).log()]).view(1, 2, 1, 6)
    target = torch.zeros(1, 1, 6, dtype=torch.long)
    return logits, target, p0


def test_ohem_keeps_the_hardest_pixels_under_the_threshold():
    logits, target, _ = _logits_with_known_confidence()
    valid = target != 255
    kept = ohem_keep(logits, target, valid, thresh=0.7, min_kept=0)
    assert kept.tolist() == [True, True, True, False, False, False]
    # min_kept raises the threshold: the 4 hardest are kept even though one is above 0.7
    kept = ohem_keep(logits, target, valid, thresh=0.7, min_kept=4)
    assert kept.tolist() == [True, True, True, True, False, False]


def test_ohem_respects_the_ignore_label():
    logits, target, p0 = _logits_with_known_confidence()
    target[0, 0, 0] = 255  # the hardest pixel is void: never kept, never in the loss
    loss = SegLoss(ignore_index=255, ohem_thresh=0.7)(logits, target)
    expected = -(p0[1:3].log()).mean()
    assert torch.isclose(loss, expected, atol=1e-5)
    # OHEM's loss is the mean over the hard pixels only: above plain CE (which averages easy ones in)
    plain = SegLoss(ignore_index=255)(logits, target)
    assert loss > plain


def test_distillation_is_zero_when_student_equals_teacher():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 8, 12)
    valid = torch.ones(2, 8, 12, dtype=torch.bool)
    for kind in ("logit", "cwd"):
        for t in (1.0, 4.0):
            assert distillation_loss(logits, logits.clone(), kind, t, valid).abs() < 1e-6
            assert distillation_loss(logits, torch.randn_like(logits), kind, t, valid) > 1e-3


def test_distillation_ignores_what_the_student_says_outside_the_valid_pixels():
    """Padding and void carry no targets: changing the student there changes neither loss."""
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 8, 12), torch.randn(2, 5, 8, 12)
    valid = torch.ones(2, 8, 12, dtype=torch.bool)
    valid[:, :, 9:] = False
    other = student.clone()
    other[..., 9:] = torch.randn(2, 5, 8, 3) * 10
    for kind in ("logit", "cwd"):
        a = distillation_loss(student, teacher, kind, 4.0, valid)
        b = distillation_loss(other, teacher, kind, 4.0, valid)
        assert torch.allclose(a, b, atol=1e-5), kind
        assert not torch.allclose(a, distillation_loss(other, teacher, kind, 4.0, None)), kind


def test_boundary_weighting_weighs_pixels_near_a_label_edge():
    """A vertical edge between two classes: with width 1 only the two columns beside it count as
    edge, and their cross-entropy weighs 1 + boundary_weight; the rest weigh 1."""
    target = torch.zeros(1, 4, 6, dtype=torch.long)
    target[..., 3:] = 1
    edge = near_label_edge(target, 1)
    assert edge[0, 0].tolist() == [0, 0, 1, 1, 0, 0]
    assert near_label_edge(target, 2)[0, 0].tolist() == [0, 1, 1, 1, 1, 0]
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 4, 6)
    pixel = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    loss = SegLoss(boundary_weight=3.0, boundary_width=1)(logits, target)
    assert torch.isclose(loss, (pixel * (1 + 3.0 * edge)).mean(), atol=1e-6)
    # a map with no edge: every pixel weighs 1, the loss is plain cross-entropy
    flat = torch.zeros(1, 4, 6, dtype=torch.long)
    assert torch.isclose(
        SegLoss(boundary_weight=3.0)(logits, flat), SegLoss()(logits, flat), atol=1e-6
    )


def test_boundary_weighting_leaves_void_pixels_out():
    target = torch.zeros(1, 4, 6, dtype=torch.long)
    target[..., 3:] = 1
    target[0, 0, 2] = 255
    torch.manual_seed(1)
    logits = torch.randn(1, 2, 4, 6)
    loss = SegLoss(ignore_index=255, boundary_weight=1.0, boundary_width=1)(logits, target)
    other = logits.clone()
    other[0, :, 0, 2] = 50.0  # what the net says on the void pixel changes nothing
    assert torch.isclose(
        loss, SegLoss(ignore_index=255, boundary_weight=1.0, boundary_width=1)(other, target)
    )


def test_boundary_settings_out_of_range_are_refused():
    with pytest.raises(ValueError, match="boundary_weight"):
        SegLoss(boundary_weight=-1.0)
    with pytest.raises(ValueError, match="boundary_width"):
        SegLoss(boundary_width=0)
