"""Topology construction, edge order, blocks and validation, against independent references."""
import pickle

import networkx as nx
import numpy as np
import pytest

from graphnet.topology import EdgeBlock, NeuronGroup, Topology, validate


def chain():
    return Topology.from_edges([("x1", "h"), ("x2", "h"), ("h", "y"), ("x1", "y")], ["x1", "x2"], ["y"])


def superneuron_graph(graph_type=nx.DiGraph):
    graph = graph_type()
    graph.add_node("in", role="input", size=3)
    graph.add_node("h", size=2)
    graph.add_node("s")
    graph.add_node("out", role="output", size=2)
    graph.add_edges_from([("in", "h"), ("h", "out"), ("in", "s"), ("s", "out")])
    return graph


def expand_blocks_by_loops(topology, blocks, n_edges):
    """Reference: the (sender, receiver) of each edge a block declares, by plain loops."""
    declared = {}
    for blk in blocks:
        a, b = topology.groups[blk.a], topology.groups[blk.b]
        for i in range(a.size):
            for j in range(b.size):
                pair = (a.start + i, b.start + j)
                declared[blk.edge_start + i * b.size + j] = pair[::-1] if blk.reversed else pair
    assert all(0 <= e < n_edges for e in declared)
    return declared


# --- from_edges ------------------------------------------------------------------------------------

def test_neuron_order_is_inputs_bias_then_first_appearance():
    t = Topology.from_edges([("x2", "b"), ("x1", "a"), ("a", "y"), ("b", "y")], ["x1", "x2"], ["y"])
    assert t.neurons == ("x1", "x2", "bias", "b", "a", "y")
    assert t.inputs == ("x1", "x2") and t.outputs == ("y",)
    assert t.input_index.tolist() == [0, 1] and t.output_index.tolist() == [5]
    assert t.bias_index == 2 and t.n_neurons == 6


def test_forward_edges_keep_user_order_then_bias_edges_in_index_order():
    user = [("x2", "b"), ("x1", "a"), ("a", "y"), ("b", "y")]
    t = Topology.from_edges(user, ["x1", "x2"], ["y"])
    assert t.forward_edges == user + [("bias", "b"), ("bias", "a"), ("bias", "y")]
    names = t.neurons
    assert [(names[u], names[v]) for u, v in t.forward_index.T] == t.forward_edges


def test_reverse_backward_is_each_forward_edge_reversed_in_order():
    t = chain()
    assert t.backward_edges == [(v, u) for u, v in t.forward_edges]
    assert np.array_equal(t.backward_index, t.forward_index[::-1])


def test_backward_none_and_explicit():
    t = Topology.from_edges([("x", "h"), ("h", "y")], ["x"], ["y"], backward="none")
    assert t.backward_index.shape == (2, 0) and t.backward_edges == []
    t = Topology.from_edges([("x", "h"), ("h", "y")], ["x"], ["y"], backward=[("y", "x"), ("h", "x")])
    assert t.backward_edges == [("y", "x"), ("h", "x")]
    assert t.backward_index.tolist() == [[t.index_of("y"), t.index_of("h")], [0, 0]]


def test_output_order_is_the_users_not_the_index_order():
    t = Topology.from_edges([("x", "y2"), ("x", "y1")], ["x"], ["y1", "y2"])
    assert t.outputs == ("y1", "y2")
    assert t.neurons == ("x", "bias", "y2", "y1") and t.output_index.tolist() == [3, 2]


def test_no_bias():
    t = Topology.from_edges([("x", "y")], ["x"], ["y"], bias=False)
    assert t.bias_index is None and t.neurons == ("x", "y") and t.forward_edges == [("x", "y")]


def test_user_wired_bias_with_bias_false():
    t = Topology.from_edges([("x", "y"), ("bias", "y")], ["x"], ["y"], bias=False)
    assert t.bias_index == t.index_of("bias") == 2


