"""Learning curves of genomes against autograd SGD and Adam on the same networks and batches.

``genome_curve`` trains fresh networks (one per seed, one population pass) with a genome's rule
and scores the full test set at the recorded inner-step counts; ``compare`` does this for every
(task, topology) together with :func:`graphnet.baselines.train_autograd` for SGD and Adam over
learning-rate grids, and returns a :class:`Comparison` (markdown table, JSON, PNG plot).

Both paths share one batch stream per seed (:func:`graphnet.baselines.member_batches`) and the
same initial-synapse draw, so a learned rule and the baselines see identical data. The baselines'
learning rate is chosen per step budget by mean test accuracy over seeds: an oracle choice on
the test set that favours the baselines.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import time

import numpy as np
import torch

import graphnet
from graphnet.atomic import atomic_write
from graphnet.baselines import (DEFAULT_ADAM_LRS, DEFAULT_SEEDS, DEFAULT_SGD_LRS, DEFAULT_STEPS, Curves, EvalTask,
                                as_task, check_fit, check_seeds, check_steps, chunk_size, member_batches,
                                population, score, train_autograd)
from graphnet.progress import Progress
from graphnet.rules import Genome
from graphnet.topology import Topology

__all__ = ["Comparison", "Entry", "EvalTask", "as_task", "compare", "genome_curve"]

FORMAT = "graphnet.comparison"
FORMAT_VERSION = 1
BASELINE_NAMES = {"sgd": "SGD", "adam": "Adam"}


# ---------------------------------------------------------------------------------------------- genome curves
def genome_curve(genome, topology: Topology, *data, seeds=DEFAULT_SEEDS, steps=DEFAULT_STEPS, batch_size: int = 128,
                 batch_seed: int = 0, dtype: torch.dtype = torch.float32, device=None, kernel: str = "csr",
                 name: str = "genome", progress: Progress | None = None) -> Curves:
    """Test accuracy of networks trained by ``genome``'s rule, per seed and recorded step.

    Args:
        genome: a :class:`graphnet.Genome` or a per-group dict ``{group: Genome}``.
        topology: the graph.
        *data: the task, in any form :func:`graphnet.baselines.as_task` accepts, e.g.
            ``x_train [N, D], y_train [N], x_test [M, D], y_test [M]`` or ``(train, test)`` datasets.
        seeds: member ``i`` starts from the genome's initial synapses for seed ``seeds[i]`` (as
            ``Network(topology, genome, seed=seeds[i])``) and trains on the batch stream of that seed.
        steps: inner-step counts at which the full test set is scored (0 = before training).
        batch_size, batch_seed: see :func:`graphnet.baselines.member_batches`.
        dtype, device, kernel: of the network.
        name: the curve's ``method`` label.
        progress: advanced once per inner step, or None.

    Returns:
        :class:`graphnet.baselines.Curves` with ``accuracy``/``loss [len(seeds), len(steps)]`` (loss:
        softmax cross-entropy of the outputs taken as logits) and ``diverged_at [len(seeds)]``: a
        member whose synapses or outputs become NaN/Inf is recorded there, its synapses are zeroed so
        the others go on, and its accuracy is NaN from then on. Runs without autograd.
    """
    task = as_task(*data)
    seeds, steps = check_seeds(seeds), check_steps(steps)
    check_fit(topology, task)
    start = time.perf_counter()
    with torch.no_grad():
        net = population(topology, genome, seeds, dtype=dtype, device=device, kernel=kernel)
        device = net.device
        x_train, y_train = task.x_train.to(device, dtype), task.y_train.to(device)
        x_test, y_test = task.x_test.to(device, dtype), task.y_test.to(device)
        batches = member_batches(len(y_train), batch_size, steps[-1], seeds, batch_seed).to(device)  # [S, T, B]
        chunk = chunk_size(net.population, net.rule.k, topology.n_neurons, len(y_test))
        accuracy = np.full((len(seeds), len(steps)), np.nan)
        loss = np.full_like(accuracy, np.nan)
        diverged_at = np.full(len(seeds), -1, dtype=np.int64)

        def mark(bad: np.ndarray, t: int) -> None:
            new = bad & (diverged_at < 0)
            if new.any():
                diverged_at[new] = t
                _zero_members(net, torch.as_tensor(diverged_at >= 0, device=device))

        def record(t: int) -> None:
            acc, test_loss, finite = score(net.predict, x_test, y_test, chunk)
            mark(~finite, t)
            dead = diverged_at >= 0
            acc[dead], test_loss[dead] = np.nan, np.nan
            accuracy[:, steps.index(t)], loss[:, steps.index(t)] = acc, test_loss

        if steps[0] == 0:
            record(0)
        for t in range(1, steps[-1] + 1):
            idx = batches[:, t - 1]  # [S, B]
            net.step(x_train[idx], y_train[idx])
            mark(~net.finite().cpu().numpy(), t)
            if t in steps:
                record(t)
            if progress is not None:
                progress.update(1)
    return Curves(method=name, steps=steps, seeds=seeds, accuracy=accuracy, loss=loss, diverged_at=diverged_at,
                  seconds=time.perf_counter() - start)


def _zero_members(net, rows: torch.Tensor) -> None:
    """Set every synapse of the members ``rows [pop]`` to 0 (diverged members, so NaN cannot spread)."""
    w = net.forward_weights
    net.forward_weights = torch.where(rows.view(-1, 1, 1), torch.zeros_like(w), w)
    if not net.rule.options.tied_backward:
        w = net.backward_weights
        net.backward_weights = torch.where(rows.view(-1, 1, 1), torch.zeros_like(w), w)


# ---------------------------------------------------------------------------------------------- comparison
@dataclasses.dataclass(eq=False)
class Entry:
    """All curves of one (task, topology) pair."""

    task: str
    topology: str
    n_classes: int
    genomes: dict  # name -> Curves, accuracy [S, T]
    baselines: dict  # "sgd" / "adam" -> Curves, accuracy [L, S, T]
    topology_summary: str = ""

    @property
    def chance(self) -> float:
        return 1.0 / self.n_classes


@dataclasses.dataclass(eq=False)
class Comparison:
    """The result of :func:`compare`: one :class:`Entry` per (task, topology), plus the run's config.

    ``table()`` gives a markdown table, ``to_json(path)`` / ``Comparison.from_json(path)`` a
    machine-readable file (every curve, per-seed values, learning rates, the best lr per step),
    ``plot(path)`` a PNG (needs matplotlib, a dependency of graphnet).
    """

    entries: list
    steps: tuple
    seeds: tuple
    config: dict = dataclasses.field(default_factory=dict)
    version: str = graphnet.__version__
    created: str = ""
    seconds: float = 0.0

    def entry(self, task: str, topology: str) -> Entry:
        for e in self.entries:
            if e.task == task and e.topology == topology:
                return e
        raise KeyError(f"no entry for task {task!r}, topology {topology!r}; have "
                       f"{[(e.task, e.topology) for e in self.entries]}")

    # ------------------------------------------------------------------ table
    def table(self, steps=None, digits: int = 3) -> str:
        """Markdown table: one row per method and (task, topology), one column per step budget.

        A cell is ``mean ± std`` of test accuracy over seeds (diverged seeds count at chance and are
        flagged ``(n div)``); baseline rows use the best learning rate for that column, shown as
        ``@lr``.
        """
        steps = self.steps if steps is None else tuple(int(s) for s in steps)
        missing = [s for s in steps if s not in self.steps]
        if missing:
            raise ValueError(f"steps {missing} were not recorded; recorded: {list(self.steps)}")
        cols = [self.steps.index(s) for s in steps]
        head = ["task", "topology", "method"] + [f"{s} steps" for s in steps]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

        def cell(mean, std, n_div, lr=None):
            text = f"{mean:.{digits}f} ± {std:.{digits}f}"
            if lr is not None:
                text += f" @{lr:g}"
            if n_div:
                text += f" ({n_div} div)"
            return text

        for e in self.entries:
            for name, curves in e.genomes.items():
                mean, std = curves.summary(e.chance)
                div = np.isnan(curves.accuracy).sum(0)
                lines.append(_row([e.task, e.topology, name] + [cell(mean[c], std[c], div[c]) for c in cols]))
            for key, curves in e.baselines.items():
                best = curves.best(e.chance)
                div = np.isnan(best["accuracy"]).sum(0)
                label = f"{BASELINE_NAMES.get(key, key)} (best lr)"
                lines.append(_row([e.task, e.topology, label] +
                                  [cell(best["mean"][c], best["std"][c], div[c], best["lr"][c]) for c in cols]))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def _repr_markdown_(self) -> str:  # a notebook renders the table
        return self.table()

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """Plain JSON-ready dict; NaN (diverged) values are written as null."""
        entries = []
        for e in self.entries:
            entries.append({
                "task": e.task, "topology": e.topology, "topology_summary": e.topology_summary,
                "n_classes": e.n_classes,
                "genomes": {name: _curves_to_dict(c, e.chance) for name, c in e.genomes.items()},
                "baselines": {key: _curves_to_dict(c, e.chance) for key, c in e.baselines.items()},
            })
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "graphnet_version": self.version,
                "created": self.created, "seconds": self.seconds, "steps": list(self.steps),
                "seeds": list(self.seeds), "config": self.config, "entries": entries}

    def to_json(self, path: str | os.PathLike) -> str:
        """Write :meth:`to_dict` as JSON atomically; returns the path."""
        path = os.fspath(path)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        atomic_write(path, text + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "Comparison":
        """Inverse of :meth:`to_dict`; any missing or malformed field raises ``ValueError`` naming it.
        Derived values (means, best learning rates) are recomputed, not read."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a graphnet comparison (format tag {FORMAT!r} missing)")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"comparison format version {data.get('format_version')!r}, this graphnet reads "
                             f"{FORMAT_VERSION}")
        steps = tuple(_ints(_get(data, "steps", list), "steps"))
        seeds = tuple(_ints(_get(data, "seeds", list), "seeds"))
        entries = []
        for i, raw in enumerate(_get(data, "entries", list)):
            where = f"entries[{i}]"
            if not isinstance(raw, dict):
                raise ValueError(f"{where}: expected an object")
            n_classes = _get(raw, "n_classes", int, where)
            if n_classes < 1:
                raise ValueError(f"{where}.n_classes must be >= 1")
            curves = {group: {name: _curves_from_dict(c, steps, seeds, f"{where}.{group}.{name}", group == "baselines")
                              for name, c in _get(raw, group, dict, where).items()}
                      for group in ("genomes", "baselines")}
            entries.append(Entry(task=_get(raw, "task", str, where), topology=_get(raw, "topology", str, where),
                                 n_classes=n_classes, topology_summary=str(raw.get("topology_summary", "")),
                                 **curves))
        return cls(entries=entries, steps=steps, seeds=seeds, config=_get(data, "config", dict),
                   version=str(data.get("graphnet_version", "")), created=str(data.get("created", "")),
                   seconds=float(data.get("seconds", 0.0)))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Comparison":
        """Read a file written by :meth:`to_json`; a corrupt or truncated file raises ``ValueError``
        naming the path and the problem."""
        path = os.fspath(path)
        try:
            with open(path) as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); the file is corrupt or truncated") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not a text file ({e})") from None
        try:
            return cls.from_dict(data)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def plot(self, path: str | os.PathLike | None = None):
        """Learning curves as a PNG (see :func:`graphnet.plots.plot_comparison`); returns the path
        (``path=None``: returns the matplotlib Figure, which a notebook shows inline)."""
        from graphnet import plots
        return plots.plot_comparison(self, path)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _nan_to_none(a: np.ndarray):
    return [_nan_to_none(x) for x in a] if a.ndim else (None if math.isnan(float(a)) else float(a))


