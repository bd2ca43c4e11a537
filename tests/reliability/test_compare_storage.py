"""rtseg-compare on a log folder it cannot write (issue 36: the table, then two tracebacks): the
table is printed whole, then one line naming the file it could not write, exit 2."""

from __future__ import annotations

import errno
import os

from rtseg.tracking import compare
from rtseg.tracking.runs import RunRecord


def test_a_read_only_log_folder_prints_the_table_then_one_line(tmp_path, monkeypatch, capsys):
    run = tmp_path / "logs" / "train" / "runs" / "a"
    run.mkdir(parents=True)
    RunRecord(str(run), status="finished", dataset="synthetic", model="baseline").save()
    real_open = open

    def read_only(path, *args, **kwargs):  # root writes through chmod: the mount's answer instead
        mode = args[0] if args else kwargs.get("mode", "r")
        if any(m in mode for m in "wax") and str(path).startswith(str(tmp_path / "logs")):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    monkeypatch.setenv("COLUMNS", "200")
    code = compare.main([str(tmp_path / "logs")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "1 runs under" in out and "baseline" in out  # the table, whole, before the error
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot write "), err
    # the file asked for, not the hidden temporary name it was being written under
    assert f"cannot write {tmp_path / 'logs' / 'leaderboard.csv'}: " in lines[0]
    assert "read-only" in lines[0] and ".tmp" not in lines[0]
    assert "the table above is complete" in lines[0]
    assert not [p for p in (tmp_path / "logs").iterdir() if p.name.startswith(".")]