def test_recurrent_pair_is_legal_and_each_direction_has_its_backward_edge():
    t = Topology.from_edges([("x", "a"), ("a", "b"), ("b", "a"), ("b", "y")], ["x"], ["y"], bias=False)
    assert t.forward_is_cyclic and t.backward_is_cyclic
    assert ("a", "b") in t.forward_edges and ("b", "a") in t.forward_edges
    assert t.backward_edges.count(("b", "a")) == 1 and t.backward_edges.count(("a", "b")) == 1
    # condensation x -> {a, b} -> y: 3 nodes, plus 1
    assert t.rounds == 4 and t.backward_rounds == 4


def test_explicit_rounds_and_acyclic_default():
    assert chain().rounds == 1 and chain().backward_rounds == 1 and not chain().forward_is_cyclic
    t = Topology.from_edges([("x", "a"), ("a", "a"), ("a", "y")], ["x"], ["y"], rounds=7,
                            backward_rounds=2, allow_self_loops=True)
    assert t.forward_is_cyclic and (t.rounds, t.backward_rounds) == (7, 2)


def test_index_of():
    t = chain()
    assert [t.index_of(name) for name in t.neurons] == list(range(t.n_neurons))
    with pytest.raises(ValueError, match="no neuron named 'zz'"):
        t.index_of("zz")


# --- value semantics -------------------------------------------------------------------------------

def test_immutable_and_read_only_arrays():
    t = chain()
    with pytest.raises(AttributeError, match="immutable"):
        t.rounds = 3
    for array in (t.forward_index, t.backward_index, t.input_index, t.output_index):
        with pytest.raises(ValueError):
            array[0] = 0
    with pytest.raises(TypeError, match="from_edges"):
        Topology()


def test_equality_hash_pickle_and_repr():
    t = chain()
    assert t == chain() and hash(t) == hash(chain())
    assert t != Topology.from_edges([("x1", "h"), ("x2", "h"), ("h", "y")], ["x1", "x2"], ["y"])
    assert t != t.with_backward("none")
    copy = pickle.loads(pickle.dumps(t))
    assert copy == t and not copy.forward_index.flags.writeable
    assert repr(t) == "Topology(5 neurons, 2 inputs, 1 outputs, 6 forward / 6 backward edges, 0 groups, acyclic)"


def test_with_backward():
    t = chain()
    explicit = t.with_backward([("y", "x1")])
    assert explicit.backward_edges == [("y", "x1")] and explicit.forward_edges == t.forward_edges
    assert explicit.with_backward("reverse") == t
    g = Topology.from_networkx(superneuron_graph())
    assert g.with_backward("none").with_backward("reverse") == g


# --- from_networkx and blocks ----------------------------------------------------------------------

def test_from_networkx_groups_inputs_and_neuron_names():
    t = Topology.from_networkx(superneuron_graph())
    assert t.groups == (NeuronGroup("in", 0, 3), NeuronGroup("h", 3, 2), NeuronGroup("s", 5, 1),
                        NeuronGroup("out", 6, 2), NeuronGroup("bias", 8, 1))
    assert t.neurons == (("in", 0), ("in", 1), ("in", 2), ("h", 0), ("h", 1), "s", ("out", 0), ("out", 1), "bias")
    assert t.inputs == (("in", 0), ("in", 1), ("in", 2)) and t.outputs == (("out", 0), ("out", 1))
    assert t.bias_index == 8


def test_blocks_cover_the_edges_they_declare():
    t = Topology.from_networkx(superneuron_graph())
    # user blocks in networkx edge order, then bias -> h, s, out
    assert [(t.groups[b.a].name, t.groups[b.b].name) for b in t.forward_blocks] == [
        ("in", "h"), ("in", "s"), ("h", "out"), ("s", "out"), ("bias", "h"), ("bias", "s"), ("bias", "out")]
    for blocks, index in ((t.forward_blocks, t.forward_index), (t.backward_blocks, t.backward_index)):
        declared = expand_blocks_by_loops(t, blocks, index.shape[1])
        assert sorted(declared) == list(range(index.shape[1]))  # every edge covered exactly once
        assert all(tuple(index[:, e]) == pair for e, pair in declared.items())
    assert all(b.reversed for b in t.backward_blocks)


