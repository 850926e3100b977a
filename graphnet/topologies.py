"""Ready-made topologies: superneuron chains and DAGs, random neuron-level DAGs and graphs.

Superneuron generators name their nodes ``"input"``, ``"hidden1"`` .. ``"hiddenL"``, ``"output"``
(neurons ``(node, i)``); neuron-level random generators use integer names
``0..n_neurons-1`` laid out as inputs, hidden, outputs, with ``"bias"`` last when ``bias``.
"""
from __future__ import annotations

import networkx as nx
import numpy as np

from graphnet.topology import Topology, validate


def _chain(sizes) -> nx.DiGraph:
    """Superneuron chain ``input -> hidden1 -> ... -> output`` with node sizes ``sizes``."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    names = ["input"] + [f"hidden{k}" for k in range(1, len(sizes) - 1)] + ["output"]
    graph = nx.DiGraph()
    for k, (name, size) in enumerate(zip(names, sizes)):
        role = "input" if k == 0 else "output" if k == len(sizes) - 1 else "hidden"
        graph.add_node(name, role=role, size=size)
    graph.add_edges_from(zip(names, names[1:]))
    return graph


def mlp(sizes, bias=True) -> Topology:
    """A multilayer perceptron as a chain of superneurons.

    ``mlp((784, 256, 10))``: groups input (784), hidden1 (256), output (10) [, bias (1)];
    forward edges ``sum(sizes[k] * sizes[k + 1]) + sum(sizes[1:])`` (the last term: bias), one
    dense block per layer pair; backward edges the reversed forward edges.
    """
    return Topology.from_networkx(_chain(sizes), bias=bias)


def superneuron_skip(sizes=(784, 64, 32, 10), skips=None, bias=True) -> Topology:
    """A superneuron DAG: the chain of :func:`mlp` plus skip blocks ``node i -> node j``.

    skips: ``(i, j)`` node positions with ``i + 1 < j``; default every ``i -> i + 2``. Blocks are
    in networkx edge order (grouped by source node), then the bias blocks.
    """
    graph = _chain(sizes)
    names = list(graph.nodes)
    if skips is None:
        skips = [(i, i + 2) for i in range(len(names) - 2)]
    for i, j in skips:
        if not 0 <= i < j - 1 < len(names) - 1:
            raise ValueError(f"skip ({i}, {j}) must join node positions 0 <= i < i + 1 < j < {len(names)}")
        graph.add_edge(names[i], names[j])
    return Topology.from_networkx(graph, bias=bias)


def recurrent_pair(bias=True) -> Topology:
    """A small cyclic example mixing superneurons and single neurons.

    Groups x (input, 4), h (3), a, b (single neurons), y (output, 2); forward blocks
    x->h, x->a, h->a, h->y, a->b, b->a, b->y. ``a`` and ``b`` form a recurrent pair, so the
    forward graph is cyclic; rounds defaults to 5 (longest condensation path x, h, {a, b}, y; plus 1).
    """
    graph = nx.DiGraph()
    graph.add_node("x", role="input", size=4)
    graph.add_node("h", size=3)
    graph.add_node("a")
    graph.add_node("b")
    graph.add_node("y", role="output", size=2)
    graph.add_edges_from([("x", "h"), ("x", "a"), ("h", "a"), ("h", "y"), ("a", "b"), ("b", "a"), ("b", "y")])
    return Topology.from_networkx(graph, bias=bias)


def random_dag(n_inputs, n_hidden, n_outputs, edge_prob=0.2, skip=True, seed=0, bias=True) -> Topology:
    """A random neuron-level DAG with skip connections and no dead neurons.

    Neurons: inputs ``0..n_inputs-1``, hidden next, outputs last (then ``"bias"``). Hidden
    neurons get a random topological order; each allowed pair is an edge with probability
    ``edge_prob``: input -> hidden, earlier hidden -> later hidden, hidden -> output and, with
    ``skip``, input -> output. Then every neuron missing one gets a random extra edge so that each
    input has an outgoing edge, each hidden neuron an incoming and an outgoing one, and each
    output an incoming one: every output is reachable and outputs have no outgoing edges.
    Without ``skip`` there are no input -> output edges (unless ``n_hidden`` is 0).
    Edges are sorted by (sender, receiver). Memory is O(n_hidden**2) (a dense random draw).
    """
    if n_inputs < 1 or n_outputs < 1 or n_hidden < 0:
        raise ValueError("random_dag needs n_inputs >= 1, n_outputs >= 1 and n_hidden >= 0")
    if not 0 <= edge_prob <= 1:
        raise ValueError(f"edge_prob must be in [0, 1], got {edge_prob}")
    rng = np.random.default_rng(seed)
    n = n_inputs + n_hidden + n_outputs
    inputs = np.arange(n_inputs)
    hidden = n_inputs + np.arange(n_hidden)
    outputs = n_inputs + n_hidden + np.arange(n_outputs)
    rank = rng.permutation(n_hidden)  # topological position of each hidden neuron
    by_rank = hidden[np.argsort(rank)]

    def draw(senders, receivers, allowed=True):
        rows, cols = np.nonzero((rng.random((len(senders), len(receivers))) < edge_prob) & allowed)
        return senders[rows], receivers[cols]

    parts = [draw(inputs, hidden), draw(hidden, hidden, rank[:, None] < rank[None, :]), draw(hidden, outputs)]
    if skip:
        parts.append(draw(inputs, outputs))
    src = np.concatenate([p[0] for p in parts]).astype(np.int64)
    dst = np.concatenate([p[1] for p in parts]).astype(np.int64)

    def lacking(nodes, ends):
        has = np.zeros(n, dtype=bool)
        has[ends] = True
        return nodes[~has[nodes]]

    # hidden without an incoming edge: from an input (pick < n_inputs) or an earlier hidden neuron
    needy = lacking(hidden, dst)
    pick = rng.integers(0, n_inputs + rank[needy - n_inputs])
    senders = np.where(pick < n_inputs, pick, by_rank[np.maximum(pick - n_inputs, 0)])
    src, dst = np.append(src, senders), np.append(dst, needy)
    # hidden without an outgoing edge: to a hidden neuron 1 + pick ranks later, or an output
    needy = lacking(hidden, src)
    needy_rank = rank[needy - n_inputs]
    n_later = n_hidden - 1 - needy_rank
    pick = rng.integers(0, n_later + n_outputs)
    later = by_rank[np.minimum(needy_rank + 1 + pick, n_hidden - 1)]
    receivers = np.where(pick < n_later, later, outputs[0] + pick - n_later)
    src, dst = np.append(src, needy), np.append(dst, receivers)
    # outputs without an incoming edge: from a hidden neuron (or an input, with skip or no hidden)
    direct = skip or n_hidden == 0
    needy = lacking(outputs, dst)
    senders = rng.integers(0 if direct else n_inputs, n_inputs + n_hidden, needy.size)
    src, dst = np.append(src, senders), np.append(dst, needy)
    # inputs without an outgoing edge: to a hidden neuron (or an output, with skip or no hidden)
    needy = lacking(inputs, src)
    receivers = rng.integers(n_inputs, n if direct else n_inputs + n_hidden, needy.size)
    src, dst = np.append(src, needy), np.append(dst, receivers)

    order = np.lexsort((dst, src))
    return Topology.from_index(n, np.stack([src[order], dst[order]]), inputs, outputs, bias=bias)


def random_graph(n_neurons, n_edges, n_inputs, n_outputs, seed=0, rounds=3, bias=True) -> Topology:
    """A random neuron-level directed graph; cycles allowed (rounds, backward_rounds = ``rounds``).

    Neurons: inputs ``0..n_inputs-1``, outputs the last ``n_outputs`` (then ``"bias"``). Edges:
    ``n_edges`` distinct uniform pairs (sender any neuron, receiver any non-input, no
    self-loops), sorted by (sender, receiver), plus one input -> output edge per output that no
    input reaches (rare unless the graph is sparse). Vectorized: 100k neurons and 1M edges take
    about a second.
    """
    if n_inputs < 1 or n_outputs < 1 or n_inputs + n_outputs > n_neurons:
        raise ValueError("random_graph needs n_inputs, n_outputs >= 1 and n_inputs + n_outputs <= n_neurons")
    n_receivers = n_neurons - n_inputs
    if not 1 <= n_edges <= n_receivers * (n_neurons - 1):
        raise ValueError(f"n_edges must be in [1, {n_receivers * (n_neurons - 1)}] for these sizes, got {n_edges}")
    rng = np.random.default_rng(seed)
    keys = np.zeros(0, dtype=np.int64)  # edge u -> v as u * n_neurons + v
    while len(keys) < n_edges:
        draw = int(1.1 * (n_edges - len(keys))) + 16
        src = rng.integers(0, n_neurons, draw)
        dst = rng.integers(n_inputs, n_neurons, draw)
        keys = np.unique(np.concatenate([keys, (src * n_neurons + dst)[src != dst]]))
    keys = np.sort(rng.choice(keys, n_edges, replace=False))
    src, dst = keys // n_neurons, keys % n_neurons

    outputs = np.arange(n_neurons - n_outputs, n_neurons)
    inputs = np.arange(n_inputs)
    lost = outputs[~validate.reachable(n_neurons, src, dst, inputs)[outputs]]
    if lost.size:
        keys = np.sort(np.concatenate([keys, rng.integers(0, n_inputs, lost.size) * n_neurons + lost]))
        src, dst = keys // n_neurons, keys % n_neurons
    rounds = rounds if validate.is_cyclic(n_neurons, src, dst) else None  # a sparse draw may be acyclic
    return Topology.from_index(n_neurons, np.stack([src, dst]), inputs, outputs, bias=bias,
                               rounds=rounds, backward_rounds=rounds)


def build(spec: str, n_inputs: int, n_outputs: int) -> Topology:
    """A topology from a short spec, sized for a task with ``n_inputs`` inputs and ``n_outputs`` classes.

    - ``"mlp:256"`` / ``"mlp:256,128"``: :func:`mlp` with those hidden sizes (``"mlp"``: no hidden layer);
    - ``"skip:64,32"``: :func:`superneuron_skip` with those hidden sizes;
    - a path ending in ``.graphml``: :meth:`Topology.load`, checked against the task's sizes.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"topology spec must be a non-empty string, got {spec!r}")
    if spec.endswith(".graphml"):
        topology = Topology.load(spec)
        if (len(topology.inputs), len(topology.outputs)) != (n_inputs, n_outputs):
            raise ValueError(f"topology {spec} has {len(topology.inputs)} inputs and {len(topology.outputs)} "
                             f"outputs; the task needs {n_inputs} and {n_outputs}")
        return topology
    kind, _, sizes = spec.partition(":")
    makers = {"mlp": mlp, "skip": superneuron_skip}
    if kind not in makers:
        raise ValueError(f"unknown topology spec {spec!r}: expected 'mlp:<hidden sizes>', "
                         "'skip:<hidden sizes>' or a .graphml file")
    try:
        hidden = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        hidden = [0]
    if any(h < 1 for h in hidden) or (kind == "skip" and len(hidden) < 1):
        raise ValueError(f"topology spec {spec!r}: hidden sizes must be positive integers separated by ','")
    return makers[kind]([n_inputs, *hidden, n_outputs])
