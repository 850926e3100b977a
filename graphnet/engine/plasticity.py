"""Synapse plasticity: the Hebbian update with its Oja-like term, and synapse normalization.

For every edge ``s -> t`` (sender ``s``, receiver ``t``) and channel ``c``:
``Δw[c] = mean_batch(pre_s[c] · post_t[c]) - oja · mean_batch(post_t[c]²) · w[c]`` with
``pre = Pᵀ a`` and ``post = Q a``, then ``w ← f̃ · w + η̃ · Δw``.
"""
from __future__ import annotations

import torch

from graphnet.engine.program import EdgeWeights, SweepProgram, sender_major
from graphnet.engine.rule import RuleTensors
from graphnet.engine.sweep import mix

SYNAPSE_NORM_EPS = 1e-12


def synapse_update(a: torch.Tensor, weights: EdgeWeights, program: SweepProgram, rule: RuleTensors) -> EdgeWeights:
    """New synapses of one edge set after a Hebbian step on states ``a [pop, k, N, B]``."""
    pop, k, n, batch = a.shape
    channels = weights.sparse.shape[1]
    pre = mix(rule.P.transpose(1, 2), a)[:, :channels]  # [pop, C, N, B]
    post = mix(rule.Q, a)[:, :channels]
    keep = rule.f_tilde.view(-1, 1, 1)
    rate = rule.eta_tilde.view(-1, 1, 1)
    oja = rule.oja.view(-1, 1, 1) if rule.options.oja else None
    post_power = post.pow(2).mean(-1) if oja is not None else None  # [pop, C, N]

    dense = []
    for group, w in zip(program.dense, weights.dense):
        w_sr = sender_major(group, w)  # [pop, C, senders, receivers]
        delta = torch.matmul(pre[:, :, group.senders], post[:, :, group.receivers].transpose(-1, -2)) / batch
        if oja is not None:
            delta = delta - oja.unsqueeze(-1) * post_power[:, :, None, group.receivers] * w_sr
        new = keep.unsqueeze(-1) * w_sr + rate.unsqueeze(-1) * delta
        dense.append(sender_major(group, new))  # back to [a, b]

    hebb = program.kernel.hebbian(post.reshape(pop * channels, n, batch), pre.reshape(pop * channels, n, batch))
    delta = hebb.reshape(pop, channels, -1) / batch
    if oja is not None:
        delta = delta - oja * post_power.index_select(2, program.sparse_receiver) * weights.sparse
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
