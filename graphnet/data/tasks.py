"""`TaskSpec`: a data set plus its preprocessing, written as one compact string.

Grammar (used in config files and CLI flags)::

    spec    := dataset [":" size] [":" classes] [":" ways]  |  toy-task
    size    := N "x" N        square images; 10x10 on a 28x28 source is the paper's protocol
                              (center crop 20, area-resize to 10), the native size keeps the
                              images, any other size is a plain `resize`
    classes := A "-" B        labels A..B inclusive  |  A "," B ["," C ...]  a list
                              (kept and relabeled 0..k-1 in the order given)
    ways    := N "way"        N-way episodes: `EpisodeSampler(..., ways=N)` draws N classes each
                              episode; `build` returns all examples (of `classes`, if given)

Examples: ``mnist``, ``mnist:10x10``, ``mnist:10x10:5-9``, ``fashion-mnist:28x28``,
``omniglot:28x28:5way``, ``xor``. ``str(spec)`` gives the canonical string, and
``TaskSpec.parse(str(spec)) == spec``.
"""
from __future__ import annotations

import re

import torch
from dataclasses import dataclass, replace

from graphnet.data.dataset import Dataset
from graphnet.data.sources import DATASETS, DataUnavailableError, load
from graphnet.data.toy import TOY_TASKS, toy
from graphnet.data.transforms import PAPER_SIZE, paper_10x10, resize, select_classes

TOY_SIZE = 2000  # points per split of a toy task
TOY_SEEDS = {"train": 0, "test": 1}  # a toy task's splits are different seeds of its generator
PAPER_SOURCE = (28, 28)  # `paper_10x10` applies to 28x28 sources

FORMS = ("<dataset>[:<N>x<N>][:<A>-<B> | :<A>,<B>,...][:<N>way] with dataset in "
         f"{', '.join(DATASETS)}; or a toy task: {', '.join(TOY_TASKS)}")
_SIZE = re.compile(r"(\d+)x(\d+)")
_RANGE = re.compile(r"(\d+)-(\d+)")
_LIST = re.compile(r"\d+(,\d+)*")
_WAYS = re.compile(r"(\d+)way")