def test_block_edges_are_row_major():
    t = Topology.from_networkx(superneuron_graph())
    first = t.forward_edges[:6]
    assert first == [(("in", i), ("h", j)) for i in range(3) for j in range(2)]


def test_expand_keeps_everything_but_groups_and_blocks():
    t = Topology.from_networkx(superneuron_graph())
    e = t.expand()
    assert e.groups == () and e.forward_blocks == () and e.backward_blocks == ()
    for field in ("neurons", "inputs", "outputs", "bias_index", "rounds", "backward_rounds", "forward_is_cyclic"):
        assert getattr(e, field) == getattr(t, field)
    for field in ("forward_index", "backward_index", "input_index", "output_index"):
        assert np.array_equal(getattr(e, field), getattr(t, field))
    assert e.forward_edges == t.forward_edges


@pytest.mark.parametrize("graph_type", [nx.DiGraph, nx.MultiDiGraph])
def test_from_networkx_explicit_backward_edges(graph_type):
    graph = superneuron_graph(graph_type)
    graph.add_edge("out", "h", direction="backward")
    graph.add_edge("s", "in", direction="backward")
    t = Topology.from_networkx(graph)
    assert [(t.groups[b.a].name, t.groups[b.b].name, b.reversed) for b in t.backward_blocks] == [
        ("s", "in", False), ("out", "h", False)]  # networkx edge order
    assert t.backward_index.shape[1] == 3 + 4
    declared = expand_blocks_by_loops(t, t.backward_blocks, 7)
    assert all(tuple(t.backward_index[:, e]) == pair for e, pair in declared.items())


def test_multidigraph_forward_and_backward_on_the_same_pair():
    graph = nx.MultiDiGraph()
    graph.add_node("x", role="input")
    graph.add_node("y", role="output")
    graph.add_edge("x", "y")
    graph.add_edge("x", "y", direction="backward")
    t = Topology.from_networkx(graph, bias=False)
    assert t.forward_edges == [("x", "y")] and t.backward_edges == [("x", "y")]


def test_recurrent_superneuron_pair():
    graph = superneuron_graph()
    graph.add_edge("out", "h")
    t = Topology.from_networkx(graph)
    assert t.forward_is_cyclic
    reference = nx.condensation(nx.DiGraph(t.forward_edges))
    assert t.rounds == nx.dag_longest_path_length(reference) + 2


def test_io_order_and_edge_order_attributes():
    graph = nx.DiGraph()
    graph.add_node("y2", role="output", io_order=1)
    graph.add_node("y1", role="output", io_order=0)
    graph.add_node("x", role="input")
    graph.add_edge("x", "y2", edge_order=1)
    graph.add_edge("x", "y1", edge_order=0)
    t = Topology.from_networkx(graph, bias=False)
    assert t.outputs == ("y1", "y2") and t.forward_edges == [("x", "y1"), ("x", "y2")]


def test_to_networkx_round_trip():
    for t in (chain(), Topology.from_edges([("x", "y2"), ("x", "y1")], ["x"], ["y1", "y2"], backward=[("y1", "x")]),
              Topology.from_networkx(superneuron_graph())):
        graph = t.to_networkx()
        assert isinstance(graph, nx.MultiDiGraph)
        assert [graph.nodes[n]["role"] for n in t.inputs] == ["input"] * len(t.inputs)
        assert graph.nodes["bias"]["role"] == "bias"
        back = Topology.from_networkx(graph, bias=False)
        assert back.expand() == t.expand()


# --- graph algorithms against networkx -------------------------------------------------------------

def random_digraph(seed, n=30, m=60):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    return n, src.astype(np.int64), dst.astype(np.int64)


