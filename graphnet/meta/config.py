"""``MetaConfig``: every setting of a meta-training run (gradient or CMA-ES), readable from TOML or JSON.

Defaults follow the paper's protocol (docs/MODEL.md section 5): 10x10 MNIST (all digits, 0-4 and
5-9), Adam with learning rate 5e-4 and gradient clip 10, a curriculum on the unroll length that
starts at 10 inner steps and adds 5 at fixed intervals. ``method = "cma"`` meta-trains by CMA-ES
instead, with the same tasks, topologies, episodes and curriculum.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib

from graphnet.data.tasks import TaskSpec
from graphnet.rules.options import RuleOptions


METHOD_FIELDS = {"gradient": ("lr", "clip"),  # settings that only one method reads
                 "cma": ("population", "sigma0", "fitness", "search", "draws")}


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Settings of a meta-training run.

    Attributes:
        tasks: task strings (:class:`graphnet.data.TaskSpec` grammar, e.g. ``"mnist:10x10:0-4"``);
            each meta-step draws one.
        topologies: topology specs (:func:`graphnet.topologies.build`: ``"mlp:256"``,
            ``"skip:64,32"``, or a GraphML path); each meta-step draws one. One genome is shared.
        k: states per neuron. options: :class:`RuleOptions` fields as a dict.
        init_genome: start from this genome file (or shipped name) instead of a random one.
        genome_seed: seed of the random starting genome.
        meta_steps: number of genome updates.
        lr, clip: Adam learning rate and gradient-norm clip (paper: 5e-4, 10).
        replicas: episodes per meta-step, run as one population of copies of the genome.
        batch_size, query_batches: inner batch size; query batches scored after the last step.
        score_points: the query loss is the mean over this many evenly spaced points of the unroll
            (after steps ``round(N·j/score_points)``, j = 1..score_points). 1 (the paper) scores
            only after step N; more points reward rules that improve at every step, not just at N.
        unroll_start, unroll_step, unroll_every, unroll_max: the curriculum
            ``N = min(unroll_max, unroll_start + unroll_step * (step // unroll_every))``.
        seed: seed of the episode stream (tasks, topologies, batches, synapses).
        checkpoint_every: meta-steps between checkpoints (one is also written at the end).
        dtype: ``"float32"`` or ``"float64"``.
        method: ``"gradient"`` (Adam through the unroll: ``lr``, ``clip``) or ``"cma"`` (CMA-ES, a
            generation per meta-step: the fields below). A field of the other method left at a
            value other than its default is rejected by name.
        population: CMA-ES candidates per generation (None: pycma's ``4 + floor(3 ln n)`` for n
            searched entries; the paper uses 80).
        sigma0: CMA-ES initial step size, in genome-vector units.
        fitness: ``"accuracy"`` (CMA-ES minimizes minus the query accuracy) or ``"loss"`` (the
            query cross-entropy), averaged over draws, replicas and ``score_points``.
        search: which :meth:`Genome.to_vector` entries CMA-ES searches; the others stay at their
            starting values. Each pattern matches entry names (``Genome.vector_names``: ``"nu[0,1]"``,
            ``"f"``) or field names (``"nu"``), with ``*`` and ``?`` wildcards (``"norm_*"``).
        draws: (task, topology) pairs a CMA-ES generation draws; every candidate is scored on all
            of them (each with ``replicas`` episodes and synapse draws) and on the same ones.
    """

    tasks: tuple[str, ...] = ("mnist:10x10", "mnist:10x10:0-4", "mnist:10x10:5-9")
    topologies: tuple[str, ...] = ("mlp:256",)
    k: int = 4
    options: dict = dataclasses.field(default_factory=dict)
    init_genome: str | None = None
    genome_seed: int = 0
    meta_steps: int = 1000
    lr: float = 5e-4
    clip: float = 10.0
    replicas: int = 2
    batch_size: int = 128
    query_batches: int = 2
    score_points: int = 1
    unroll_start: int = 10
    unroll_step: int = 5
    unroll_every: int = 10_000
    unroll_max: int = 30
    seed: int = 0
    checkpoint_every: int = 50
    dtype: str = "float32"
    method: str = "gradient"
    population: int | None = None
    sigma0: float = 0.1
    fitness: str = "accuracy"
    search: tuple[str, ...] = ("*",)
    draws: int = 1

    def __post_init__(self) -> None:
        for name in ("tasks", "topologies", "search"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            if not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"MetaConfig.{name} must be a non-empty list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        positive = ("k", "meta_steps", "replicas", "batch_size", "query_batches", "score_points", "unroll_start",
                    "unroll_every", "unroll_max", "checkpoint_every", "draws")
        for name in positive:
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"MetaConfig.{name} must be a positive integer, got {value!r}")
        for name in ("unroll_step", "genome_seed", "seed"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"MetaConfig.{name} must be an integer >= 0, got {value!r}")
        for name in ("lr", "clip", "sigma0"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise ValueError(f"MetaConfig.{name} must be a positive number, got {value!r}")
        if self.unroll_max < self.unroll_start:
            raise ValueError(f"MetaConfig.unroll_max={self.unroll_max} is below unroll_start={self.unroll_start}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"MetaConfig.dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.population is not None and (type(self.population) is not int or self.population < 2):
            raise ValueError(f"MetaConfig.population must be an integer >= 2 (or None), got {self.population!r}")
        for name, choices in (("method", METHOD_FIELDS), ("fitness", ("accuracy", "loss"))):
            if getattr(self, name) not in choices:
                raise ValueError(f"MetaConfig.{name} must be one of {list(choices)}, got {getattr(self, name)!r}")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for method, names in METHOD_FIELDS.items():
            changed = [name for name in names if method != self.method and getattr(self, name) != defaults[name]]
            if changed:
                raise ValueError(f"MetaConfig: {changed} apply only to method={method!r}, this config has "
                                 f"method={self.method!r}")
        if isinstance(self.init_genome, os.PathLike):  # stored as a string: checkpoints hold plain types
            object.__setattr__(self, "init_genome", os.fspath(self.init_genome))
        if self.init_genome is not None and not (isinstance(self.init_genome, str) and self.init_genome):
            raise ValueError(f"MetaConfig.init_genome must be a genome file or shipped genome name, "
                             f"got {self.init_genome!r}")
        for task in self.tasks:  # a typo fails here, not after the first data set has loaded
            TaskSpec.parse(task)
        RuleOptions.from_dict(self.options).check_states(self.k)

    def unroll(self, step: int) -> int:
        """Inner steps ``N`` of meta-step ``step`` (0-based) under the curriculum."""
        return min(self.unroll_max, self.unroll_start + self.unroll_step * (step // self.unroll_every))

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "MetaConfig":
        """Build from a plain dict; unknown keys are rejected by name."""
        if not isinstance(data, dict):
            raise ValueError(f"a meta-training config must be a table/object, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown meta-training setting(s) {unknown}; valid settings: {sorted(fields)}")
        return cls(**data)

    @classmethod
    def load(cls, path) -> "MetaConfig":
        """Read a ``.toml`` or ``.json`` config file (settings at the top level or under ``[meta]``)."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        if path.suffix not in (".toml", ".json"):
            raise ValueError(f"config file {path}: expected a .toml or .json file")
        parse = _toml(path).loads if path.suffix == ".toml" else json.loads
        try:
            data = parse(path.read_text(encoding="utf-8"))
        except ValueError as e:  # JSONDecodeError, TOMLDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"config file {path} is not valid {path.suffix[1:].upper()}: {e}") from None
        data = data.get("meta", data) if isinstance(data, dict) else data
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"config file {path}: {e}") from None

    def replace(self, **changes) -> "MetaConfig":
        return dataclasses.replace(self, **changes)


def _toml(path):
    """The TOML reader: ``tomllib`` (Python >= 3.11) or the ``tomli`` package it came from."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise ValueError(f"config file {path}: reading TOML needs Python >= 3.11 or `pip install tomli`; "
                             "or write the config as .json") from None
    return tomllib
