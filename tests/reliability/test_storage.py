"""Storage faults are one line naming the path, exit 2, checked before the work where they can be
(issue 36: a full disk, a read-only mount or a file in place of RTSEG_LOG_DIR ended train, eval and
realtime in 50-line tracebacks; realtime loaded the model before failing on a read-only output=).

Tests run as root, where chmod does not stop a write: a read-only mount and a full disk are
simulated in-process (os.statvfs says so, or the write raises the OSError the kernel would)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import types

import pytest

from rtseg.errors import RtsegError
from rtseg.utils.cli import user_errors_as_one_line
from rtseg.utils.paths import check_writable_folder, storage_error_line
from tests.support import REPO, run_cli

from ..conftest import FAST_TRAIN, TINY


def _fake_statvfs(monkeypatch, under, *, readonly=False, free=10 << 30):
    real = os.statvfs

    def statvfs(path):
        st = real(path)
        if not str(os.path.abspath(path)).startswith(str(under)):
            return st
        flag = st.f_flag | (os.ST_RDONLY if readonly else 0)
        return types.SimpleNamespace(f_flag=flag, f_bavail=free // 4096, f_frsize=4096)

    monkeypatch.setattr(os, "statvfs", statvfs)


def test_a_file_in_place_of_the_folder_is_named(tmp_path):
    (tmp_path / "logs").write_text("not a folder")
    with pytest.raises(RtsegError, match=r"RTSEG_LOG_DIR=.*logs: .*logs is a file"):
        check_writable_folder(tmp_path / "logs", "RTSEG_LOG_DIR")
    with pytest.raises(RtsegError, match=r"is a file, expected a folder"):
        check_writable_folder(tmp_path / "logs" / "run" / "x.mp4", "output", file=True)


def test_a_read_only_mount_is_named_before_the_work(tmp_path, monkeypatch):
    _fake_statvfs(monkeypatch, tmp_path, readonly=True)
    with pytest.raises(RtsegError, match=r"read-only file system") as e:
        check_writable_folder(tmp_path / "new" / "runs", "paths.log_dir")
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_a_full_disk_is_named_before_the_work(tmp_path, monkeypatch):
    _fake_statvfs(monkeypatch, tmp_path, free=0)
    with pytest.raises(RtsegError, match=r"the disk is full.*0 bytes free"):
        check_writable_folder(tmp_path, "out_dir")


def test_no_write_permission_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(RtsegError, match=r"not writable \(permission denied\)"):
        check_writable_folder(tmp_path, "output")


def test_a_writable_folder_passes_and_nothing_is_made(tmp_path):
    check_writable_folder(tmp_path / "a" / "b", "paths.log_dir")
    check_writable_folder(tmp_path / "a" / "x.mp4", "output", file=True)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.ENOTDIR, "not a directory"),
    ],
)
def test_a_storage_fault_mid_run_is_one_line_and_exit_2(code, said, capsys):
    """What the guard of every entrypoint makes of the OSError a write raises mid-run (last.ckpt on
    a disk that filled up), also when a cleanup raised again while handling it."""

    @user_errors_as_one_line
    def run():
        try:
            raise OSError(code, os.strerror(code), "/runs/x/checkpoints/last.ckpt")
        except OSError:
            raise RuntimeError("cleanup failed too") from None

    with pytest.raises(SystemExit) as stopped:
        run()
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot write /runs/x/checkpoints/last.ckpt: ") and said in line


def test_other_errors_are_not_taken_for_storage_faults():
    assert storage_error_line(FileNotFoundError(errno.ENOENT, "gone", "x")) is None
    assert storage_error_line(ValueError("x")) is None


# an entrypoint run with os.statvfs saying that FOLDER is on a read-only mount or a full disk
FAKED = textwrap.dedent(
    """
    import os, sys, types
    folder, how, entry = sys.argv[1], sys.argv[2], sys.argv[3]
    real = os.statvfs
    def statvfs(path):
        st = real(path)
        if not os.path.abspath(path).startswith(folder):
            return st
        return types.SimpleNamespace(
            f_flag=st.f_flag | (os.ST_RDONLY if how == "ro" else 0),
            f_bavail=0 if how == "full" else st.f_bavail, f_frsize=st.f_frsize)
    os.statvfs = statvfs
    def no_model(*a, **k):
        raise AssertionError("the model was opened")
    import rtseg.infer.open
    rtseg.infer.open.open_model = no_model
    import rtseg.realtime.cli
    rtseg.realtime.cli.open_model = no_model
    module, _, name = entry.partition(":")
    import importlib
    sys.argv = [module, *sys.argv[4:]]
    getattr(importlib.import_module(module), name)()
    """
)


def _faked(tmp_path, how, entry, *args):
    return subprocess.run(
        [sys.executable, "-c", FAKED, str(tmp_path / "disk"), how, entry, *map(str, args)],
        cwd=REPO,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"},
        capture_output=True,
        text=True,
        timeout=800,
    )


def _one_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return line


@pytest.mark.timeout(900)
def test_log_dir_a_regular_file_is_one_line_in_train(tmp_path):
    (tmp_path / "logs").write_text("a file")
    proc = run_cli(
        ["rtseg-train", "data=synthetic", "trainer.max_epochs=1"],
        check=False,
        RTSEG_LOG_DIR=str(tmp_path / "logs"),
    )
    line = _one_line(proc)
    assert line.startswith("error: RTSEG_LOG_DIR=") and "is a file" in line


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("how", "entry", "said"),
    [
        ("ro", "rtseg.training.train:main", "read-only file system"),
        ("full", "rtseg.training.eval:main", "the disk is full"),
    ],
)
def test_log_dir_read_only_or_full_is_one_line_before_the_run(tmp_path, how, entry, said):
    (tmp_path / "disk").mkdir()
    logs = tmp_path / "disk" / "logs"
    quick = [*TINY, *FAST_TRAIN, "trainer.max_epochs=1"] if "train" in entry else []
    proc = _faked(tmp_path, how, entry, *quick, f"paths.log_dir={logs}")
    line = _one_line(proc)
    assert f"paths.log_dir={logs}" in line and said in line
    assert not logs.exists()  # checked before Hydra makes a run folder


@pytest.mark.timeout(900)
def test_realtime_output_in_a_read_only_folder_is_refused_before_the_model(tmp_path):
    (tmp_path / "disk").mkdir()
    out = tmp_path / "disk" / "out.mp4"
    proc = _faked(
        tmp_path,
        "ro",
        "rtseg.realtime.cli:main",
        "source=synthetic",
        "synthetic.frames=3",
        "checkpoint=camvid",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    line = _one_line(proc)
    assert line.startswith(f"error: output={out}") and "read-only file system" in line
    assert not out.exists()
