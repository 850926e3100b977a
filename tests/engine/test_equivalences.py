"""Execution paths that must agree: population vs single genomes, dense blocks vs their
neuron-level expansion, CSR kernels vs the gather/scatter reference, and float32 vs float64."""
import pytest
import torch

import graphnet as gn

OPTIONS = [gn.RuleOptions(), gn.RuleOptions(normalize=True, oja=True, synapse_normalization=True),
           gn.RuleOptions(tied_backward=True, single_channel=True)]


def _train(net, steps=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(6, net.n_inputs, generator=gen, dtype=torch.float64)
        net.step(x, torch.randint(0, net.n_outputs, (6,), generator=gen))
    return net.predict(torch.randn(4, net.n_inputs, generator=gen, dtype=torch.float64))


def _for(topology, options):
    """Tied backward synapses need a forward twin per backward edge: give such graphs reversed feedback."""
    if options.tied_backward and topology.backward_edges != [(v, u) for u, v in topology.forward_edges]:
        return topology.with_backward("reverse")
    return topology


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "norm_oja", "tied"])
def test_population_equals_each_genome_alone(topology, options):
    topology = _for(topology, options)
    genomes = [gn.Genome.random(3, seed=s, options=options, dtype=torch.float64) for s in (1, 2, 3)]
    population = gn.Network(topology, genomes, dtype=torch.float64, seed=5)
    prediction = _train(population)
    assert prediction.shape == (3, 4, population.n_outputs)
    for i, genome in enumerate(genomes):
        alone = gn.Network(topology, genome, dtype=torch.float64, seed=5)
        alone.forward_weights = population.forward_program.to_edge_order(
            population.initial_synapses(5).forward)[i:i + 1]
        if not options.tied_backward:
            alone.backward_weights = population.backward_program.to_edge_order(
                population.initial_synapses(5).backward)[i:i + 1]
        single = _train(alone)
        assert torch.allclose(single, prediction[i], atol=1e-12, rtol=0)
        assert torch.allclose(alone.forward_weights[0], population.forward_weights[i], atol=1e-12, rtol=0)


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "norm_oja", "tied"])
def test_superneuron_graph_equals_its_expansion(topology, options):
    topology = _for(topology, options)
    genome = gn.Genome.random(3, seed=7, options=options, dtype=torch.float64)
    blocks = gn.Network(topology, genome, dtype=torch.float64, seed=2)
    expanded = gn.Network(topology.expand(), genome, dtype=torch.float64, seed=2)
    assert torch.equal(blocks.forward_weights, expanded.forward_weights)  # same initial synapses
    assert torch.allclose(_train(blocks), _train(expanded), atol=1e-12, rtol=0)
    assert torch.allclose(blocks.forward_weights, expanded.forward_weights, atol=1e-12, rtol=0)
    assert torch.allclose(blocks.backward_weights, expanded.backward_weights, atol=1e-12, rtol=0)


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "norm_oja", "tied"])
def test_csr_kernels_equal_gather_scatter_reference(topology, options):
    topology = _for(topology, options)
    genome = gn.Genome.random(3, seed=8, options=options, dtype=torch.float64)
    fast = gn.Network(topology, genome, dtype=torch.float64, seed=1)
    reference = gn.Network(topology, genome, dtype=torch.float64, seed=1, kernel="reference", dense=False)
    assert torch.allclose(_train(fast), _train(reference), atol=1e-12, rtol=0)
    assert torch.allclose(fast.forward_weights, reference.forward_weights, atol=1e-12, rtol=0)


def test_float32_tracks_float64(topology):
    genome = gn.Genome.random(3, seed=9, dtype=torch.float64)
    results = []
    for dtype in (torch.float64, torch.float32):
        net = gn.Network(topology, genome.to(dtype=dtype), dtype=dtype, seed=0)
        gen = torch.Generator().manual_seed(0)
        for _ in range(3):
            net.step(torch.randn(6, net.n_inputs, generator=gen).to(dtype),
                     torch.randint(0, net.n_outputs, (6,), generator=gen))
        results.append(net.forward_weights.double())
    assert (results[0] - results[1]).abs().max() < 1e-5


def test_per_member_data_equals_separate_runs(topology):
    genome = gn.Genome.random(3, seed=3, dtype=torch.float64)
    both = gn.Network(topology, [genome, genome], dtype=torch.float64, seed=0)
    x = torch.randn(2, 5, both.n_inputs, dtype=torch.float64)
    y = torch.randint(0, both.n_outputs, (2, 5))
    both.step(x, y)
    for i in range(2):
        alone = gn.Network(topology, genome, dtype=torch.float64, seed=0)
        alone.forward_weights = both.forward_program.to_edge_order(both.initial_synapses(0).forward)[i:i + 1]
        alone.backward_weights = both.backward_program.to_edge_order(both.initial_synapses(0).backward)[i:i + 1]
        alone.step(x[i], y[i])
        assert torch.allclose(alone.forward_weights[0], both.forward_weights[i], atol=1e-12, rtol=0)


@pytest.mark.parametrize("options", OPTIONS + [gn.RuleOptions(backward_states=(1,), single_channel=True,
                                                               backward_update="multiplicative")],
                         ids=["default", "norm_oja", "tied", "written_states"])
def test_in_place_path_without_autograd_equals_out_of_place(topology, options):
    """With autograd off, sweeps write states in place; results must not change."""
    topology = _for(topology, options)
    genome = gn.Genome.random(3, seed=11, options=options, dtype=torch.float64)
    results = []
    for grad in (True, False):
        net = gn.Network(topology, genome, dtype=torch.float64, seed=4)
        with torch.set_grad_enabled(grad):
            results.append((_train(net), net.forward_weights, net.backward_weights))
    for tracked, in_place in zip(*results):
        assert torch.allclose(tracked, in_place, atol=1e-12, rtol=0)


def test_optional_scatter_kernel_equals_reference(topology):
    pytest.importorskip("torch_geometric", reason="kernel='scatter' needs torch-scatter or torch-geometric")
    genome = gn.Genome.random(3, seed=12, dtype=torch.float64)
    fast = gn.Network(topology, genome, dtype=torch.float64, seed=1, kernel="scatter", dense=False)
    reference = gn.Network(topology, genome, dtype=torch.float64, seed=1, kernel="reference", dense=False)
    with torch.no_grad():
        assert torch.allclose(_train(fast), _train(reference), atol=1e-12, rtol=0)
    assert torch.allclose(fast.forward_weights, reference.forward_weights, atol=1e-12, rtol=0)
