"""PNG figures (graphnet/plots.py): files are written and are valid PNGs; the core never needs matplotlib."""
import math
import subprocess
import sys

import numpy as np
import pytest

from graphnet.baselines import Curves
from graphnet.evaluation import Comparison, Entry

pytest.importorskip("matplotlib")

from graphnet import plots  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=10_000):
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert len(data) > min_bytes, f"suspiciously small PNG ({len(data)} bytes)"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # IHDR
    assert width > 300 and height > 200


def toy_comparison(n_entries=2, steps=(0, 1, 5, 20)):
    rng = np.random.default_rng(0)
    seeds = (0, 1, 2)
    t = np.log1p(np.asarray(steps, dtype=float))
    entries = []
    for i in range(n_entries):
        genome = np.clip(0.3 + 0.2 * t + 0.02 * rng.standard_normal((3, len(steps))), 0, 1)
        diverged = genome.copy()
        diverged[0, 2:] = np.nan
        lrs = (0.01, 0.1, 1.0)
        sgd = np.clip(0.3 + 0.1 * t * np.array([0.5, 1, 1.5])[:, None, None]
                      + 0.02 * rng.standard_normal((3, 3, len(steps))), 0, 1)
        curves = {"learned": Curves("learned", steps, seeds, genome, genome, np.full(3, -1)),
                  "unstable": Curves("unstable", steps, seeds, diverged, diverged, np.array([2, -1, -1]))}
        base = {"sgd": Curves("sgd", steps, seeds, sgd, sgd, np.full((3, 3), -1), lrs=lrs),
                "adam": Curves("adam", steps, seeds, sgd * 0.9, sgd, np.full((3, 3), -1), lrs=(1e-3, 1e-2, 1e-1))}
        entries.append(Entry(f"task{i}", "mlp", 3, curves, base))
    return Comparison(entries, steps, seeds)


def test_plot_comparison(tmp_path):
    path = plots.plot_comparison(toy_comparison(), tmp_path / "cmp.png")
    assert_png(path)
    assert_png(toy_comparison(n_entries=4, steps=(1, 10, 100)).plot(tmp_path / "four.png"))  # method form, 2 rows


def test_plot_meta_log(tmp_path):
    rows = [{"step": i, "loss": 2 * math.exp(-i / 50) + 0.1, "accuracy": 1 - math.exp(-i / 40),
             "unroll": 10 + 5 * (i // 60)} for i in range(200)]
    rows[5]["loss"] = None  # missing values are skipped
    assert_png(plots.plot_meta_log(rows, tmp_path / "meta.png"))
    assert_png(plots.plot_meta_log([{"step": 0, "loss": 1.0}], tmp_path / "one.png"), min_bytes=5_000)
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_meta_log([], tmp_path / "none.png")


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plots.plot_meta_log([{"step": 0, "loss": 1.0}], tmp_path / "x.png")


def test_core_does_not_import_matplotlib():
    code = ("import sys, graphnet, graphnet.baselines, graphnet.evaluation, graphnet.plots, graphnet.progress; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_plot_without_path_returns_a_figure():
    from matplotlib.figure import Figure
    fig = plots.plot_meta_log([{"step": s, "loss": 2.0 - s / 10, "accuracy": s / 10, "unroll": 10} for s in range(5)])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
