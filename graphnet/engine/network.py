"""``Network``: a topology, a population of genomes and their synapses, stepped on batches.

One inner step on a batch ``(x, y)`` (docs/MODEL.md section 3):

1. reset neuron states; clamp inputs (state 0 = x) and the bias neuron (state 0 = 1);
2. forward sweep along the forward edges (``nu``);
3. optionally a synapse update (``forward_synapse_update``);
4. feedback into the output neurons (``RuleOptions.feedback``);
5. backward sweep along the backward edges (``mu``), outputs clamped;
6. synapse update on every forward and (untied) backward edge.

Everything is out of place, so a loss on :meth:`Network.predict` after several steps
backpropagates to the genome tensors.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import numpy as np
import torch

from graphnet.engine.devices import resolve_device
from graphnet.engine.kernels import CSR, GatherScatter, Scatter
from graphnet.engine.plasticity import HebbianTerms, normalize_synapses, synapse_update
from graphnet.engine.program import EdgeWeights, SweepProgram, TiedBackward, span_of
from graphnet.engine.rule import RuleSource, RuleTensors, per_genome
from graphnet.engine.sweep import run_sweep
from graphnet.rules.options import Feedback
from graphnet.topology.graph import Topology
from graphnet.topology.plan import compile_plan


def genome_groups(topology: Topology, members: list) -> tuple[list[list[RuleSource]], list[list[str]],
                                                                np.ndarray | None]:
    """Normalize ``members`` (genomes, or dicts ``{group: genome}``) to ``members[p][g]``, labels for
    error messages, and the genome group of every neuron (``[n_neurons]``, None when each member
    has one genome)."""
    if not members:
        raise ValueError("a network needs at least one genome")
    population = len(members) > 1
    if not isinstance(members[0], dict):
        if any(isinstance(m, dict) for m in members):
            raise ValueError("mix of per-group genome dicts and plain genomes in one population")
        labels = [[f"genome {p}" if population else "the genome"] for p in range(len(members))]
        return [[m] for m in members], labels, None
    keys = list(members[0])
    for i, member in enumerate(members):
        if not isinstance(member, dict) or list(member) != keys:
            raise ValueError(f"population member {i} must be a dict with the same keys as member 0: {keys}")
    groups = {g.name: range(g.start, g.stop) for g in topology.groups}
    neuron_genome = np.full(topology.n_neurons, -1, dtype=np.int64)
    for index, key in enumerate(keys):
        if key == "default":
            continue
        if key in groups:
            neuron_genome[list(groups[key])] = index
        else:
            try:
                neuron_genome[topology.index_of(key)] = index
            except (KeyError, ValueError):
                raise ValueError(f"per-group genome key {key!r} is neither a group nor a neuron of the topology; "
                                 f"groups: {sorted(map(str, groups))[:20]}, or use 'default'") from None
    missing = neuron_genome < 0
    if missing.any():
        if "default" not in keys:
            names = [topology.neurons[i] for i in np.flatnonzero(missing)[:5]]
            raise ValueError(f"{int(missing.sum())} neuron(s) have no genome (e.g. {names}): "
                             "name their group or add a 'default' genome")
        neuron_genome[missing] = keys.index("default")
    labels = [[f"genome {key!r}" + (f" of member {p}" if population else "") for key in keys]
              for p in range(len(members))]
    return [list(member.values()) for member in members], labels, neuron_genome


def _warn_if_not_gradient(plan) -> None:
    """Gradient feedback (the backprop genome) equals SGD only if errors can reach every neuron."""
    if plan.outputs_with_out_edges:
        warnings.warn(f"{plan.outputs_with_out_edges} output neuron(s) have outgoing forward edges: outputs are "
                      "clamped during the backward sweep, so gradient feedback (the backprop genome) misses the "
                      "error those edges carry back; it equals SGD only when outputs are sinks", stacklevel=3)
    if plan.hidden_without_feedback:
        warnings.warn(f"{plan.hidden_without_feedback} hidden neuron(s) with outgoing forward edges receive no "
                      "backward edge: their error signal stays σ'(z), so gradient feedback (the backprop genome) "
                      "is not SGD; use backward='reverse'", stacklevel=3)


KERNELS = {"csr": CSR, "reference": GatherScatter, "scatter": Scatter}


def _member_seeds(seed, population: int) -> list[int]:
    """Synapse seed of each member: ``seed + p`` for an int, else the ``population`` seeds given."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return [int(seed) + p for p in range(population)]
    try:
        seeds = [int(s) for s in seed if isinstance(s, (int, np.integer)) and not isinstance(s, bool)]
    except TypeError:
        raise ValueError(f"seed must be an int or a sequence of ints, got {type(seed).__name__}") from None
    if len(seeds) != len(seed) or len(seeds) != population:
        raise ValueError(f"seed: expected an int or {population} int(s), one per population member, got {seed!r}")
    return seeds


