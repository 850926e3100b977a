"""Independent reference: docs/MODEL.md section 3 neuron by neuron, for one genome, in float64.

No plans, stages, kernels or batching tricks: a dict of per-edge weight vectors, neurons updated
one at a time in a networkx topological order (or synchronous rounds for a cyclic graph), and the
Hebbian rule written per edge. Slow by design; use it on graphs of a few dozen neurons.
"""
from __future__ import annotations

import networkx as nx
import torch

ACT = {
    "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
    "sigmoid": (torch.sigmoid, lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))),
    "relu_tanh": (lambda z: torch.relu(torch.tanh(z)), lambda z: (z > 0).double() * (1 - torch.tanh(z) ** 2)),
    "relu": (torch.relu, lambda z: (z > 0).double()),
    "identity": (lambda z: z, torch.ones_like),
}


def _order(n, edges, updated):
    g = nx.DiGraph()
    g.add_nodes_from(i for i in range(n) if updated[i])
    g.add_edges_from((s, r) for s, r in edges if updated[s] and updated[r])
    if nx.is_directed_acyclic_graph(g):
        return list(nx.topological_sort(g)), False
    return sorted(g.nodes), True


def _sweep(a, edges, weights, mixing, genome_of, opts, updated, is_output, rounds, backward):
    """a: [N, k, B] float64 (modified copy returned)."""
    n = a.shape[0]
    order, cyclic = _order(n, edges, updated)
    k = a.shape[1]
    incoming = {v: [] for v in range(n)}
    for e, (s, r) in enumerate(edges):
        incoming[r].append((e, s))
    deriv = set(opts.derivative_states)
    write = set(range(k)) if (not backward or opts.backward_states is None) else set(opts.backward_states)

    def new_state(v, a_src):
        m = torch.zeros(k, a.shape[2], dtype=a.dtype)
        for e, s in incoming[v]:
            w = weights[e]  # [C]
            w = w.expand(k) if w.numel() == 1 else w
            m = m + w[:, None] * (getattr(genome_of[s], mixing) @ a_src[s])
        if backward and opts.backward_update.value == "multiplicative":
            new = a_src[v] * m
        else:
            pre = genome_of[v].f * a_src[v] + genome_of[v].eta * m
            act = (opts.output_activation or opts.activation).value if is_output[v] else opts.activation.value
            fn, prime = ACT[act]
            new = torch.stack([prime(pre[c]) if c in deriv else fn(pre[c]) for c in range(k)])
        return torch.stack([new[c] if c in write else a_src[v][c] for c in range(k)])

    a = a.clone()
    if cyclic:
        for _ in range(rounds):
            snapshot = a.clone()
            for v in order:
                a[v] = new_state(v, snapshot)
    else:
        for v in order:
            a[v] = new_state(v, a)
    return a


def _hebbian(a, edges, weights, genome_of, opts):
    out = {}
    fan_in = {}
    for _, r in edges:
        fan_in[r] = fan_in.get(r, 0) + 1
    channels = weights[0].numel() if len(weights) else 0
    for e, (s, r) in enumerate(edges):
        genome = genome_of[r]  # a synapse learns with its receiver's genome
        pre = genome.P.T @ a[s]  # [k, B]: pre[c] = Σ_e a_s[e] P[e, c]
        post = genome.Q @ a[r]
        delta = (pre[:channels] * post[:channels]).mean(-1)
        if opts.oja:
            delta = delta - genome.oja * post[:channels].pow(2).mean(-1) * weights[e]
        rate = genome.eta_tilde / fan_in[r] if opts.fan_in_update else genome.eta_tilde
        out[e] = genome.f_tilde * weights[e] + rate * delta
    return out


def _normalized(weights, edges, n):
    if not len(weights):
        return weights
    square = {}
    for e, (s, r) in enumerate(edges):
        square[r] = square.get(r, 0) + weights[e] ** 2
    return {e: weights[e] / torch.sqrt(square[r] + 1e-12) for e, (s, r) in enumerate(edges)}


