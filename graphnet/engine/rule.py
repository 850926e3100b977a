"""The genome as the engine sees it: parameters stacked over a population and genome groups.

A network may use one genome for every neuron, or one genome per *genome group* (per-layer
genomes): neuron ``n`` then uses genome ``neuron_genome[n]`` for its own update (``f``, ``eta``,
normalization) and for what it sends (``nu``, ``mu``), and a synapse uses the genome of its
receiving neuron (``P``, ``Q``, ``f_tilde``, ``eta_tilde``, ``init_scale``, ``oja``).

The engine never imports :class:`graphnet.Genome`. Anything with ``options`` (a
:class:`~graphnet.rules.options.RuleOptions`), ``k`` (states per neuron) and ``tensors()``
(a dict with the names of ``graphnet.rules.options.field_names``) can be stacked into a :class:`RuleTensors`.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import torch

from graphnet.rules.options import RuleOptions, field_names, field_shape



class RuleSource(Protocol):
    options: RuleOptions
    k: int

    def tensors(self) -> dict[str, torch.Tensor]: ...


@dataclasses.dataclass(frozen=True)
class RuleTensors:
    """Rule parameters of ``pop`` members × ``groups`` genome groups sharing one ``RuleOptions``.

    Attributes (shapes; ``G`` = genome groups, 1 without per-group genomes):
        nu, mu, P, Q: ``[pop, G, k, k]``. ``m[c] = Σ_d nu[c, d] a[d]`` (forward message mixing),
            ``mu`` likewise for backward; Hebbian ``pre[c] = Σ_e a_s[e] P[e, c]``,
            ``post[c] = Σ_d Q[c, d] a_t[d]``.
        f, eta: ``[pop, G]`` neuron keep and update gates.
        f_tilde, eta_tilde: ``[pop, G]`` synapse keep and update gates.
        init_scale: ``[pop, G]`` spread of initial synapses.
        oja: ``[pop, G]`` Oja-like decay multiplier, or None.
        norm_scale, norm_shift: ``[pop, G, k]`` pre-activation normalization, or None.
    """

    options: RuleOptions
    nu: torch.Tensor
    mu: torch.Tensor
    P: torch.Tensor
    Q: torch.Tensor
    f: torch.Tensor
    eta: torch.Tensor
    f_tilde: torch.Tensor
    eta_tilde: torch.Tensor
    init_scale: torch.Tensor
    oja: torch.Tensor | None = None
    norm_scale: torch.Tensor | None = None
    norm_shift: torch.Tensor | None = None

    @property
    def k(self) -> int:
        return self.nu.shape[-1]

    @property
    def pop(self) -> int:
        return self.nu.shape[0]

    @property
    def groups(self) -> int:
        return self.nu.shape[1]

    @property
    def channels(self) -> int:
        """Synapse channels: 1 for single-channel synapses, else ``k``."""
        return 1 if self.options.single_channel else self.k

    @classmethod
    def stack(cls, members: Sequence[Sequence[RuleSource]], dtype: torch.dtype | None = None,
              device: torch.device | str | None = None,
              labels: Sequence[Sequence[str]] | None = None) -> "RuleTensors":
        """Stack ``members[p][g]`` (member p's genome for group g) into ``[pop, G, ...]`` tensors,
        differentiable w.r.t. each genome's tensors. ``labels[p][g]`` name them in error messages.

        The values are taken now: later changes to a genome do not reach this bundle."""
        genomes = [g for member in members for g in member]
        if labels is None:
            labels = [[f"genome {p}" if len(member) == 1 else f"genome {p}.{g}" for g in range(len(member))]
                      for p, member in enumerate(members)]
        flat_labels = [label for member in labels for label in member]
        if not genomes:
            raise ValueError("a network needs at least one genome")
        for label, g in zip(flat_labels, genomes):
            if not all(hasattr(g, attr) for attr in ("options", "k", "tensors")):
                raise TypeError(f"{label} is a {type(g).__name__}, not a graphnet.Genome")
        options, k = genomes[0].options, genomes[0].k
        for label, g in zip(flat_labels, genomes):
            if g.k != k:
                raise ValueError(f"{label} has k={g.k} states, {flat_labels[0]} has k={k}; "
                                 "the genomes of one network share k")
            if g.options != options:
                ours, theirs = options.to_dict(), g.options.to_dict()
                diff = {name: (ours[name], theirs[name]) for name in ours if ours[name] != theirs[name]}
                raise ValueError(f"{label} differs from {flat_labels[0]} in RuleOptions {diff}; the genomes of "
                                 "one network share one structure: build one Network per structure")
        options.check_states(k)
        names = field_names(options)
        shapes = {name: field_shape(name, k) for name in names}
        tensors = []
        for label, g in zip(flat_labels, genomes):
            values = g.tensors()
            for name in names:
                if values.get(name) is None:
                    raise ValueError(f"{label}: {name} is missing, but its RuleOptions require it")
                value = torch.as_tensor(values[name])
                if tuple(value.shape) != shapes[name]:
                    raise ValueError(f"{label}: {name} has shape {list(value.shape)}, expected "
                                     f"{list(shapes[name])} (k={k}, the size of nu)")
                if not torch.isfinite(value).all():
                    raise ValueError(f"{label}: {name} contains NaN or Inf")
            tensors.append({name: torch.as_tensor(values[name]) for name in names})
        fields = {}
        for name in names:
            stacked, start = [], 0
            for member in members:
                stacked.append(torch.stack([t[name].to(dtype=dtype, device=device)
                                            for t in tensors[start:start + len(member)]]))
                start += len(member)
            fields[name] = torch.stack(stacked)
        return cls(options=options, **fields)


def per_genome(value: torch.Tensor, genome_index: torch.Tensor | None) -> torch.Tensor:
    """A ``[pop, G, *rest]`` parameter for each of ``n`` neurons or edges: ``[pop, n, *rest]``.

    ``genome_index [n]`` names each one's genome group; None (one group) keeps ``[pop, 1, *rest]``,
    which broadcasts over the ``n`` axis.
    """
    return value if genome_index is None else value.index_select(1, genome_index)
