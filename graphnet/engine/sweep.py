"""One sweep: gather each edge's presynaptic state, form the message, reduce into the receivers,
update the receivers. Forward and backward sweeps are the same code with different edges, mixing
matrix (``nu`` / ``mu``) and update mode.

Neuron states are laid out channel-major, ``a: [pop, k, n_neurons, batch]``: every per-channel
product is contiguous, the ``k × k`` mixing is one matrix product over ``n_neurons · batch``, and a
neuron range is a contiguous row block (a bmm on a strided operand ran 10x slower). With autograd on, states are updated out
of place (so a meta-gradient can flow through every step); with it off, in place.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from graphnet.engine.activations import activate
from graphnet.engine.program import EdgeWeights, StageProgram, SweepProgram, sender_major
from graphnet.engine.rule import RuleTensors, per_genome
from graphnet.rules.options import BackwardUpdate

NORM_EPS = 1e-5


class Written(NamedTuple):
    """The states a sweep writes (the backward sweep's ``backward_states``), in three forms."""

    states: list[int]
    index: slice | list[int]  # for indexing the state axis (a view when consecutive)
    tensor: torch.Tensor


def mix(matrix: torch.Tensor, a: torch.Tensor, neuron_genome: torch.Tensor | None = None) -> torch.Tensor:
    """``out[p, c, n] = Σ_d matrix[p, g(n), c, d] · a[p, d, n]``: ``[pop, G, k, k] × [pop, k, N, B]``.

    ``neuron_genome [N]`` gives ``g(n)``; None means one genome group (a single matrix product).
    """
    pop, k, n, batch = a.shape
    if neuron_genome is None:
        return torch.matmul(matrix[:, 0], a.reshape(pop, k, n * batch)).reshape(pop, -1, n, batch)
    return torch.einsum("pncd,pdnb->pcnb", per_genome(matrix, neuron_genome), a)


def stage_values(stage: StageProgram, sparse: torch.Tensor) -> torch.Tensor | None:
    """The sparse synapses into a stage, ``[pop, C, E_stage]`` (None if it has none)."""
    if not stage.kernel.row.numel():
        return None
    if stage.sparse_positions is None:
        return sparse
    pop, channels, n_edges = sparse.shape
    selected = sparse.reshape(pop * channels, n_edges).index_select(1, stage.sparse_positions)
    return selected.reshape(pop, channels, -1)


def as_index(indices: list[int]) -> slice | list[int]:
    """A slice when ``indices`` are consecutive (indexing with it is a view, not a copy)."""
    if indices and indices[-1] - indices[0] + 1 == len(indices) and indices == sorted(indices):
        return slice(indices[0], indices[-1] + 1)
    return indices


def _channels(w: torch.Tensor, index: slice | list[int] | None, count: int) -> torch.Tensor:
    """Synapse channels serving ``count`` aggregated states: single-channel synapses broadcast,
    multi-channel ones are the channels at ``index`` (all when None)."""
    if w.shape[1] == 1:
        return w.expand(w.shape[0], count, *w.shape[2:])
    return w if index is None else w[:, index]


def aggregate(stage: StageProgram, program: SweepProgram, weights: EdgeWeights, values: torch.Tensor | None,
              a: torch.Tensor, mixing: torch.Tensor, written: Written | None,
              raw_states: list[int] | None) -> torch.Tensor:
    """Messages into a stage: ``m[p, c, r] = Σ_{s -> r} w_sr[p, c] · (mixing a_s)[p, c]`` -> ``[pop, W, R, B]``.

    ``mixing [pop, G, W, k]`` has the rows of the ``W`` written states (``written`` None: all). With
    ``raw_states`` (single-channel synapses, one genome group) the raw states that ``mixing``
    reads are aggregated first and mixed after, ``m = mixing · Σ w a``, which skips states the
    mixing ignores; otherwise senders are mixed first. Only the senders a stage reads are mixed
    unless it has sparse edges.
    """
    pop, k, n, batch = a.shape
    rows = len(stage.receivers)
    genome = program.neuron_genome
    mix_after = raw_states is not None
    width = len(raw_states) if mix_after else mixing.shape[2]
    channel_index = None if mix_after or written is None else written.index
    if mix_after:
        full = a[:, as_index(raw_states)]
        sender_states = lambda group: full[:, :, group.senders]  # noqa: E731
    else:
        full = mix(mixing, a, genome) if values is not None else None
        sender_states = lambda group: (full[:, :, group.senders] if full is not None else  # noqa: E731
                                       mix(mixing, a[:, :, group.senders], None if genome is None else genome[group.senders]))
    total = None
    if values is not None and width:
        sparse = _channels(values, channel_index, width).reshape(pop * width, -1)
        total = stage.kernel.aggregate(sparse, full.reshape(pop * width, n, batch)).reshape(pop, width, rows, batch)
    for index, rows_of_group in zip(stage.dense, stage.dense_rows):
        if not width:
            break
        group = program.dense[index]
        w = sender_major(group, weights.dense[index])  # [pop, C, senders, receivers]
        if w.shape[1] > 1:  # single-channel synapses broadcast in the product
            w = _channels(w, channel_index, width)
        part = torch.matmul(w.transpose(-1, -2), sender_states(group))  # [pop, W, receivers, B]
        if rows_of_group is None:  # the block feeds every receiver of the stage
            total = part if total is None else total + part
        else:
            total = (a.new_zeros(pop, width, rows, batch) if total is None else total).index_add(2, rows_of_group, part)
    if total is None:
        return a.new_zeros(pop, mixing.shape[2], rows, batch)
    if mix_after:
        return torch.matmul(mixing[:, 0][:, :, as_index(raw_states)], total.reshape(pop, width, rows * batch)).reshape(
            pop, -1, rows, batch)
    return total


def update(a_r: torch.Tensor, message: torch.Tensor, stage: StageProgram, rule: RuleTensors,
           backward: bool, written: Written | None) -> torch.Tensor:
    """New states of a stage's receivers ``[pop, k, R, B]``; only the ``written`` states (None: all)
    change, ``message [pop, W, R, B]`` holds their messages."""
    options = rule.options
    old = a_r if written is None else a_r[:, written.index]
    if backward and options.backward_update is BackwardUpdate.MULTIPLICATIVE:
        new = old * message
    else:
        genome = stage.receiver_genome
        pop = a_r.shape[0]
        pre = torch.addcmul(per_genome(rule.f, genome).view(pop, 1, -1, 1) * old,
                            per_genome(rule.eta, genome).view(pop, 1, -1, 1), message)
        if options.normalize:
            mean = pre.mean(dim=(2, 3), keepdim=True)
            var = pre.var(dim=(2, 3), keepdim=True, unbiased=False)
            pre = (pre - mean) / torch.sqrt(var + NORM_EPS)
            scale, shift = (per_genome(t, genome).transpose(1, 2).unsqueeze(-1)  # [pop, k, R or 1, 1]
                            for t in (rule.norm_scale, rule.norm_shift))
            if written is not None:
                scale, shift = scale[:, written.index], shift[:, written.index]
            pre = pre * scale + shift
        output_activation = options.output_activation or options.activation
        computed = range(rule.k) if written is None else written.states
        derivative = tuple(i for i, s in enumerate(computed) if s in options.derivative_states)
        if stage.all_outputs:
            new = activate(pre, output_activation, derivative)
        elif stage.output_mask is None:
            new = activate(pre, options.activation, derivative)
        else:
            new = torch.where(stage.output_mask.view(1, 1, -1, 1), activate(pre, output_activation, derivative),
                              activate(pre, options.activation, derivative))
    if written is None:
        return new
    return a_r.index_copy(1, written.tensor, new)


def _raw_states(mixing: torch.Tensor, rule: RuleTensors, program: SweepProgram) -> list[int] | None:
    """States to aggregate before mixing (single-channel synapses and one genome group), else None.

    A state whose column of ``mixing`` is zero is skipped, unless ``mixing`` requires grad (its
    gradient needs every state's aggregate)."""
    if rule.channels != 1 or program.neuron_genome is not None:
        return None
    if mixing.requires_grad:
        return list(range(rule.k))
    return torch.nonzero(mixing.abs().sum(dim=(0, 1, 2))).flatten().tolist()


def run_sweep(a: torch.Tensor, weights: EdgeWeights, program: SweepProgram, rule: RuleTensors,
              backward: bool) -> torch.Tensor:
    """Run one sweep over ``a [pop, k, N, B]`` and return the new states. With autograd off, ``a``
    itself is updated in place (and returned); with it on, nothing is modified.

    The backward sweep computes only ``RuleOptions.backward_states`` (the others keep their values).
    """
    mixing = rule.mu if backward else rule.nu
    written = None
    if backward and rule.options.backward_states is not None:
        states = list(rule.options.backward_states)
        written = Written(states, as_index(states), torch.tensor(states, device=a.device))
        mixing = mixing[:, :, written.index]  # [pop, G, W, k]: rows of the written states
    raw_states = _raw_states(mixing, rule, program)
    in_place = not torch.is_grad_enabled()
    values = [stage_values(stage, weights.sparse) for stage in program.stages]
    for _ in range(program.rounds):
        for stage, stage_sparse in zip(program.stages, values):
            message = aggregate(stage, program, weights, stage_sparse, a, mixing, written, raw_states)
            span = stage.receiver_span
            a_r = a[:, :, span] if span is not None else a.index_select(2, stage.receivers)
            new = update(a_r, message, stage, rule, backward, written)
            if not in_place:
                a = a.index_copy(2, stage.receivers, new)
            elif span is not None:
                a[:, :, span] = new
            else:
                a.index_copy_(2, stage.receivers, new)
    return a
