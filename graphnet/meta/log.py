"""Metrics logs of meta-training: one row per meta-step, as CSV or JSON lines (by file suffix)."""
from __future__ import annotations

import csv
import io
import json
import pathlib

from graphnet.atomic import atomic_write

COLUMNS = ("step", "unroll", "task", "topology", "loss", "accuracy", "grad_norm", "diverged", "seconds")


class MetricsLog:
    """Append-only log at ``path`` (``.csv`` or ``.jsonl``); rows are dicts with :data:`COLUMNS`.

    ``MetricsLog(path, resume_step=s)`` keeps only the rows with ``step < s`` already in the file, so
    a resumed run writes the same log as an uninterrupted one. The file is not touched until the
    first :meth:`write`: a trainer built only to read a run (``resume(out).mean_genome()``, while
    that run is still going) leaves its log alone. The first write replaces the file atomically
    (header and kept rows), then rows are appended.
    """

    def __init__(self, path, resume_step: int = 0):
        self.path = pathlib.Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ValueError(f"log file {self.path}: expected a .csv or .jsonl suffix")
        # read (and so checked) now, written at the first write
        self._kept = [row for row in read_log(self.path) if row["step"] < resume_step] if (
            resume_step and self.path.exists()) else []
        self._started = False

    def write(self, row: dict) -> None:
        if not self._started:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = ",".join(COLUMNS) + "\n" if self.path.suffix == ".csv" else ""
            atomic_write(self.path, header + "".join(self._line(r) for r in self._kept))
            self._started, self._kept = True, []
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            fh.write(self._line(row))

    def _line(self, row: dict) -> str:
        if self.path.suffix == ".jsonl":
            return json.dumps({c: row[c] for c in COLUMNS}) + "\n"
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow([row[c] for c in COLUMNS])
        return text.getvalue()


def read_log(path) -> list[dict]:
    """Rows of a log written by :class:`MetricsLog`, with numbers parsed."""
    path = pathlib.Path(path)
    types = {"step": int, "unroll": int, "task": str, "topology": str, "loss": float, "accuracy": float,
             "grad_norm": float, "diverged": int, "seconds": float}
    with open(path, newline="", encoding="utf-8") as fh:
        try:
            rows = list(csv.DictReader(fh)) if path.suffix == ".csv" else [json.loads(line) for line in fh
                                                                          if line.strip()]
            return [{c: types[c](row[c]) for c in COLUMNS} for row in rows]
        except (KeyError, ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"log file {path} is not a graphnet meta-training log ({e})") from None
