"""The network graph as one immutable value: neurons, inputs, outputs, forward and backward edges.

Neurons are indexed ``0..N-1`` and carry any hashable name. The forward edge set ``F``
(``forward_index [2, E_f]``, rows sender -> receiver) and the backward edge set ``B``
(``backward_index [2, E_b]``, rows sender -> receiver) are independent, so a pair of neurons may
be joined both ways in ``F`` (a recurrent pair) and each direction keeps its own backward edge.

Superneurons are :class:`NeuronGroup` s, contiguous neuron ranges. An :class:`EdgeBlock` declares
that a contiguous run of an edge list is the dense ``size_a x size_b`` block between two groups,
so kernels can run it as a matrix product; :meth:`Topology.expand` drops that structure and
keeps the identical neuron-level edges.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Hashable

import numpy as np

from graphnet.topology import validate

BIAS = "bias"  # name of the bias neuron, whose state 0 is always 1


@dataclass(frozen=True)
class NeuronGroup:
    """A superneuron: the neurons with indices ``[start, start + size)``."""

    name: Hashable
    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class EdgeBlock:
    """A dense block of edges between ``groups[a]`` and ``groups[b]``.

    Edge ``edge_start + i * size_b + j`` (``i < size_a``, ``j < size_b``) joins neuron
    ``groups[a].start + i`` and ``groups[b].start + j``: ``a_i -> b_j`` when ``reversed`` is
    False, ``b_j -> a_i`` when it is True (the backward twin of a forward block).
    """

    a: int
    b: int
    edge_start: int
    reversed: bool = False


def reverse_blocks(blocks: tuple) -> tuple:
    """The blocks of the reversed edge list (same edge order): each block with ``reversed`` flipped."""
    return tuple(EdgeBlock(blk.a, blk.b, blk.edge_start, not blk.reversed) for blk in blocks)


_FIELDS = ("neurons", "inputs", "outputs", "input_index", "output_index", "bias_index",
           "forward_index", "backward_index", "groups", "forward_blocks", "backward_blocks",
           "rounds", "backward_rounds", "forward_is_cyclic", "backward_is_cyclic")


class Topology:
    """An immutable network graph. Build it with :meth:`from_edges`, :meth:`from_networkx`,
    :meth:`from_index`, :meth:`load` or the generators in :mod:`graphnet.topologies`.

    Fields (all read-only):
        neurons: tuple of N names in index order.
        inputs, outputs: names in batch-column order; ``input_index``, ``output_index`` int64 [n_in], [n_out].
        bias_index: index of the neuron named ``"bias"`` (state 0 clamped to 1), or None.
        forward_index: int64 [2, E_f], rows (sender, receiver).
        backward_index: int64 [2, E_b], rows (sender, receiver).
        groups: superneurons; forward_blocks, backward_blocks: dense blocks between them.
        rounds, backward_rounds: synchronous rounds of a cyclic sweep (1 for an acyclic one).
            The default for a cyclic graph is the number of nodes on the longest path of its
            condensation (each strongly connected component counts as one node), plus 1.
    """

    __slots__ = tuple("_" + field for field in _FIELDS) + ("_cache",)

    def __init__(self, *args, **kwargs):
        raise TypeError("build a Topology with Topology.from_edges, from_networkx, from_index or load")

    def __setattr__(self, name, value):
        raise AttributeError(f"Topology is immutable; cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"Topology is immutable; cannot delete {name!r}")

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def _from_arrays(cls, neurons, forward_index, backward_index, input_index, output_index,
                     bias_index=None, groups=(), forward_blocks=(), backward_blocks=(),
                     rounds=None, backward_rounds=None, allow_self_loops=False) -> Topology:
        """Validate arrays (vectorized) and build. Every other constructor ends here."""
        neurons = tuple(neurons)
        n = len(neurons)
        if n == 0:
            raise ValueError("empty graph: no neurons")
        validate.distinct_names(neurons, "neurons")
        forward = validate.edge_index(forward_index, n, "forward_index")
        if forward.shape[1] == 0:
            raise ValueError("no forward edges")
        backward = validate.edge_index(backward_index, n, "backward_index")
        inputs = validate.io_index(input_index, n, "inputs")
        outputs = validate.io_index(output_index, n, "outputs")
        if bias_index is not None:
            if not 0 <= bias_index < n:
                raise ValueError(f"bias_index {bias_index} is out of range (there are {n} neurons)")
            bias_index = int(bias_index)
        validate.io_roles(neurons, inputs, outputs, bias_index)
        if not allow_self_loops:
            validate.no_self_loops(neurons, *forward, "forward")
            validate.no_self_loops(neurons, *backward, "backward")
        validate.no_edges_into(neurons, *forward, inputs, "input")
        if bias_index is not None:
            validate.no_edges_into(neurons, *forward, np.array([bias_index]), "bias neuron")
        validate.no_duplicates(neurons, *forward, "forward")
        validate.no_duplicates(neurons, *backward, "backward")
        validate.no_dangling(neurons, forward, backward, inputs, outputs)
        groups, forward_blocks, backward_blocks = tuple(groups), tuple(forward_blocks), tuple(backward_blocks)
        validate.groups(neurons, groups)
        validate.blocks(neurons, groups, forward_blocks, forward, "forward")
        validate.blocks(neurons, groups, backward_blocks, backward, "backward")
        validate.outputs_reachable(neurons, *forward, inputs, outputs, bias_index)
        rounds = validate.rounds(rounds, "rounds")
        backward_rounds = validate.rounds(backward_rounds, "backward_rounds")

        forward_is_cyclic = validate.is_cyclic(n, *forward)
        backward_is_cyclic = validate.is_cyclic(n, *backward)
        rounds = _rounds_for(rounds, forward_is_cyclic, n, forward, "rounds", "forward")
        backward_rounds = _rounds_for(backward_rounds, backward_is_cyclic, n, backward, "backward_rounds", "backward")
        return cls._build(
            neurons=neurons, inputs=tuple(neurons[i] for i in inputs),
            outputs=tuple(neurons[i] for i in outputs), input_index=inputs, output_index=outputs,
            bias_index=bias_index, forward_index=forward, backward_index=backward, groups=groups,
            forward_blocks=forward_blocks, backward_blocks=backward_blocks, rounds=rounds,
            backward_rounds=backward_rounds, forward_is_cyclic=forward_is_cyclic,
            backward_is_cyclic=backward_is_cyclic)

    @classmethod
    def _build(cls, **fields) -> Topology:
        """Set already-validated fields (no checks)."""
        self = object.__new__(cls)
        for field in _FIELDS:
            object.__setattr__(self, "_" + field, fields[field])
        object.__setattr__(self, "_cache", {})
        return self

    def _replace(self, **changes) -> Topology:
        fields = {field: getattr(self, "_" + field) for field in _FIELDS}
        fields.update(changes)
        return Topology._build(**fields)

    @classmethod
    def from_edges(cls, forward, inputs, outputs, backward="reverse", bias=True, rounds=None,
                   backward_rounds=None, allow_self_loops=False) -> Topology:
        """A neuron-level topology from a list of ``(u, v)`` forward edges.

        Neuron order: ``inputs`` (given order), then ``"bias"`` if ``bias``, then the other
        neurons in order of first appearance in ``forward``. With ``bias``, the edges
        ``bias -> v`` for every non-input neuron ``v`` (index order) follow the user's edges.
        With ``bias=False``, a neuron the user names ``"bias"`` is the bias neuron.

        backward: ``"reverse"`` (backward edge e is forward edge e reversed, bias edges
        included), ``"none"``, or a list of ``(sender, receiver)`` name pairs.
        """
        inputs, outputs = tuple(inputs), tuple(outputs)
        _check_io_names(inputs, outputs, bias)
        index = {name: i for i, name in enumerate(inputs)}
        if bias:
            index[BIAS] = len(index)
        src, dst = (np.array(ids, dtype=np.int64) for ids in _edge_ids(forward, index, "forward"))
        neurons = tuple(index)
        bias_index = index.get(BIAS)
        if bias and (np.any(src == bias_index) or np.any(dst == bias_index)):
            raise ValueError(_reserved_bias_message())
        in_edges = np.zeros(len(neurons), dtype=bool)
        in_edges[src] = in_edges[dst] = True
        for name in inputs:
            if not in_edges[index[name]]:
                raise ValueError(f"unknown input {name!r}: it is in no forward edge")
        for name in outputs:
            if name not in index:
                raise ValueError(f"unknown output {name!r}: it is in no forward edge")
        forward_index = np.stack([src, dst])
        if bias:
            forward_index = _with_bias_edges(forward_index, len(neurons), bias_index, len(inputs))
        backward_index = _backward_index(backward, forward_index, index)
        return cls._from_arrays(neurons, forward_index, backward_index, range(len(inputs)),
                                [index[name] for name in outputs], bias_index, rounds=rounds,
                                backward_rounds=backward_rounds, allow_self_loops=allow_self_loops)

    @classmethod
    def from_index(cls, n_neurons: int, forward_index, inputs, outputs, backward="reverse", bias=True,
                   rounds=None, backward_rounds=None, allow_self_loops=False) -> Topology:
        """A topology over integer neurons ``0..n_neurons-1`` (names equal indices); the fast path.

        forward_index: int [2, E] (sender, receiver); inputs, outputs: neuron ids in column order.
        With ``bias``, neuron ``n_neurons`` is ``"bias"`` and its edges to every non-input neuron
        follow. backward: ``"reverse"``, ``"none"`` or an int array [2, E_b].
        """
        forward = validate.edge_index(forward_index, n_neurons, "forward_index")
        input_index = validate.io_index(inputs, n_neurons, "inputs")
        neurons = tuple(range(n_neurons))
        bias_index = None
        if bias:
            neurons, bias_index = neurons + (BIAS,), n_neurons
            is_input = np.zeros(n_neurons, dtype=bool)
            is_input[input_index] = True
            forward = np.concatenate([forward, _bias_edges(bias_index, np.flatnonzero(~is_input))], axis=1)
        if isinstance(backward, str):
            backward_index = _backward_index(backward, forward, {})
        else:
            backward_index = validate.edge_index(backward, n_neurons, "backward_index")
        return cls._from_arrays(neurons, forward, backward_index, input_index, outputs, bias_index,
                                rounds=rounds, backward_rounds=backward_rounds,
                                allow_self_loops=allow_self_loops)

    @classmethod
    def from_networkx(cls, graph, bias=True, rounds=None, backward_rounds=None,
                      allow_self_loops=False) -> Topology:
        """A topology from an ``nx.DiGraph`` or ``nx.MultiDiGraph`` (neuron or superneuron level).

        Node attrs: ``role`` = input | output | hidden (default) | bias (only the node named
        ``"bias"``, with ``bias=False``); ``size`` = m makes a superneuron of neurons
        ``(node, 0..m-1)``; optional ``io_order`` sorts input (output) nodes, else node order.
        Edge attrs: ``direction`` = forward (default) | backward; optional ``edge_order`` sorts
        edges, else networkx edge order. Every node is one group; every edge one block,
        row-major. Without backward-marked edges the backward set is the reversed forward set
        (set graph attr ``backward="none"`` for none). Bias: a size-1 group ``"bias"`` appended
        last, with blocks to every non-input node after the user's forward edges.
        """
        from graphnet.topology import files
        return files.from_networkx(graph, bias, rounds, backward_rounds, allow_self_loops)

    @classmethod
    def load(cls, path) -> Topology:
        """Read a GraphML file written by :meth:`save` or authored by hand (nodes with ``role``)."""
        from graphnet.topology import files
        return files.load(path)

    def save(self, path) -> None:
        """Write GraphML: the superneuron graph when the topology has groups, else the neuron graph."""
        from graphnet.topology import files
        files.save(self, path)

    def to_networkx(self):
        """Neuron-level ``nx.MultiDiGraph``: node attrs ``role`` (input/output/hidden/bias) and
        ``io_order``; edge attrs ``direction`` and ``edge_order``; every backward edge explicit.
        ``Topology.from_networkx(t.to_networkx(), bias=False)`` rebuilds the same neurons and edges."""
        from graphnet.topology import files
        return files.to_networkx(self)

    def expand(self) -> Topology:
        """The same neurons and edges (same order) with no groups and no blocks."""
        return self._replace(groups=(), forward_blocks=(), backward_blocks=())

    def with_backward(self, backward, backward_rounds=None) -> Topology:
        """The same topology with another backward set: ``"reverse"``, ``"none"`` or a list of
        ``(sender, receiver)`` name pairs. Backward self-loops are allowed iff forward has any."""
        if isinstance(backward, str) and backward == "reverse":
            blocks = reverse_blocks(self._forward_blocks)
        else:
            blocks = ()
        backward_index = _backward_index(backward, self._forward_index, self._name_index())
        self_loops = bool(np.any(self._forward_index[0] == self._forward_index[1]))
        return Topology._from_arrays(
            self._neurons, self._forward_index, backward_index, self._input_index, self._output_index,
            self._bias_index, self._groups, self._forward_blocks, blocks, self._rounds,
            backward_rounds, allow_self_loops=self_loops)

    # --- read-only fields ---------------------------------------------------------------------

    neurons = property(lambda self: self._neurons, doc="Names in index order.")
    inputs = property(lambda self: self._inputs, doc="Input names; column i of a batch feeds inputs[i].")
    outputs = property(lambda self: self._outputs, doc="Output names, in prediction-column order.")
    input_index = property(lambda self: self._input_index, doc="int64 [n_inputs], neuron ids of inputs.")
    output_index = property(lambda self: self._output_index, doc="int64 [n_outputs], neuron ids of outputs.")
    bias_index = property(lambda self: self._bias_index, doc="Index of the bias neuron, or None.")
    forward_index = property(lambda self: self._forward_index, doc="int64 [2, E_f], rows (src, dst).")
    backward_index = property(lambda self: self._backward_index, doc="int64 [2, E_b], rows (sender, receiver).")
    groups = property(lambda self: self._groups, doc="Superneurons (NeuronGroup), contiguous ranges.")
    forward_blocks = property(lambda self: self._forward_blocks, doc="Dense blocks of forward edges.")
    backward_blocks = property(lambda self: self._backward_blocks, doc="Dense blocks of backward edges.")
    rounds = property(lambda self: self._rounds, doc="Rounds of a cyclic forward sweep (1 if acyclic).")
    backward_rounds = property(lambda self: self._backward_rounds, doc="Rounds of a cyclic backward sweep.")
    forward_is_cyclic = property(lambda self: self._forward_is_cyclic, doc="Forward graph has a cycle or self-loop.")
    backward_is_cyclic = property(lambda self: self._backward_is_cyclic, doc="Backward graph has a cycle or self-loop.")

    @property
    def n_neurons(self) -> int:
        return len(self._neurons)

    @property
    def forward_edges(self) -> list:
        """``[(sender_name, receiver_name), ...]`` in forward edge order (built once)."""
        return self._edge_names("forward_edges", self._forward_index)

    @property
    def backward_edges(self) -> list:
        """``[(sender_name, receiver_name), ...]`` in backward edge order (built once)."""
        return self._edge_names("backward_edges", self._backward_index)

    def index_of(self, name) -> int:
        """Index of the neuron called ``name``."""
        try:
            return self._name_index()[name]
        except KeyError:
            raise ValueError(f"no neuron named {name!r}") from None

    def _name_index(self) -> dict:
        if "index" not in self._cache:
            self._cache["index"] = {name: i for i, name in enumerate(self._neurons)}
        return self._cache["index"]

    def _edge_names(self, key: str, index: np.ndarray) -> list:
        if key not in self._cache:
            names = self._neurons
            self._cache[key] = [(names[u], names[v]) for u, v in zip(index[0].tolist(), index[1].tolist())]
        return self._cache[key]

    # --- value semantics ----------------------------------------------------------------------

    def __eq__(self, other) -> bool:
        if not isinstance(other, Topology):
            return NotImplemented
        return (self._neurons == other._neurons and self._inputs == other._inputs
                and self._outputs == other._outputs and self._bias_index == other._bias_index
                and self._groups == other._groups and self._forward_blocks == other._forward_blocks
                and self._backward_blocks == other._backward_blocks and self._rounds == other._rounds
                and self._backward_rounds == other._backward_rounds
                and np.array_equal(self._forward_index, other._forward_index)
                and np.array_equal(self._backward_index, other._backward_index))

    def __hash__(self) -> int:
        if "hash" not in self._cache:
            self._cache["hash"] = hash((self._neurons, self._inputs, self._outputs, self._groups,
                                        self._forward_index.shape, self._backward_index.shape, self._rounds))
        return self._cache["hash"]

    def __repr__(self) -> str:
        cycle = f"cyclic, {self._rounds} rounds" if self._forward_is_cyclic else "acyclic"
        return (f"Topology({self.n_neurons} neurons, {len(self._inputs)} inputs, {len(self._outputs)} outputs, "
                f"{self._forward_index.shape[1]} forward / {self._backward_index.shape[1]} backward edges, "
                f"{len(self._groups)} groups, {cycle})")

    def __getstate__(self) -> dict:
        return {field: getattr(self, "_" + field) for field in _FIELDS}

    def __setstate__(self, state: dict) -> None:
        for field in _FIELDS:
            value = state[field]
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            object.__setattr__(self, "_" + field, value)
        object.__setattr__(self, "_cache", {})


# --- helpers for the constructors ----------------------------------------------------------------

def _rounds_for(rounds: int | None, cyclic: bool, n: int, index: np.ndarray, name: str, sweep: str) -> int:
    """Rounds of a sweep: the given or default number for a cyclic graph, 1 for an acyclic one."""
    if not cyclic:
        if rounds not in (None, 1):
            warnings.warn(f"{name}={rounds} ignored: the {sweep} graph is acyclic and runs once in topological "
                          "order", stacklevel=4)
        return 1
    return validate.default_rounds(n, *index) if rounds is None else rounds


def _reserved_bias_message() -> str:
    return (f"{BIAS!r} is a reserved neuron name when bias=True; pass bias=False "
            f"to wire a bias neuron named {BIAS!r} yourself")


def _check_io_names(inputs: tuple, outputs: tuple, bias: bool) -> None:
    if not inputs:
        raise ValueError("no inputs given")
    if not outputs:
        raise ValueError("no outputs given")
    validate.distinct_names(inputs, "inputs")
    validate.distinct_names(outputs, "outputs")
    output_set = set(outputs)
    for name in inputs:
        if name in output_set:
            raise ValueError(f"neuron {name!r} is both an input and an output")
    if bias and (BIAS in output_set or BIAS in set(inputs)):
        raise ValueError(_reserved_bias_message())


def _edge_ids(pairs, index: dict, label: str, grow: bool = True) -> tuple[list, list]:
    """Neuron ids of ``(u, v)`` name pairs. With ``grow``, unseen names get the next free ids."""
    src, dst = [], []
    for k, pair in enumerate(pairs):
        try:
            u, v = pair
        except (TypeError, ValueError):
            raise ValueError(f"{label} edge {k} is not a (u, v) pair: {pair!r}") from None
        if grow:
            src.append(index.setdefault(u, len(index)))
            dst.append(index.setdefault(v, len(index)))
            continue
        for name in (u, v):
            if name not in index:
                raise ValueError(f"dangling {label} edge ({u!r}, {v!r}): "
                                 f"neuron {name!r} is not in the forward graph")
        src.append(index[u])
        dst.append(index[v])
    return src, dst


def _bias_edges(bias_index: int, targets: np.ndarray) -> np.ndarray:
    """int64 [2, len(targets)]: ``bias -> t`` for each target."""
    return np.stack([np.full(len(targets), bias_index, dtype=np.int64), targets.astype(np.int64)])


def _with_bias_edges(forward: np.ndarray, n: int, bias_index: int, n_inputs: int) -> np.ndarray:
    """Append ``bias -> v`` for every neuron that is neither an input (ids < n_inputs) nor the bias."""
    targets = np.setdiff1d(np.arange(n_inputs, n), [bias_index])
    return np.concatenate([forward, _bias_edges(bias_index, targets)], axis=1)


def _backward_index(backward, forward: np.ndarray, index: dict) -> np.ndarray:
    """int64 [2, E_b] from ``"reverse"``, ``"none"`` or ``(sender, receiver)`` name pairs."""
    if isinstance(backward, str):
        if backward == "reverse":
            return forward[::-1].copy()
        if backward == "none":
            return np.zeros((2, 0), dtype=np.int64)
        raise ValueError(f"backward must be 'reverse', 'none' or a list of (sender, receiver) pairs, "
                         f"got {backward!r}")
    try:
        pairs = list(backward)
    except TypeError:
        raise ValueError(f"backward must be 'reverse', 'none' or a list of (sender, receiver) pairs, "
                         f"got {backward!r}") from None
    src, dst = _edge_ids(pairs, index, "backward", grow=False)
    return np.array([src, dst], dtype=np.int64).reshape(2, -1)
