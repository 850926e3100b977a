"""Shared fixtures: tiny float64 graphs covering each execution path."""
import sys
from pathlib import Path

import networkx as nx
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference is importable as `reference`

import graphnet as gn  # noqa: E402

torch.set_num_threads(1)


def _superneuron_dag() -> gn.Topology:
    """Superneuron DAG with a skip block and dense blocks of >= 16 synapses."""
    g = nx.DiGraph()
    g.add_node("in", role="input", size=6)
    g.add_node("h1", size=5)
    g.add_node("h2", size=4)
    g.add_node("single")
    g.add_node("out", role="output", size=3)
    g.add_edges_from([("in", "h1"), ("h1", "h2"), ("h2", "out"), ("in", "h2"), ("h1", "single"), ("single", "out")])
    return gn.Topology.from_networkx(g)


def _recurrent() -> gn.Topology:
    """Cyclic graph: a recurrent pair of neurons next to a superneuron."""
    g = nx.DiGraph()
    g.add_node("x0", role="input")
    g.add_node("x1", role="input")
    g.add_node("h", size=5)
    g.add_nodes_from(["a", "b"])
    g.add_node("o0", role="output")
    g.add_node("o1", role="output")
    g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "a"), ("a", "b"), ("b", "a"), ("a", "o0"), ("b", "o1"),
                      ("h", "o1"), ("x0", "o0")])
    return gn.Topology.from_networkx(g)


def _neuron_dag() -> gn.Topology:
    """Neuron-level DAG with skips and a custom backward set (feedback without forward twins)."""
    forward = [(0, 3), (1, 3), (2, 4), (3, 4), (3, 5), (4, 6), (5, 6), (5, 7), (1, 7), (4, 7)]
    backward = [(6, 4), (7, 5), (6, 3), (7, 3), (5, 4)]
    return gn.Topology.from_edges(forward, inputs=[0, 1, 2], outputs=[6, 7], backward=backward)


TOPOLOGIES = {"superneuron_dag": _superneuron_dag, "recurrent": _recurrent, "neuron_dag": _neuron_dag}


@pytest.fixture(params=sorted(TOPOLOGIES))
def topology(request) -> gn.Topology:
    return TOPOLOGIES[request.param]()
