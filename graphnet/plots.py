"""PNG figures: learning curves of a comparison and meta-training logs.

matplotlib (a dependency of graphnet) is imported only inside these
functions, through its object-oriented API with the Agg canvas: no display, no pyplot state, no
change to the process's backend.
"""
from __future__ import annotations

import math
import os

import numpy as np

COLORS = ("tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
BASELINE_STYLE = {"sgd": ("tab:red", "o", "SGD"), "adam": ("tab:orange", "s", "Adam")}


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("graphnet.plots needs matplotlib: pip install matplotlib"
                          ) from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    """Write ``fig`` as a PNG to ``path`` and return the path; with ``path=None`` return the Figure
    (a notebook shows it inline)."""
    if path is None:
        return fig
    path = os.fspath(path)
    fig.savefig(path, format="png")
    return path


def _x_axis(ax, steps) -> None:
    """Log scale for inner steps; symlog (linear below 1) when step 0 is recorded."""
    if min(steps) <= 0:
        ax.set_xscale("symlog", linthresh=1)
    else:
        ax.set_xscale("log")
    hi = max(steps) * 1.25
    ax.set_xlim(-0.1 if min(steps) <= 0 else min(steps) / 1.25, hi if hi > 0 else 1)
    ax.set_xticks(list(steps))
    ax.set_xticklabels([str(s) for s in steps])
    ax.minorticks_off()


def plot_comparison(comparison, path=None):
    """One panel per (task, topology): test accuracy against inner steps (log scale).

    Each genome is a line (mean over seeds) with a shaded ±std band; SGD and Adam are their
    best-lr envelopes (the best learning rate at each step budget, markers; the chosen lrs, step by
    step, are listed in the panel's lower right corner); a dotted line marks chance. Diverged seeds count at chance, as in the table.
    Returns the path of the PNG (``path=None``: the matplotlib Figure, e.g. to show in a notebook).
    """
    entries = comparison.entries
    if not entries:
        raise ValueError("the comparison has no entries to plot")
    steps = np.asarray(comparison.steps)
    n = len(entries)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    legend_height = 0.45  # inches below the panels for the shared legend
    fig = _figure(5.0 * cols, 3.8 * rows + legend_height)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, e in zip(axes.flat, entries):
        for i, (name, curves) in enumerate(e.genomes.items()):
            mean, std = curves.summary(e.chance)
            color = COLORS[i % len(COLORS)]
            n_div = int(curves.diverged.sum())
            label = name + (f" ({n_div}/{len(curves.seeds)} diverged)" if n_div else "")
            ax.plot(steps, mean, color=color, lw=2, label=label)
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        for row, (key, curves) in enumerate(e.baselines.items()):
            color, marker, label = BASELINE_STYLE.get(key, ("tab:gray", "^", key))
            best = curves.best(e.chance)
            ax.plot(steps, best["mean"], color=color, marker=marker, ms=4, lw=1.2, ls="--",
                    label=f"{label}, best lr per step")
            ax.fill_between(steps, best["mean"] - best["std"], best["mean"] + best["std"], color=color,
                            alpha=0.1, lw=0)
            # the chosen lr per step budget, as one line in the panel's corner (labels at the points overlap)
            ax.text(0.98, 0.04 + 0.06 * row, f"{label} lr: " + " | ".join(f"{lr:g}" for lr in best["lr"]),
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color=color)
        ax.axhline(e.chance, color="gray", lw=0.8, ls=":", label="chance")
        _x_axis(ax, comparison.steps)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{e.task} / {e.topology}", fontsize=10)
        ax.set_xlabel("inner steps")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        if e.genomes and any(c.diverged.any() for c in e.genomes.values()):
            ax.legend(fontsize=7, loc="best")  # per-panel labels carry the diverged counts
    handles, labels = axes.flat[0].get_legend_handles_labels()
    labels = [lab.split(" (")[0] for lab in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_height / (3.8 * rows + legend_height), 1, 1))
    return _save(fig, path)


def plot_meta_log(rows, path=None):
    """Meta-training log: meta-loss (top) and query accuracy (bottom) against the meta-step.

    ``rows``: dicts with ``step`` and any of ``loss``, ``accuracy``, ``unroll`` (missing or None
    values are skipped). Where the unroll length changes, a vertical line is drawn and labelled
    with the new length. Returns the path of the PNG (``path=None``: the Figure).
    """
    rows = [r for r in rows if r.get("step") is not None]
    if not rows:
        raise ValueError("plot_meta_log: no rows with a 'step'")
    rows = sorted(rows, key=lambda r: r["step"])

    def series(key):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts], dtype=float)) if pts else (None, None)

    changes, last = [], None
    for r in rows:
        unroll = r.get("unroll")
        if unroll is not None and unroll != last:
            changes.append((r["step"], unroll))
            last = unroll
    fig = _figure(7.0, 6.0)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    for ax, key, ylabel in ((ax_loss, "loss", "meta-loss"), (ax_acc, "accuracy", "query accuracy")):
        x, y = series(key)
        if x is not None:
            ax.plot(x, y, color="tab:blue", lw=1, alpha=0.6, label="logged")
            if len(y) >= 20:  # a centred running mean makes noisy logs readable
                width = max(5, len(y) // 20)
                smooth = np.convolve(y, np.ones(width) / width, mode="valid")
                lo = (width - 1) // 2
                ax.plot(x[lo:lo + len(smooth)], smooth, color="tab:red", lw=1.5, label=f"running mean of {width}")
            ax.legend(fontsize=7)
            if key == "loss" and (y > 0).all():
                ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, f"no {key} logged", transform=ax.transAxes, ha="center", va="center", color="gray")
        for i, (step, unroll) in enumerate(changes):
            if i:  # the first entry is the starting length, not a change
                ax.axvline(step, color="gray", lw=0.8, ls="--")
            if ax is ax_loss:
                ax.annotate(f"unroll {unroll}", (step, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -10), textcoords="offset points", fontsize=7, color="gray")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax_acc.set_xlabel("meta-step")
    fig.tight_layout()
    return _save(fig, path)
