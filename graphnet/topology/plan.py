"""Compile a :class:`Topology` into an execution plan: who is updated when, and by which kernel.

A sweep (forward along ``forward_index``, backward along ``backward_index``) updates a set of
*receivers*. For an acyclic sweep the receivers are split into **stages** (longest-path levels):
every neuron of a stage depends only on neurons of earlier stages, so a stage is updated at once
and the result equals a sequential update in topological order. A cyclic sweep is one stage run
for a number of synchronous rounds.

Each edge set is split into **dense groups** (superneuron blocks, run as matrix products) and one
**sparse group** (every other edge, in canonical CSR order sorted by (receiver, sender), run as
sparse-matrix products). All arrays are numpy; the engine moves them to torch once.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from graphnet.topology.graph import Topology
from graphnet.topology.validate import topological_levels

DENSE_MIN_EDGES = 8  # a block with fewer synapses runs with the neuron-level edges


@dataclasses.dataclass(frozen=True)
class DenseGroup:
    """A dense block of synapses, stored as ``[pop, channels, size_a, size_b]``.

    Edges ``edge_start + i * size_b + j`` of the edge list join neuron ``a_start + i`` and
    ``b_start + j``; ``reversed`` says they run b -> a (else a -> b). ``stage`` is the stage
    whose receivers the block feeds (-1: its receivers are never updated by this sweep).
    """

    a_start: int
    a_size: int
    b_start: int
    b_size: int
    edge_start: int
    reversed: bool
    stage: int

    @property
    def n_edges(self) -> int:
        return self.a_size * self.b_size

    @property
    def senders(self) -> slice:
        start, size = (self.b_start, self.b_size) if self.reversed else (self.a_start, self.a_size)
        return slice(start, start + size)

    @property
    def receivers(self) -> slice:
        start, size = (self.a_start, self.a_size) if self.reversed else (self.b_start, self.b_size)
        return slice(start, start + size)


@dataclasses.dataclass(frozen=True)
class SparseGroup:
    """Neuron-level edges in canonical CSR order (sorted by receiver, then sender).

    Attributes (numpy int64, ``[n_edges]``): ``edge_ids`` (positions in the edge list),
    ``sender``, ``receiver``.
    """

    edge_ids: np.ndarray
    sender: np.ndarray
    receiver: np.ndarray

    @property
    def n_edges(self) -> int:
        return len(self.edge_ids)


@dataclasses.dataclass(frozen=True)
class Stage:
    """Neurons updated together, and the sparse edges that feed them.

    Attributes:
        receivers: ``[R]`` sorted neuron indices.
        sparse_positions: ``[E_stage]`` positions in the sparse group of the edges into these
            receivers (still sorted by receiver), or None when that is the whole sparse group.
        sparse_rows: ``[E_stage]`` row of each of those edges among ``receivers``.
        output_mask: ``[R]`` bool, which receivers are output neurons.
    """

    receivers: np.ndarray
    sparse_positions: np.ndarray | None
    sparse_rows: np.ndarray
    output_mask: np.ndarray


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """How one edge set is run. ``rounds`` > 1 only for a cyclic sweep (one stage)."""

    stages: tuple[Stage, ...]
    rounds: int
    dense: tuple[DenseGroup, ...]
    sparse: SparseGroup
    fan_in: np.ndarray  # [n_neurons] incoming edges per neuron in this edge set (for init)


@dataclasses.dataclass(frozen=True)
class ExecutionPlan:
    """Everything the engine needs to run a topology; built once by :func:`compile_plan`."""

    n_neurons: int
    input_index: np.ndarray
    output_index: np.ndarray
    bias_index: int | None
    forward: SweepPlan
    backward: SweepPlan
    n_forward_edges: int
    n_backward_edges: int
    backward_twin: np.ndarray | None  # [E_b] forward edge mirrored by each backward edge; None if some lack one
    outputs_with_out_edges: int  # output neurons that send forward edges (they are clamped in the backward sweep)
    hidden_without_feedback: int  # hidden neurons that send forward edges but receive no backward edge


def compile_plan(topology: Topology, dense_min_edges: int = DENSE_MIN_EDGES, dense: bool = True,
                 neuron_groups: np.ndarray | None = None) -> ExecutionPlan:
    """Compile ``topology``. ``dense=False`` runs every edge through the sparse kernels.

    ``neuron_groups [n_neurons]`` (genome groups, e.g. per-layer genomes): a block whose receivers
    belong to different groups runs edge by edge, since its synapses learn with different genomes.
    """
    n = topology.n_neurons
    clamped = np.zeros(n, dtype=bool)
    clamped[topology.input_index] = True
    if topology.bias_index is not None:
        clamped[topology.bias_index] = True
    is_output = np.zeros(n, dtype=bool)
    is_output[topology.output_index] = True

    forward_updated = ~clamped
    backward_index = topology.backward_index
    backward_updated = ~clamped & ~is_output
    has_feedback = np.zeros(n, dtype=bool)
    has_feedback[backward_index[1]] = True
    backward_updated &= has_feedback

    threshold = dense_min_edges if dense else None
    forward = _sweep_plan(topology, topology.forward_index, topology.forward_blocks, forward_updated,
                          is_output, topology.rounds, threshold, neuron_groups)
    backward = _sweep_plan(topology, backward_index, topology.backward_blocks, backward_updated,
                           is_output, topology.backward_rounds, threshold, neuron_groups)
    return ExecutionPlan(
        n_neurons=n, input_index=np.asarray(topology.input_index), output_index=np.asarray(topology.output_index),
        bias_index=topology.bias_index, forward=forward, backward=backward,
        n_forward_edges=topology.forward_index.shape[1], n_backward_edges=backward_index.shape[1],
        backward_twin=_twins(topology.forward_index, backward_index, n),
        outputs_with_out_edges=int(is_output[np.unique(topology.forward_index[0])].sum()),
        hidden_without_feedback=int((forward_updated & ~is_output & ~has_feedback
                                     & np.isin(np.arange(n), topology.forward_index[0])).sum()))


def _sweep_plan(topology: Topology, edge_index: np.ndarray, blocks, updated: np.ndarray,
                is_output: np.ndarray, rounds: int, dense_min_edges: int | None,
                neuron_groups: np.ndarray | None) -> SweepPlan:
    n = len(updated)
    sender, receiver = edge_index
    level, cyclic = _levels(sender, receiver, updated)
    n_stages = 1 if cyclic else (int(level.max()) + 1 if updated.any() else 0)

    in_dense = np.zeros(len(sender), dtype=bool)
    dense = []
    groups = topology.groups
    for block in blocks:
        a, b = groups[block.a], groups[block.b]
        group = DenseGroup(a.start, a.size, b.start, b.size, block.edge_start, block.reversed, -1)
        if dense_min_edges is None or group.n_edges < dense_min_edges:
            continue
        recv = np.arange(group.receivers.start, group.receivers.stop)
        if neuron_groups is not None and len(np.unique(neuron_groups[recv])) > 1:
            continue  # its synapses learn with different genomes: run it edge by edge
        if updated[recv].all():
            stages = np.unique(level[recv])
            if len(stages) != 1:
                continue  # its receivers are updated at different times: run it edge by edge
            stage = 0 if cyclic else int(stages[0])
        elif not updated[recv].any():
            stage = -1
        else:
            continue
        dense.append(dataclasses.replace(group, stage=stage))
        in_dense[block.edge_start:block.edge_start + group.n_edges] = True

    edge_ids = np.flatnonzero(~in_dense)
    order = np.lexsort((sender[edge_ids], receiver[edge_ids]))
    edge_ids = edge_ids[order]
    sparse = SparseGroup(edge_ids, sender[edge_ids], receiver[edge_ids])

    stages = []
    neuron_ids = np.arange(n)
    for s in range(n_stages):
        recv = neuron_ids[updated] if cyclic else neuron_ids[updated & (level == s)]
        member = np.zeros(n, dtype=bool)
        member[recv] = True
        positions = np.flatnonzero(member[sparse.receiver])
        rows = np.searchsorted(recv, sparse.receiver[positions])
        whole = len(positions) == sparse.n_edges
        stages.append(Stage(recv, None if whole else positions, rows, is_output[recv]))
    fan_in = np.bincount(receiver, minlength=n)
    return SweepPlan(tuple(stages), rounds if cyclic else 1, tuple(dense), sparse, fan_in)


def _levels(sender: np.ndarray, receiver: np.ndarray, updated: np.ndarray) -> tuple[np.ndarray, bool]:
    """Longest-path level of each updated neuron over edges between updated neurons.

    Returns ``(level [n], cyclic)``; only the levels of updated neurons are meaningful.
    """
    keep = updated[sender] & updated[receiver]
    level = topological_levels(len(updated), sender[keep], receiver[keep])
    return level, bool((level[updated] < 0).any())


def _twins(forward_index: np.ndarray, backward_index: np.ndarray, n: int) -> np.ndarray | None:
    """For each backward edge ``v -> u``, the position of forward edge ``u -> v`` (None if any lacks one)."""
    forward_key = forward_index[0] * n + forward_index[1]
    order = np.argsort(forward_key, kind="stable")
    wanted = backward_index[1] * n + backward_index[0]
    pos = np.searchsorted(forward_key[order], wanted)
    pos = np.minimum(pos, len(order) - 1)
    if len(wanted) and not np.array_equal(forward_key[order][pos], wanted):
        return None
    return order[pos]
