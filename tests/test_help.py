"""``--help`` of every Hydra entrypoint tells a newcomer the truth in one screen: what the command
does, three examples that compose, the config groups it takes (only those: the ones
``check_overrides`` lets through), then Hydra's own dump of the config (conf/hydra/help/)."""

from __future__ import annotations

import re
import shlex
from functools import cache

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from rtseg.errors import RtsegError
from rtseg.utils.cli import check_overrides, checkpoint_keys_kept
from rtseg.utils.config import command_groups, compose_config
from rtseg.utils.paths import CONF_DIR

from .support import run_cli
from .test_docs import CONFIGS

# console script -> the primary config it composes (test_docs' table, less the argparse commands)
COMMANDS = {program: config for program, config in CONFIGS.items() if config}
# groups each command refuses that a newcomer would try first (the checkpoint fixes the model)
REFUSED = {
    "rtseg-eval": {"model", "experiment", "hparams_search"},
    "rtseg-bench": {"trainer", "experiment", "callbacks"},
    "rtseg-export": {"model", "trainer", "experiment"},
    "rtseg-realtime": {"model", "trainer", "experiment"},
    "rtseg-targets": {"model", "trainer", "experiment"},
}
CONFIG_DUMP = "== Config =="
SCREEN = 40


@cache
def help_text(command: str) -> str:
    proc = run_cli([command, "--help"], timeout=120)
    return proc.stdout


def before_config(text: str) -> list[str]:
    assert CONFIG_DUMP in text, f"no config dump ({CONFIG_DUMP}) in:\n{text[:2000]}"
    return text.split(CONFIG_DUMP)[0].rstrip("\n").splitlines()


def examples(command: str) -> list[str]:
    lines = before_config(help_text(command))
    start = lines.index("Examples:") + 1
    found = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        found.append(line.strip())
    return found


def listed_groups(command: str) -> set[str]:
    lines = before_config(help_text(command))
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Config groups")) + 1
    groups = set()
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        groups.add(line.split(":")[0].strip())
    return groups


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_the_command_does_in_one_screen(command):
    text = help_text(command)
    assert "powered by Hydra" not in text
    head = before_config(text)
    assert len(head) < SCREEN, f"{command} --help: {len(head)} lines before the config dump"
    first = head[0]
    assert first.startswith(f"{command}: "), f"no purpose paragraph first: {first!r}"
    paragraph = head[: head.index("")]
    assert len(" ".join(paragraph).split()) >= 30, f"{command}: the purpose is too thin"
    found = examples(command)
    assert len(found) == 3, found
    assert all(shlex.split(e)[0] == command for e in found), found
    # Hydra's own help follows: the composed config, every top-level key of it
    dump = text.split(CONFIG_DUMP, 1)[1]
    assert re.search(r"^paths:$", dump, re.M), dump[:500]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_the_groups_the_command_takes_and_only_those(command):
    config = COMMANDS[command]
    listed = listed_groups(command)
    assert not listed & REFUSED.get(command, set()), listed
    assert {g.split("/")[0] for g in listed} == command_groups(config) - {"hydra"}
    # what check_overrides (the guard before Hydra runs) lets through is what the help lists
    for group in sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"):
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        if not options:
            continue
        if group in listed:
            check_overrides(config, [f"{group}={options[0]}"])
        else:
            with pytest.raises(RtsegError, match=f"has no {group} group"):
                check_overrides(config, [f"{group}={options[0]}"])


def first_values(overrides: list[str]) -> list[str]:
    """A sweep composes with its first value of each swept key (what its first job gets)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [
        f"{o.get_key_element()}={next(o.sweep_string_iterator())}"
        if o.is_sweep_override()
        else o.input_line
        for o in parsed
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_example_in_the_help_composes(command):
    config = COMMANDS[command]
    for example in examples(command):
        words = shlex.split(example)[1:]
        overrides = checkpoint_keys_kept(config, [w for w in words if not w.startswith("-")])
        check_overrides(config, overrides)  # what the entrypoint checks before Hydra runs
        cfg = compose_config(config, first_values(overrides))
        assert cfg is not None, example
