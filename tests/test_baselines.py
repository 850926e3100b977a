"""Autograd SGD / Adam baselines (graphnet/baselines.py) against a plain torch.nn reference.

The reference uses none of graphnet's engine: it reads the topology's edge names only to copy
the initial synapses into ``nn.Linear`` blocks (one per pair of superneurons joined by edges,
plus one bias vector per group), runs the blocks in the groups' order (relu on hidden groups,
linear outputs) and trains with ``torch.optim.SGD`` / ``torch.optim.Adam`` in float64 on the
same batches (``member_batches``).
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

import graphnet as gn
from graphnet import baselines
from graphnet.baselines import (AutogradTrainer, EvalTask, as_task, batch_stream, member_batches, seed_synapses,
                                stream_seed, train_autograd)

GRAPHS = {
    "mlp": lambda: gn.topologies.mlp((20, 8, 3)),
    # non-layered: skips input -> hidden2 and hidden1 -> output
    "superneuron_skip": lambda: gn.topologies.superneuron_skip((20, 8, 6, 3)),
}


def blobs(n_train=240, n_test=120, d=20, classes=3, seed=0):
    """Gaussian blobs: a tiny task that trains in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    centers = 1.5 * torch.randn(classes, d, generator=gen)

    def split(n):
        y = torch.randint(0, classes, (n,), generator=gen)
        return centers[y] + torch.randn(n, d, generator=gen), y

    return EvalTask("blobs", *split(n_train), *split(n_test))


class BlockNet(nn.Module):
    """Independent reference: the topology's superneuron blocks as ``nn.Linear`` layers."""

    def __init__(self, topology: gn.Topology, w: torch.Tensor):
        super().__init__()
        groups = [g for g in topology.groups if g.name != "bias"]
        self.order = [g.name for g in groups]
        self.input, self.output = self.order[0], self.order[-1]
        self.blocks = nn.ModuleDict()
        self.biases = nn.ParameterDict()
        size = {g.name: g.size for g in groups}
        for (u, v), value in zip(topology.forward_edges, w.tolist()):
            if u == "bias":
                key = v[0]
                if key not in self.biases:
                    self.biases[key] = nn.Parameter(torch.zeros(size[key], dtype=torch.float64))
                with torch.no_grad():
                    self.biases[key][v[1]] = value
                continue
            key = f"{u[0]}->{v[0]}"
            if key not in self.blocks:
                self.blocks[key] = nn.Linear(size[u[0]], size[v[0]], bias=False, dtype=torch.float64)
            with torch.no_grad():
                self.blocks[key].weight[v[1], u[1]] = value

    def forward(self, x):
        h = {self.input: x}
        for name in self.order[1:]:
            z = self.biases[name] + sum(block(h[key.split("->")[0]]) for key, block in self.blocks.items()
                                        if key.split("->")[1] == name)
            h[name] = z if name == self.output else torch.relu(z)
        return h[self.output]


def reference_run(topology, w0, task, batches, lr, optimizer, steps):
    """Train one BlockNet; returns per-step losses, final edge weights (topology order), test accuracy."""
    model = BlockNet(topology, w0)
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
    x, y = task.x_train.double(), task.y_train
    losses = []
    for t in range(steps):
        idx = batches[t]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    weights = []
    for u, v in topology.forward_edges:
        if u == "bias":
            weights.append(model.biases[v[0]][v[1]].item())
        else:
            weights.append(model.blocks[f"{u[0]}->{v[0]}"].weight[v[1], u[1]].item())
    with torch.no_grad():
        acc = (model(task.x_test.double()).argmax(1) == task.y_test).double().mean().item()
    return np.array(losses), torch.tensor(weights, dtype=torch.float64), acc


