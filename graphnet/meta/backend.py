"""Where a CMA-ES generation is scored: the seam between the trainer and the machines that run it.

A backend has ``score(vectors, like, draws, dtype, score_points) -> list[Scores]`` (one
:class:`~graphnet.meta.unroll.Scores` of all ``P`` candidates per draw, in candidate order) and
``close()``. :class:`LocalBackend` (the default) scores every candidate in this process;
:class:`graphnet.meta.ray_backend.RayBackend` splits them into contiguous shares that Ray workers
score. Both run :func:`score_share` on their share, so a candidate is scored by the same code on
the same inputs wherever it runs. The choice is a runtime option of the trainer, not part of
its config: results do not depend on it. A backend's ``device`` (``"cpu"``, ``"cuda"``) is where
its population networks run; a float32 run scored on a GPU matches the CPU to rounding, not bit
for bit. Scores come back on the CPU.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from graphnet.engine import resolve_device
from graphnet.meta.unroll import Scores, population_scores
from graphnet.rules import Genome


class Draw(NamedTuple):
    """One (task, topology) draw of a generation: every candidate is scored on it."""

    topology: object  # graphnet.topology.Topology
    episode: object  # graphnet.data.Episode, [R, ...] replicas
    synapse_seed: int


def score_share(vectors: torch.Tensor, like: Genome, draws, dtype, score_points: int,
                device=None) -> list[Scores]:
    """Score the genomes ``vectors [P, n_total]`` (``Genome.to_vector`` layout of ``like``, in the
    run's dtype) on each draw: one population pass per draw (all ``P × R`` members in one network),
    on ``device`` (None: the CPU); the scores come back on the CPU.

    A candidate's scores depend only on its own vector, the draw's episode and the replica seeds
    ``synapse_seed + r`` (the same for every candidate): the population axis is a batch axis
    of the engine, so scoring a candidate in any share of a generation gives the same bits.
    """
    genomes = [Genome.from_vector(v, like=like) for v in vectors]
    return [population_scores(genomes, d.topology, d.episode, d.synapse_seed, dtype, score_points, device)
            for d in draws]


def shares(n: int, parts: int) -> list[slice]:
    """``min(n, parts)`` contiguous slices covering ``range(n)``, sizes differing by at most one
    (the larger first)."""
    parts = max(1, min(n, parts))
    size, extra = divmod(n, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + size + (i < extra))
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def concat_scores(parts: list[Scores]) -> Scores:
    """The scores of consecutive shares, joined in order."""
    return Scores(torch.cat([s.loss for s in parts]), torch.cat([s.accuracy for s in parts]),
                  torch.cat([s.finite for s in parts]))


class LocalBackend:
    """Scores every candidate of a generation in this process: one population pass per draw.

    ``max_candidates``: at most this many candidates per pass (None: all of them). Large
    populations of large networks are memory-bound on a CPU (one pass of 80 candidates at
    196-512-10 with 20 query batches holds ~1 GB per intermediate); passes of a few candidates
    each give the same bits, since a candidate's scores do not depend on its share.

    ``device``: where the passes run, a torch device or its name (``"cuda"``, ``"cuda:1"``; None:
    the CPU). One this machine lacks raises ``ValueError`` here (``graphnet.engine.resolve_device``).
    """

    def __init__(self, max_candidates: int | None = None, device: str | torch.device | None = None):
        if max_candidates is not None and (isinstance(max_candidates, bool) or not isinstance(max_candidates, int)
                                           or max_candidates < 1):
            raise ValueError(f"max_candidates must be a positive int or None, got {max_candidates!r}")
        self.max_candidates = max_candidates
        self.device = resolve_device(device)

    def score(self, vectors: torch.Tensor, like: Genome, draws, dtype, score_points: int) -> list[Scores]:
        if self.max_candidates is None or len(vectors) <= self.max_candidates:
            return score_share(vectors, like, draws, dtype, score_points, self.device)
        parts = [score_share(vectors[part], like, draws, dtype, score_points, self.device)
                 for part in shares(len(vectors), -(-len(vectors) // self.max_candidates))]
        return [concat_scores([part[d] for part in parts]) for d in range(len(draws))]

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"LocalBackend(max_candidates={self.max_candidates}, device={str(self.device)!r})"
