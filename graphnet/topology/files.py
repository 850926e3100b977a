"""Topology <-> networkx graphs and GraphML files (imported lazily, so networkx loads only here).

A GraphML file written by :func:`save` holds either the superneuron graph (when the topology has
groups) or the neuron graph, plus graph attributes:

    graphnet_format  1
    level            "superneuron" | "neuron" (a neuron-level file loads without groups)
    bias             whether the topology has a bias neuron (the node ``"bias"``, role "bias",
                     is written explicitly with its edges)
    rounds, backward_rounds, allow_self_loops
    backward         "reverse" (no backward edges written) | "none" | "explicit"

Node attributes: ``role``, ``size`` (superneurons), ``io_order`` (position among inputs or
outputs) and ``name_json`` (the JSON of a name that is not a str; GraphML ids are strings).
Edge attributes: ``direction`` and ``edge_order``. A file authored by hand needs only ``role``
on its nodes; it gets an automatic bias neuron unless it has a node ``"bias"`` or sets the graph
attribute ``bias`` to false.
"""
from __future__ import annotations

import json
import numbers
from pathlib import Path
from xml.etree.ElementTree import ParseError

import networkx as nx
import numpy as np

from graphnet.topology import validate
from graphnet.topology.graph import BIAS, EdgeBlock, NeuronGroup, Topology, reverse_blocks

FORMAT = 1
ROLES = ("input", "output", "hidden", "bias")
DIRECTIONS = ("forward", "backward")
BACKWARD_MODES = ("reverse", "none", "explicit")


# --- networkx -> Topology --------------------------------------------------------------------------

def from_networkx(graph, bias: bool, rounds, backward_rounds, allow_self_loops: bool) -> Topology:
    """See :meth:`Topology.from_networkx`."""
    if not isinstance(graph, nx.DiGraph):
        raise ValueError(f"expected a networkx DiGraph or MultiDiGraph, got {type(graph).__name__}")
    if graph.number_of_nodes() == 0:
        raise ValueError("empty graph: no nodes")
    rounds = graph.graph.get("rounds") if rounds is None else rounds  # to_networkx records them
    backward_rounds = graph.graph.get("backward_rounds") if backward_rounds is None else backward_rounds
    neurons, groups = [], []
    ports = {"input": [], "output": []}  # role -> [(sort key, group position)]
    for position, (node, attrs) in enumerate(graph.nodes(data=True)):
        role = attrs.get("role", "hidden")
        if role not in ROLES:
            raise ValueError(f"node {node!r} has role {role!r}; expected one of {', '.join(ROLES)}")
        if bias and (role == "bias" or _is_bias(node)):
            raise ValueError(f"{BIAS!r} is a reserved node name and role when bias=True; "
                             f"pass bias=False to wire a bias neuron named {BIAS!r} yourself")
        if role == "bias" and not _is_bias(node):
            raise ValueError(f"node {node!r} has role 'bias', which only the node named {BIAS!r} may have")
        size = attrs.get("size")
        if size is None:
            names = [node]
        elif isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"node {node!r} has size {size!r}; a size must be an integer >= 1")
        else:
            names = [(node, i) for i in range(size)]
        groups.append(NeuronGroup(node, len(neurons), len(names)))
        neurons.extend(names)
        if role in ports:
            ports[role].append((_order_key(attrs, "io_order"), position))

    position = {node: k for k, node in enumerate(graph.nodes)}
    pairs = {"forward": [], "backward": []}
    for u, v, attrs in graph.edges(data=True):
        direction = attrs.get("direction", "forward")
        if direction not in DIRECTIONS:
            raise ValueError(f"edge ({u!r}, {v!r}) has direction {direction!r}; expected 'forward' or 'backward'")
        pairs[direction].append((_order_key(attrs, "edge_order"), position[u], position[v]))
    forward_pairs, backward_pairs = ([(a, b) for _, a, b in sorted(pairs[d], key=lambda p: p[0])]
                                     for d in DIRECTIONS)
    if bias:
        inputs = {k for _, k in ports["input"]}
        forward_pairs += [(len(groups), k) for k in range(len(groups)) if k not in inputs]
        groups.append(NeuronGroup(BIAS, len(neurons), 1))
        neurons.append(BIAS)

    forward_blocks = _chained_blocks(forward_pairs, groups)
    forward_index = _block_index(groups, forward_blocks)
    mode = graph.graph.get("backward", "explicit" if backward_pairs else "reverse")
    if mode not in BACKWARD_MODES:
        raise ValueError(f"graph attribute backward={mode!r}; expected one of {', '.join(BACKWARD_MODES)}")
    if mode != "explicit" and backward_pairs:
        raise ValueError(f"graph attribute backward={mode!r}, but {len(backward_pairs)} edges "
                         "are marked direction='backward'")
    if mode == "reverse":
        backward_blocks, backward_index = reverse_blocks(forward_blocks), forward_index[::-1]
    else:
        backward_blocks = _chained_blocks(backward_pairs, groups)
        backward_index = _block_index(groups, backward_blocks)
    return Topology._from_arrays(
        neurons, forward_index, backward_index, _port_index(ports["input"], groups),
        _port_index(ports["output"], groups), neurons.index(BIAS) if BIAS in neurons else None,
        groups, forward_blocks, backward_blocks, rounds, backward_rounds, allow_self_loops)