@pytest.mark.parametrize("optimizer,lrs", [("sgd", (0.05, 0.3)), ("adam", (3e-3, 3e-2))])
@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_matches_torch_optim_reference(graph, optimizer, lrs):
    """Batched SGD / Adam (two lrs x two seeds in one population) = torch.nn + torch.optim, float64."""
    topology, task = GRAPHS[graph](), blobs()
    seeds, steps, batch = (0, 1), 10, 16
    init, _ = seed_synapses(topology, baselines.forward_genome("relu", torch.float64), seeds, dtype=torch.float64)
    streams = member_batches(len(task.y_train), batch, steps, seeds, batch_seed=5)  # [S, T, B]
    member_lrs = torch.tensor(lrs, dtype=torch.float64).repeat_interleave(2)  # member p = i * 2 + j
    trainer = AutogradTrainer(topology, init.repeat(2, 1, 1), member_lrs, optimizer=optimizer, dtype=torch.float64)
    losses = []
    for t in range(steps):
        idx = streams[:, t]
        losses.append(trainer.step(task.x_train.double()[idx].repeat(2, 1, 1), task.y_train[idx].repeat(2, 1)))
    losses = torch.stack(losses, 1).numpy()  # [P, T]
    curves = train_autograd(topology, task, optimizer=optimizer, lrs=lrs, seeds=seeds, steps=(steps,),
                            batch_size=batch, batch_seed=5, dtype=torch.float64)
    for i, lr in enumerate(lrs):
        for j, seed in enumerate(seeds):
            p = i * len(seeds) + j
            ref_loss, ref_w, ref_acc = reference_run(topology, init[j, :, 0], task, streams[j], lr, optimizer, steps)
            assert np.abs(losses[p] - ref_loss).max() < 1e-10
            assert np.abs(curves.train_loss[i, j] - ref_loss).max() < 1e-10
            assert (trainer.weights[p, :, 0] - ref_w).abs().max() < 1e-10
            assert curves.accuracy[i, j, 0] == ref_acc
            assert (ref_w - init[j, :, 0]).abs().max() > 1e-2  # it trained
    assert not curves.diverged.any()


def test_forward_weights_setter_keeps_autograd_graph():
    """The baseline differentiates net.predict through the forward_weights setter (CSR kernels too)."""
    top = gn.topologies.random_dag(5, 12, 3, edge_prob=0.3, skip=True, seed=1)
    net = gn.Network(top, [baselines.forward_genome("relu", torch.float64)] * 2, dtype=torch.float64)
    w = net.forward_weights.detach().requires_grad_(True)
    net.forward_weights = w
    out = net.predict(torch.randn(2, 7, 5, dtype=torch.float64))
    (grad,) = torch.autograd.grad(out.sum(), w)
    assert grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda v: _predict_with(net, v), (w[:, :, :].clone(),), atol=1e-6)


def _predict_with(net, w):
    net.forward_weights = w
    return net.predict(torch.linspace(-1, 1, 2 * 3 * 5, dtype=torch.float64).view(2, 3, 5))


def test_random_dag_baseline_trains():
    """Neuron-level sparse DAG: the baseline runs and learns (the reference test covers exact math)."""
    top = gn.topologies.random_dag(20, 16, 3, edge_prob=0.3, skip=True, seed=2)
    curves = train_autograd(top, blobs(), optimizer="sgd", lrs=(0.3,), seeds=(0,), steps=(0, 30), batch_size=16)
    assert curves.accuracy[0, 0, 1] > curves.accuracy[0, 0, 0] + 0.2


def test_divergence_is_reported_not_raised():
    task = blobs()
    curves = train_autograd(gn.topologies.mlp((20, 8, 3)), task, optimizer="sgd", lrs=(0.1, 1e30), seeds=(0, 1),
                            steps=(0, 2, 5), batch_size=16)
    assert (curves.diverged_at[0] == -1).all()
    assert (curves.diverged_at[1] >= 1).all() and curves.diverged[1].all()
    assert np.isfinite(curves.accuracy[0]).all()
    assert np.isnan(curves.accuracy[1, :, 1:]).all() and np.isnan(curves.loss[1, :, 1:]).all()
    assert np.isfinite(curves.accuracy[1, :, 0]).all()  # before training it was fine
    best = curves.best(task.chance)
    assert (best["lr"][1:] == 0.1).all()