@dataclasses.dataclass
class Synapses:
    """The mutable part of a network: forward and (untied) backward synapses."""

    forward: EdgeWeights
    backward: EdgeWeights | None  # None when tied to the forward ones


class Network:
    """A graph network run by one genome or a population of genomes.

    Args:
        topology: the graph (:class:`graphnet.Topology`).
        genome: a :class:`graphnet.Genome`, or a list of them (a population; all must share ``k``
            and ``RuleOptions``). Each member has its own synapses; a genome listed twice is two
            replicas with different initial synapses. Per-group (per-layer) genomes: a dict
            ``{group: Genome}`` (or a list of such dicts, one per member) where a key is a
            superneuron / networkx node name or a neuron name, and ``"default"`` covers every
            neuron not named. A neuron updates and sends with its group's genome; a synapse learns
            (and is initialized) with its receiver's.
        seed: seed of the initial synapses ``w ~ N(0, 1) · init_scale / sqrt(fan_in)``, drawn in
            edge order, so a superneuron graph and its expansion start from the same synapses.
            Member ``p`` uses ``seed + p``; a sequence of ``pop`` seeds gives each member its own
            (equal seeds: the same noise, e.g. candidates compared on common random synapses).
        dtype, device: of states and synapses, ``torch.float32`` or ``torch.float64`` (genome
            tensors are cast, keeping their autograd graph). The network takes the genome's values
            when it is built: after changing a genome (an optimizer step), build a new Network.
            ``device`` is a ``torch.device`` or a name (``"cuda:1"``; None: the CPU); one this
            machine lacks raises ``ValueError`` (:func:`graphnet.engine.resolve_device`).
        kernel: ``"csr"`` (sparse-matrix products, default), ``"reference"`` (gather/scatter) or
            ``"scatter"`` (torch-scatter / PyTorch Geometric, optional extras) for neuron-level edges.
        dense: run superneuron blocks as dense matrix products (False: every edge is sparse).
    """

    def __init__(self, topology: Topology, genome: RuleSource | list[RuleSource], *, seed: int | Sequence[int] = 0,
                 dtype: torch.dtype = torch.float32, device: str | torch.device | None = None,
                 kernel: str = "csr", dense: bool = True):
        if kernel not in KERNELS:
            raise ValueError(f"kernel={kernel!r}: expected one of {sorted(KERNELS)}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype}: the engine runs in torch.float32 or torch.float64")
        if not isinstance(topology, Topology):
            raise TypeError(f"topology must be a graphnet.Topology, got {type(topology).__name__} "
                            "(build one with Topology.from_networkx / from_edges / load)")
        device = resolve_device(device)
        self.topology = topology
        self.is_population = isinstance(genome, (list, tuple))
        members = list(genome) if self.is_population else [genome]
        self.device = device
        self.dtype = dtype
        members, labels, neuron_genome = genome_groups(topology, members)
        self.rule = RuleTensors.stack(members, dtype=dtype, device=self.device, labels=labels)
        plan = compile_plan(topology, dense=dense, neuron_groups=neuron_genome)
        self.plan = plan
        n = plan.n_neurons
        self.neuron_genome = neuron_genome
        self.forward_program = SweepProgram(plan.forward, n, self.device, KERNELS[kernel], neuron_genome)
        self.backward_program = SweepProgram(plan.backward, n, self.device, KERNELS[kernel], neuron_genome)
        self.tie = (TiedBackward(self.forward_program, self.backward_program, plan.backward_twin)
                    if self.rule.options.tied_backward else None)
        if self.rule.options.feedback is not Feedback.TARGET:
            _warn_if_not_gradient(plan)
        self._input_index = torch.as_tensor(np.array(plan.input_index), device=self.device)
        self._output_index = torch.as_tensor(np.array(plan.output_index), device=self.device)
        self._input_span = span_of(plan.input_index)
        self.synapses = self.initial_synapses(seed)

    # ------------------------------------------------------------------ shapes and weights
    @property
    def population(self) -> int:
        return self.rule.pop

    @property
    def n_inputs(self) -> int:
        return len(self.plan.input_index)

    @property
    def n_outputs(self) -> int:
        return len(self.plan.output_index)

    def initial_synapses(self, seed: int | Sequence[int]) -> Synapses:
        """Fresh synapses ``N(0, 1) · init_scale / sqrt(fan_in of the receiver)``, drawn in edge order.

        Member ``p`` draws with seed ``seed + p`` (or ``seed[p]`` for a sequence of ``pop`` seeds;
        forward edges, then backward edges), in float64 on the CPU: member p of a population equals a
        single network built with that seed, in any dtype and on any device. Members that share a
        seed share the noise (scaled by their own ``init_scale``), drawn once.
        """
        channels = self.rule.channels
        seeds = _member_seeds(seed, self.population)
        generators = {s: torch.Generator().manual_seed(s) for s in dict.fromkeys(seeds)}  # one per distinct seed

        def draw(program: SweepProgram, edge_index: np.ndarray) -> EdgeWeights:
            drawn = {s: torch.randn(edge_index.shape[1], channels, generator=g, dtype=torch.float64)
                     for s, g in generators.items()}
            noise = torch.stack([drawn[s] for s in seeds]).to(self.device, self.dtype)
            fan_in = np.maximum(program.plan.fan_in[edge_index[1]], 1)
            scale = torch.as_tensor(1 / np.sqrt(fan_in), dtype=self.dtype, device=self.device)
            genome = None if self.neuron_genome is None else torch.as_tensor(
                self.neuron_genome[edge_index[1]], device=self.device)
            init_scale = per_genome(self.rule.init_scale, genome).view(self.population, -1, 1)
            values = noise * scale.view(1, -1, 1) * init_scale
            return program.from_edge_order(values)

        forward = draw(self.forward_program, self.topology.forward_index)
        backward = None if self.tie else draw(self.backward_program, self.topology.backward_index)
        return Synapses(forward, backward)

    def reset(self, seed: int | Sequence[int] = 0) -> None:
        """Redraw the synapses (same genome), e.g. for a new episode (``seed`` as in the constructor)."""
        self.synapses = self.initial_synapses(seed)

    @property
    def forward_weights(self) -> torch.Tensor:
        """``[pop, n_forward_edges, channels]`` aligned with ``topology.forward_edges``.

        Reading returns a new tensor (synapses are stored per block): to change synapses, assign a
        whole tensor, e.g. ``w = net.forward_weights; w[0, e] = 0; net.forward_weights = w``."""
        return self.forward_program.to_edge_order(self.synapses.forward)

    @forward_weights.setter
    def forward_weights(self, values: torch.Tensor) -> None:
        self._check_weights(values, self.plan.n_forward_edges, "forward_weights")
        self.synapses.forward = self.forward_program.from_edge_order(values.to(self.device, self.dtype))

    @property
    def backward_weights(self) -> torch.Tensor:
        """``[pop, n_backward_edges, channels]`` aligned with ``topology.backward_edges``
        (with tied backward edges: the mirrored forward synapses, read-only)."""
        return self.backward_program.to_edge_order(self._backward())

    @backward_weights.setter
    def backward_weights(self, values: torch.Tensor) -> None:
        if self.tie:
            raise ValueError("backward synapses are tied to the forward ones: set forward_weights instead")
        self._check_weights(values, self.plan.n_backward_edges, "backward_weights")
        self.synapses.backward = self.backward_program.from_edge_order(values.to(self.device, self.dtype))

    def _check_weights(self, values: torch.Tensor, n_edges: int, name: str) -> None:
        expected = (self.population, n_edges, self.rule.channels)
        if tuple(values.shape) != expected:
            raise ValueError(f"{name} must have shape [population, n_edges, channels] = {list(expected)}, "
                             f"got {list(values.shape)}")
        if not torch.isfinite(values).all():
            raise ValueError(f"{name} contains NaN or Inf")

    def _backward(self) -> EdgeWeights:
        return self.tie(self.synapses.forward) if self.tie else self.synapses.backward

    def detach_(self) -> "Network":
        """Cut the autograd history of the synapses (truncated unrolls); returns self."""
        self.synapses.forward = self.synapses.forward.map(torch.Tensor.detach)
        if self.synapses.backward is not None:
            self.synapses.backward = self.synapses.backward.map(torch.Tensor.detach)
        return self

    def finite(self) -> torch.Tensor:
        """``[pop]`` bool: which members still have only finite synapses (a diverging genome does not)."""
        parts = [self.forward_program.flatten(self.synapses.forward)]
        if self.synapses.backward is not None:
            parts.append(self.backward_program.flatten(self.synapses.backward))
        return torch.stack([torch.isfinite(p).flatten(1).all(1) for p in parts]).all(0)

    # ------------------------------------------------------------------ stepping
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """State 0 of the outputs after a forward sweep: ``[batch, n_outputs]`` for one genome,
        ``[pop, batch, n_outputs]`` for a population. ``x``: ``[batch, n_inputs]`` (or
        ``[pop, batch, n_inputs]``)."""
        a = self._forward(self._inputs(x))
        out = a[:, 0].index_select(1, self._output_index).transpose(1, 2)
        return out if self.is_population else out[0]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One inner step on a batch: ``x [batch, n_inputs]``, ``y`` integer labels ``[batch]``
        (feedback writes +1 / -1, or one-hot for gradient feedback) or float targets
        ``[batch, n_outputs]``; either may carry a leading population axis."""
        x = self._inputs(x)
        target = self._targets(y, x.shape[1])
        a = self._forward(x)
        rule = self.rule
        if rule.options.forward_synapse_update:
            self._learn(a)
        a = self._feedback(a, target)
        backward = self._backward()
        if rule.options.synapse_normalization:
            backward = normalize_synapses(backward, self.backward_program)
        a = run_sweep(a, backward, self.backward_program, rule, backward=True)
        self._learn(a)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.synapses.forward
        if self.rule.options.synapse_normalization:
            weights = normalize_synapses(weights, self.forward_program)
        return run_sweep(self._initial_state(x), weights, self.forward_program, self.rule, backward=False)

    def _learn(self, a: torch.Tensor) -> None:
        terms = HebbianTerms(a, self.rule, self.forward_program.neuron_genome)
        self.synapses.forward = synapse_update(terms, self.synapses.forward, self.forward_program)
        if self.synapses.backward is not None and not self.rule.options.fixed_backward:
            self.synapses.backward = synapse_update(terms, self.synapses.backward, self.backward_program)

    def _initial_state(self, x: torch.Tensor) -> torch.Tensor:
        """``x [pop, B, n_inputs]`` -> states ``[pop, k, N, B]``: zeros, inputs and bias in state 0."""
        pop, batch, _ = x.shape
        a = x.new_zeros(pop, self.rule.k, self.plan.n_neurons, batch)
        if self._input_span is not None:
            a[:, 0, self._input_span] = x.transpose(1, 2)
        else:
            a[:, 0].index_copy_(1, self._input_index, x.transpose(1, 2))
        if self.plan.bias_index is not None:
            a[:, 0, self.plan.bias_index] = 1.0
        return a

    def _feedback(self, a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Write the feedback into the outputs: state 1 as ``RuleOptions.feedback`` says, states 2.. = 0."""
        out = a.index_select(2, self._output_index)  # [pop, k, n_out, B]
        t = target.transpose(1, 2)  # [pop, n_out, B]
        feedback = self.rule.options.feedback
        if feedback is Feedback.TARGET:
            signal = t
        elif feedback is Feedback.MSE_GRADIENT:
            signal = (out[:, 0] - t) * out[:, 1]
        else:
            signal = (torch.softmax(out[:, 0], dim=1) - t) * out[:, 1]
        new = torch.cat([out[:, :1], signal.unsqueeze(1), torch.zeros_like(out[:, 2:])], dim=1)
        if torch.is_grad_enabled():
            return a.index_copy(2, self._output_index, new)
        return a.index_copy_(2, self._output_index, new)

    # ------------------------------------------------------------------ input checks
    def _inputs(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        given = list(x.shape)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.population, -1, -1)
        if x.dim() != 3 or x.shape[2] != self.n_inputs or x.shape[0] != self.population:
            raise ValueError(f"x must be [batch, n_inputs] or [population, batch, n_inputs] with n_inputs="
                             f"{self.n_inputs} and population={self.population}; got shape {given}")
        if x.shape[1] == 0:
            raise ValueError("x holds an empty batch")
        if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():  # one cheap pass when all is well
            raise ValueError("x contains NaN or Inf")
        return x

    def _targets(self, y, batch: int) -> torch.Tensor:
        """Labels ``[(pop,) B]`` or float targets ``[(pop,) B, n_out]`` -> ``[pop, B, n_out]``."""
        y = torch.as_tensor(y, device=self.device)
        n_out = self.n_outputs
        if not y.is_floating_point():
            if y.shape[-1:] != (batch,) or y.dim() > 2:
                raise ValueError(f"integer labels y must be [batch] = [{batch}] (or [population, batch]); "
                                 f"got shape {list(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_out):
                raise ValueError(f"labels must lie in [0, {n_out}) for {n_out} outputs; got "
                                 f"min {int(y.min())}, max {int(y.max())}")
            onehot = torch.nn.functional.one_hot(y.long(), n_out).to(self.dtype)
            y = 2 * onehot - 1 if self.rule.options.feedback is Feedback.TARGET else onehot
        else:
            y = y.to(self.dtype)
            if y.shape[-2:] != (batch, n_out) or y.dim() > 3:
                raise ValueError(f"float targets y must be [batch, n_outputs] = [{batch}, {n_out}] "
                                 f"(or with a population axis); got shape {list(y.shape)}")
            if not torch.isfinite(y).all():
                raise ValueError("y contains NaN or Inf")
        if y.dim() == 2:
            y = y.unsqueeze(0).expand(self.population, -1, -1)
        if y.shape[0] != self.population:
            raise ValueError(f"y has a population axis of {y.shape[0]}, the network holds {self.population}")
        return y

    def __repr__(self) -> str:
        return (f"Network(population={self.population}, k={self.rule.k}, neurons={self.plan.n_neurons}, "
                f"forward_edges={self.plan.n_forward_edges}, backward_edges={self.plan.n_backward_edges}, "
                f"dense_blocks={len(self.forward_program.dense)}, device={self.device})")
