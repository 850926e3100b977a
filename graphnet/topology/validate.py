"""Vectorized checks and graph algorithms on edge-index arrays.

Every function here works on numpy arrays (``src``, ``dst``: int64 ``[num_edges]``) and runs
frontier by frontier over CSR arrays, so a graph of 100k neurons and 1M edges is checked in well
under a second. Checks raise ``ValueError`` with a message that names the offending neurons; they
take ``neurons`` (the tuple of names in index order) only to format those messages.
"""
from __future__ import annotations

import numbers

import numpy as np


def edge_index(index, n_neurons: int, label: str) -> np.ndarray:
    """Check an edge-index array and return it as a read-only int64 array ``[2, num_edges]``.

    Rejects a wrong shape, a non-integer dtype, negative ids and ids ``>= n_neurons``, naming the
    first bad value and its edge position.
    """
    array = np.asarray(index)
    if array.shape in ((0,), (2, 0)):
        array = np.zeros((2, 0), dtype=np.int64)
    if array.ndim != 2 or array.shape[0] != 2:
        raise ValueError(f"{label} must have shape [2, num_edges], got {list(array.shape)}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{label} must hold integer neuron ids, got dtype {array.dtype}")
    array = np.array(array, dtype=np.int64)
    for bad, what in ((array < 0, "negative neuron id"), (array >= n_neurons, "out-of-range neuron id")):
        if bad.any():
            row, edge = np.argwhere(bad)[0]
            raise ValueError(f"{label} has {what} {array[row, edge]} at edge {edge} "
                             f"(there are {n_neurons} neurons)")
    array.flags.writeable = False
    return array


def io_index(index, n_neurons: int, label: str) -> np.ndarray:
    """Check an input or output index list; return a read-only int64 array ``[num]``."""
    array = np.asarray(index)
    if array.size == 0:
        raise ValueError(f"no {label} given")
    if array.ndim != 1 or array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{label} must be a 1-D list of integer neuron ids")
    array = np.array(array, dtype=np.int64)
    bad = (array < 0) | (array >= n_neurons)
    if bad.any():
        raise ValueError(f"{label} has out-of-range neuron id {array[bad][0]} "
                         f"(there are {n_neurons} neurons)")
    array.flags.writeable = False
    return array


def distinct_names(names, label: str) -> None:
    """Raise if a name occurs twice in ``names``."""
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{label} lists {name!r} twice")
        seen.add(name)


def io_roles(neurons: tuple, inputs: np.ndarray, outputs: np.ndarray, bias_index: int | None) -> None:
    """Inputs and outputs are each listed once, are disjoint, and exclude the bias neuron."""
    distinct_names([neurons[i] for i in inputs], "inputs")
    distinct_names([neurons[i] for i in outputs], "outputs")
    both = np.intersect1d(inputs, outputs)
    if both.size:
        raise ValueError(f"neuron {neurons[both[0]]!r} is both an input and an output")
    if bias_index is not None and (bias_index in inputs or bias_index in outputs):
        raise ValueError(f"the bias neuron {neurons[bias_index]!r} cannot be an input or an output")


def no_self_loops(neurons: tuple, src: np.ndarray, dst: np.ndarray, label: str) -> None:
    loops = np.flatnonzero(src == dst)
    if loops.size:
        name = neurons[src[loops[0]]]
        raise ValueError(f"{label} edge {loops[0]} is a self-loop ({name!r}, {name!r}); "
                         "pass allow_self_loops=True to allow self-loops")


def no_duplicates(neurons: tuple, src: np.ndarray, dst: np.ndarray, label: str) -> None:
    """Raise on the first edge (in edge order) that repeats an earlier one."""
    key = src * len(neurons) + dst
    order = np.argsort(key, kind="stable")
    repeats = order[1:][key[order][1:] == key[order][:-1]]
    if repeats.size:
        second = repeats.min()
        first = np.flatnonzero(key == key[second])[0]
        raise ValueError(f"duplicate {label} edge ({neurons[src[second]]!r}, {neurons[dst[second]]!r}) "
                         f"at edges {first} and {second}")


def no_edges_into(neurons: tuple, src: np.ndarray, dst: np.ndarray, targets: np.ndarray, what: str) -> None:
    """Raise on the first forward edge whose receiver is in ``targets``."""
    into = np.flatnonzero(np.isin(dst, targets))
    if into.size:
        e = into[0]
        raise ValueError(f"forward edge {e} ({neurons[src[e]]!r}, {neurons[dst[e]]!r}) goes into "
                         f"{what} {neurons[dst[e]]!r}, which is clamped")


