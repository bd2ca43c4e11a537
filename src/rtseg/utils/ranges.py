"""The allowed range of every numeric setting (``conf/ranges.yaml``), checked before anything loads.

A value outside its range used to surface late and far away: ``data.batch_size=0`` as a traceback
from the DataLoader, ``trainer.max_epochs=0`` as a "finished" run with no checkpoint,
``queue_size=0`` as an unbounded queue, ``http.port=70000`` as an OverflowError. One table says what
each setting takes; ``check_value`` (command-line overrides, before Hydra makes a run folder) and
``check_ranges`` (the composed config, in every entrypoint) turn a violation into one line.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from rtseg.errors import RtsegError
from rtseg.utils.paths import CONF_DIR

RANGES_FILE = CONF_DIR / "ranges.yaml"
_NUMBER = r"-?\d+(?:\.\d*)?(?:e-?\d+)?"
#: a bound that is a number or ``cpus``: the CPUs this process may use (``machine.usable_cpus``)
_BOUND = rf"(?:{_NUMBER}|cpus)"
_TERM = re.compile(
    rf"^(?:(?P<op>>=|>|<=|<)\s*(?P<n>{_BOUND})|(?P<lo>{_BOUND})\.\.(?P<hi>{_BOUND})|(?P<eq>{_NUMBER})|(?P<null>null)|(?P<int>integer))$"
)


def _bound(text: str) -> float:
    if text == "cpus":
        from rtseg.utils.machine import usable_cpus

        return float(usable_cpus())
    return float(text)


@dataclass(frozen=True)
class Range:
    """One setting's allowed values: alternatives ("or") of conjunctions ("and") of terms."""

    text: str
    alternatives: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        alts = tuple(
            tuple(t.strip() for t in alt.split(" and ")) for alt in str(text).split(" or ")
        )
        for alt in alts:
            for term in alt:
                if not _TERM.match(term):
                    raise ValueError(
                        f"{RANGES_FILE}: cannot read the range term {term!r} in {text!r}"
                    )
        return cls(str(text), alts)

    def allows(self, value) -> bool:
        return any(all(_term_allows(t, value) for t in alt) for alt in self.alternatives)


def _term_allows(term: str, value) -> bool:
    m = _TERM.match(term)
    if m["null"]:
        return value is None
    if m["int"]:  # a count: trainer.max_epochs=1.5 was Lightning's AssertionError (issue 36)
        return isinstance(value, int) and not isinstance(value, bool)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if math.isnan(value):
        return False
    if m["eq"] is not None:
        return value == float(m["eq"])
    if m["lo"] is not None:
        return _bound(m["lo"]) <= value <= _bound(m["hi"])
    n = _bound(m["n"])
    return {">=": value >= n, ">": value > n, "<=": value <= n, "<": value < n}[m["op"]]


@functools.cache
def ranges() -> dict[str, Range]:
    """The table in ``conf/ranges.yaml`` (empty when a custom ``RTSEG_CONF_DIR`` has none)."""
    import yaml

    if not RANGES_FILE.is_file():
        return {}
    table = yaml.safe_load(RANGES_FILE.read_text()) or {}
    return {str(k): Range.parse(v) for k, v in table.items()}


def range_error(key: str, value) -> str | None:
    """Why ``value`` is outside ``key``'s range (None when it is inside, or the key has none).
    A list is checked element by element (input sizes, rtseg-bench's thread counts)."""
    rule = ranges().get(key)
    if rule is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    if isinstance(value, list | tuple) and not value and not rule.allows(None):
        return f"expected {rule.text}, got an empty list"
    for item in items:
        if isinstance(item, list | tuple | dict):
            continue  # nested structures are for their own keys
        if not rule.allows(item):
            shown = "null" if item is None else repr(item)
            which = f" (in {list(value)})" if isinstance(value, list | tuple) else ""
            text = rule.text.replace("integer and ", "")
            if "integer" in rule.text and isinstance(item, float) and not math.isnan(item):
                text = f"a whole number: {text}"
            return f"expected {text}{_cpus_said(rule.text)}, got {shown}{which}"
    return None


def _cpus_said(text: str) -> str:
    """What ``cpus`` is on this machine, for a range that names it."""
    if "cpus" not in text:
        return ""
    import os

    from rtseg.utils.machine import usable_cpus

    cpus, total = usable_cpus(), os.cpu_count()
    of = f" of os.cpu_count() = {total}" if total and total != cpus else ""
    return f" (cpus = {cpus}: the CPUs this process may use{of})"


def check_value(key: str, value, given: str | None = None) -> None:
    """One setting's value: ``RtsegError`` naming it (as ``given`` on the command line)."""
    why = range_error(key, value)
    if why:
        raise RtsegError(f"{given or f'{key}={value}'}: {why}")


def check_ranges(cfg) -> None:
    """Every setting of a composed config that has a range (interpolations resolved; a value that
    cannot be resolved here is left to the code that reads it)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    for key in ranges():
        try:
            value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        except OmegaConfBaseException:
            continue
        if value is _ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if isinstance(value, dict):
            continue
        check_value(key, value, f"{key}={'null' if value is None else value}")


_ABSENT = object()
