"""Where rtseg's files are: the package, the checkout, the configs; output paths checked; file hashes;
files written atomically; outputs published without replacing anything unasked.

Two ways a file reaches its name: ``atomic_path``/``write_atomic`` for files the project owns (run
folders, caches: the new one replaces the old), and ``publish``/``publish_together`` for a name the
user chose (``output=``, rtseg-export's files): written under a temporary name, then linked to the
final name only if that name is still free at the end, or replaced only with ``overwrite=true``.
A check made at the start alone lets a run that finishes later rename its file over one that
appeared meanwhile; the link is the check and the creation in one step.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rtseg.errors import FolderInUse, OutputExists, RtsegError

PACKAGE_DIR = Path(__file__).resolve().parents[1]


# the checkout's root (src/rtseg/ -> .); meaningless for an installed wheel, see CHECKOUT
REPO_ROOT = PACKAGE_DIR.parents[1]


CHECKOUT = REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else None


def _conf_dir() -> Path:
    """``RTSEG_CONF_DIR``, else the configs a wheel ships (``rtseg/conf``), else the checkout's ``conf/``."""
    if os.environ.get("RTSEG_CONF_DIR"):
        return Path(os.environ["RTSEG_CONF_DIR"]).resolve()
    shipped = PACKAGE_DIR / "conf"
    if (shipped / "train.yaml").is_file():
        return shipped
    return REPO_ROOT / "conf"


CONF_DIR = _conf_dir()


def refuse_path_under_file(path: str | Path, key: str, folder: bool = False) -> None:
    """One line instead of a deep mkdir traceback when an output path lies below an existing file."""
    p = Path(path).expanduser().absolute()
    for candidate in ([p] if folder else []) + list(p.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise RtsegError(f"{key}={path}: {candidate} is a file, expected a folder there")
            return


#: errnos that say the storage refused a write (issue 36) -> how the one line names it
STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "on a read-only file system",
    errno.EACCES: "not writable (permission denied)",
    errno.EPERM: "not writable (operation not permitted)",
    errno.ENOTDIR: "below a file where a folder should be (not a directory)",
}

#: below this much free space a folder counts as full before the work starts
MIN_FREE_BYTES = 1 << 20


def storage_error_line(exc: BaseException) -> str | None:
    """One line for a storage fault behind ``exc`` (an OSError with one of ``STORAGE_ERRNOS``,
    also as the cause or context of another exception): the path and what is wrong with it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            where = exc.filename if exc.filename is not None else "a file"
            return (
                f"cannot write {where}: {STORAGE_ERRNOS[exc.errno]}: free space or give a "
                "writable folder (RTSEG_LOG_DIR=..., hydra.run.dir=..., output=...)"
            )
        exc = exc.__cause__ or exc.__context__
    return None


def check_writable_folder(path: str | Path, key: str, file: bool = False) -> None:
    """``RtsegError`` in one line, before any work, when files cannot be written in the folder
    ``path`` (the folder of the file ``path`` with ``file``; it may not exist yet: its nearest
    existing folder is judged): a file in its place or above it, a read-only mount, no write
    permission, a full disk. Nothing is created."""
    refuse_path_under_file(path, key, folder=not file)
    p = Path(path).expanduser().absolute()
    if file:
        p = p.parent
    existing = next((c for c in [p, *p.parents] if c.exists()), None)
    if existing is None:
        return
    what = None
    try:
        st = os.statvfs(existing)
    except OSError:
        st = None
    if st is not None and st.f_flag & os.ST_RDONLY:
        what = STORAGE_ERRNOS[errno.EROFS]
    elif not os.access(existing, os.W_OK | os.X_OK):
        what = STORAGE_ERRNOS[errno.EACCES]
    elif st is not None and st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
        what = f"{STORAGE_ERRNOS[errno.ENOSPC]}: {st.f_bavail * st.f_frsize} bytes free"
    if what:
        shown = "" if existing == p else f" ({existing}, where it would be made)"
        raise RtsegError(
            f"{key}={path}{shown}: {what}: free space or give a writable folder in {key}"
        )


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks (checkpoints, artifacts and shipped weights)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to, renamed onto ``path`` when the block succeeds.

    Readers never see half a file, and a write that fails (disk full, Ctrl-C, a crash) removes its
    temporary file and leaves whatever was at ``path`` untouched. The temporary name keeps the
    suffix, so writers that pick a format by extension (PyAV, OpenCV, matplotlib) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):  # a read-only folder refuses this too: one error
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename in (str(tmp), tmp):
            e.filename = str(path)  # the file the user asked for, not our hidden temporary name
        raise


def write_atomic(path: str | Path, data: str | bytes, durable: bool = True) -> Path:
    """Write text or bytes to ``path`` through ``atomic_path``; ``durable``: on disk before the
    rename (records, caches), off for per-frame images where an fsync each would cost frames."""
    with atomic_path(path) as tmp, open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` through ``atomic_path``: ``dst`` is the old file or the whole new one."""
    with atomic_path(dst) as tmp:
        shutil.copy2(src, tmp)
    return Path(dst)


