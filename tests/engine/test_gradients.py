"""The engine is differentiable end to end: a loss after several inner steps has the right
gradient with respect to every genome tensor.

The reference is a central finite difference of the same float64 computation (build a network
from the genome vector, run ``STEPS`` inner steps, softmax cross-entropy of ``predict`` on a query
batch), so it checks every hand-written backward (the CSR kernels') and every autograd path
(dense blocks, normalization, Oja term, synapse normalization, the forward synapse update and
the initial synapses through ``init_scale``).
"""
import networkx as nx
import pytest
import torch

import graphnet as gn

STEPS = 3
EPS = 1e-6
RTOL = 1e-5


def neuron_dag() -> gn.Topology:
    """A neuron-level DAG (every edge runs through the sparse kernels), with an input->output skip."""
    edges = [("x0", "h0"), ("x1", "h0"), ("x1", "h1"), ("x2", "h1"), ("h0", "h1"),
             ("h0", "o0"), ("h1", "o0"), ("h1", "o1"), ("x2", "o1")]
    return gn.Topology.from_edges(edges, inputs=["x0", "x1", "x2"], outputs=["o0", "o1"])


def superneuron_dag() -> gn.Topology:
    """Superneurons in(4) -> h(5) -> out(3) with the skip in -> out: a 20-edge dense block (both
    sweeps), smaller blocks and the bias edges on the sparse path, plus one single neuron."""
    g = nx.DiGraph()
    g.add_node("in", role="input", size=4)
    g.add_node("h", size=5)
    g.add_node("single")
    g.add_node("out", role="output", size=3)
    g.add_edges_from([("in", "h"), ("h", "out"), ("in", "out"), ("h", "single"), ("single", "out")])
    return gn.Topology.from_networkx(g)


CASES = {
    "neuron_csr": (neuron_dag, gn.RuleOptions(), {}),
    "superneuron_dense": (superneuron_dag, gn.RuleOptions(), {}),
    "neuron_options": (neuron_dag, gn.RuleOptions(normalize=True, oja=True, synapse_normalization=True,
                                                  forward_synapse_update=True), {}),
    "superneuron_options": (superneuron_dag, gn.RuleOptions(normalize=True, oja=True, synapse_normalization=True,
                                                            forward_synapse_update=True), {}),
    "neuron_reference_kernel": (neuron_dag, gn.RuleOptions(), {"kernel": "reference"}),
    "superneuron_all_sparse": (superneuron_dag, gn.RuleOptions(), {"dense": False}),
    "single_channel_multiplicative": (neuron_dag, gn.RuleOptions(single_channel=True, backward_update="multiplicative",
                                                                 derivative_states=(1,), activation="tanh"), {}),
}


def unused_fields(options: gn.RuleOptions, k: int = 3) -> list[str]:
    """Vector entries a loss cannot depend on. Single-channel synapses read only column 0 of P
    (``pre[0] = Σ_e a[e] P[e, 0]``) and row 0 of Q; ``f`` multiplies the previous state, which is
    0 in the forward sweep, so it only acts through an additive backward sweep."""
    unused = []
    if options.single_channel:
        unused += [f"P[{e},{c}]" for e in range(k) for c in range(1, k)]
        unused += [f"Q[{c},{d}]" for c in range(1, k) for d in range(k)]
    if options.backward_update.value == "multiplicative":
        unused.append("f")
    return sorted(unused, key=lambda n: gn.Genome.random(k, options=options).vector_names().index(n))


def genome_vector(options: gn.RuleOptions, seed: int) -> tuple[gn.Genome, torch.Tensor]:
    """A random k=3 genome moved away from its neutral gates, so every term matters."""
    genome = gn.Genome.random(3, seed=seed, options=options, dtype=torch.float64)
    gen = torch.Generator().manual_seed(100 + seed)
    values = dict(f=0.3, eta=0.9, f_tilde=0.95, eta_tilde=0.3, init_scale=1.2)
    if options.oja:
        values["oja"] = 0.2
    tensors = {name: t.detach().clone() for name, t in genome.tensors().items()}
    for name, v in values.items():
        tensors[name] = torch.tensor(v, dtype=torch.float64)
    if options.normalize:
        tensors["norm_scale"] = 1 + 0.2 * torch.randn(3, generator=gen, dtype=torch.float64)
        tensors["norm_shift"] = 0.1 * torch.randn(3, generator=gen, dtype=torch.float64)
    genome = gn.Genome(options=options, **tensors)
    return genome, genome.to_vector().detach().clone()


def batches(topology: gn.Topology, seed: int, pop: int | None = None):
    gen = torch.Generator().manual_seed(seed)
    n_in, n_out = len(topology.input_index), len(topology.output_index)
    lead = () if pop is None else (pop,)
    data = [(torch.randn(*lead, 6, n_in, generator=gen, dtype=torch.float64),
             torch.randint(0, n_out, (*lead, 6), generator=gen)) for _ in range(STEPS)]
    query = (torch.randn(*lead, 7, n_in, generator=gen, dtype=torch.float64),
             torch.randint(0, n_out, (*lead, 7), generator=gen))
    return data, query


