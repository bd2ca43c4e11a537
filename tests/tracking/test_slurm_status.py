"""Job states without accounting: ``sacct`` failing, ``squeue`` read instead (fake commands on PATH;
the real scheduler is test_slurm.py's)."""

from __future__ import annotations

import os
import stat

import pytest

from rtseg.tracking.slurm_status import ENDED, AccountingOrQueueWatcher


def fake(bin_dir, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def no_accounting(tmp_path, monkeypatch):
    """sacct as on a cluster without accounting storage; squeue answering from a file."""
    fake(tmp_path, "sacct", 'echo "Slurm accounting storage is disabled" >&2; exit 1')
    fake(tmp_path, "squeue", f'echo "$@" >> {tmp_path}/calls; cat {tmp_path}/queue')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_states_come_from_squeue_once_sacct_fails(no_accounting):
    (no_accounting / "queue").write_text("7_[0-1]|PENDING|\n")
    w = AccountingOrQueueWatcher()
    assert w.get_state("7_0", mode="force") == "PENDING"
    assert w.get_state("7_1", mode="force") == "PENDING"
    assert w.source == "squeue"
    assert "--states=all" in (no_accounting / "calls").read_text()

    (no_accounting / "queue").write_text("7_0|RUNNING|vm\n7_1|CANCELLED|vm\n")
    w.update()
    assert w.get_state("7_0", mode="cache") == "RUNNING"
    assert w.is_done("7_1", mode="cache"), "a cancelled job is done (it will write no result)"
    assert not w.is_done("7_0", mode="cache")


def test_a_job_squeue_no_longer_lists_has_ended(no_accounting):
    (no_accounting / "queue").write_text("8|RUNNING|vm\n")
    w = AccountingOrQueueWatcher()
    assert w.get_state("8", mode="force") == "RUNNING"
    (no_accounting / "queue").write_text("")  # purged after MinJobAge
    w.update()
    assert w.get_state("8", mode="cache") == ENDED
    assert w.is_done("8", mode="cache")


def test_squeue_failing_keeps_the_states(no_accounting):
    (no_accounting / "queue").write_text("9|RUNNING|vm\n")
    w = AccountingOrQueueWatcher()
    assert w.get_state("9", mode="force") == "RUNNING"
    fake(no_accounting, "squeue", 'echo "slurm_load_jobs error: Unable to contact" >&2; exit 1')
    w.update()
    assert w.get_state("9", mode="cache") == "RUNNING"