def no_dangling(neurons: tuple, forward: np.ndarray, backward: np.ndarray,
                inputs: np.ndarray, outputs: np.ndarray) -> None:
    """Every backward endpoint touches a forward edge or is an input or output."""
    in_forward = np.zeros(len(neurons), dtype=bool)
    in_forward[forward.ravel()] = True
    in_forward[inputs] = True
    in_forward[outputs] = True
    bad = np.argwhere(~in_forward[backward])
    if bad.size:
        row, e = bad[0]
        raise ValueError(f"dangling backward edge ({neurons[backward[0, e]]!r}, {neurons[backward[1, e]]!r}): "
                         f"neuron {neurons[backward[row, e]]!r} is not in the forward graph")


def outputs_reachable(neurons: tuple, src: np.ndarray, dst: np.ndarray,
                      inputs: np.ndarray, outputs: np.ndarray, bias_index: int | None) -> None:
    """Every output is reachable from some input along forward edges, not counting bias edges."""
    if bias_index is not None:
        keep = src != bias_index
        src, dst = src[keep], dst[keep]
    seen = reachable(len(neurons), src, dst, inputs)
    lost = outputs[~seen[outputs]]
    if lost.size:
        names = ", ".join(repr(neurons[i]) for i in lost[:5]) + (", ..." if lost.size > 5 else "")
        raise ValueError(f"{lost.size} output(s) unreachable from every input along forward edges: {names}")


def rounds(value, label: str) -> int | None:
    """``None`` or an integer >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
    return int(value)


# --- graph algorithms ------------------------------------------------------------------------

def csr(n: int, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Out-adjacency ``(indptr [n + 1], targets [num_edges])``: node u's successors are
    ``targets[indptr[u]:indptr[u + 1]]``."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst[np.argsort(src, kind="stable")]


def successors(indptr: np.ndarray, targets: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """All successors of ``nodes`` (with repeats), concatenated."""
    starts = indptr[nodes]
    counts = indptr[nodes + 1] - starts
    total = int(counts.sum())
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return targets[offsets + np.arange(total)]


def reachable(n: int, src: np.ndarray, dst: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Boolean mask ``[n]`` of nodes reachable from ``sources`` (breadth-first, one frontier at a time)."""
    indptr, targets = csr(n, src, dst)
    seen = np.zeros(n, dtype=bool)
    seen[sources] = True
    frontier = np.unique(sources)
    while frontier.size:
        nxt = successors(indptr, targets, frontier)
        frontier = np.unique(nxt[~seen[nxt]])
        seen[frontier] = True
    return seen


