"""Episodes for meta-training: support batches to learn from, query batches to score on.

``EpisodeSampler(dataset, ...).episode(index)`` is a pure function of ``(seed, index)`` (and of
the ``support_batches`` and ``replicas`` asked for): a resumed run redraws the same episodes
without saving any random state. Axes: ``R`` replicas (only with ``replicas=R``), ``S`` support
batches, ``Q`` query batches, ``B`` batch size, ``D`` features per example (flattened).

Drawing one replica from a pool of ``M`` candidate examples (the whole data set, or the examples
of the episode's ``ways`` classes):

- ``M >= (S + Q) * B``: ``(S + Q) * B`` distinct examples, so no example repeats and support and
  query are disjoint.
- otherwise: the pool is split per class in the ratio ``S : Q`` (at least one query example per
  class that has two or more; a class with a single example stays in support), and support and
  query are drawn with replacement from their own part. They stay disjoint; batches may repeat
  examples (e.g. 5-way Omniglot: 100 examples for a support of 10 batches of 128).

With ``ways=W`` each replica draws W distinct classes and relabels them ``0..W-1`` in the drawn
order. Replica 0 of ``episode(i, replicas=R)`` equals ``episode(i)``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from graphnet.data.dataset import Dataset


@dataclass(frozen=True)
class Episode:
    """Support and query batches of one episode (``[R]`` only when replicas were asked for).

    ``support_x`` float32 ``[R, S, B, D]``, ``support_y`` int64 ``[R, S, B]``, ``query_x``
    float32 ``[R, Q, B, D]``, ``query_y`` int64 ``[R, Q, B]``; labels lie in ``0..n_classes-1``.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    n_classes: int

    def to(self, device: torch.device | str) -> "Episode":
        """The episode with its tensors on ``device`` (the same tensors where they are there already)."""
        return replace(self, support_x=self.support_x.to(device), support_y=self.support_y.to(device),
                       query_x=self.query_x.to(device), query_y=self.query_y.to(device))


class EpisodeSampler:
    """Draws index-addressable episodes of ``support_batches + query_batches`` batches from ``dataset``."""

    def __init__(self, dataset: Dataset, *, batch_size: int = 128, support_batches: int = 10,
                 query_batches: int = 2, ways: int | None = None, seed: int = 0):
        if not isinstance(dataset, Dataset):
            raise TypeError(f"EpisodeSampler needs a graphnet.data.Dataset, got {type(dataset).__name__}")
        for label, value, minimum in (("batch_size", batch_size, 1), ("support_batches", support_batches, 1),
                                      ("query_batches", query_batches, 1), ("seed", seed, 0)):
            _check_int(label, value, minimum)
        counts = torch.bincount(dataset.y, minlength=dataset.n_classes)  # [n_classes]
        present = torch.nonzero(counts).flatten()  # classes that have examples
        if ways is not None:
            _check_int("ways", ways, 2)
            if ways > len(present):
                raise ValueError(f"ways={ways} exceeds the {len(present)} classes with examples in {dataset.name!r}")
        if len(dataset) < 2:
            raise ValueError(f"dataset {dataset.name!r} has {len(dataset)} examples; episodes need at least 2")
        self.dataset, self.batch_size, self.ways, self.seed = dataset, batch_size, ways, seed
        self.support_batches, self.query_batches = support_batches, query_batches
        self._x = dataset.flat()  # [N, D]
        self._counts, self._present = counts, present
        self._by_class = torch.argsort(dataset.y, stable=True)  # [N]: example ids grouped by class
        self._starts = torch.cumsum(counts, 0) - counts  # [n_classes]: where each class begins there

    @property
    def n_classes(self) -> int:
        """Classes of an episode's labels: ``ways`` if given, else the data set's."""
        return self.ways or self.dataset.n_classes

    def episode(self, index: int, *, support_batches: int | None = None, replicas: int | None = None) -> Episode:
        """Episode ``index``: ``[S, B, ...]`` tensors, or ``[R, S, B, ...]`` with ``replicas=R``.

        ``support_batches`` overrides the sampler's S (e.g. for a curriculum).
        """
        _check_int("index", index, 0)
        steps = self.support_batches if support_batches is None else support_batches
        _check_int("support_batches", steps, 1)
        if replicas is not None:
            _check_int("replicas", replicas, 1)
        gen = torch.Generator().manual_seed(_seed(self.seed, index))
        draws = [self._draw(steps, gen) for _ in range(replicas or 1)]
        support, support_y, query, query_y = (torch.stack(parts) if replicas else parts[0] for parts in zip(*draws))
        b, d = self.batch_size, self._x.shape[1]
        lead = support.shape[:-1]  # [R] or []
        return Episode(self._x[support].reshape(*lead, steps, b, d), support_y.reshape(*lead, steps, b),
                       self._x[query].reshape(*lead, self.query_batches, b, d),
                       query_y.reshape(*lead, self.query_batches, b), self.n_classes)

    def _draw(self, steps: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """One replica: support ids [S*B], support labels, query ids [Q*B], query labels."""
        if self.ways is None:
            pool, labels = torch.arange(len(self.dataset)), self.dataset.y
        else:
            classes = self._present[torch.randperm(len(self._present), generator=gen)[:self.ways]]  # [W]
            pool = torch.cat([self._by_class[s:s + n] for s, n in
                              zip(self._starts[classes].tolist(), self._counts[classes].tolist())])
            labels = torch.repeat_interleave(torch.arange(self.ways), self._counts[classes])  # [M]: 0..W-1
        support, query = self._split(labels, steps * self.batch_size, self.query_batches * self.batch_size, gen)
        return pool[support], labels[support], pool[query], labels[query]

    def _split(self, labels: torch.Tensor, n_support: int, n_query: int,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Disjoint support [n_support] and query [n_query] positions into a pool with ``labels`` [M]."""
        order = torch.randperm(len(labels), generator=gen)
        if len(labels) >= n_support + n_query:
            return order[:n_support], order[n_support:n_support + n_query]
        grouped = order[torch.argsort(labels[order], stable=True)]  # by class, random within each
        counts = torch.bincount(labels)
        rank = torch.arange(len(labels)) - (torch.cumsum(counts, 0) - counts)[labels[grouped]]
        held = (counts * n_query / (n_support + n_query)).round().long().clamp(min=1)
        held = torch.minimum(held, counts - 1)  # per class: how many go to the query part
        in_query = rank < held[labels[grouped]]
        support_pool, query_pool = grouped[~in_query], grouped[in_query]
        if len(query_pool) == 0:
            raise ValueError(f"cannot hold out query examples from {self.dataset.name!r}: every class drawn "
                             "has a single example")
        return (support_pool[torch.randint(len(support_pool), (n_support,), generator=gen)],
                query_pool[torch.randint(len(query_pool), (n_query,), generator=gen)])


def _seed(seed: int, index: int) -> int:
    """A 63-bit torch seed from (seed, index), by numpy's SeedSequence hash (no collisions by design)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _check_int(label: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{label} must be an int >= {minimum}, got {value!r}")