def _is_bias(name) -> bool:
    return isinstance(name, str) and name == BIAS


def _order_key(attrs: dict, key: str) -> tuple:
    """Sort key: items with ``key`` by its value, then items without it in their given order."""
    return (0, attrs[key]) if key in attrs else (1, 0)


def _chained_blocks(pairs: list, groups: list) -> tuple:
    """One block per ``(a, b)`` group pair, laid end to end in the edge list."""
    blocks, start = [], 0
    for a, b in pairs:
        blocks.append(EdgeBlock(a, b, start))
        start += groups[a].size * groups[b].size
    return tuple(blocks)


def _block_index(groups: list, blocks: tuple) -> np.ndarray:
    """int64 [2, E]: the edges of blocks that tile the edge list in order."""
    if not blocks:
        return np.zeros((2, 0), dtype=np.int64)
    return validate.block_edges(groups, blocks)[2]


def _port_index(ports: list, groups: list) -> np.ndarray:
    """Neuron ids of the input (or output) groups in port order, each group's neurons in order."""
    ranges = [np.arange(groups[k].start, groups[k].stop) for _, k in sorted(ports, key=lambda p: p[0])]
    return np.concatenate(ranges) if ranges else np.zeros(0, dtype=np.int64)


# --- Topology -> networkx --------------------------------------------------------------------------

def to_networkx(topology: Topology) -> nx.MultiDiGraph:
    """See :meth:`Topology.to_networkx`."""
    graph = _neuron_graph(topology, "explicit")
    graph.graph.update(rounds=topology.rounds, backward_rounds=topology.backward_rounds)
    return graph


def _roles(topology: Topology) -> list:
    roles = ["hidden"] * topology.n_neurons
    for i in topology.input_index.tolist():
        roles[i] = "input"
    for i in topology.output_index.tolist():
        roles[i] = "output"
    if topology.bias_index is not None:
        roles[topology.bias_index] = "bias"
    return roles


def _io_order(topology: Topology) -> dict:
    """Neuron id -> position among the inputs (or among the outputs)."""
    order = {i: k for k, i in enumerate(topology.input_index.tolist())}
    order.update({i: k for k, i in enumerate(topology.output_index.tolist())})
    return order


def _backward_mode(topology: Topology) -> str:
    if (np.array_equal(topology.backward_index, topology.forward_index[::-1])
            and topology.backward_blocks == reverse_blocks(topology.forward_blocks)):
        return "reverse"
    return "explicit" if topology.backward_index.shape[1] else "none"


def _neuron_graph(topology: Topology, backward_mode: str) -> nx.MultiDiGraph:
    """Every neuron a node; backward edges written only in "explicit" mode."""
    graph = nx.MultiDiGraph(backward=backward_mode)
    roles, io_order = _roles(topology), _io_order(topology)
    for i, name in enumerate(topology.neurons):
        graph.add_node(name, role=roles[i], **({"io_order": io_order[i]} if i in io_order else {}))
    edge_sets = [("forward", topology.forward_edges)]
    if backward_mode == "explicit":
        edge_sets.append(("backward", topology.backward_edges))
    for direction, edges in edge_sets:
        graph.add_edges_from((u, v, {"direction": direction, "edge_order": e}) for e, (u, v) in enumerate(edges))
    return graph


def _superneuron_graph(topology: Topology, backward_mode: str) -> nx.MultiDiGraph:
    """Every group a node (``size`` unless it is one neuron named like the group); every block an edge."""
    graph = nx.MultiDiGraph(backward=backward_mode)
    roles, io_order = _roles(topology), _io_order(topology)
    if sum(g.size for g in topology.groups) != topology.n_neurons:
        raise ValueError("some neurons are in no group")
    for g in topology.groups:
        group_roles = set(roles[g.start:g.stop])
        if len(group_roles) > 1:
            raise ValueError(f"group {g.name!r} mixes roles {sorted(group_roles)}")
        attrs = {"role": group_roles.pop()}
        if topology.neurons[g.start:g.stop] != (g.name,):
            attrs["size"] = g.size
        if g.start in io_order:
            attrs["io_order"] = io_order[g.start]
        graph.add_node(g.name, **attrs)
    block_sets = [("forward", topology.forward_blocks, topology.forward_index)]
    if backward_mode == "explicit":
        block_sets.append(("backward", topology.backward_blocks, topology.backward_index))
    for direction, blocks, index in block_sets:
        covered = sum(topology.groups[b.a].size * topology.groups[b.b].size for b in blocks)
        if covered != index.shape[1]:
            raise ValueError(f"{index.shape[1] - covered} {direction} edges are in no block")
        for e, blk in enumerate(blocks):
            a, b = topology.groups[blk.a].name, topology.groups[blk.b].name
            graph.add_edge(a, b, direction=direction, edge_order=e)
    return graph


