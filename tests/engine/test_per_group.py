"""Per-group (per-layer) genomes: a dict {group or neuron: Genome} with a 'default'."""
import pytest
import torch

import graphnet as gn
from conftest import TOPOLOGIES
from reference.sequential import reference_step, stack

OPTIONS = gn.RuleOptions(oja=True, derivative_states=(2,))


def _genomes(seeds, options=OPTIONS):
    return {key: gn.Genome.random(3, seed=seed, options=options, dtype=torch.float64) for key, seed in seeds.items()}


def test_per_group_matches_sequential_reference():
    topology = TOPOLOGIES["superneuron_dag"]()
    genomes = _genomes({"h1": 1, "out": 2, "single": 3, "default": 4})
    net = gn.Network(topology, genomes, dtype=torch.float64, seed=0)
    genome_of = [genomes["default"]] * topology.n_neurons
    for group in topology.groups:
        if group.name in genomes:
            genome_of[group.start:group.stop] = [genomes[group.name]] * group.size
    fw, bw = net.forward_weights[0], net.backward_weights[0]
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(5, net.n_inputs, generator=gen, dtype=torch.float64)
        y = torch.randint(0, net.n_outputs, (5,), generator=gen)
        net.step(x, y)
        target = 2 * torch.nn.functional.one_hot(y, net.n_outputs).double() - 1
        fw, bw, _ = reference_step(topology, genomes["default"], fw, bw, x, target, genome_of=genome_of)
        fw, bw = stack(fw, len(fw)), stack(bw, len(bw))
    assert (net.forward_weights[0] - fw).abs().max() < 1e-10
    assert (net.backward_weights[0] - bw).abs().max() < 1e-10


def test_neuron_names_as_keys_and_initial_scale_per_receiver():
    topology = TOPOLOGIES["neuron_dag"]()
    genomes = _genomes({6: 1, "default": 2})
    genomes[6].init_scale = torch.tensor(0.0, dtype=torch.float64)
    net = gn.Network(topology, genomes, dtype=torch.float64)
    into_6 = [i for i, (u, v) in enumerate(topology.forward_edges) if v == 6]
    others = [i for i, (u, v) in enumerate(topology.forward_edges) if v != 6]
    assert net.forward_weights[0, into_6].abs().max() == 0
    assert net.forward_weights[0, others].abs().min() > 0


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_identical_groups_equal_one_genome(name):
    topology = TOPOLOGIES[name]()
    genome = gn.Genome.random(3, seed=5, options=OPTIONS, dtype=torch.float64)
    keys = [g.name for g in topology.groups][:2] or list(topology.neurons[:2])
    split = gn.Network(topology, {**{key: genome for key in keys}, "default": genome}, dtype=torch.float64)
    whole = gn.Network(topology, genome, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(4, whole.n_inputs, generator=gen, dtype=torch.float64)
        y = torch.randint(0, whole.n_outputs, (4,), generator=gen)
        split.step(x, y)
        whole.step(x, y)
    assert torch.allclose(split.forward_weights, whole.forward_weights, atol=1e-12, rtol=0)
    assert torch.allclose(split.predict(x), whole.predict(x), atol=1e-12, rtol=0)


def test_population_of_per_group_genomes_equals_each_alone():
    topology = TOPOLOGIES["superneuron_dag"]()
    members = [_genomes({"h1": 1, "default": 2}), _genomes({"h1": 3, "default": 4})]
    both = gn.Network(topology, members, dtype=torch.float64, seed=0)
    x = torch.randn(5, both.n_inputs, dtype=torch.float64)
    y = torch.randint(0, both.n_outputs, (5,))
    both.step(x, y)
    for i, member in enumerate(members):
        alone = gn.Network(topology, member, dtype=torch.float64, seed=0)
        alone.forward_weights = both.forward_program.to_edge_order(both.initial_synapses(0).forward)[i:i + 1]
        alone.backward_weights = both.backward_program.to_edge_order(both.initial_synapses(0).backward)[i:i + 1]
        alone.step(x, y)
        assert torch.allclose(alone.forward_weights[0], both.forward_weights[i], atol=1e-12, rtol=0)


def test_per_group_gradient_reaches_each_group():
    topology = TOPOLOGIES["superneuron_dag"]()
    genomes = {key: gn.Genome.random(3, seed=s).requires_grad_() for key, s in (("h1", 1), ("default", 2))}
    net = gn.Network(topology, genomes)
    net.step(torch.rand(6, net.n_inputs), torch.randint(0, net.n_outputs, (6,)))
    loss = net.predict(torch.rand(6, net.n_inputs)).pow(2).sum()
    loss.backward()
    for genome in genomes.values():
        assert genome.nu.grad.abs().sum() > 0 and genome.f.grad.abs() > 0


def test_per_group_errors():
    topology = TOPOLOGIES["superneuron_dag"]()
    genome = gn.Genome.random(3)
    with pytest.raises(ValueError, match="neither a group nor a neuron"):
        gn.Network(topology, {"nope": genome, "default": genome})
    with pytest.raises(ValueError, match="add a 'default' genome"):
        gn.Network(topology, {"h1": genome})
    with pytest.raises(ValueError, match="same keys"):
        gn.Network(topology, [{"h1": genome, "default": genome}, {"default": genome}])
    with pytest.raises(ValueError, match="mix of per-group"):
        gn.Network(topology, [genome, {"default": genome}])
    with pytest.raises(ValueError, match="genome 'default' has k=3 states, genome 'h1' has k=4"):
        gn.Network(topology, {"h1": gn.Genome.random(4), "default": genome})
    nan = gn.Genome.random(3)
    nan.nu.data[0, 0] = float("nan")
    with pytest.raises(ValueError, match="genome 'h1' of member 1: nu contains NaN"):
        gn.Network(topology, [{"h1": genome, "default": genome}, {"h1": nan, "default": genome}])
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        gn.Network(topology, genome, dtype=torch.int32)


def test_a_neuron_key_inside_a_superneuron_matches_the_reference():
    """A genome for one neuron of a superneuron: its blocks run edge by edge, same math."""
    topology = TOPOLOGIES["superneuron_dag"]()
    genomes = _genomes({("h1", 0): 1, "default": 2})
    net = gn.Network(topology, genomes, dtype=torch.float64, seed=0)
    assert len(net.forward_program.dense) < len(gn.Network(topology, genomes["default"]).forward_program.dense)
    genome_of = [genomes["default"]] * topology.n_neurons
    genome_of[topology.index_of(("h1", 0))] = genomes[("h1", 0)]
    fw, bw = net.forward_weights[0], net.backward_weights[0]
    x = torch.randn(5, net.n_inputs, dtype=torch.float64)
    y = torch.randint(0, net.n_outputs, (5,))
    net.step(x, y)
    target = 2 * torch.nn.functional.one_hot(y, net.n_outputs).double() - 1
    fw, bw, _ = reference_step(topology, genomes["default"], fw, bw, x, target, genome_of=genome_of)
    assert (net.forward_weights[0] - stack(fw, len(fw))).abs().max() < 1e-10
    assert (net.backward_weights[0] - stack(bw, len(bw))).abs().max() < 1e-10