@dataclass(frozen=True)
class TaskSpec:
    """Data set name, image side (None = native), classes to keep (None = all), N-way episodes."""

    dataset: str
    size: int | None = None
    classes: tuple[int, ...] | None = None
    ways: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS and self.dataset not in TOY_TASKS:
            raise ValueError(f"unknown data set {self.dataset!r}; forms: {FORMS}")
        if self.dataset in TOY_TASKS and (self.size, self.classes, self.ways) != (None, None, None):
            raise ValueError(f"toy task {self.dataset!r} takes no size, classes or ways")
        if self.size is not None and not _int_at_least(self.size, 1):
            raise ValueError(f"size must be a positive int, got {self.size!r}")
        if self.ways is not None and not _int_at_least(self.ways, 2):
            raise ValueError(f"ways must be an int >= 2, got {self.ways!r}")
        if self.classes is not None:
            classes = tuple(self.classes)
            if not classes or not all(_int_at_least(c, 0) for c in classes):
                raise ValueError(f"classes must be a non-empty list of non-negative ints, got {self.classes!r}")
            if len(set(classes)) != len(classes):
                raise ValueError(f"classes must be distinct, got {classes}")
            if self.ways is not None and self.ways > len(classes):
                raise ValueError(f"{self.ways}way needs at least {self.ways} classes, got {len(classes)}")
            object.__setattr__(self, "classes", classes)

    @classmethod
    def parse(cls, text: str) -> TaskSpec:
        """Parse the compact form (see the module docstring), e.g. ``"mnist:10x10:0-4"``."""
        name, *parts = text.strip().split(":")
        fields: dict[str, object] = {}
        for part in parts:
            field, value = _parse_part(part, text)
            if field in fields:
                raise ValueError(f"bad task spec {text!r}: {field} given twice; forms: {FORMS}")
            fields[field] = value
        try:
            return cls(name, **fields)
        except ValueError as error:
            raise ValueError(f"bad task spec {text!r}: {error}") from None

    def __str__(self) -> str:
        parts = [self.dataset]
        if self.size is not None:
            parts.append(f"{self.size}x{self.size}")
        if self.classes is not None:
            first, last = self.classes[0], self.classes[-1]
            contiguous = len(self.classes) > 1 and self.classes == tuple(range(first, last + 1))
            parts.append(f"{first}-{last}" if contiguous else ",".join(map(str, self.classes)))
        if self.ways is not None:
            parts.append(f"{self.ways}way")
        return ":".join(parts)

    def build(self, split: str = "train") -> Dataset:
        """Load ``split`` and apply classes and size; the result is named ``str(self)``.

        A toy task's ``train`` and ``test`` are `TOY_SIZE` points from seeds 0 and 1.
        """
        if self.dataset in TOY_TASKS:
            if split not in TOY_SEEDS:
                raise ValueError(f"unknown split {split!r} for toy task {self.dataset!r}; valid: "
                                 f"{', '.join(TOY_SEEDS)}")
            ds = toy(self.dataset, n=TOY_SIZE, seed=TOY_SEEDS[split])
        else:
            ds = load(self.dataset, split)
            if self.classes is not None:
                ds = select_classes(ds, self.classes)
            if self.size is not None:
                ds = _sized(ds, self.size)
        return replace(ds, name=str(self))


    def splits(self) -> tuple[Dataset, Dataset]:
        """``(train, test)`` for evaluation. A source whose train split is not available offline
        (KMNIST) is split instead: within each class, every fifth test example (in file order) stays
        test and the rest becomes train (8000 / 2000 for KMNIST); both are named ``str(self)``."""
        if self.dataset == "omniglot":
            raise ValueError("omniglot's background and evaluation splits hold different characters under the "
                             "same label numbers, so they are not a train/test pair: use Omniglot for N-way "
                             "episodes (EpisodeSampler(..., ways=N)), e.g. 'omniglot:28x28:5way' in meta-training")
        test = self.build("test")
        try:
            return self.build("train"), test
        except DataUnavailableError:
            if self.dataset in TOY_TASKS:
                raise
        rank = torch.zeros(len(test), dtype=torch.long)
        for label in test.y.unique():
            members = (test.y == label).nonzero().flatten()
            rank[members] = torch.arange(len(members))
        held_out = rank % 5 == 4
        return test.take(torch.nonzero(~held_out).flatten()), test.take(torch.nonzero(held_out).flatten())


def task(spec: str | TaskSpec, split: str = "train") -> Dataset:
    """Build a task from its compact string or a `TaskSpec`: ``task("mnist:10x10", "test")``."""
    return (TaskSpec.parse(spec) if isinstance(spec, str) else spec).build(split)


def _parse_part(part: str, text: str) -> tuple[str, object]:
    """One ``:``-separated part of a spec -> (field name, value)."""
    if match := _SIZE.fullmatch(part):
        if match[1] != match[2]:
            raise ValueError(f"bad task spec {text!r}: size {part!r} must be square")
        return "size", int(match[1])
    if match := _RANGE.fullmatch(part):
        first, last = int(match[1]), int(match[2])
        if first >= last:
            raise ValueError(f"bad task spec {text!r}: class range {part!r} must go up (e.g. 0-4)")
        return "classes", tuple(range(first, last + 1))
    if _LIST.fullmatch(part):
        if "," not in part:  # one class is no classification task; most likely a size without "x"
            raise ValueError(f"bad task spec {text!r}: {part!r} would keep the single class {part}; "
                             f"a size is written {part}x{part}, classes as 0-4 or 1,3,7")
        return "classes", tuple(int(c) for c in part.split(","))
    if match := _WAYS.fullmatch(part):
        return "ways", int(match[1])
    raise ValueError(f"bad task spec {text!r}: {part!r} is not a size (10x10), classes (0-4 or 1,3,7) "
                     f"or ways (5way); forms: {FORMS}")


def _sized(ds: Dataset, size: int) -> Dataset:
    if ds.shape == PAPER_SOURCE and size == PAPER_SIZE:
        return paper_10x10(ds)
    return ds if ds.shape == (size, size) else resize(ds, size)


def _int_at_least(value, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
