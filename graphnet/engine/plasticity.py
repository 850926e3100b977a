"""Synapse plasticity: the Hebbian update with its Oja-like term, and synapse normalization.

For every edge ``s -> t`` (sender ``s``, receiver ``t``) and channel ``c``, with the genome of ``t``:
``Δw[c] = mean_batch(pre_s[c] · post_t[c]) - oja · mean_batch(post_t[c]²) · w[c]`` with
``pre = Pᵀ a`` and ``post = Q a``, then ``w ← f̃ · w + η̃ · Δw`` (``η̃ / fan_in(t)`` with
``RuleOptions.fan_in_update``).
"""
from __future__ import annotations

import torch

from graphnet.engine.program import EdgeWeights, SweepProgram, sender_major
from graphnet.engine.rule import RuleTensors, per_genome
from graphnet.engine.sweep import mix

SYNAPSE_NORM_EPS = 1e-12


class HebbianTerms:
    """``post = Q a`` (each neuron with its own genome's ``Q``) and ``pre = P_gᵀ a`` per genome group
    ``g``, computed once per step and shared by the forward and backward edge sets.

    Both are ``[pop, C, N, B]`` (only the ``C`` synapse channels are kept).
    """

    def __init__(self, a: torch.Tensor, rule: RuleTensors, neuron_genome: torch.Tensor | None):
        self.a, self.rule, self.channels = a, rule, rule.channels
        channels = rule.channels
        self.post = mix(rule.Q[:, :, :channels], a, neuron_genome)
        self.post_power = self.post.pow(2).mean(-1) if rule.options.oja else None  # [pop, C, N]
        self._pre = {}

    def pre(self, group: int) -> torch.Tensor:
        if group not in self._pre:
            self._pre[group] = mix(self.rule.P[:, group:group + 1, :, :self.channels].transpose(-1, -2), self.a)
        return self._pre[group]


def synapse_update(terms: HebbianTerms, weights: EdgeWeights, program: SweepProgram) -> EdgeWeights:
    """New synapses of one edge set after a Hebbian step (each synapse with its receiver's genome)."""
    rule, post = terms.rule, terms.post
    pop, channels, n, batch = post.shape
    step_scale = (1 / program.fan_in.clamp(min=1)).to(post.dtype) if rule.options.fan_in_update else None  # [N]
    dense = []
    for group, w, genome in zip(program.dense, weights.dense, program.dense_genome):
        # ΔW in the stored [a, b] layout: rows a, columns b, whichever side sends
        a_side, b_side = slice(group.a_start, group.a_start + group.a_size), slice(group.b_start, group.b_start + group.b_size)
        rows = (post if group.reversed else terms.pre(genome))[:, :, a_side]
        cols = (terms.pre(genome) if group.reversed else post)[:, :, b_side]
        rate = rule.eta_tilde[:, genome].view(pop, 1, 1, 1)
        keep = rule.f_tilde[:, genome].view(pop, 1, 1, 1)
        # per-receiver factors along the receiving side: [1, 1, size, 1] (a side) or [1, 1, 1, size] (b side)
        receiving = None
        if step_scale is not None:
            receiving = step_scale[a_side].view(1, 1, -1, 1) if group.reversed else step_scale[b_side].view(1, 1, 1, -1)
            if group.reversed:
                rows = rows * receiving
            else:
                cols = cols * receiving.transpose(-1, -2)
        if terms.post_power is not None:  # Oja: -oja · mean(post_receiver²) · w folds into the keep gate
            power = terms.post_power[:, :, a_side, None] if group.reversed else terms.post_power[:, :, None, b_side]
            if receiving is not None:
                power = power * receiving
            keep = keep - rate * rule.oja[:, genome].view(pop, 1, 1, 1) * power
        kept = (keep * w).reshape(pop * channels, group.a_size, group.b_size)
        scaled_rows = (rows * (rate / batch)).reshape(pop * channels, group.a_size, batch)
        new = torch.baddbmm(kept, scaled_rows, cols.reshape(pop * channels, group.b_size, batch).transpose(1, 2))
        dense.append(new.reshape(pop, channels, group.a_size, group.b_size))

    flat = lambda t: t.reshape(pop * channels, n, batch)  # noqa: E731
    hebb = None
    for genome, positions, kernel in program.hebbian_parts:
        part = kernel.hebbian(flat(post), flat(terms.pre(genome))).reshape(pop, channels, -1)
        hebb = part if positions is None else (
            (hebb if hebb is not None else part.new_zeros(weights.sparse.shape)).index_copy(2, positions, part))
    if hebb is None:
        hebb = torch.zeros_like(weights.sparse)
    rate = per_genome(rule.eta_tilde, program.sparse_genome).view(pop, 1, -1)
    keep = per_genome(rule.f_tilde, program.sparse_genome).view(pop, 1, -1)
    if step_scale is not None:
        rate = rate * step_scale.index_select(0, program.sparse_receiver).view(1, 1, -1)
    if terms.post_power is not None:
        oja = per_genome(rule.oja, program.sparse_genome).view(pop, 1, -1)
        keep = keep - rate * oja * terms.post_power.index_select(2, program.sparse_receiver)
    return EdgeWeights(tuple(dense), torch.addcmul(keep * weights.sparse, rate / batch, hebb))


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