def test_adam_lr_zero_keeps_weights_and_default_grids():
    assert baselines.DEFAULT_SGD_LRS == (0.01, 0.03, 0.1, 0.3, 1.0)
    assert baselines.DEFAULT_ADAM_LRS == (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    curves = train_autograd(gn.topologies.mlp((20, 8, 3)), blobs(), optimizer="adam", lrs=(0.0,), seeds=(0,),
                            steps=(0, 3), batch_size=16)
    assert curves.accuracy[0, 0, 0] == curves.accuracy[0, 0, 1]


def test_per_seed_determinism():
    """A seed's curve does not depend on the other members of the population, nor on the run."""
    top, task = GRAPHS["superneuron_skip"](), blobs()
    kw = dict(optimizer="sgd", lrs=(0.1, 0.3), steps=(1, 5), batch_size=16, batch_seed=3)
    both = train_autograd(top, task, seeds=(2, 7), **kw)
    again = train_autograd(top, task, seeds=(2, 7), **kw)
    alone = train_autograd(top, task, seeds=(7,), **kw)
    np.testing.assert_array_equal(both.accuracy, again.accuracy)
    np.testing.assert_allclose(both.train_loss[:, 1], alone.train_loss[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(both.accuracy[:, 1], alone.accuracy[:, 0])
    other = train_autograd(top, task, seeds=(2, 7), **{**kw, "batch_seed": 4})
    assert not np.array_equal(both.train_loss, other.train_loss)


def test_seed_synapses_equal_single_networks():
    top = GRAPHS["superneuron_skip"]()
    genome = gn.Genome.random(3, seed=0)
    forward, backward = seed_synapses(top, genome, (4, 9))
    for i, s in enumerate((4, 9)):
        net = gn.Network(top, genome, seed=s)
        assert torch.equal(forward[i], net.forward_weights[0])
        assert torch.equal(backward[i], net.backward_weights[0])
    f, b = seed_synapses(top, baselines.forward_genome(), (4,))
    assert b is None and f.shape == (1, top.forward_index.shape[1], 1)


def test_batch_stream():
    idx = batch_stream(50, 8, 20, seed=1)
    assert idx.shape == (20, 8) and idx.dtype == torch.long
    first_epoch = idx.flatten()[:50]
    assert sorted(first_epoch.tolist()) == list(range(50))  # without replacement within an epoch
    assert sorted(idx.flatten()[50:100].tolist()) == list(range(50))
    assert torch.equal(idx, batch_stream(50, 8, 20, seed=1))
    assert not torch.equal(idx, batch_stream(50, 8, 20, seed=2))
    assert batch_stream(5, 8, 3, seed=0).shape == (3, 8)  # batch larger than the data: spans epochs
    assert len({stream_seed(b, s) for b in range(3) for s in range(3)}) == 9
    with pytest.raises(ValueError):
        batch_stream(0, 8, 2, seed=0)


def test_as_task_adapters():
    class FakeDataset:  # the shape of graphnet.data.Dataset
        def __init__(self, x, y):
            self.x, self.y, self.name, self.n_classes = x, y, "fake", 4

        def flat(self):
            return self.x.reshape(len(self.x), -1)

    x, y = torch.rand(10, 2, 3), torch.tensor([0, 1, 2] * 3 + [0])
    task = as_task(FakeDataset(x, y), FakeDataset(x, y))
    assert task.name == "fake" and task.n_classes == 4 and task.x_train.shape == (10, 6)
    assert as_task(x, y, x, y).n_classes == 3
    assert as_task(("named", x, y, x, y)).name == "named"
    assert as_task(task) is task
    with pytest.raises(ValueError, match="y_train"):
        EvalTask("bad", x, y.float(), x, y)
    with pytest.raises(TypeError):
        as_task(x, y)


def test_topology_must_fit_task():
    with pytest.raises(ValueError, match="features"):
        train_autograd(gn.topologies.mlp((5, 4, 3)), blobs(), steps=(1,), seeds=(0,))


def test_backprop_genome_output_activation():
    default = gn.Genome.backprop(0.1, activation="relu")
    assert default.options.output_activation is gn.Activation.RELU  # unchanged behaviour
    linear = gn.Genome.backprop(0.1, activation="relu", loss="cross_entropy", output_activation="identity")
    assert linear.options.activation is gn.Activation.RELU
    assert linear.options.output_activation is gn.Activation.IDENTITY
    with pytest.raises(ValueError, match="output_activation"):
        gn.Genome.backprop(0.1, output_activation="softplus")
    # identity outputs: predictions are the raw logits z = W h + b
    top = gn.topologies.mlp((4, 3))
    net = gn.Network(top, linear, dtype=torch.float64)
    x = torch.randn(5, 4, dtype=torch.float64)
    w = net.forward_weights[0, :, 0]
    W = w[:12].view(4, 3)
    assert torch.allclose(net.predict(x), x @ W + w[12:], atol=1e-12)
    assert math.isclose(float(linear.eta_tilde), -0.1, rel_tol=1e-6)
