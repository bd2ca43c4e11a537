"""The poly schedule's wall-clock budget survives a checkpoint round trip (resume)."""

from __future__ import annotations

import time

import torch

from rtseg import schedules


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
