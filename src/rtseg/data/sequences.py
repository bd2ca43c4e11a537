"""Video sequences from file names: CamVid's ``0006R0_f02370.png`` is frame 2370 of sequence 0006R0.

Frames of one sequence are near-duplicates a second apart, so a split that shares a sequence with
training measures memory more than generalisation. The run record and rtseg-eval report data per
sequence with these helpers; a name without a ``_`` prefix belongs to no sequence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path


def sequence_of(path: str | Path) -> str | None:
    """The sequence a frame belongs to: its file name up to the first ``_`` (None when there is none)."""
    stem = Path(path).stem
    head, sep, _ = stem.partition("_")
    return head if sep and head else None


def sequence_counts(paths: Iterable[str | Path]) -> dict[str, int]:
    """Frames per sequence, in name order; empty when any frame carries no sequence."""
    names = [sequence_of(p) for p in paths]
    if not names or any(n is None for n in names):
        return {}
    return dict(sorted(Counter(names).items()))