def reference_step(topology, genome, forward_w, backward_w, x, target, learn=True, genome_of=None):
    """One inner step. ``forward_w [E_f, C]``, ``backward_w [E_b, C]`` (ignored when tied),
    ``x [B, n_in]``, ``target [B, n_out]`` already encoded. ``genome_of``: per-neuron genomes
    (per-group genomes; default: ``genome`` everywhere). Returns (forward_w, backward_w, states)."""
    opts = genome.options
    dbl = lambda t: torch.as_tensor(t, dtype=torch.float64)  # noqa: E731
    as_params = lambda gen: type("G", (), {name: dbl(v) for name, v in gen.tensors().items()})  # noqa: E731
    n, k, batch = topology.n_neurons, genome.k, x.shape[0]
    g = [as_params(gen) for gen in (genome_of or [genome] * n)]
    fedges = [tuple(map(int, e)) for e in topology.forward_index.T]
    bedges = [tuple(map(int, e)) for e in topology.backward_index.T]
    fw = {e: dbl(forward_w[e]) for e in range(len(fedges))}
    if opts.tied_backward:
        twin = {(s, r): e for e, (s, r) in enumerate(fedges)}
        bw = {e: fw[twin[(r, s)]] for e, (s, r) in enumerate(bedges)}
    else:
        bw = {e: dbl(backward_w[e]) for e in range(len(bedges))}
    clamped = [False] * n
    for i in list(topology.input_index) + ([topology.bias_index] if topology.bias_index is not None else []):
        clamped[int(i)] = True
    is_output = [False] * n
    for i in topology.output_index:
        is_output[int(i)] = True
    a = torch.zeros(n, k, batch, dtype=torch.float64)
    for col, i in enumerate(topology.input_index):
        a[int(i), 0] = dbl(x[:, col])
    if topology.bias_index is not None:
        a[topology.bias_index, 0] = 1.0
    f_eff = _normalized(fw, fedges, n) if opts.synapse_normalization else fw
    a = _sweep(a, fedges, f_eff, "nu", g, opts, [not c for c in clamped], is_output, topology.rounds, False)
    if not learn:
        return fw, bw, a
    if opts.forward_synapse_update:
        fw = _hebbian(a, fedges, fw, g, opts)
        if not opts.tied_backward and not opts.fixed_backward:
            bw = _hebbian(a, bedges, bw, g, opts)
        elif opts.tied_backward:
            bw = {e: fw[twin[(r, s)]] for e, (s, r) in enumerate(bedges)}
    t = dbl(target)
    for col, i in enumerate(topology.output_index):
        i = int(i)
        h, d = a[i, 0], a[i, 1]
        if opts.feedback.value == "target":
            signal = t[:, col]
        elif opts.feedback.value == "mse_gradient":
            signal = (h - t[:, col]) * d
        else:
            outs = torch.stack([a[int(j), 0] for j in topology.output_index])  # [n_out, B]
            signal = (torch.softmax(outs, 0)[col] - t[:, col]) * d
        a[i, 1] = signal
        a[i, 2:] = 0
    has_feedback = [False] * n
    for s, r in bedges:
        has_feedback[r] = True
    updated = [not clamped[v] and not is_output[v] and has_feedback[v] for v in range(n)]
    b_eff = _normalized(bw, bedges, n) if opts.synapse_normalization else bw
    a = _sweep(a, bedges, b_eff, "mu", g, opts, updated, is_output, topology.backward_rounds, True)
    fw = _hebbian(a, fedges, fw, g, opts)
    if not opts.tied_backward and not opts.fixed_backward:
        bw = _hebbian(a, bedges, bw, g, opts)
    return fw, bw, a


def stack(weights: dict, n_edges: int) -> torch.Tensor:
    return torch.stack([weights[e] for e in range(n_edges)]) if n_edges else torch.zeros(0, 1)
