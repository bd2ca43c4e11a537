"""The one markdown table writer (run summaries, benchmark tables, experiment records)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table of cells already formatted as text: the one table writer of rtseg."""

    def line(cells) -> str:
        return "| " + " | ".join(map(str, cells)) + " |"

    return "\n".join([line(columns), "|" + "---|" * len(columns), *map(line, rows)]) + "\n"