# --- GraphML files ---------------------------------------------------------------------------------

def save(topology: Topology, path) -> None:
    """See :meth:`Topology.save`."""
    path = Path(path)
    mode = _backward_mode(topology)
    if topology.groups:
        try:
            graph = _superneuron_graph(topology, mode)
            rebuilt = from_networkx(graph, False, topology.rounds, topology.backward_rounds, True)
        except ValueError as exc:
            raise ValueError(f"cannot save {path} as a superneuron graph: {exc}; "
                             "save topology.expand() instead") from None
        if rebuilt != topology:
            raise ValueError(f"cannot save {path} as a superneuron graph: its groups, blocks or "
                             "input/output order differ from what a superneuron graph describes; "
                             "save topology.expand() instead")
        level = "superneuron"
    else:
        graph, level = _neuron_graph(topology, mode), "neuron"
    forward, backward = topology.forward_index, topology.backward_index
    graph.graph.update(
        graphnet_format=FORMAT, level=level, bias=topology.bias_index is not None,
        rounds=topology.rounds, backward_rounds=topology.backward_rounds,
        allow_self_loops=bool(np.any(forward[0] == forward[1]) or np.any(backward[0] == backward[1])))
    nx.write_graphml(_with_string_ids(graph, path), path)


def load(path) -> Topology:
    """See :meth:`Topology.load`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no topology file at {path}")
    try:
        graph = nx.read_graphml(path)
    except (ParseError, nx.NetworkXError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{path} is not a readable GraphML file: {exc}") from None
    attrs = graph.graph
    version = attrs.get("graphnet_format")
    if version is None and not any("role" in node_attrs for _, node_attrs in graph.nodes(data=True)):
        raise ValueError(f"{path} is not a graphnet topology: no 'graphnet_format' graph attribute "
                         "and no node has a 'role' attribute")
    if version is not None and version != FORMAT:
        raise ValueError(f"{path} has graphnet_format {version!r}; this graphnet reads format {FORMAT}")
    if not graph.is_directed():
        raise ValueError(f"{path} holds an undirected graph; a topology needs directed edges")
    try:
        named = _with_original_names(graph)
        topology = from_networkx(named, bool(attrs.get("bias", True)) and BIAS not in named,
                                 attrs.get("rounds"), attrs.get("backward_rounds"),
                                 bool(attrs.get("allow_self_loops", False)))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return topology.expand() if attrs.get("level") == "neuron" else topology


def _with_string_ids(graph: nx.MultiDiGraph, path: Path) -> nx.MultiDiGraph:
    """A copy whose node ids are strings; a name that is not a str is kept as JSON in ``name_json``."""
    out = nx.MultiDiGraph(**graph.graph)
    ids, owner = {}, {}
    for name, attrs in graph.nodes(data=True):
        node_id = name if isinstance(name, str) else json.dumps(_to_json(name, path))
        if node_id in owner:
            raise ValueError(f"cannot save {path}: names {owner[node_id]!r} and {name!r} "
                             f"both become the GraphML id {node_id!r}")
        ids[name], owner[node_id] = node_id, name
        out.add_node(node_id, **attrs, **({} if isinstance(name, str) else {"name_json": node_id}))
    out.add_edges_from((ids[u], ids[v], attrs) for u, v, attrs in graph.edges(data=True))
    return out


def _with_original_names(graph) -> nx.MultiDiGraph:
    """A copy of a read graph with names restored from ``name_json``, in the same node order."""
    out = nx.MultiDiGraph(**graph.graph)
    names = {}
    for node_id, attrs in graph.nodes(data=True):
        attrs = dict(attrs)
        names[node_id] = _from_json(json.loads(attrs.pop("name_json"))) if "name_json" in attrs else node_id
        out.add_node(names[node_id], **attrs)
    out.add_edges_from((names[u], names[v], attrs) for u, v, attrs in graph.edges(data=True))
    return out


def _to_json(name, path: Path):
    """A JSON value for a name: tuples become lists (restored by :func:`_from_json`)."""
    if isinstance(name, tuple):
        return [_to_json(part, path) for part in name]
    if name is None or isinstance(name, (bool, str)):
        return name
    if isinstance(name, numbers.Integral):
        return int(name)
    if isinstance(name, numbers.Real):
        return float(name)
    raise ValueError(f"cannot save {path}: name {name!r} has type {type(name).__name__}; "
                     "names must be str, int, float, bool, None or tuples of these")


def _from_json(value):
    return tuple(_from_json(part) for part in value) if isinstance(value, list) else value