def topological_levels(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Kahn's algorithm level by level: ``level [n]``, the number of nodes on the longest path
    ending at each node minus one, or -1 for nodes on a cycle or downstream of one."""
    indptr, targets = csr(n, src, dst)
    indegree = np.bincount(dst, minlength=n)
    level = np.full(n, -1, dtype=np.int64)
    frontier = np.flatnonzero(indegree == 0)
    depth = 0
    while frontier.size:
        level[frontier] = depth
        nxt = successors(indptr, targets, frontier)
        np.subtract.at(indegree, nxt, 1)
        frontier = np.unique(nxt[indegree[nxt] == 0])
        depth += 1
    return level


def is_cyclic(n: int, src: np.ndarray, dst: np.ndarray) -> bool:
    """True when the graph has a self-loop or a cycle."""
    return bool((topological_levels(n, src, dst) < 0).any())


def strong_components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Strongly connected component label of every node, ``[n]`` int64 (labels are node ids).

    Trims nodes that no cycle feeds or drains (Kahn both ways: singleton components), then
    repeats the coloring algorithm on the rest: each node takes the largest id among nodes that
    reach it; a node whose color is its own id is a root, and its component is the set of
    same-colored nodes that reach it.
    """
    label = np.full(n, -1, dtype=np.int64)
    trimmed = (topological_levels(n, src, dst) >= 0) | (topological_levels(n, dst, src) >= 0)
    label[trimmed] = np.flatnonzero(trimmed)
    ids = np.arange(n)
    while (label < 0).any():
        live = label < 0
        keep = live[src] & live[dst]
        s, d = src[keep], dst[keep]
        color = np.where(live, ids, -1)
        while True:
            pushed = color.copy()
            np.maximum.at(pushed, d, color[s])
            if np.array_equal(pushed, color):
                break
            color = pushed
        same = color[s] == color[d]
        member = live & (color == ids)
        member |= reachable(n, d[same], s[same], np.flatnonzero(member))
        label[member] = color[member]
    return label


def default_rounds(n: int, src: np.ndarray, dst: np.ndarray) -> int:
    """Rounds for a synchronous sweep: 1 for an acyclic graph; for a cyclic one, the number of
    nodes on the longest path of its condensation (each strongly connected component counted as
    one node), plus 1."""
    if not is_cyclic(n, src, dst):
        return 1
    label = strong_components(n, src, dst)
    _, component = np.unique(label, return_inverse=True)
    across = component[src] != component[dst]
    n_components = int(component.max()) + 1
    key = np.unique(component[src[across]] * n_components + component[dst[across]])
    levels = topological_levels(n_components, key // n_components, key % n_components)
    return int(levels.max()) + 2


# --- superneuron groups and blocks --------------------------------------------------------------

def groups(neurons: tuple, groups: tuple) -> None:
    """Groups have distinct names, positive integer sizes, and disjoint ranges inside the neurons."""
    distinct_names([g.name for g in groups], "groups")
    for g in groups:
        size_ok = isinstance(g.size, numbers.Integral) and not isinstance(g.size, bool) and g.size >= 1
        if not size_ok:
            raise ValueError(f"group {g.name!r} has size {g.size!r}; a size must be an integer >= 1")
        if not (isinstance(g.start, numbers.Integral) and 0 <= g.start and g.start + g.size <= len(neurons)):
            raise ValueError(f"group {g.name!r} covers neurons [{g.start}, {g.start + g.size}), "
                             f"outside the {len(neurons)} neurons")
    spans = sorted(((g.start, g.start + g.size, g.name) for g in groups), key=lambda span: span[:2])
    for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
        if start < end:
            raise ValueError(f"groups {name!r} and {other!r} overlap")


def blocks(neurons: tuple, groups: tuple, blocks: tuple, index: np.ndarray, label: str) -> None:
    """Each block lies inside the edge list, blocks do not overlap, and every edge a block
    declares is the edge stored at that position."""
    if not blocks:
        return
    for k, blk in enumerate(blocks):
        if not (0 <= blk.a < len(groups) and 0 <= blk.b < len(groups)):
            raise ValueError(f"{label} block {k} joins groups {blk.a} and {blk.b}, "
                             f"but there are {len(groups)} groups")
    first = np.array([blk.edge_start for blk in blocks], dtype=np.int64)
    count = np.array([groups[blk.a].size * groups[blk.b].size for blk in blocks], dtype=np.int64)
    outside = np.flatnonzero((first < 0) | (first + count > index.shape[1]))
    if outside.size:
        k = outside[0]
        raise ValueError(f"{label} block {k} covers edges [{first[k]}, {first[k] + count[k]}), "
                         f"outside the {index.shape[1]} {label} edges")
    order = np.argsort(first, kind="stable")
    overlap = np.flatnonzero(first[order][1:] < (first + count)[order][:-1])
    if overlap.size:
        raise ValueError(f"{label} blocks {order[overlap[0]]} and {order[overlap[0] + 1]} cover the same edges")

    block, position, expected = block_edges(groups, blocks)
    wrong = np.flatnonzero((index[:, position] != expected).any(axis=0))
    if wrong.size:
        k, e = block[wrong[0]], position[wrong[0]]
        blk = blocks[k]
        raise ValueError(f"{label} block {k} ({groups[blk.a].name!r} -> {groups[blk.b].name!r}) declares "
                         f"edge {e} as ({neurons[expected[0, wrong[0]]]!r}, {neurons[expected[1, wrong[0]]]!r}) "
                         f"but it is ({neurons[index[0, e]]!r}, {neurons[index[1, e]]!r})")


def block_edges(groups: tuple, blocks: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges that ``blocks`` declare, row-major within each block.

    Returns ``(block [T], position [T], index [2, T])`` over all T declared edges: the block each
    comes from, its position in the edge list, and its (sender, receiver) neuron ids.
    """
    start = np.array([g.start for g in groups], dtype=np.int64)
    size = np.array([g.size for g in groups], dtype=np.int64)
    a = np.array([blk.a for blk in blocks], dtype=np.int64)
    b = np.array([blk.b for blk in blocks], dtype=np.int64)
    count = size[a] * size[b]
    block = np.repeat(np.arange(len(blocks)), count)
    local = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    row = start[a][block] + local // size[b][block]
    col = start[b][block] + local % size[b][block]
    flipped = np.array([blk.reversed for blk in blocks], dtype=bool)[block]
    position = np.array([blk.edge_start for blk in blocks], dtype=np.int64)[block] + local
    return block, position, np.where(flipped, [col, row], [row, col])
