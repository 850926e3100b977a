"""One sweep: gather each edge's presynaptic state, form the message, reduce into the receivers,
update the receivers. Forward and backward sweeps are the same code with different edges, mixing
matrix (``nu`` / ``mu``) and update mode.

Neuron states are laid out channel-major, ``a: [pop, k, n_neurons, batch]``: every per-channel
product is contiguous, the ``k × k`` mixing is one matrix product over ``n_neurons · batch``, and a
neuron range is a contiguous row block (PERF-NOTES.md).
"""
from __future__ import annotations

import torch

from graphnet.engine.activations import activate
from graphnet.engine.program import EdgeWeights, StageProgram, SweepProgram, sender_major
from graphnet.engine.rule import RuleTensors, per_genome
from graphnet.rules.options import BackwardUpdate

NORM_EPS = 1e-5


def mix(matrix: torch.Tensor, a: torch.Tensor, neuron_genome: torch.Tensor | None = None) -> torch.Tensor:
    """``out[p, c, n] = Σ_d matrix[p, g(n), c, d] · a[p, d, n]``: ``[pop, G, k, k] × [pop, k, N, B]``.

    ``neuron_genome [N]`` gives ``g(n)``; None means one genome group (a single matrix product).
    """
    pop, k, n, batch = a.shape
    if neuron_genome is None:
        return torch.matmul(matrix[:, 0], a.reshape(pop, k, n * batch)).reshape(pop, -1, n, batch)
    return torch.einsum("pncd,pdnb->pcnb", per_genome(matrix, neuron_genome), a)


def aggregate(stage: StageProgram, program: SweepProgram, weights: EdgeWeights, x: torch.Tensor) -> torch.Tensor:
    """Messages into a stage: ``m[p, c, r] = Σ_{s -> r} w_sr[p, c] · x[p, c, s]`` -> ``[pop, k, R, B]``.

    ``x``: mixed sender states ``[pop, k, N, B]``; single-channel weights serve every state.
    """
    pop, k, n, batch = x.shape
    rows = len(stage.receivers)
    message = x.new_zeros(pop, k, rows, batch)
    if stage.kernel.row.numel():
        values = weights.sparse if stage.sparse_positions is None else \
            weights.sparse.index_select(2, stage.sparse_positions)
        values = values.expand(pop, k, values.shape[2]).reshape(pop * k, -1)
        message = stage.kernel.aggregate(values, x.reshape(pop * k, n, batch)).reshape(pop, k, rows, batch)
    for index, rows_of_group in zip(stage.dense, stage.dense_rows):
        group = program.dense[index]
        w = sender_major(group, weights.dense[index])  # [pop, C, senders, receivers]
        part = torch.matmul(w.transpose(-1, -2), x[:, :, group.senders])  # [pop, k, receivers, B]
        if rows_of_group is None:  # the block feeds every receiver of the stage
            message = message + part
        else:
            message = message.index_add(2, rows_of_group, part)
    return message


def update(a_r: torch.Tensor, message: torch.Tensor, stage: StageProgram, rule: RuleTensors,
           backward: bool, derivative_mask: torch.Tensor | None, state_mask: torch.Tensor | None) -> torch.Tensor:
    """New states of a stage's receivers ``[pop, k, R, B]`` from their states and messages."""
    options = rule.options
    if backward and options.backward_update is BackwardUpdate.MULTIPLICATIVE:
        new = a_r * message
    else:
        genome = stage.receiver_genome
        pop = a_r.shape[0]
        pre = (per_genome(rule.f, genome).view(pop, 1, -1, 1) * a_r
               + per_genome(rule.eta, genome).view(pop, 1, -1, 1) * message)
        if options.normalize:
            mean = pre.mean(dim=(2, 3), keepdim=True)
            var = pre.var(dim=(2, 3), keepdim=True, unbiased=False)
            pre = (pre - mean) / torch.sqrt(var + NORM_EPS)
            scale, shift = (per_genome(t, genome).transpose(1, 2).unsqueeze(-1)  # [pop, k, R or 1, 1]
                            for t in (rule.norm_scale, rule.norm_shift))
            pre = pre * scale + shift
        output_activation = options.output_activation or options.activation
        if stage.all_outputs:
            new = activate(pre, output_activation, derivative_mask)
        else:
            new = activate(pre, options.activation, derivative_mask)
            if stage.output_mask is not None:
                out = activate(pre, output_activation, derivative_mask)
                new = torch.where(stage.output_mask.view(1, 1, -1, 1), out, new)
    if backward and state_mask is not None:
        new = torch.where(state_mask.view(1, -1, 1, 1), new, a_r)
    return new


def run_sweep(a: torch.Tensor, weights: EdgeWeights, program: SweepProgram, rule: RuleTensors,
              backward: bool, derivative_mask: torch.Tensor | None = None,
              state_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Run one sweep over ``a [pop, k, N, B]``; returns the new states (out of place)."""
    mixing = rule.mu if backward else rule.nu
    for _ in range(program.rounds):
        for stage in program.stages:
            message = aggregate(stage, program, weights, mix(mixing, a, program.neuron_genome))
            a_r = a.index_select(2, stage.receivers)
            new = update(a_r, message, stage, rule, backward, derivative_mask, state_mask)
            a = a.index_copy(2, stage.receivers, new)
    return a
