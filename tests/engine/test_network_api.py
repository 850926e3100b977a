"""Network construction, shapes, weight access and clear errors on bad input."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import graphnet as gn
from graphnet.engine import parse_device, resolve_device


@pytest.fixture
def net():
    return gn.Network(gn.topologies.mlp([4, 5, 3]), gn.Genome.random(3, seed=0))


def test_shapes(net):
    x = torch.rand(7, 4)
    assert net.predict(x).shape == (7, 3)
    assert net.forward_weights.shape == (1, 4 * 5 + 5 * 3 + 5 + 3, 3)
    population = gn.Network(net.topology, [gn.Genome.random(3, seed=s) for s in range(4)])
    assert population.predict(x).shape == (4, 7, 3)
    assert population.predict(x.expand(4, 7, 4)).shape == (4, 7, 3)


def test_weights_are_settable_and_aligned_with_edges(net):
    edges = net.topology.forward_edges
    values = torch.arange(len(edges), dtype=torch.float32).view(1, -1, 1).expand(1, -1, 3).clone()
    net.forward_weights = values
    assert torch.equal(net.forward_weights, values)
    # the synapse of edge (("input", 1), ("hidden1", 2)) drives hidden neuron 2 from input 1
    position = edges.index((("input", 1), ("hidden1", 2)))
    group = net.forward_program.dense[0]
    assert net.synapses.forward.dense[0][0, 0, 1 - group.a_start, 2].item() == position


def test_replicas_get_different_synapses():
    genome = gn.Genome.random(3, seed=0)
    net = gn.Network(gn.topologies.mlp([4, 5, 3]), [genome, genome])
    assert not torch.equal(net.forward_weights[0], net.forward_weights[1])
    again = gn.Network(gn.topologies.mlp([4, 5, 3]), [genome, genome])
    assert torch.equal(net.forward_weights, again.forward_weights)  # deterministic by seed


def test_members_may_be_given_their_own_synapse_seeds():
    """seed=[...] gives member p the synapses of a single network seeded seed[p] (with a tied
    backward set and with separate backward synapses); equal seeds share the noise, scaled by each
    member's init_scale (common random numbers for compared genomes)."""
    topology = gn.topologies.mlp([4, 5, 3])
    for genome in (gn.Genome.random(3, seed=0), gn.Genome.backprop(lr=0.1)):
        big = genome.clone()
        big.init_scale = torch.tensor(2.0)
        net = gn.Network(topology, [genome, big, genome], seed=[5, 5, 7])
        for p, (member, seed) in enumerate(zip([genome, big, genome], [5, 5, 7])):
            alone = gn.Network(topology, member, seed=seed)
            assert torch.equal(net.forward_weights[p], alone.forward_weights[0])
            assert torch.equal(net.backward_weights[p], alone.backward_weights[0])
        assert torch.allclose(net.forward_weights[1], 2 * net.forward_weights[0])
        default = gn.Network(topology, [genome, genome], seed=3)
        assert torch.equal(default.forward_weights, gn.Network(topology, [genome, genome], seed=[3, 4]).forward_weights)
    for bad in ([1, 2], [1, 2, 3.5], "abc", 2.0):
        with pytest.raises(ValueError, match="seed"):
            gn.Network(topology, [genome] * 3, seed=bad)


def test_init_scale_and_fan_in():
    genome = gn.Genome.random(2, seed=0)
    genome.init_scale = torch.tensor(3.0)
    net = gn.Network(gn.topologies.mlp([400, 300, 2]), genome)
    w = net.forward_weights[0, : 400 * 300]  # input -> hidden block, fan-in 400 + bias
    assert abs(w.std().item() - 3.0 / 401 ** 0.5) < 0.01


@pytest.mark.parametrize("x, y, message", [
    (torch.rand(5, 3), torch.zeros(5, dtype=torch.long), "n_inputs=4"),
    (torch.rand(5, 4), torch.zeros(6, dtype=torch.long), r"labels y must be \[batch\] = \[5\]"),
    (torch.rand(5, 4), torch.full((5,), 3), r"labels must lie in \[0, 3\)"),
    (torch.rand(5, 4), torch.rand(5, 2), r"float targets y must be \[batch, n_outputs\] = \[5, 3\]"),
    (torch.full((5, 4), float("nan")), torch.zeros(5, dtype=torch.long), "NaN"),
    (torch.rand(0, 4), torch.zeros(0, dtype=torch.long), "empty batch"),
    (torch.rand(2, 5, 4), torch.zeros(5, dtype=torch.long), "population=1"),
])
def test_bad_batches_are_named(net, x, y, message):
    with pytest.raises(ValueError, match=message):
        net.step(x, y)


