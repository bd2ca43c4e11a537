"""Helpers every test package shares (importable as ``tests.support``): the one CamVid locator, the
one runner of the console scripts as processes, and what tells a video handle is still open."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the console scripts beside the interpreter running the tests (the project's .venv)
BIN = Path(sys.executable).parent


def camvid_root() -> Path | None:
    """CamVid for tests: $CAMVID_DIR, else the shared copy beside the repo; None when absent."""
    env = os.environ.get("CAMVID_DIR")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "camvid"]:
        if (candidate / "train").is_dir():
            return candidate
    return None


def run_cli(
    args: list[str], timeout: int = 300, check: bool = True, **env: str
) -> subprocess.CompletedProcess:
    """Run a console script (``args[0]`` a name in ``BIN`` or a path) from the repo root, offline,
    and return the finished process; ``check`` asserts exit code 0 with the output tail shown."""
    exe = args[0] if os.sep in str(args[0]) else str(BIN / args[0])
    full_env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        **env,
    }
    proc = subprocess.run(
        [exe, *map(str, args[1:])], cwd=REPO, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, (
            f"{' '.join(map(str, args))} exited {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def video_threads() -> dict[int, str]:
    """Threads that mean a video handle is still open, by thread id: FFmpeg's decoder/encoder
    threads (native names ``av:mpeg4:df0``..., from /proc/self/task/*/comm) and rtseg's capture
    owners."""
    import threading

    from rtseg.realtime.video_source import OWNER_THREAD

    found = {t.native_id: t.name for t in threading.enumerate() if t.name.startswith(OWNER_THREAD)}
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith("av:"):
            found[int(comm.parent.name)] = name
    return found


def read_lines(proc: subprocess.Popen) -> list[str]:
    """The lines a process prints, collected by a thread as they come (the list grows)."""
    import threading

    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return lines


def wait_for(lines: list[str], proc: subprocess.Popen, text: str, timeout: float = 120) -> None:
    """Until a line holds ``text``; fails with everything printed if the process ends first."""
    import time

    deadline = time.time() + timeout
    while not any(text in ln for ln in lines):
        assert proc.poll() is None and time.time() < deadline, "".join(lines)
        time.sleep(0.05)


def load_script(path: Path, name: str | None = None):
    """A repository script that is not a package module (experiments/, tools/), imported by path
    so that its functions can be tested in-process."""
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