@pytest.mark.parametrize("seed", range(12))
def test_strong_components_cycles_and_rounds_match_networkx(seed):
    n, src, dst = random_digraph(seed, m=20 + 5 * seed)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(zip(src.tolist(), dst.tolist()))
    label = validate.strong_components(n, src, dst)
    assert {frozenset(np.flatnonzero(label == c).tolist()) for c in np.unique(label)} == {
        frozenset(c) for c in nx.strongly_connected_components(graph)}
    assert validate.is_cyclic(n, src, dst) == (not nx.is_directed_acyclic_graph(graph))
    expected = nx.dag_longest_path_length(nx.condensation(graph)) + 2 if validate.is_cyclic(n, src, dst) else 1
    assert validate.default_rounds(n, src, dst) == expected


def test_reachable_matches_networkx():
    n, src, dst = random_digraph(3, n=40, m=50)
    graph = nx.DiGraph(list(zip(src.tolist(), dst.tolist())))
    seen = validate.reachable(n, src, dst, np.array([0, 1]))
    expected = {0, 1} | set().union(*(nx.descendants(graph, s) for s in (0, 1) if s in graph))
    assert set(np.flatnonzero(seen).tolist()) == expected


# --- validation ------------------------------------------------------------------------------------

E = [("x", "h"), ("h", "y")]


@pytest.mark.parametrize("kwargs, match", [
    (dict(forward=[], inputs=["x"], outputs=["y"]), "unknown input 'x'"),
    (dict(forward=E, inputs=[], outputs=["y"]), "no inputs given"),
    (dict(forward=E, inputs=["x"], outputs=[]), "no outputs given"),
    (dict(forward=E, inputs=["x", "q"], outputs=["y"]), "unknown input 'q'"),
    (dict(forward=E, inputs=["x"], outputs=["y", "q"]), "unknown output 'q'"),
    (dict(forward=E, inputs=["x", "x"], outputs=["y"]), "inputs lists 'x' twice"),
    (dict(forward=E, inputs=["x"], outputs=["y", "y"]), "outputs lists 'y' twice"),
    (dict(forward=E + [("x", "z")], inputs=["x", "z"], outputs=["y", "z"]), "'z' is both an input and an output"),
    (dict(forward=E + [("h2", "y2")], inputs=["x"], outputs=["y", "y2"]), r"unreachable from every input.*'y2'"),
    (dict(forward=E + [("x", "h")], inputs=["x"], outputs=["y"]),
     r"duplicate forward edge \('x', 'h'\) at edges 0 and 2"),
    (dict(forward=E, inputs=["x"], outputs=["y"], backward=[("y", "h"), ("y", "h")]),
     r"duplicate backward edge \('y', 'h'\)"),
    (dict(forward=E + [("h", "h")], inputs=["x"], outputs=["y"]), r"self-loop \('h', 'h'\).*allow_self_loops"),
    (dict(forward=E + [("h", "x")], inputs=["x"], outputs=["y"]), r"\('h', 'x'\) goes into input 'x'"),
    (dict(forward=E, inputs=["x"], outputs=["y"], backward=[("y", "ghost")]),
     r"dangling backward edge \('y', 'ghost'\): neuron 'ghost' is not in the forward graph"),
    (dict(forward=E, inputs=["x"], outputs=["y"], backward="mirror"), "backward must be 'reverse', 'none'.*'mirror'"),
    (dict(forward=E, inputs=["x"], outputs=["y"], rounds=0), "rounds must be an integer >= 1, got 0"),
    (dict(forward=E, inputs=["x"], outputs=["y"], backward_rounds=1.5), "backward_rounds must be an integer"),
    (dict(forward=E + [("bias", "h")], inputs=["x"], outputs=["y"]), "'bias' is a reserved .*pass bias=False"),
    (dict(forward=E, inputs=["x", "bias"], outputs=["y"]), "'bias' is a reserved"),
    (dict(forward=E + [("h", "bias")], inputs=["x"], outputs=["y"], bias=False), "goes into bias neuron 'bias'"),
    (dict(forward=[("x", "h", "y")], inputs=["x"], outputs=["y"]), "forward edge 0 is not a"),
])
def test_from_edges_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Topology.from_edges(**kwargs)


