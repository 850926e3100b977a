"""Synapse plasticity: the Hebbian update with its Oja-like term, and synapse normalization.

For every edge ``s -> t`` (sender ``s``, receiver ``t``) and channel ``c``:
``Δw[c] = mean_batch(pre_s[c] · post_t[c]) - oja · mean_batch(post_t[c]²) · w[c]`` with
``pre = Pᵀ a`` and ``post = Q a``, then ``w ← f̃ · w + η̃ · Δw``.
"""
from __future__ import annotations

import torch

from graphnet.engine.program import EdgeWeights, SweepProgram, sender_major
from graphnet.engine.rule import RuleTensors, per_genome
from graphnet.engine.sweep import mix

SYNAPSE_NORM_EPS = 1e-12


def synapse_update(a: torch.Tensor, weights: EdgeWeights, program: SweepProgram, rule: RuleTensors) -> EdgeWeights:
    """New synapses of one edge set after a Hebbian step on states ``a [pop, k, N, B]``.

    Each synapse learns with the genome of its receiver: ``post`` uses the receiver's own ``Q``;
    ``pre`` is computed once per genome group ``g`` as ``P_gᵀ a`` for the synapses into group g.
    """
    pop, k, n, batch = a.shape
    channels = weights.sparse.shape[1]
    post = mix(rule.Q, a, program.neuron_genome)[:, :channels]  # [pop, C, N, B]
    pre_of_group = {}

    def pre(group: int) -> torch.Tensor:  # [pop, C, N, B]
        if group not in pre_of_group:
            pre_of_group[group] = mix(rule.P[:, group:group + 1].transpose(-1, -2), a)[:, :channels]
        return pre_of_group[group]

    oja = rule.options.oja
    post_power = post.pow(2).mean(-1) if oja else None  # [pop, C, N]
    dense = []
    for group, w, genome in zip(program.dense, weights.dense, program.dense_genome):
        w_sr = sender_major(group, w)  # [pop, C, senders, receivers]
        receivers = post[:, :, group.receivers]
        delta = torch.matmul(pre(genome)[:, :, group.senders], receivers.transpose(-1, -2)) / batch
        if oja:
            delta = delta - rule.oja[:, genome].view(-1, 1, 1, 1) * post_power[:, :, None, group.receivers] * w_sr
        new = rule.f_tilde[:, genome].view(-1, 1, 1, 1) * w_sr + rule.eta_tilde[:, genome].view(-1, 1, 1, 1) * delta
        dense.append(sender_major(group, new))  # back to [a, b]

    flat = lambda t: t.reshape(pop * channels, n, batch)  # noqa: E731
    hebb = None
    for genome, positions, kernel in program.hebbian_parts:
        part = kernel.hebbian(flat(post), flat(pre(genome))).reshape(pop, channels, -1)
        hebb = part if positions is None else (
            (hebb if hebb is not None else part.new_zeros(weights.sparse.shape)).index_copy(2, positions, part))
    delta = (hebb if hebb is not None else torch.zeros_like(weights.sparse)) / batch
    if oja:
        decay = per_genome(rule.oja, program.sparse_genome).view(pop, 1, -1)
        delta = delta - decay * post_power.index_select(2, program.sparse_receiver) * weights.sparse
    keep = per_genome(rule.f_tilde, program.sparse_genome).view(pop, 1, -1)
    rate = per_genome(rule.eta_tilde, program.sparse_genome).view(pop, 1, -1)
    return EdgeWeights(tuple(dense), keep * weights.sparse + rate * delta)


def normalize_synapses(weights: EdgeWeights, program: SweepProgram) -> EdgeWeights:
    """``w'_sr = w_sr / sqrt(Σ_{s'} w_s'r²)`` over every synapse into the same receiver and channel."""
    sparse = weights.sparse
    square = sparse.new_zeros(sparse.shape[0], sparse.shape[1], program.n_neurons)
    square = square.index_add(2, program.sparse_receiver, sparse.pow(2))
    for group, w in zip(program.dense, weights.dense):
        receivers = torch.arange(group.receivers.start, group.receivers.stop, device=sparse.device)
        square = square.index_add(2, receivers, sender_major(group, w).pow(2).sum(-2))
    norm = torch.sqrt(square + SYNAPSE_NORM_EPS)
    dense = tuple(sender_major(g, sender_major(g, w) / norm[:, :, None, g.receivers])
                  for g, w in zip(program.dense, weights.dense))
    return EdgeWeights(dense, sparse / norm.index_select(2, program.sparse_receiver))