def test_bad_weights_and_options():
    topology = gn.topologies.mlp([4, 5, 3])
    net = gn.Network(topology, gn.Genome.random(3, seed=0))
    with pytest.raises(ValueError, match=r"\[population, n_edges, channels\]"):
        net.forward_weights = torch.zeros(1, 5, 3)
    with pytest.raises(ValueError, match="kernel="):
        gn.Network(topology, gn.Genome.random(3), kernel="fast")
    with pytest.raises(ValueError, match="genome 1 has k=4 states, genome 0 has k=3"):
        gn.Network(topology, [gn.Genome.random(3), gn.Genome.random(4)])
    tied = gn.Network(topology, gn.Genome.backprop(lr=0.1))
    with pytest.raises(ValueError, match="tied"):
        tied.backward_weights = tied.backward_weights
    custom = gn.Topology.from_edges([(0, 2), (1, 2), (2, 3)], inputs=[0, 1], outputs=[3], backward=[(3, 1)])
    with pytest.raises(ValueError, match="forward twin"):
        gn.Network(custom, gn.Genome.backprop(lr=0.1))


@pytest.mark.parametrize("device, message", [
    ("tpu", "device='tpu' is not a torch device: expected e.g. 'cpu', 'cuda' or 'cuda:1'"),
    ("", "device='' is not a torch device"),
    ("cuda:x", "device='cuda:x' is not a torch device"),
    ("meta", "device='meta', but this torch build .* sees no meta device"),
])
def test_bad_devices_are_named(device, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(device)
    with pytest.raises(ValueError, match=message):
        gn.Network(gn.topologies.mlp([4, 5, 3]), gn.Genome.random(3), device=device)


def test_cuda_devices_are_checked_against_the_machine(monkeypatch):
    """Without a GPU: no CUDA is one error; with two (pretended) GPUs, cuda:2 is past the last one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda', but this torch build \(.*\) sees no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1") and resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match="device='cuda:2', but this machine has 2 CUDA GPU\\(s\\): cuda:0 to cuda:1"):
        resolve_device(torch.device("cuda:2"))
    assert resolve_device(None) == resolve_device("cpu") == torch.device("cpu")
    assert parse_device("cuda:7") == torch.device("cuda:7")  # the name only: no check of the machine


def test_diverging_genome_is_reported_not_raised():
    genome = gn.Genome.random(3, seed=0)
    genome.f_tilde = torch.tensor(1e30)  # synapses grow x1e30 per step
    net = gn.Network(gn.topologies.mlp([4, 5, 3]), [genome, gn.Genome.random(3, seed=1)])
    for _ in range(5):
        net.step(torch.rand(8, 4), torch.randint(0, 3, (8,)))
    assert net.finite().tolist() == [False, True]


def test_gradient_reaches_every_genome_tensor():
    genome = gn.Genome.random(3, seed=0).requires_grad_()
    net = gn.Network(gn.topologies.superneuron_skip([6, 8, 8, 3]), genome)
    for _ in range(2):
        net.step(torch.rand(8, 6), torch.randint(0, 3, (8,)))
    loss = torch.nn.functional.cross_entropy(net.predict(torch.rand(8, 6)), torch.randint(0, 3, (8,)))
    grads = torch.autograd.grad(loss, genome.parameters())
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    net.detach_()
    assert not net.forward_weights.requires_grad


def test_quickstart_example_runs():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(root / "examples" / "quickstart.py")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("backprop genome")]
    assert float(lines[0].split("after 300 steps")[1].split()[0]) > 0.8


def test_gradient_feedback_warns_when_outputs_send_edges():
    topology = gn.Topology.from_edges([("x", "h"), ("h", "o0"), ("o0", "o1")], inputs=["x"], outputs=["o0", "o1"])
    with pytest.warns(UserWarning, match="outgoing forward edges"):
        gn.Network(topology, gn.Genome.backprop(lr=0.1))


def test_gradient_feedback_warns_when_hidden_neurons_get_no_feedback():
    topology = gn.topologies.mlp([4, 6, 2]).with_backward("none")
    with pytest.warns(UserWarning, match="hidden neuron"):
        gn.Network(topology, gn.Genome.backprop(lr=0.1))
