"""Every command shown in README.md and docs/*.md, run in a dry form, so a renamed key or target fails.

Fenced ``bash`` blocks are parsed line by line. ``rtseg-*`` Hydra entrypoints have their overrides
composed in-process against the entrypoint's config (what ``--cfg job`` would check, without a
process per command); ``-m`` sweeps are expanded one value at a time, and a sweep preset's own
``hydra.sweeper.params`` are composed too. ``make X`` must be a target, and the ``rtseg-*`` lines it
would run (``make -n X``) are composed the same way. ``<run>``-style placeholders and paths that
are not on this machine are fine: composing never reads them.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rtseg.utils.config import compose_config

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# console script -> the Hydra config it composes (None: a plain argparse command)
CONFIGS = {
    "rtseg-train": "train",
    "rtseg-eval": "eval",
    "rtseg-bench": "benchmark",
    "rtseg-export": "export",
    "rtseg-realtime": "realtime",
    "rtseg-targets": "targets",
    "rtseg-compare": None,
}


def shell_commands(text: str) -> list[str]:
    """The commands of the fenced bash blocks: comments dropped, ``\\`` continuations joined."""
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def documented_commands() -> list[tuple[str, str]]:
    return [(doc.name, cmd) for doc in DOCS for cmd in shell_commands(doc.read_text())]


def test_the_docs_show_commands():
    programs = {shlex.split(cmd)[0].rsplit("/", 1)[-1] for _, cmd in documented_commands()}
    assert {"make", "rtseg-train", "rtseg-bench", "rtseg-realtime", "rtseg-compare"} <= programs


def test_every_entrypoint_is_a_console_script():
    section = (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    assert set(re.findall(r"^(rtseg-[\w-]+) =", section, re.M)) == set(CONFIGS)


def placeholders_filled(word: str) -> str:
    """``<run>`` and shell substitutions ``$(...)`` become plain values Hydra's grammar accepts."""
    word = re.sub(r"\$\([^)]*\)", "placeholder", word)
    return re.sub(r"<([\w-]+)>", r"\1", word)


def sweep_expanded(overrides: list[str]) -> list[list[str]]:
    """One override list per value of each sweep (``a=1,2 b=x,y``: 1 x, 2 x, 1 y), not the product."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    firsts = [
        f"{o.get_key_element()}={next(o.sweep_string_iterator())}"
        if o.is_sweep_override()
        else o.input_line
        for o in parsed
    ]
    runs = [firsts]
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            runs += [
                [*firsts[:i], f"{o.get_key_element()}={v}", *firsts[i + 1 :]]
                for v in list(o.sweep_string_iterator())[1:]
            ]
    return runs


@cache
def compose_checked(config_name: str, overrides: tuple[str, ...]):
    """Compose as the entrypoint would and resolve all but Hydra's runtime values."""
    cfg = compose_config(config_name, list(overrides), hydra=True)
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    job.paths.output_dir = "run"  # Hydra's runtime value, set when a job starts
    OmegaConf.resolve(job)
    return cfg


def check_rtseg_command(command: str) -> None:
    program, *args = shlex.split(placeholders_filled(command))
    program = program.rsplit("/", 1)[-1]
    assert program in CONFIGS, f"{program}: not a console script of rtseg"
    config_name = CONFIGS[program]
    if config_name is None:
        return
    multirun = "-m" in args or "--multirun" in args
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    assert not [a for a in overrides if a.startswith("-")], f"unknown flag in {command}"
    runs = sweep_expanded(overrides) if multirun else [overrides]
    for run in runs:
        cfg = compose_checked(config_name, tuple(run))
    params = OmegaConf.select(cfg, "hydra.sweeper.params") if multirun else None
    for key, value in (params or {}).items():
        parsed = OverridesParser.create().parse_override(f"{key}={value}")
        if parsed.is_discrete_sweep():
            for one in sweep_expanded([f"{key}={value}"]):
                compose_checked(config_name, (*runs[0], *one))
        else:  # an interval: the key must at least be there
            assert OmegaConf.select(cfg, key, default=KeyError) is not KeyError, key


def check_pip_install(command: str) -> None:
    """``pip install .`` / ``'.[a,b]'`` / ``-c FILE``: the extras are declared and the files exist."""
    words = shlex.split(command)[2:]
    declared = set(
        re.findall(
            r"^([\w-]+) = \[",
            (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1],
            re.M,
        )
    )
    for i, word in enumerate(words):
        if word == "-c":
            assert (REPO / words[i + 1]).is_file(), f"{command}: no {words[i + 1]}"
        found = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
        if found and found.group(1):
            missing = set(found.group(1).split(",")) - declared
            assert not missing, f"{command}: extras {sorted(missing)} are not in pyproject.toml"


def without_env(command: str) -> str:
    """``NAME=value cmd ...`` -> ``cmd ...`` (the variables are the shell's, not Hydra's)."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words = words[1:]
    return shlex.join(words)


@pytest.mark.parametrize(
    ("doc", "command"),
    [pytest.param(d, c, id=f"{d}: {c[:60]}") for d, c in documented_commands()],
)
def test_documented_command(doc, command):
    command = without_env(command)
    program = shlex.split(command)[0].rsplit("/", 1)[-1]
    if program == "make":
        targets = [w for w in shlex.split(command)[1:] if "=" not in w]
        for target in targets:
            dry = subprocess.run(
                ["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=30
            )
            assert dry.returncode == 0, f"{doc}: make {target}: {dry.stderr.strip()}"
            for line in dry.stdout.replace("\\\n", " ").splitlines():
                if re.match(r"^\S*/?rtseg-\w+ ", line.strip()):
                    check_rtseg_command(line.strip())
    elif program.startswith("rtseg-"):
        check_rtseg_command(command)
    elif program == "pip" and shlex.split(command)[1] == "install":
        check_pip_install(command)
    else:
        assert program in ("export", "find"), f"{doc}: an unchecked command: {command}"


def test_make_targets_honour_rtseg_log_dir(tmp_path):
    """docs/tracking.md: make leaderboard and make wandb-sync read RTSEG_LOG_DIR like the entrypoints."""
    env = {"PATH": "/usr/bin:/bin", "RTSEG_LOG_DIR": str(tmp_path)}
    dry = subprocess.run(
        ["make", "-n", "leaderboard", "wandb-sync"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    lines = [ln for ln in dry.stdout.splitlines() if "rtseg-compare" in ln or "wandb sync" in ln]
    assert len(lines) == 2 and all(str(tmp_path) in ln for ln in lines), dry.stdout
