"""GraphML save/load: round trips, hand-written files, and clear errors on bad files."""
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from graphnet import topologies
from graphnet.topology import EdgeBlock, NeuronGroup, Topology

SHIPPED = Path(__file__).resolve().parents[2] / "topologies"


def mixed_names():
    """Neuron-level, str/int/tuple names, outputs not in index order, explicit backward edges."""
    forward = [("x", ("h", 1)), (("h", 1), 3), ("x", 3), (3, "y2"), (("h", 1), "y1"), (3, ("h", 1))]
    return Topology.from_edges(forward, ["x"], ["y1", "y2"], backward=[("y1", "x"), (3, ("h", 1))])


ROUND_TRIPS = {
    "mixed_names": mixed_names,
    "backward_none": lambda: Topology.from_edges([("x", "y")], ["x"], ["y"], backward="none", bias=False),
    "self_loops_and_rounds": lambda: Topology.from_edges([("x", "a"), ("a", "a"), ("a", "y")], ["x"], ["y"],
                                                         allow_self_loops=True, rounds=3, backward_rounds=6),
    "user_bias": lambda: Topology.from_edges([("x", "y"), ("bias", "y")], ["x"], ["y"], bias=False),
    "random_dag": lambda: topologies.random_dag(3, 12, 2, seed=1),
    "random_graph": lambda: topologies.random_graph(60, 300, 4, 3, seed=2),
    "mlp": lambda: topologies.mlp((6, 5, 3)),
    "superneuron_skip": lambda: topologies.superneuron_skip((7, 5, 4, 3)),
    "recurrent_pair": topologies.recurrent_pair,
    "recurrent_pair_no_backward": lambda: topologies.recurrent_pair().with_backward("none"),
    "tuple_and_int_nodes": lambda: Topology.from_networkx(tuple_int_graph()),
}


def tuple_int_graph():
    graph = nx.MultiDiGraph()
    graph.add_node(("in", "a"), role="input", size=2)
    graph.add_node(7, size=3)
    graph.add_node("h")
    graph.add_node(("out",), role="output", size=2)
    graph.add_edges_from([(("in", "a"), 7), (7, ("out",)), (("in", "a"), "h"), ("h", ("out",))])
    graph.add_edge(("out",), 7, direction="backward")
    graph.add_edge(7, ("in", "a"), direction="backward")
    return graph


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_save_load_round_trip(tmp_path, name):
    topology = ROUND_TRIPS[name]()
    path = tmp_path / f"{name}.graphml"
    topology.save(path)
    loaded = Topology.load(path)
    assert loaded == topology
    assert loaded.forward_edges == topology.forward_edges and loaded.backward_edges == topology.backward_edges
    assert loaded.inputs == topology.inputs and loaded.outputs == topology.outputs
    assert [type(n) for n in loaded.neurons] == [type(n) for n in topology.neurons]


def test_superneuron_file_is_the_coarse_graph(tmp_path):
    path = tmp_path / "mlp.graphml"
    topologies.mlp((784, 256, 10)).save(path)
    graph = nx.read_graphml(path)
    assert list(graph.nodes) == ["input", "hidden1", "output", "bias"]
    assert [graph.nodes[n].get("size") for n in graph.nodes] == [784, 256, 10, None]
    assert graph.graph["graphnet_format"] == 1 and graph.graph["level"] == "superneuron"
    assert graph.graph["backward"] == "reverse" and graph.number_of_edges() == 2 + 2


def test_neuron_level_file_has_string_ids_and_json_names(tmp_path):
    path = tmp_path / "mixed.graphml"
    mixed_names().save(path)
    graph = nx.read_graphml(path)
    assert graph.nodes['["h", 1]']["name_json"] == '["h", 1]' and "name_json" not in graph.nodes["x"]
    assert graph.graph["level"] == "neuron" and graph.graph["backward"] == "explicit"


def test_shipped_topologies_match_their_generators():
    expected = {
        "mlp_784_256_10.graphml": topologies.mlp((784, 256, 10)),
        "superneuron_skip_784_64_32_10.graphml": topologies.superneuron_skip((784, 64, 32, 10)),
        "recurrent_pair.graphml": topologies.recurrent_pair(),
        "random_dag_4_12_2.graphml": topologies.random_dag(4, 12, 2, seed=0),
    }
    assert sorted(p.name for p in SHIPPED.glob("*.graphml")) == sorted(expected)
    for name, topology in expected.items():
        assert Topology.load(SHIPPED / name) == topology, name


HAND_WRITTEN = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="role" for="node" attr.name="role" attr.type="string"/>
  <key id="size" for="node" attr.name="size" attr.type="int"/>
  <key id="dir" for="edge" attr.name="direction" attr.type="string"/>
  <graph edgedefault="directed">
    <node id="pixels"><data key="role">input</data><data key="size">4</data></node>
    <node id="h"><data key="size">3</data></node>
    <node id="label"><data key="role">output</data><data key="size">2</data></node>
    <edge source="pixels" target="h"/>
    <edge source="h" target="label"/>
    <edge source="pixels" target="label"/>
    {extra}
  </graph>
