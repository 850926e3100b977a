"""The backprop genome (docs/MODEL.md section 4) against an independent autograd + SGD reference.

The reference uses none of graphnet's engine code: it reads only ``forward_index``,
``input_index``, ``output_index``, ``bias_index`` and ``n_neurons`` from the topology, builds a
dense masked weight matrix ``W[u, v] = w_uv`` from the edge weights, computes activations level
by level in a networkx topological order (``z_v = Σ_u W[u, v] h_u``, ``h_v = σ(z_v)``), takes the
loss of the output activations and lets ``torch.optim.SGD`` update the edge weights.

Both sides start from the same weights (``net.forward_weights[0, :, 0]``) and see the same
batches; after every step the predictions on a fixed query batch and every weight must agree.
The reference always runs in float64 (fed the engine's exact inputs and initial weights), so the
float32 check measures the engine's own rounding.
"""
import networkx as nx
import pytest
import torch

import graphnet as gn
from graphnet import topologies

TINY = 1e-30
TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-4}
ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}

GRAPHS = {
    # superneuron chain: the layer blocks run as dense matmuls, the small bias blocks as sparse edges
    "mlp": lambda: topologies.mlp((12, 10, 8, 3)),
    # neuron-level DAG with input -> output skips: sparse kernels only, uneven levels
    "random_dag": lambda: topologies.random_dag(8, 24, 3, edge_prob=0.25, skip=True, seed=3),
    # superneuron DAG with skip blocks input -> hidden2 and hidden1 -> output
    "superneuron_skip": lambda: topologies.superneuron_skip((12, 16, 16, 3)),
}


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a - b| / max(max|b|, tiny), computed in float64."""
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / max(float(b.abs().max()), TINY))


class AutogradMLP:
    """Independent reference: a DAG of neurons with one weight per forward edge, trained by SGD."""

    def __init__(self, topology: gn.Topology, weights: torch.Tensor, activation: str, loss: str, lr: float):
        self.n = topology.n_neurons
        src, dst = (torch.tensor(r.tolist(), dtype=torch.long) for r in topology.forward_index)
        self.src, self.dst = src, dst
        self.inputs = torch.tensor(topology.input_index.tolist(), dtype=torch.long)
        self.outputs = torch.tensor(topology.output_index.tolist(), dtype=torch.long)
        self.bias = topology.bias_index
        clamped = set(topology.input_index.tolist())
        if self.bias is not None:
            clamped.add(self.bias)
        graph = nx.DiGraph()
        graph.add_nodes_from(range(self.n))
        graph.add_edges_from(zip(src.tolist(), dst.tolist()))
        assert nx.is_directed_acyclic_graph(graph)
        # levels of a topological order; every neuron of a level depends only on earlier levels
        self.levels = [torch.tensor(sorted(v for v in gen if v not in clamped), dtype=torch.long)
                       for gen in nx.topological_generations(graph)]
        self.levels = [lv for lv in self.levels if len(lv)]
        self.w = weights.detach().clone().double().requires_grad_(True)
        self.sigma = ACTIVATIONS[activation]
        self.loss_name = loss
        self.opt = torch.optim.SGD([self.w], lr=lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output activations ``[batch, n_outputs]``."""
        x = x.double()
        W = torch.zeros(self.n, self.n, dtype=torch.float64).index_put((self.src, self.dst), self.w)
        h = torch.zeros(x.shape[0], self.n, dtype=torch.float64)
        h = h.index_copy(1, self.inputs, x)
        if self.bias is not None:
            h = h.index_fill(1, torch.tensor([self.bias]), 1.0)
        for level in self.levels:
            z = h @ W[:, level]
            h = h.index_copy(1, level, self.sigma(z))
        return h[:, self.outputs]

    def loss(self, out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "mse":
            return (0.5 * (out - t) ** 2).sum(1).mean()
        return -(t * torch.log_softmax(out, dim=1)).sum(1).mean()

    def step(self, x: torch.Tensor, t: torch.Tensor) -> None:
        self.opt.zero_grad()
        self.loss(self.forward(x), t.double()).backward()
        self.opt.step()


def run_and_compare(topology, activation, loss, dtype, steps=50, lr=0.5, float_targets=False,
                    check_every=1, seed=0, **network_kwargs):
    genome = gn.Genome.backprop(lr, activation=activation, loss=loss, dtype=dtype)
    net = gn.Network(topology, genome, seed=seed, dtype=dtype, **network_kwargs)
    w0 = net.forward_weights[0, :, 0].detach().clone()
    ref = AutogradMLP(topology, w0, activation, loss, lr)
    gen = torch.Generator().manual_seed(seed + 1)
    n_in, n_out = net.n_inputs, net.n_outputs
    x_query = torch.randn(16, n_in, generator=gen).to(dtype)
    tol = TOLERANCE[dtype]
    worst = 0.0
    for step in range(1, steps + 1):
        x = torch.randn(8, n_in, generator=gen).to(dtype)
        if float_targets:
            if loss == "mse":
                t = torch.rand(8, n_out, generator=gen).to(dtype)
            else:  # cross-entropy against a probability distribution per example
                t = torch.softmax(2 * torch.randn(8, n_out, generator=gen), dim=1).to(dtype)
            y = t
        else:
            y = torch.randint(0, n_out, (8,), generator=gen)
            t = torch.nn.functional.one_hot(y, n_out).to(dtype)
        net.step(x, y)
        ref.step(x, t)
        if step % check_every == 0 or step == steps:
            with torch.no_grad():
                d_pred = rel_diff(net.predict(x_query), ref.forward(x_query))
            d_w = rel_diff(net.forward_weights[0, :, 0], ref.w)
            worst = max(worst, d_pred, d_w)
            assert d_pred <= tol and d_w <= tol, (
                f"step {step}: predictions differ by {d_pred:.3g}, weights by {d_w:.3g} "
                f"(relative, tolerance {tol:g})")
    moved = rel_diff(ref.w, w0.double())
    # the run must actually train, or matching weights would prove nothing
    assert moved > 1e-2, f"weights moved by only {moved:.3g} relative over {steps} steps"
    return worst


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_backprop_genome_is_sgd(graph, activation, dtype):
    run_and_compare(GRAPHS[graph](), activation, "mse", dtype)


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_backprop_genome_cross_entropy(graph):
    run_and_compare(GRAPHS[graph](), "sigmoid", "cross_entropy", torch.float64)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_backprop_genome_float_targets(loss):
    run_and_compare(GRAPHS["superneuron_skip"](), "tanh", loss, torch.float64, float_targets=True)


@pytest.mark.parametrize("kernel,dense", [("reference", True), ("csr", False), ("reference", False)])
def test_backprop_genome_other_kernels(kernel, dense):
    """Same SGD with the gather/scatter kernels and with every superneuron block run edge by edge."""
    run_and_compare(GRAPHS["superneuron_skip"](), "tanh", "mse", torch.float64, steps=20,
                    kernel=kernel, dense=dense)


def test_reference_is_autograd_sgd():
    """Sanity of the reference itself: one SGD step equals w - lr * dL/dw from torch.func on a
    plain 2-layer formula written out by hand (bias included), so a wrong reference cannot hide."""
    top = gn.Topology.from_edges([("a", "h"), ("b", "h"), ("h", "o"), ("a", "o")], inputs=["a", "b"],
                                 outputs=["o"])
    names = top.neurons
    w = torch.tensor([0.3, -0.7, 1.1, 0.4, 0.2, -0.5], dtype=torch.float64)  # 4 edges, then bias->h, bias->o
    edges = [(names[u], names[v]) for u, v in top.forward_index.T.tolist()]
    assert edges == [("a", "h"), ("b", "h"), ("h", "o"), ("a", "o"), ("bias", "h"), ("bias", "o")]
    x = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64)
    t = torch.tensor([[1.0], [0.0]], dtype=torch.float64)

    def loss(w):
        h = torch.sigmoid(w[0] * x[:, 0] + w[1] * x[:, 1] + w[4])
        o = torch.sigmoid(w[2] * h + w[3] * x[:, 0] + w[5])
        return (0.5 * (o - t[:, 0]) ** 2).mean()

    ref = AutogradMLP(top, w, "sigmoid", "mse", lr=0.5)
    assert torch.allclose(ref.forward(x)[:, 0],
                          torch.sigmoid(w[2] * torch.sigmoid(w[0] * x[:, 0] + w[1] * x[:, 1] + w[4])
                                        + w[3] * x[:, 0] + w[5]))
    ref.step(x, t)
    expected = w - 0.5 * torch.func.grad(loss)(w)
    assert torch.allclose(ref.w.detach(), expected, rtol=1e-12, atol=1e-14)