def test_self_loops_allowed_on_request():
    t = Topology.from_edges(E + [("h", "h")], ["x"], ["y"], allow_self_loops=True)
    assert ("h", "h") in t.forward_edges and t.forward_is_cyclic


def nx_graph(*edges, **node_attrs):
    graph = nx.DiGraph()
    graph.add_node("x", role="input")
    graph.add_node("y", role="output")
    for node, attrs in node_attrs.items():
        graph.add_node(node, **attrs)
    graph.add_edges_from(edges or [("x", "y")])
    return graph


@pytest.mark.parametrize("graph, match", [
    (nx_graph(h={"role": "teacher"}), "node 'h' has role 'teacher'"),
    (nx_graph(h={"size": 0}), "node 'h' has size 0"),
    (nx_graph(h={"size": 2.5}), "node 'h' has size 2.5"),
    (nx_graph(h={"size": True}), "node 'h' has size True"),
    (nx_graph(("x", "y", {"direction": "sideways"})), r"edge \('x', 'y'\) has direction 'sideways'"),
    (nx_graph(bias={}), "'bias' is a reserved"),
    (nx_graph(z={"role": "bias"}), "'bias' is a reserved"),
    (nx.Graph([("x", "y")]), "expected a networkx DiGraph"),
    (nx.DiGraph(), "empty graph"),
    (nx.DiGraph([("x", "y")]), "no inputs given"),
])
def test_from_networkx_errors(graph, match):
    with pytest.raises(ValueError, match=match):
        Topology.from_networkx(graph)


def test_from_networkx_bias_role_only_on_the_bias_node():
    with pytest.raises(ValueError, match="node 'z' has role 'bias'"):
        Topology.from_networkx(nx_graph(z={"role": "bias"}), bias=False)


def test_from_networkx_parallel_forward_edges_are_duplicates():
    graph = nx.MultiDiGraph(nx_graph())
    graph.add_edge("x", "y")
    with pytest.raises(ValueError, match=r"duplicate forward edge \('x', 'y'\)"):
        Topology.from_networkx(graph)


def test_from_networkx_backward_graph_attribute():
    graph = nx_graph()
    graph.graph["backward"] = "none"
    assert Topology.from_networkx(graph).backward_index.shape == (2, 0)
    graph.add_edge("y", "x", direction="backward")
    with pytest.raises(ValueError, match="backward='none', but 1 edges"):
        Topology.from_networkx(graph)
    graph.graph["backward"] = "sometimes"
    with pytest.raises(ValueError, match="backward='sometimes'"):
        Topology.from_networkx(graph)


def arrays(**changes):
    """A valid _from_arrays call (x, bias, h, y) with ``changes`` applied."""
    kwargs = dict(neurons=("x", "bias", "h", "y"), forward_index=[[0, 2, 1, 1], [2, 3, 2, 3]],
                  backward_index=[[2, 3], [0, 2]], input_index=[0], output_index=[3], bias_index=1)
    kwargs.update(changes)
    return kwargs


def test_from_arrays_accepts_a_valid_graph():
    t = Topology._from_arrays(**arrays())
    assert t.forward_edges == [("x", "h"), ("h", "y"), ("bias", "h"), ("bias", "y")]


