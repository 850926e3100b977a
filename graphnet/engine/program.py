"""An :class:`~graphnet.topology.plan.ExecutionPlan` moved to torch, with kernels built once.

A :class:`SweepProgram` holds, for one edge set, the per-stage receivers and sparse kernels, the
dense groups, and the maps between the engine's storage of synapses (:class:`EdgeWeights`) and
the topology's edge order (``[pop, n_edges, channels]``).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import torch

from graphnet.engine.kernels import GatherScatter
from graphnet.topology.plan import DenseGroup, SweepPlan


class EdgeWeights(NamedTuple):
    """Synapses of one edge set. ``dense[i]``: ``[pop, C, a_size, b_size]`` for dense group i;
    ``sparse``: ``[pop, C, E_sparse]`` in the sparse group's canonical CSR order."""

    dense: tuple[torch.Tensor, ...]
    sparse: torch.Tensor

    def map(self, fn) -> "EdgeWeights":
        return EdgeWeights(tuple(fn(w) for w in self.dense), fn(self.sparse))


def sender_major(group: DenseGroup, weight: torch.Tensor) -> torch.Tensor:
    """View a dense group's ``[..., a, b]`` weights as ``[..., senders, receivers]``."""
    return weight.transpose(-1, -2) if group.reversed else weight


@dataclasses.dataclass
class StageProgram:
    receivers: torch.Tensor  # [R] long
    sparse_positions: torch.Tensor | None  # [E_stage] long, or None (all sparse edges)
    kernel: GatherScatter  # rows: receivers, cols: all neurons
    dense: tuple[int, ...]  # dense groups feeding this stage
    dense_rows: tuple[torch.Tensor | None, ...]  # their rows among the receivers (None: all rows)
    output_mask: torch.Tensor | None  # [R] bool; None when no receiver is an output
    all_outputs: bool
    receiver_genome: torch.Tensor | None  # [R] genome group of each receiver (None: one group)
    receiver_span: slice | None  # the receivers as a slice when they are contiguous


def span_of(indices: np.ndarray) -> slice | None:
    """``slice(first, last + 1)`` when ``indices`` are consecutive and ascending, else None."""
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return None


class SweepProgram:
    """Torch-side program of one sweep. ``sparse_kernel=CSR`` or ``GatherScatter`` (reference).

    ``neuron_genome [n_neurons]`` assigns each neuron a genome group (None: one genome). A
    synapse learns with its receiver's genome, so the sparse edges are split by that group for the
    Hebbian update (``hebbian_parts``: ``(group, positions or None, kernel)``).
    """

    def __init__(self, plan: SweepPlan, n_neurons: int, device, sparse_kernel: type[GatherScatter],
                 neuron_genome: np.ndarray | None = None):
        self.plan, self.n_neurons, self.rounds = plan, n_neurons, plan.rounds
        self.dense = plan.dense
        long = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)  # noqa: E731
        by_genome = (lambda ids: None) if neuron_genome is None else (lambda ids: long(neuron_genome[ids]))  # noqa: E731
        sparse = plan.sparse
        self.sparse_sender, self.sparse_receiver = long(sparse.sender), long(sparse.receiver)
        self.neuron_genome = None if neuron_genome is None else long(neuron_genome)
        self.sparse_genome = by_genome(sparse.receiver)
        # genome group of each block's receivers (one per block: compile_plan splits mixed blocks)
        self.dense_genome = [0 if neuron_genome is None else int(neuron_genome[g.receivers.start])
                             for g in plan.dense]
        # Hebbian over all sparse edges: rows are global receivers
        if neuron_genome is None:
            self.hebbian_parts = [(0, None, sparse_kernel(self.sparse_receiver, self.sparse_sender,
                                                          n_neurons, n_neurons))]
        else:
            edge_genome = neuron_genome[sparse.receiver]
            self.hebbian_parts = []
            for group in np.unique(edge_genome):
                positions = np.flatnonzero(edge_genome == group)
                kernel = sparse_kernel(long(sparse.receiver[positions]), long(sparse.sender[positions]),
                                       n_neurons, n_neurons)
                self.hebbian_parts.append((int(group), long(positions), kernel))
        self.stages = []
        for index, stage in enumerate(plan.stages):
            positions = None if stage.sparse_positions is None else long(stage.sparse_positions)
            senders = self.sparse_sender if positions is None else self.sparse_sender[positions]
            kernel = sparse_kernel(long(stage.sparse_rows), senders, len(stage.receivers), n_neurons)
            dense = tuple(i for i, g in enumerate(plan.dense) if g.stage == index)
            dense_rows = tuple(self._rows(plan.dense[i], stage.receivers, long) for i in dense)
            mask = torch.as_tensor(stage.output_mask, device=device)
            self.stages.append(StageProgram(long(stage.receivers), positions, kernel, dense, dense_rows,
                                            mask if bool(mask.any()) else None, bool(mask.all()),
                                            by_genome(stage.receivers), span_of(stage.receivers)))
        # storage <-> edge order: flat position p (dense groups, then sparse) holds edge flat_edges[p]
        flat_edges = np.concatenate(
            [np.arange(g.edge_start, g.edge_start + g.n_edges) for g in plan.dense] + [sparse.edge_ids]
        ).astype(np.int64)
        self.flat_edges = long(flat_edges)
        self.edge_to_flat = long(np.argsort(flat_edges))
        self.dense_sizes = [g.n_edges for g in plan.dense]
        self.fan_in = torch.as_tensor(plan.fan_in, device=device)

    @staticmethod
    def _rows(group: DenseGroup, receivers: np.ndarray, long) -> torch.Tensor | None:
        start = int(np.searchsorted(receivers, group.receivers.start))
        size = group.receivers.stop - group.receivers.start
        return None if size == len(receivers) else long(np.arange(start, start + size))

    @property
    def n_edges(self) -> int:
        return len(self.flat_edges)

    def to_edge_order(self, weights: EdgeWeights) -> torch.Tensor:
        """``EdgeWeights`` -> ``[pop, n_edges, C]`` in the topology's edge order."""
        return self.flatten(weights)[:, :, self.edge_to_flat].transpose(1, 2)

    def from_edge_order(self, values: torch.Tensor) -> EdgeWeights:
        """``[pop, n_edges, C]`` in edge order -> ``EdgeWeights`` (differentiable)."""
        flat = values.transpose(1, 2)[:, :, self.flat_edges]
        parts = torch.split(flat, self.dense_sizes + [flat.shape[2] - sum(self.dense_sizes)], dim=2)
        dense = tuple(p.reshape(p.shape[0], p.shape[1], g.a_size, g.b_size).contiguous()
                      for p, g in zip(parts, self.dense))
        return EdgeWeights(dense, parts[-1].contiguous())

    def flatten(self, weights: EdgeWeights) -> torch.Tensor:
        """``[pop, C, n_edges]`` in storage order (dense groups, then sparse)."""
        return torch.cat([w.flatten(2) for w in weights.dense] + [weights.sparse], dim=2)


