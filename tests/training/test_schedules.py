"""The poly schedule's wall-clock budget survives a checkpoint round trip (resume)."""

from __future__ import annotations

import math
import time

import pytest
import torch

from rtseg.training import schedules


def _opt():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_time_budget_carries_over_a_resume(monkeypatch):
    sched = schedules.poly(_opt(), total_steps=10**6, power=1.0, time_budget_s=100.0)
    factor = sched.lr_lambdas[0]
    factor._t0 -= 60  # 60 s of the budget already spent
    sched.step()
    state = sched.state_dict()
    assert 59 < state["lr_lambdas"][0]["spent_s"] < 62

    # a new process: its own clock and process token
    monkeypatch.setattr(schedules, "_PROCESS", "another-process")
    opt = _opt()
    resumed = schedules.poly(opt, total_steps=10**6, power=1.0, time_budget_s=100.0)
    resumed.load_state_dict(state)
    resumed.step()
    lr = opt.param_groups[0]["lr"]
    assert 0.37 < lr < 0.41, lr  # 1 - 60/100, not ~1.0 as a budget restarted from zero gives


def test_budget_only_counts_time_spent():
    opt = _opt()
    sched = schedules.poly(opt, total_steps=10**6, power=1.0, time_budget_s=3600.0)
    time.sleep(0.01)
    sched.step()
    assert opt.param_groups[0]["lr"] > 0.99


def test_cosine_warms_up_then_decays_to_its_floor():
    opt = _opt()
    sched = schedules.cosine(opt, total_steps=14, warmup_steps=4, min_factor=0.1)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    expected = [(s + 1) / 4 for s in range(4)] + [
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(11)
    ]
    assert lrs == pytest.approx(expected, abs=1e-6)


def test_cosine_without_warm_up_starts_at_the_full_rate():
    opt = _opt()
    schedules.cosine(opt, total_steps=10)
    assert opt.param_groups[0]["lr"] == 1.0