@pytest.mark.parametrize("changes, match", [
    (dict(neurons=()), "empty graph"),
    (dict(neurons=("x", "bias", "x", "y")), "neurons lists 'x' twice"),
    (dict(forward_index=[[0, 2, 1]]), r"forward_index must have shape \[2, num_edges\], got \[1, 3\]"),
    (dict(forward_index=np.zeros((3, 2), dtype=int)), r"got \[3, 2\]"),
    (dict(forward_index=[[0.0, 2.0], [2.0, 3.0]]), "integer neuron ids, got dtype float64"),
    (dict(forward_index=[[0, -2], [2, 3]]), "forward_index has negative neuron id -2 at edge 1"),
    (dict(forward_index=[[0, 2], [2, 9]]), "forward_index has out-of-range neuron id 9 at edge 1 .*4 neurons"),
    (dict(forward_index=np.zeros((2, 0), dtype=int)), "no forward edges"),
    (dict(backward_index=[[2, 7], [0, 2]]), "backward_index has out-of-range neuron id 7"),
    (dict(input_index=[5]), "inputs has out-of-range neuron id 5"),
    (dict(output_index=[]), "no outputs given"),
    (dict(output_index=[1]), "bias neuron 'bias' cannot be an input or an output"),
    (dict(bias_index=9), "bias_index 9 is out of range"),
    (dict(groups=(NeuronGroup("g", 2, 3),)), r"group 'g' covers neurons \[2, 5\)"),
    (dict(groups=(NeuronGroup("g", 0, 2), NeuronGroup("k", 1, 2))), "groups 'g' and 'k' overlap"),
    (dict(groups=(NeuronGroup("g", 0, 1), NeuronGroup("g", 2, 1))), "groups lists 'g' twice"),
    (dict(groups=(NeuronGroup("x", 0, 1), NeuronGroup("h", 2, 1)), forward_blocks=(EdgeBlock(0, 5, 0),)),
     "forward block 0 joins groups 0 and 5"),
    (dict(groups=(NeuronGroup("x", 0, 1), NeuronGroup("h", 2, 1)), forward_blocks=(EdgeBlock(0, 1, 4),)),
     r"forward block 0 covers edges \[4, 5\)"),
    (dict(groups=(NeuronGroup("x", 0, 1), NeuronGroup("h", 2, 1)), forward_blocks=(EdgeBlock(0, 1, 1),)),
     r"forward block 0 \('x' -> 'h'\) declares edge 1 as \('x', 'h'\) but it is \('h', 'y'\)"),
    (dict(groups=(NeuronGroup("x", 0, 1), NeuronGroup("h", 2, 1)),
          forward_blocks=(EdgeBlock(0, 1, 0), EdgeBlock(0, 1, 0))), "forward blocks 0 and 1 cover the same edges"),
    (dict(groups=(NeuronGroup("x", 0, 1), NeuronGroup("h", 2, 1)), backward_blocks=(EdgeBlock(0, 1, 1, True),)),
     r"backward block 0 .* declares edge 1 as \('h', 'x'\) but it is \('y', 'h'\)"),
])
def test_from_arrays_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        Topology._from_arrays(**arrays(**changes))


def test_isolated_neuron_is_allowed_but_not_as_a_backward_endpoint():
    with_lone = ("x", "bias", "h", "y", "lone")
    assert Topology._from_arrays(**arrays(neurons=with_lone)).n_neurons == 5
    with pytest.raises(ValueError, match=r"dangling backward edge \('lone', 'x'\)"):
        Topology._from_arrays(**arrays(neurons=with_lone, backward_index=[[4], [0]]))


def test_from_index_names_bias_and_validation():
    t = Topology.from_index(4, [[0, 1, 2], [2, 2, 3]], inputs=[0, 1], outputs=[3])
    assert t.neurons == (0, 1, 2, 3, "bias") and t.bias_index == 4
    assert t.forward_edges[3:] == [("bias", 2), ("bias", 3)]
    with pytest.raises(ValueError, match="forward_index has out-of-range neuron id 4"):
        Topology.from_index(4, [[0, 1, 2], [2, 2, 4]], inputs=[0, 1], outputs=[3])
    with pytest.raises(ValueError, match="backward_index has negative neuron id -1"):
        Topology.from_index(4, [[0, 1, 2], [2, 2, 3]], inputs=[0, 1], outputs=[3], backward=[[3], [-1]])


def test_rounds_on_an_acyclic_graph_are_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="rounds=5 ignored"):
        topology = Topology.from_edges([(0, 2), (1, 2)], inputs=[0, 1], outputs=[2], rounds=5)
    assert topology.rounds == 1