def _curves_to_dict(c: Curves, chance: float) -> dict:
    mean, std = c.summary(chance)
    out = {"method": c.method, "lrs": None if c.lrs is None else list(c.lrs),
           "accuracy": _nan_to_none(np.asarray(c.accuracy, dtype=float)),
           "loss": _nan_to_none(np.asarray(c.loss, dtype=float)),
           "diverged_at": np.asarray(c.diverged_at).tolist(),
           "mean": _nan_to_none(mean), "std": _nan_to_none(std), "seconds": c.seconds}
    if c.train_loss is not None:
        out["train_loss"] = _nan_to_none(np.asarray(c.train_loss, dtype=float))
    if c.is_baseline:
        best = c.best(chance)
        out["best"] = {"lr": [float(v) for v in best["lr"]], "lr_index": [int(v) for v in best["lr_index"]],
                       "mean": _nan_to_none(best["mean"]), "std": _nan_to_none(best["std"])}
    return out


def _get(data: dict, key: str, kind, where: str = ""):
    label = f"{where}.{key}" if where else key
    if key not in data:
        raise ValueError(f"missing field {label!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {label!r}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _ints(values, label: str) -> list[int]:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"field {label!r}: expected a list of integers")
    return list(values)


def _array(value, shape: tuple, label: str, dtype=float) -> np.ndarray:
    """A nested list of numbers (null = NaN for floats) of exactly ``shape``, else a ValueError."""
    try:
        a = np.array(value, dtype=object)
    except ValueError:  # ragged in a way numpy refuses even as objects
        a = np.empty(0, dtype=object)
    if a.shape != shape:
        raise ValueError(f"field {label!r}: expected shape {list(shape)}, got a ragged or differently shaped list")
    allowed = (int, float) if dtype is float else (int,)
    for v in a.flat:
        if not (isinstance(v, allowed) and not isinstance(v, bool)) and not (v is None and dtype is float):
            raise ValueError(f"field {label!r}: expected numbers{' or null' if dtype is float else ''}, "
                             f"got {v!r}")
    return np.array([np.nan if v is None else v for v in a.flat], dtype=dtype).reshape(shape)


def _curves_from_dict(raw, steps: tuple, seeds: tuple, where: str, baseline: bool) -> Curves:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    lrs = raw.get("lrs")
    if baseline:
        if not isinstance(lrs, list) or not lrs or not all(isinstance(v, (int, float)) for v in lrs):
            raise ValueError(f"field '{where}.lrs': a baseline needs a non-empty list of learning rates")
        lrs = tuple(float(v) for v in lrs)
    elif lrs is not None:
        raise ValueError(f"field '{where}.lrs': a genome curve has no learning rates")
    lead = (len(lrs),) if baseline else ()
    shape = lead + (len(seeds), len(steps))
    train_loss = raw.get("train_loss")
    if train_loss is not None:
        train_loss = _array(train_loss, lead + (len(seeds), max(steps)), f"{where}.train_loss")
    return Curves(method=_get(raw, "method", str, where), steps=steps, seeds=seeds, lrs=lrs,
                  accuracy=_array(_get(raw, "accuracy", list, where), shape, f"{where}.accuracy"),
                  loss=_array(_get(raw, "loss", list, where), shape, f"{where}.loss"),
                  diverged_at=_array(_get(raw, "diverged_at", list, where), lead + (len(seeds),),
                                     f"{where}.diverged_at", dtype=np.int64),
                  train_loss=train_loss, seconds=float(raw.get("seconds", 0.0)))


# ---------------------------------------------------------------------------------------------- compare
def _named_genomes(genomes) -> dict:
    """A Genome, a per-group dict, a list, or ``{name: genome}`` -> ``{name: genome}``.

    A dict whose values are all :class:`Genome` s is read as named genomes; to compare a per-group
    genome, name it: ``{"my rule": {"hidden1": g1, "default": g2}}``."""
    if isinstance(genomes, Genome):
        return {"genome": genomes}
    if isinstance(genomes, dict):
        if genomes and all(isinstance(v, (Genome, dict)) for v in genomes.values()):
            return {str(k): v for k, v in genomes.items()}
        raise TypeError("genomes: expected a Genome, a list of them or a dict {name: Genome}")
    if isinstance(genomes, (list, tuple)):
        return {f"genome{i}": g for i, g in enumerate(genomes)}
    if genomes is None:
        return {}
    raise TypeError(f"genomes: expected a Genome, a list or a dict, got {type(genomes).__name__}")


def _named_topologies(topologies, task: EvalTask) -> dict:
    """``Topology`` / list / ``{name: Topology}`` / ``{name: callable(task) -> Topology}`` for one task."""
    if isinstance(topologies, Topology) or callable(topologies) and not isinstance(topologies, (dict, list, tuple)):
        topologies = {"topology": topologies}
    elif isinstance(topologies, (list, tuple)):
        topologies = {f"topology{i}": t for i, t in enumerate(topologies)}
    if not isinstance(topologies, dict) or not topologies:
        raise TypeError("topologies: expected a Topology, a list, or a dict {name: Topology or callable(task)}")
    out = {}
    for name, top in topologies.items():
        if not isinstance(top, Topology) and callable(top):
            top = top(task)
        if not isinstance(top, Topology):
            raise TypeError(f"topology {name!r}: expected a Topology (or a callable returning one), "
                            f"got {type(top).__name__}")
        out[str(name)] = top
    return out


def compare(genomes, tasks, topologies, *, steps=DEFAULT_STEPS, seeds=DEFAULT_SEEDS, batch_size: int = 128,
            sgd_lrs=DEFAULT_SGD_LRS, adam_lrs=DEFAULT_ADAM_LRS, activation: str = "relu", batch_seed: int = 0,
            dtype: torch.dtype = torch.float32, device=None, kernel: str = "csr", progress: bool = True) -> Comparison:
    """Genome curves against tuned SGD and Adam on every (task, topology).

    Args:
        genomes: a :class:`Genome`, a list, or ``{name: Genome or per-group dict}``.
        tasks: one task or a list; each anything :func:`graphnet.baselines.as_task` accepts
            (an :class:`EvalTask`, ``(name, x_train, y_train, x_test, y_test)``, ``(train, test)`` datasets).
        topologies: a :class:`Topology`, a list, or ``{name: Topology}``; a value may also be a
            callable ``task -> Topology`` (e.g. to size the input layer to each task).
        steps, seeds, batch_size, batch_seed: as in :func:`genome_curve`; all methods share them.
        sgd_lrs, adam_lrs: learning-rate grids (empty: skip that baseline). Defaults:
            SGD ``(0.01, 0.03, 0.1, 0.3, 1.0)``, Adam ``(1e-4, 3e-4, 1e-3, 3e-3, 1e-2)``.
        activation: hidden activation of the baseline networks (outputs are linear logits).
        dtype, device, kernel: of every network.
        progress: show a progress bar on stderr (one unit per inner step of every run).

    The baselines' best learning rate per step budget is picked by mean test accuracy over seeds
    at that step (:meth:`Curves.best`): an oracle choice, favourable to the baselines.
    """
    start = time.perf_counter()
    named = _named_genomes(genomes)
    one_task = isinstance(tasks, EvalTask) or (
        isinstance(tasks, tuple) and not all(isinstance(t, (EvalTask, tuple, list)) for t in tasks))
    if one_task:  # a bare task or one tuple form of a task, not a sequence of tasks
        tasks = [tasks]
    tasks = [as_task(t) for t in tasks]
    seeds, steps = check_seeds(seeds), check_steps(steps)
    sgd_lrs, adam_lrs = tuple(float(v) for v in sgd_lrs or ()), tuple(float(v) for v in adam_lrs or ())
    baselines = {k: v for k, v in (("sgd", sgd_lrs), ("adam", adam_lrs)) if v}
    pairs = [(task, name, top) for task in tasks for name, top in _named_topologies(topologies, task).items()]
    for task, _, top in pairs:
        check_fit(top, task)
    total = len(pairs) * (len(named) + len(baselines)) * steps[-1]
    bar = Progress(total, "compare", enabled=progress)
    common = dict(seeds=seeds, steps=steps, batch_size=batch_size, batch_seed=batch_seed, dtype=dtype,
                  device=device, kernel=kernel, progress=bar)
    entries = []
    try:
        for task, top_name, top in pairs:
            bar.desc = f"{task.name}/{top_name}"
            genome_curves = {name: genome_curve(g, top, task, name=name, **common) for name, g in named.items()}
            baseline_curves = {key: train_autograd(top, task, optimizer=key, lrs=lrs, activation=activation, **common)
                               for key, lrs in baselines.items()}
            entries.append(Entry(task=task.name, topology=top_name, n_classes=task.n_classes, genomes=genome_curves,
                                 baselines=baseline_curves, topology_summary=repr(top)))
    finally:
        bar.close()
    config = {"steps": list(steps), "seeds": list(seeds), "batch_size": batch_size, "batch_seed": batch_seed,
              "sgd_lrs": list(sgd_lrs), "adam_lrs": list(adam_lrs), "activation": activation,
              "dtype": str(dtype).replace("torch.", ""), "device": str(device or "cpu"), "kernel": kernel,
              "lr_selection": "per step, max mean test accuracy over seeds (oracle, favours baselines)",
              "diverged": "NaN accuracy; counted at chance (1/n_classes) in means and lr selection",
              "tasks": {t.name: {"n_train": len(t.y_train), "n_test": len(t.y_test), "n_features": t.n_features,
                                 "n_classes": t.n_classes} for t in tasks},
              "genomes": {name: _describe_genome(g) for name, g in named.items()},
              "torch_version": torch.__version__, "python": platform.python_version()}
    return Comparison(entries=entries, steps=steps, seeds=seeds, config=config, version=graphnet.__version__,
                      created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      seconds=time.perf_counter() - start)


def _describe_genome(genome) -> dict:
    """Options and flat vector of a genome (per-group: one per key), enough to rebuild it."""
    if isinstance(genome, dict):
        return {"per_group": {str(k): _describe_genome(g) for k, g in genome.items()}}
    return {"k": genome.k, "options": genome.options.to_dict(),
            "vector": [float(v) for v in genome.to_vector().detach().double().cpu()]}
