"""A tiny, dependency-free progress bar on stderr, for evaluations and meta-training.

On a terminal (``stream.isatty()``) one line is redrawn in place with ``\\r`` (at most every
``min_interval`` seconds); anywhere else (a log file, CI) a plain line is printed each time
another ``every`` fraction of the total is done, so logs stay short and readable::

    with Progress(total=700, desc="mnist/mlp") as bar:
        for step in range(700):
            ...
            bar.update(1, acc=0.91)
"""
from __future__ import annotations

import sys
import time


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _fmt_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """Progress of ``total`` units of work, written to ``stream`` (default ``sys.stderr``).

    Args:
        total: units expected (``update`` calls may add up to more; the bar then shows 100%).
        desc: a label in front of the bar.
        stream: where to write (default ``sys.stderr``, looked up when the bar is built).
        every: without a terminal, print a line each time this fraction of ``total`` is passed.
        min_interval: on a terminal, redraw at most this often (seconds).
        enabled: False writes nothing (the counters still run).
    """

    def __init__(self, total: int, desc: str = "", *, stream=None, every: float = 0.1,
                 min_interval: float = 0.1, enabled: bool = True):
        if total < 0:
            raise ValueError(f"Progress total must be >= 0, got {total}")
        if not 0 < every <= 1:
            raise ValueError(f"Progress every must lie in (0, 1], got {every}")
        self.total = int(total)
        self.desc = desc
        self.stream = sys.stderr if stream is None else stream
        self.every = every
        self.min_interval = min_interval
        self.enabled = enabled
        self.n = 0
        self.postfix: dict = {}
        self.start = time.perf_counter()
        self.closed = False
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._last_draw = -float("inf")
        self._last_mark = 0  # multiples of `every` already printed (non-terminal mode)

    # ------------------------------------------------------------------ public
    def update(self, n: int = 1, **postfix) -> None:
        """Add ``n`` done units; keyword values are shown after the bar (``loss=0.31``)."""
        self.n += n
        self.postfix.update(postfix)
        if not self.enabled or self.closed:
            return
        if self.tty:
            now = time.perf_counter()
            if now - self._last_draw >= self.min_interval or self.n >= self.total:
                self._last_draw = now
                self._write("\r" + self.line() + "\x1b[K")
        elif self.total:
            mark = int(min(self.n, self.total) / self.total / self.every + 1e-9)
            if mark > self._last_mark:
                self._last_mark = mark
                self._write(self.line() + "\n")

    def close(self) -> None:
        """Finish the bar: a final line with the elapsed time (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if not self.enabled:
            return
        if self.tty:
            self._write("\r" + self.line() + "\x1b[K\n")
        elif not self.total or self._last_mark * self.every < 1 - 1e-9:
            self._write(self.line() + "\n")  # the last plain line was not the 100% one

    def line(self) -> str:
        """The current status line (without ``\\r`` or newline)."""
        elapsed = time.perf_counter() - self.start
        parts = [self.desc] if self.desc else []
        if self.total:
            frac = min(self.n / self.total, 1.0)
            width = 20
            filled = int(frac * width)
            parts.append(f"{100 * frac:3.0f}% [{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total}")
            eta = elapsed / self.n * (self.total - self.n) if 0 < self.n < self.total else 0.0
            parts.append(f"{_fmt_time(elapsed)}<{_fmt_time(eta)}")
        else:
            parts.append(f"{self.n} {_fmt_time(elapsed)}")
        if self.postfix:
            parts.append(" ".join(f"{k}={_fmt_value(v)}" for k, v in self.postfix.items()))
        return " ".join(parts)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop the work
            self.enabled = False