</graphml>
"""


def test_hand_written_file_gets_groups_and_automatic_bias(tmp_path):
    path = tmp_path / "hand.graphml"
    path.write_text(HAND_WRITTEN.format(extra=""))
    t = Topology.load(path)
    graph = nx.DiGraph()
    graph.add_node("pixels", role="input", size=4)
    graph.add_node("h", size=3)
    graph.add_node("label", role="output", size=2)
    graph.add_edges_from([("pixels", "h"), ("pixels", "label"), ("h", "label")])
    assert t == Topology.from_networkx(graph)
    assert [g.name for g in t.groups] == ["pixels", "h", "label", "bias"] and t.bias_index == 9


def test_hand_written_backward_edge(tmp_path):
    path = tmp_path / "hand.graphml"
    path.write_text(HAND_WRITTEN.format(extra='<edge source="label" target="h"><data key="dir">backward</data></edge>'))
    t = Topology.load(path)
    assert t.backward_index.shape[1] == 2 * 3 and not any(b.reversed for b in t.backward_blocks)


def test_cannot_save_groups_that_are_not_a_superneuron_graph(tmp_path):
    # every neuron a group, but two forward edges outside any block
    t = Topology._from_arrays(("x", "h", "y"), [[0, 1, 0], [1, 2, 2]], [[1], [0]], [0], [2], None,
                              groups=(NeuronGroup("x", 0, 1), NeuronGroup("h", 1, 1), NeuronGroup("y", 2, 1)),
                              forward_blocks=(EdgeBlock(0, 1, 0),))
    with pytest.raises(ValueError, match=r"cannot save .* as a superneuron graph: 2 forward edges are in no "
                                         r"block; save topology.expand\(\) instead"):
        t.save(tmp_path / "t.graphml")
    t.expand().save(tmp_path / "t.graphml")
    assert Topology.load(tmp_path / "t.graphml") == t.expand()


def test_cannot_save_inputs_in_an_order_a_superneuron_graph_cannot_express(tmp_path):
    base = topologies.mlp((2, 1), bias=False)
    swapped = Topology._from_arrays(base.neurons, base.forward_index, base.backward_index, [1, 0],
                                    base.output_index, None, base.groups, base.forward_blocks, base.backward_blocks)
    with pytest.raises(ValueError, match="input/output order differ .* save topology.expand"):
        swapped.save(tmp_path / "t.graphml")


def test_cannot_save_a_name_graphml_cannot_hold(tmp_path):
    t = Topology.from_edges([("x", frozenset({1})), (frozenset({1}), "y")], ["x"], ["y"])
    with pytest.raises(ValueError, match="name frozenset.* has type frozenset"):
        t.save(tmp_path / "t.graphml")


def test_names_that_collide_as_strings(tmp_path):
    t = Topology.from_edges([("x", 1), ("x", "1"), (1, "y"), ("1", "y")], ["x"], ["y"])
    with pytest.raises(ValueError, match="names 1 and '1' both become the GraphML id '1'"):
        t.save(tmp_path / "t.graphml")


def write(tmp_path, text, name="bad.graphml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def graphnet_file(tmp_path, version):
    path = tmp_path / "v.graphml"
    topologies.mlp((3, 2)).save(path)
    graph = nx.read_graphml(path)
    if version is None:
        del graph.graph["graphnet_format"]
        for node in graph.nodes:
            del graph.nodes[node]["role"]
    else:
        graph.graph["graphnet_format"] = version
    nx.write_graphml(graph, path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no topology file at .*nope.graphml"):
        Topology.load(tmp_path / "nope.graphml")


@pytest.mark.parametrize("content, match", [
    (b"\x00\x01 not xml", "bad.graphml is not a readable GraphML file: not well-formed"),
    (b"", "bad.graphml is not a readable GraphML file: no element found"),
    ("<foo/>", "bad.graphml is not a readable GraphML file"),
    ('<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="directed">'
     '<node id="a"><data key="nokey">1</data></node></graph></graphml>', "not a readable GraphML file: .*no key nokey"),
])
def test_corrupt_files(tmp_path, content, match):
    with pytest.raises(ValueError, match=match):
        Topology.load(write(tmp_path, content))


def test_wrong_and_absent_format_version(tmp_path):
    with pytest.raises(ValueError, match=r"v.graphml has graphnet_format 2; this graphnet reads format 1"):
        Topology.load(graphnet_file(tmp_path, 2))
    with pytest.raises(ValueError, match="v.graphml is not a graphnet topology: no 'graphnet_format'"):
        Topology.load(graphnet_file(tmp_path, None))


def test_file_that_fails_validation_names_path_and_problem(tmp_path):
    text = HAND_WRITTEN.format(extra='<node id="lost"><data key="role">output</data></node>'
                                     '<edge source="h" target="pixels"/>')
    with pytest.raises(ValueError, match=r"bad.graphml: forward edge .* goes into input"):
        Topology.load(write(tmp_path, text))
    text = HAND_WRITTEN.format(extra='<node id="lost"><data key="role">output</data></node>')
    with pytest.raises(ValueError, match=r"bad.graphml: 1 output\(s\) unreachable .*'lost'"):
        Topology.load(write(tmp_path, text))


def test_undirected_file(tmp_path):
    text = HAND_WRITTEN.replace('edgedefault="directed"', 'edgedefault="undirected"').format(extra="")
    with pytest.raises(ValueError, match="bad.graphml holds an undirected graph"):
        Topology.load(write(tmp_path, text))


def test_loaded_arrays_are_read_only(tmp_path):
    path = tmp_path / "t.graphml"
    topologies.recurrent_pair().save(path)
    t = Topology.load(path)
    assert not t.forward_index.flags.writeable
    assert np.array_equal(t.forward_index, topologies.recurrent_pair().forward_index)
