"""Metrics logs of meta-training: one row per meta-step, as CSV or JSON lines (by file suffix)."""
from __future__ import annotations

import csv
import json
import pathlib

COLUMNS = ("step", "unroll", "task", "topology", "loss", "accuracy", "grad_norm", "diverged", "seconds")


class MetricsLog:
    """Append-only log at ``path`` (``.csv`` or ``.jsonl``); rows are dicts with :data:`COLUMNS`.

    ``MetricsLog(path, resume_step=s)`` keeps only the rows with ``step < s`` already in the file, so
    a resumed run writes the same log as an uninterrupted one.
    """

    def __init__(self, path, resume_step: int = 0):
        self.path = pathlib.Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ValueError(f"log file {self.path}: expected a .csv or .jsonl suffix")
        kept = [row for row in read_log(self.path) if row["step"] < resume_step] if (
            resume_step and self.path.exists()) else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="", encoding="utf-8") as fh:
            if self.path.suffix == ".csv":
                csv.writer(fh).writerow(COLUMNS)
        for row in kept:
            self.write(row)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            if self.path.suffix == ".csv":
                csv.writer(fh).writerow([row[c] for c in COLUMNS])
            else:
                fh.write(json.dumps({c: row[c] for c in COLUMNS}) + "\n")


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
