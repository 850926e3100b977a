"""The engine against the neuron-by-neuron reference of docs/MODEL.md section 3 (tests/reference)."""
import pytest
import torch

import graphnet as gn
from reference.sequential import reference_step, stack

OPTIONS = {
    "default": gn.RuleOptions(),
    "everything": gn.RuleOptions(oja=True, synapse_normalization=True, forward_synapse_update=True,
                                 derivative_states=(2,), activation="tanh", output_activation="sigmoid"),
    "single_channel_multiplicative": gn.RuleOptions(single_channel=True, backward_update="multiplicative",
                                                    backward_states=(1, 2)),
    "fixed_feedback_written_states": gn.RuleOptions(fixed_backward=True, backward_states=(0, 2),
                                                    forward_synapse_update=True, derivative_states=(0,)),
    "fan_in_update": gn.RuleOptions(fan_in_update=True, oja=True),
}


def _encoded(y, n_out):
    return 2 * torch.nn.functional.one_hot(y, n_out).double() - 1


def _run_both(topology, options, steps=3, k=3, seed=0):
    genome = gn.Genome.random(k, seed=seed, options=options, dtype=torch.float64)
    net = gn.Network(topology, genome, dtype=torch.float64, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    fw, bw = net.forward_weights[0], net.backward_weights[0]
    fw = {e: fw[e] for e in range(len(fw))}
    bw = {e: bw[e] for e in range(len(bw))}
    for _ in range(steps):
        x = torch.randn(5, net.n_inputs, generator=gen, dtype=torch.float64)
        y = torch.randint(0, net.n_outputs, (5,), generator=gen)
        net.step(x, y)
        fw, bw, _ = reference_step(topology, genome, stack(fw, len(fw)), stack(bw, len(bw)), x,
                                   _encoded(y, net.n_outputs))
    _, _, states = reference_step(topology, genome, stack(fw, len(fw)), stack(bw, len(bw)), x, None, learn=False)
    expected_prediction = states[list(topology.output_index), 0].T
    return net, stack(fw, len(fw)), stack(bw, len(bw)), net.predict(x), expected_prediction


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_steps_match_sequential_reference(topology, name):
    net, fw, bw, prediction, expected = _run_both(topology, OPTIONS[name])
    assert (net.forward_weights[0] - fw).abs().max() < 1e-10
    assert (net.backward_weights[0] - bw).abs().max() < 1e-10
    assert (prediction - expected).abs().max() < 1e-10
    initial = net.forward_program.to_edge_order(net.initial_synapses(0).forward)[0]
    assert (net.forward_weights[0] - initial).abs().max() > 1e-3  # learning happened


def test_tied_backward_matches_reference():
    from conftest import TOPOLOGIES

    options = gn.RuleOptions(tied_backward=True)
    net, fw, _, prediction, expected = _run_both(TOPOLOGIES["superneuron_dag"](), options)
    assert (net.forward_weights[0] - fw).abs().max() < 1e-10
    assert (prediction - expected).abs().max() < 1e-10
    # tied backward synapses mirror their forward twins
    topo = net.topology
    twin = {tuple(e): i for i, e in enumerate(topo.forward_index.T.tolist())}
    mirrored = net.forward_weights[0][[twin[(r, s)] for s, r in topo.backward_index.T.tolist()]]
    assert torch.equal(net.backward_weights[0], mirrored)


def test_learning_changes_weights_by_the_rule(topology):
    """A genome with eta_tilde = 0 and f_tilde = 1 leaves synapses untouched; f_tilde scales them."""
    genome = gn.Genome.random(3, seed=4, dtype=torch.float64)
    genome.eta_tilde = torch.tensor(0.0, dtype=torch.float64)
    genome.f_tilde = torch.tensor(0.5, dtype=torch.float64)
    net = gn.Network(topology, genome, dtype=torch.float64)
    before = net.forward_weights.clone()
    net.step(torch.randn(4, net.n_inputs, dtype=torch.float64), torch.zeros(4, dtype=torch.long))
    assert torch.allclose(net.forward_weights, 0.5 * before)


def test_fixed_backward_keeps_feedback_synapses():
    from conftest import TOPOLOGIES

    topology = TOPOLOGIES["neuron_dag"]()
    net = gn.Network(topology, gn.Genome.random(3, options=gn.RuleOptions(fixed_backward=True)))
    before = net.backward_weights.clone()
    net.step(torch.rand(4, net.n_inputs), torch.zeros(4, dtype=torch.long))
    assert torch.equal(net.backward_weights, before)
    assert not torch.equal(net.forward_weights, net.forward_program.to_edge_order(net.initial_synapses(0).forward))
