"""Generators: structure checked against networkx and hand-built references."""
import networkx as nx
import numpy as np
import pytest

from graphnet import topologies


def nx_forward(topology, with_bias=False):
    graph = nx.DiGraph()
    graph.add_nodes_from(topology.neurons)
    graph.add_edges_from(e for e in topology.forward_edges if with_bias or e[0] != "bias")
    return graph


def test_mlp_groups_edges_and_bias():
    t = topologies.mlp((5, 4, 3, 2))
    assert [(g.name, g.size) for g in t.groups] == [("input", 5), ("hidden1", 4), ("hidden2", 3), ("output", 2),
                                                    ("bias", 1)]
    assert t.inputs == tuple(("input", i) for i in range(5)) and t.outputs == (("output", 0), ("output", 1))
    assert t.forward_index.shape[1] == 5 * 4 + 4 * 3 + 3 * 2 + (4 + 3 + 2)
    layers = [[("input", i) for i in range(5)], [("hidden1", i) for i in range(4)],
              [("hidden2", i) for i in range(3)], [("output", i) for i in range(2)]]
    dense = [(u, v) for lower, upper in zip(layers, layers[1:]) for u in lower for v in upper]
    bias = [("bias", v) for layer in layers[1:] for v in layer]
    assert t.forward_edges == dense + bias
    assert len(t.forward_blocks) == 3 + 3 and not t.forward_is_cyclic


def test_mlp_without_bias_and_bad_sizes():
    t = topologies.mlp((3, 2), bias=False)
    assert t.bias_index is None and t.forward_index.shape[1] == 6 and len(t.groups) == 2
    with pytest.raises(ValueError, match="at least an input and an output"):
        topologies.mlp((3,))


def test_superneuron_skip_default_skips():
    t = topologies.superneuron_skip((6, 5, 4, 3))
    pairs = {(t.groups[b.a].name, t.groups[b.b].name) for b in t.forward_blocks}
    assert {("input", "hidden2"), ("hidden1", "output"), ("input", "hidden1")} <= pairs
    assert t.forward_index.shape[1] == 6 * 5 + 5 * 4 + 4 * 3 + 6 * 4 + 5 * 3 + (5 + 4 + 3)
    assert nx.is_directed_acyclic_graph(nx_forward(t, with_bias=True))
    assert len(set(t.forward_edges)) == len(t.forward_edges)


def test_superneuron_skip_custom_and_invalid_skips():
    t = topologies.superneuron_skip((4, 3, 3, 2), skips=[(0, 3)], bias=False)
    assert t.forward_index.shape[1] == 4 * 3 + 3 * 3 + 3 * 2 + 4 * 2
    with pytest.raises(ValueError, match=r"skip \(1, 2\)"):
        topologies.superneuron_skip((4, 3, 3, 2), skips=[(1, 2)])
    with pytest.raises(ValueError, match=r"skip \(2, 0\)"):
        topologies.superneuron_skip((4, 3, 3, 2), skips=[(2, 0)])


def test_recurrent_pair_example():
    t = topologies.recurrent_pair()
    assert t.forward_is_cyclic and ("a", "b") in t.forward_edges and ("b", "a") in t.forward_edges
    reference = nx.condensation(nx_forward(t, with_bias=True))
    assert t.rounds == nx.dag_longest_path_length(reference) + 2 == 5


@pytest.mark.parametrize("seed, skip, sizes", [(0, True, (4, 30, 3)), (1, False, (3, 20, 2)), (2, True, (2, 0, 2)),
                                               (3, False, (5, 1, 1)), (4, True, (6, 60, 4))])
def test_random_dag_is_acyclic_and_has_no_dead_neurons(seed, skip, sizes):
    n_in, n_hidden, n_out = sizes
    t = topologies.random_dag(n_in, n_hidden, n_out, edge_prob=0.1, skip=skip, seed=seed)
    graph = nx_forward(t)
    assert nx.is_directed_acyclic_graph(graph)
    inputs, outputs = set(t.inputs), set(t.outputs)
    hidden = set(range(n_in, n_in + n_hidden))
    assert inputs == set(range(n_in)) and outputs == set(range(n_in + n_hidden, n_in + n_hidden + n_out))
    assert all(graph.in_degree(h) > 0 and graph.out_degree(h) > 0 for h in hidden)
    assert all(graph.out_degree(o) == 0 for o in outputs) and all(graph.out_degree(i) > 0 for i in inputs)
    reached = set().union(*(nx.descendants(graph, i) for i in inputs))
    assert outputs | hidden <= reached
    assert len(set(t.forward_edges)) == len(t.forward_edges)
    user_edges = [e for e in t.forward_edges if e[0] != "bias"]
    assert user_edges == sorted(user_edges)
    if not skip:
        assert not any(u in inputs and v in outputs for u, v in user_edges)


def test_random_dag_is_seeded():
    assert topologies.random_dag(3, 10, 2, seed=5) == topologies.random_dag(3, 10, 2, seed=5)
    assert topologies.random_dag(3, 10, 2, seed=5) != topologies.random_dag(3, 10, 2, seed=6)


def test_random_graph_structure():
    n, m = 300, 2000
    t = topologies.random_graph(n, m, n_inputs=10, n_outputs=5, seed=1, rounds=4)
    src, dst = t.forward_index
    user = src != t.bias_index
    assert m <= user.sum() <= m + 5
    assert not np.any(src == dst) and not np.isin(dst, t.input_index).any()
    assert len(set(zip(src.tolist(), dst.tolist()))) == len(src)
    assert t.outputs == tuple(range(n - 5, n)) and t.inputs == tuple(range(10))
    assert t.forward_is_cyclic and t.rounds == 4 and t.backward_rounds == 4
    reached = set().union(*(nx.descendants(nx_forward(t), i) for i in t.inputs))
    assert set(t.outputs) <= reached


def test_random_graph_sparse_reaches_every_output():
    t = topologies.random_graph(200, 60, n_inputs=3, n_outputs=20, seed=0)
    reached = set().union(*(nx.descendants(nx_forward(t), i) for i in t.inputs))
    assert set(t.outputs) <= reached


def test_random_graph_large():
    t = topologies.random_graph(20_000, 200_000, n_inputs=50, n_outputs=10, seed=2)
    src, dst = t.forward_index
    user = src != t.bias_index
    assert t.n_neurons == 20_001 and 200_000 <= user.sum() <= 200_010
    key = src * t.n_neurons + dst
    assert np.unique(key).size == key.size and not np.any(src == dst)


def test_random_graph_bad_arguments():
    with pytest.raises(ValueError, match="n_edges must be in"):
        topologies.random_graph(5, 100, 1, 1)
    with pytest.raises(ValueError, match="n_inputs \\+ n_outputs <= n_neurons"):
        topologies.random_graph(3, 2, 2, 2)