def temporary_name(path: str | Path) -> Path:
    """A unique hidden name beside ``path`` with its suffix (writers pick a format by extension)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp{path.suffix}")


# what temporary_name makes: .<name>.<pid>-<6 hex>.tmp<suffix>
_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{6}\.tmp(\.[^.]+)?$")

#: a temporary younger than this is left alone even when its pid is gone here: a writer on another
#: machine sharing the folder (NFS) has a pid this machine does not know
STALE_AFTER_S = 60.0


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries that ``atomic_path`` writers killed by SIGKILL (or a power cut) left
    in ``folder``: a name ``temporary_name`` makes, whose pid is no live process here, untouched
    for ``STALE_AFTER_S``. ``atomic_path`` removes its own on any exit Python sees; SIGKILL is the
    one it cannot, and the hidden file (a half video: megabytes) stayed forever. Returns them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        found = _TEMPORARY.match(entry.name)
        if not found or not entry.is_file(follow_symlinks=False) or _alive(int(found["pid"])):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime >= STALE_AFTER_S:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this machine (ours or another user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's live process
        return True
    return True


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """An exclusive lock on a folder (flock on its descriptor: no lock file left behind), held
    while several files are published as one unit, so two publishers never interleave."""
    try:
        import fcntl
    except ImportError:  # Windows: the exclusive links alone still refuse a taken name
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


#: the file in a run folder whose flock says which process owns the folder (``owned_folder``)
OWNER_FILE = ".owner.lock"


def _process_rank() -> int:
    """This process's rank in a distributed run (0 when there is none): the rank launchers give
    (Lightning's DDP children, torchrun, SLURM tasks) from the environment."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(key, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0


@contextmanager
def owned_folder(folder: str | Path, how_else: str = "hydra.run.dir=...") -> Iterator[None]:
    """The folder owned by this process for the block: an exclusive flock on ``OWNER_FILE`` in it,
    holding the owner's pid. The OS drops the lock when the process ends however it ends (a crash,
    SIGKILL), so a stale file never blocks a rerun. A second process gets ``FolderInUse`` naming
    the owner's pid and ``how_else`` (how to pick another folder). Ranks other than 0 of one
    distributed run share their rank 0's folder and take no lock."""
    try:
        import fcntl
    except ImportError:  # Windows: no ownership check
        yield
        return
    if _process_rank() > 0:
        yield
        return
    path = Path(folder) / OWNER_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = ""
            for _ in range(20):  # the owner writes its pid just after it takes the lock
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
                if owner:
                    break
                time.sleep(0.05)
            raise FolderInUse(
                f"{folder} is in use by another run (pid {owner or '?'}): wait for it to end, or "
                f"give this run another folder ({how_else})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _link_exclusive(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` only if ``final`` does not exist (one atomic step)."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise OutputExists(f"{final} already exists") from None
    except OSError:  # a file system without hard links: create exclusively, then replace
        try:
            os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise OutputExists(f"{final} already exists") from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def publish(tmp: str | Path, final: str | Path, overwrite: bool = False) -> Path:
    """Give the complete file ``tmp`` the name ``final``: never replacing a file there unless
    ``overwrite`` (then atomically: readers see the old file or the new one). ``OutputExists`` when
    the name is taken, ``tmp`` left in place for the caller to keep or remove."""
    return publish_together([(tmp, final)], overwrite)[0]


def publish_together(
    pairs: list[tuple[str | Path, str | Path]], overwrite: bool = False
) -> list[Path]:
    """Publish several complete files (a model and its sidecar) as one unit: all of them or none,
    under a lock on their folder so another publisher of the same names never interleaves."""
    pairs = [(Path(t), Path(f)) for t, f in pairs]
    folders = sorted({str(f.parent.resolve()) for _, f in pairs})
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(folder_lock(folder))
        if overwrite:
            for tmp, final in pairs:
                os.replace(tmp, final)
            return [f for _, f in pairs]
        done: list[tuple[Path, Path]] = []
        try:
            for tmp, final in pairs:
                _link_exclusive(tmp, final)
                done.append((tmp, final))
        except OutputExists:
            for tmp, final in done:  # undo: the names this call took go back to being free
                os.link(final, tmp)
                os.unlink(final)
            raise
    return [f for _, f in pairs]


def free_name(path: str | Path) -> Path:
    """``path`` itself when free, else ``stem-2.ext``, ``stem-3.ext``... (for keeping a file whose
    name another run took)."""
    path = Path(path)
    if not path.exists():
        return path
    for i in range(2, 10_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OutputExists(f"{path}: no free name beside it")


def keep_under_free_name(tmp: str | Path, wanted: str | Path) -> Path:
    """Publish ``tmp`` under the first free name derived from ``wanted`` (races retried)."""
    for _ in range(100):
        try:
            return publish(tmp, free_name(wanted))
        except OutputExists:
            continue
    raise OutputExists(f"{wanted}: no free name beside it")
