"""A CSVLogger whose metrics.csv survives a resume.

Lightning's CSV writer deletes an existing metrics.csv when it starts; resuming an interrupted run
in its own folder would then lose the first session's curves. This writer keeps the rows and
appends (Lightning rewrites the header itself when new columns appear). A resume first drops the
rows the interrupted session logged after its checkpoint (``resume_at``): the aborted epoch is run
again, and its steps would otherwise appear twice with different losses.
"""

from __future__ import annotations

import csv
import io

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from rtseg.utils.paths import write_atomic


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = list(csv.DictReader(f).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    def resume_at(self, epoch: int, step: int) -> int:
        """Keep the rows logged before a checkpoint: those of epochs before ``epoch`` (the one the
        resumed fit starts) and, for rows without an epoch (learning rate, model cost), those
        before global ``step``; an unreadable row (a line the interrupted write cut) goes too.
        Rows this session logged and has not flushed yet are kept. Returns how many were dropped."""
        path = self.experiment.metrics_file_path
        if not self._fs.isfile(path):
            return 0
        with self._fs.open(path, "r", newline="") as f:
            reader = csv.DictReader(f)
            header, rows = list(reader.fieldnames or []), list(reader)
        kept = [r for r in rows if _before(r, epoch, step)]
        if len(kept) == len(rows):
            return 0
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=header, extrasaction="ignore"
        )  # CRLF lines, as Lightning writes them
        writer.writeheader()
        writer.writerows(kept)
        write_atomic(path, out.getvalue())
        return len(rows) - len(kept)


def _before(row: dict, epoch: int, step: int) -> bool:
    try:
        if row.get("epoch") not in (None, ""):
            return int(float(row["epoch"])) < epoch
        return int(float(row["step"])) < step
    except (KeyError, TypeError, ValueError):
        return False