class TiedBackward:
    """Builds backward synapses from forward ones when each backward edge mirrors a forward twin."""

    def __init__(self, forward: SweepProgram, backward: SweepProgram, twin: np.ndarray | None):
        if twin is None:
            raise ValueError("tied_backward (set by Genome.backprop) needs a forward twin u->v for every backward "
                             "edge v->u; this topology has backward edges without one (use backward='reverse')")
        device = forward.flat_edges.device
        edge_to_flat = forward.edge_to_flat.cpu().numpy()
        offsets = np.cumsum([0] + forward.dense_sizes)
        self.dense_sources = []  # (forward dense group, transpose?) per backward dense group
        for group in backward.dense:
            local = np.arange(group.n_edges)
            flat = edge_to_flat[twin[group.edge_start + local]]
            source = int(np.searchsorted(offsets, flat[0], side="right") - 1)
            if source >= len(forward.dense):
                raise ValueError("tied_backward: a dense backward block mirrors neuron-level forward edges")
            fgroup = forward.dense[source]
            f_local = flat - offsets[source]
            fi, fj = f_local // fgroup.b_size, f_local % fgroup.b_size
            bi, bj = local // group.b_size, local % group.b_size
            if np.array_equal(fi, bi) and np.array_equal(fj, bj):
                self.dense_sources.append((source, False))
            elif np.array_equal(fi, bj) and np.array_equal(fj, bi):
                self.dense_sources.append((source, True))
            else:
                raise ValueError("tied_backward: a backward block does not mirror one forward block")
        sparse_flat = edge_to_flat[twin[backward.plan.sparse.edge_ids]]
        self.from_sparse_only = bool((sparse_flat >= offsets[-1]).all())
        self.sparse_index = torch.as_tensor(sparse_flat - (offsets[-1] if self.from_sparse_only else 0),
                                            device=device)
        self.forward = forward

    def __call__(self, forward: EdgeWeights) -> EdgeWeights:
        dense = tuple(forward.dense[i].transpose(-1, -2) if flip else forward.dense[i]
                      for i, flip in self.dense_sources)
        source = forward.sparse if self.from_sparse_only else self.forward.flatten(forward)
        return EdgeWeights(dense, source.index_select(2, self.sparse_index))
