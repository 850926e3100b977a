"""The inner loop both meta-trainers score: a population unrolled on an episode, then its query batches.

Axes: ``R`` replicas (episodes of one task), ``P`` genomes (CMA-ES candidates), ``T`` score points,
``M = Q·B`` query examples per replica, ``C`` classes. A population network holds ``P·R``
members; member ``p·R + r`` is genome ``p`` learning on replica ``r``.
"""
from __future__ import annotations

import dataclasses

import torch

from graphnet.engine import Network


def score_steps(unroll: int, score_points: int) -> list[int]:
    """The inner steps after which the query batches are scored: ``round(N·j/score_points)``, j = 1.."""
    return sorted({max(1, round(unroll * j / score_points)) for j in range(1, score_points + 1)})


def unroll_logits(net: Network, episode, points: list[int], repeat: int = 1) -> torch.Tensor:
    """Run ``net`` through the support batches of ``episode`` (``[R, S, B, D]``) and return the
    query logits after each inner step in ``points``: ``[T, repeat·R, M, C]``.

    ``net`` holds ``repeat·R`` members; member ``p·R + r`` learns on replica ``r`` (``repeat``
    genomes, each on every replica)."""
    unroll = episode.support_x.shape[1]
    x = episode.query_x.flatten(1, 2)  # [R, M, D]
    if repeat > 1:
        x = x.repeat(repeat, 1, 1)  # [P·R, M, D]
    scored = []
    for s in range(unroll):
        support_x, support_y = episode.support_x[:, s], episode.support_y[:, s]  # [R, B, D], [R, B]
        if repeat > 1:
            support_x, support_y = support_x.repeat(repeat, 1, 1), support_y.repeat(repeat, 1)
        net.step(support_x, support_y)
        if s + 1 in points:
            scored.append(net.predict(x))
    return torch.stack(scored)


@dataclasses.dataclass(frozen=True)
class Scores:
    """Query scores of ``P`` genomes, each averaged over its ``R`` replicas and the score points.

    ``loss [P]``: softmax cross-entropy; ``accuracy [P]``; both NaN where ``finite [P]`` is False
    (some replica's outputs or synapses were not finite)."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    finite: torch.Tensor


def population_scores(genomes: list, topology, episode, synapse_seed: int, dtype=torch.float32,
                      score_points: int = 1, device=None) -> Scores:
    """Unroll every genome on every replica of ``episode`` in one population network and score them.

    Every genome learns on the same batches from the same initial noise: replica ``r`` starts from
    the synapses seeded ``synapse_seed + r`` (scaled by each genome's ``init_scale``), as in
    gradient meta-training, so genomes are compared on common random numbers. No autograd.
    The network runs on ``device`` (a torch device or its name; None: the CPU), the episode is
    moved there; the scores come back on the CPU.
    """
    n, replicas, unroll = len(genomes), episode.support_x.shape[0], episode.support_x.shape[1]
    points = score_steps(unroll, score_points)
    with torch.no_grad():
        members = [g for g in genomes for _ in range(replicas)]
        seeds = [synapse_seed + r for _ in genomes for r in range(replicas)]
        net = Network(topology, members, seed=seeds, dtype=dtype, device=device)
        episode = episode.to(net.device)
        logits = unroll_logits(net, episode, points, repeat=n)  # [T, P·R, M, C]
        y = episode.query_y.flatten(1, 2).repeat(n, 1)  # [P·R, M]
        finite = torch.isfinite(logits).flatten(2).all(2).all(0) & net.finite()  # [P·R]
        target = y.unsqueeze(0).expand(len(points), -1, -1)  # [T, P·R, M]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none")
        loss = loss.view(target.shape).mean((0, 2)).double().view(n, replicas).mean(1).cpu()  # [P]
        accuracy = (logits.argmax(-1) == target).double().mean((0, 2)).view(n, replicas).mean(1).cpu()  # [P]
        finite = finite.view(n, replicas).all(1).cpu()
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        return Scores(torch.where(finite, loss, nan), torch.where(finite, accuracy, nan), finite)