def unrolled_loss(net: gn.Network, data, query) -> torch.Tensor:
    for x, y in data:
        net.step(x, y)
    x, y = query
    logits = net.predict(x)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def central_difference(fn, vec: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    grad = torch.zeros_like(vec)
    for i in range(vec.numel()):
        step = torch.zeros_like(vec)
        step[i] = eps
        grad[i] = (fn(vec + step) - fn(vec - step)) / (2 * eps)
    return grad


def assert_gradients_match(auto: torch.Tensor, numeric: torch.Tensor, names: list[str], rtol: float = RTOL):
    """Entry by entry: |auto - numeric| <= rtol * (|numeric| + 1e-2 * max|numeric|)."""
    scale = float(numeric.abs().max())
    assert scale > 1e-6, f"the loss does not depend on the genome (max |gradient| {scale:.3g})"
    bound = rtol * (numeric.abs() + 1e-2 * scale)
    bad = ((auto - numeric).abs() > bound).nonzero().flatten().tolist()
    assert not bad, "gradient mismatch (autograd vs central difference):\n" + "\n".join(
        f"  {names[i]}: {float(auto[i]):.10g} vs {float(numeric[i]):.10g}" for i in bad[:20])


@pytest.mark.parametrize("case", list(CASES))
def test_genome_gradient_matches_finite_differences(case):
    make_topology, options, network_kwargs = CASES[case]
    topology = make_topology()
    genome, vec = genome_vector(options, seed=1)
    data, query = batches(topology, seed=2)

    def loss(v):
        g = gn.Genome.from_vector(v, like=genome)
        net = gn.Network(topology, g, seed=0, dtype=torch.float64, **network_kwargs)
        return unrolled_loss(net, data, query)

    net = gn.Network(topology, genome, seed=0, dtype=torch.float64, **network_kwargs)
    if case.startswith("superneuron") and network_kwargs.get("dense", True):
        sizes = [g.n_edges for g in net.forward_program.dense]
        assert sizes and max(sizes) >= 16, "the superneuron case must run a dense block"
    if case.startswith("neuron"):
        assert not net.forward_program.dense and not net.backward_program.dense

    v = vec.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(loss(v), v)
    with torch.no_grad():
        numeric = central_difference(loss, vec)
    assert_gradients_match(auto, numeric, genome.vector_names())
    # every field of the genome takes part (a detached path would show zeros on both sides only
    # if the loss truly ignored it)
    dead = [name for name, t in zip(genome.vector_names(), numeric) if float(t.abs()) == 0.0]
    assert dead == unused_fields(options), f"the loss ignores {dead}"


def test_gradcheck_over_genome_vector():
    """torch.autograd.gradcheck over the whole vector (CSR kernels, neuron-level graph)."""
    topology = neuron_dag()
    genome, vec = genome_vector(gn.RuleOptions(activation="tanh"), seed=4)
    data, query = batches(topology, seed=5)

    def loss(v):
        net = gn.Network(topology, gn.Genome.from_vector(v, like=genome), seed=3, dtype=torch.float64)
        return unrolled_loss(net, data, query)

    assert torch.autograd.gradcheck(loss, (vec.clone().requires_grad_(True),), eps=EPS, atol=1e-7, rtol=RTOL)


@pytest.mark.parametrize("make_topology", [neuron_dag, superneuron_dag], ids=["neuron", "superneuron"])
def test_population_gradient_equals_each_genome_alone(make_topology):
    """Two genomes in one population network, each with its own data: the loss summed over the
    population has, for each genome, the gradient that genome gets when run alone from the same
    synapses."""
    topology = make_topology()
    genomes = [genome_vector(gn.RuleOptions(), seed=s)[0].detach().clone().requires_grad_() for s in (1, 2)]
    data, query = batches(topology, seed=6, pop=2)

    pop_net = gn.Network(topology, genomes, seed=0, dtype=torch.float64)
    forward0 = pop_net.forward_weights.detach().clone()
    backward0 = pop_net.backward_weights.detach().clone()
    for x, y in data:
        pop_net.step(x, y)
    logits = pop_net.predict(query[0])
    assert logits.shape == (2, 7, len(topology.output_index))
    pop_losses = [torch.nn.functional.cross_entropy(logits[i], query[1][i]) for i in range(2)]
    pop_grads = torch.autograd.grad(sum(pop_losses), [p for g in genomes for p in g.parameters()])

    at = 0
    for i, genome in enumerate(genomes):
        alone = gn.Network(topology, genome, seed=0, dtype=torch.float64)
        # same initial synapses as member i, as the same differentiable function of init_scale
        s = genome.init_scale
        alone.forward_weights = forward0[i:i + 1] / s.detach() * s
        alone.backward_weights = backward0[i:i + 1] / s.detach() * s
        member_data = [(x[i], y[i]) for x, y in data]
        loss = unrolled_loss(alone, member_data, (query[0][i], query[1][i]))
        torch.testing.assert_close(loss, pop_losses[i], rtol=1e-12, atol=1e-14)
        params = genome.parameters()
        grads = torch.autograd.grad(loss, params)
        for name, g_alone, g_pop in zip(genome.tensors(), grads, pop_grads[at:at + len(params)]):
            assert float(g_alone.abs().max()) > 0, f"genome {i}: zero gradient for {name}"
            torch.testing.assert_close(g_pop, g_alone, rtol=1e-9, atol=1e-12,
                                       msg=lambda m, i=i, name=name: f"genome {i}, {name}: {m}")
        at += len(params)
