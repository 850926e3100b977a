"""The genome as the engine sees it: parameters stacked over a population.

The engine never imports :class:`graphnet.Genome`. Anything with ``options`` (a
:class:`~graphnet.rules.options.RuleOptions`), ``k`` (states per neuron) and ``tensors()``
(a dict with the names below) can be stacked into a :class:`RuleTensors`.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import torch

from graphnet.rules.options import RuleOptions

MATRICES = ("nu", "mu", "P", "Q")  # each [k, k]
SCALARS = ("f", "eta", "f_tilde", "eta_tilde", "init_scale")  # each []
OPTIONAL = {"oja": "oja", "norm_scale": "normalize", "norm_shift": "normalize"}  # [] / [k] / [k]


class RuleSource(Protocol):
    options: RuleOptions
    k: int

    def tensors(self) -> dict[str, torch.Tensor]: ...


@dataclasses.dataclass(frozen=True)
class RuleTensors:
    """Rule parameters of a population of ``pop`` genomes sharing one ``RuleOptions``.

    Attributes (shapes):
        nu, mu, P, Q: ``[pop, k, k]``. ``m[c] = Σ_d nu[c, d] a[d]`` (forward message mixing),
            ``mu`` likewise for backward; Hebbian ``pre[c] = Σ_e a_s[e] P[e, c]``,
            ``post[c] = Σ_d Q[c, d] a_t[d]``.
        f, eta: ``[pop]`` neuron keep and update gates.
        f_tilde, eta_tilde: ``[pop]`` synapse keep and update gates.
        init_scale: ``[pop]`` spread of initial synapses.
        oja: ``[pop]`` Oja-like decay multiplier, or None.
        norm_scale, norm_shift: ``[pop, k]`` pre-activation normalization, or None.
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
    def channels(self) -> int:
        """Synapse channels: 1 for single-channel synapses, else ``k``."""
        return 1 if self.options.single_channel else self.k

    @classmethod
    def stack(cls, genomes: Sequence[RuleSource], dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> "RuleTensors":
        """Stack genomes into one population (differentiable w.r.t. each genome's tensors)."""
        if not genomes:
            raise ValueError("a network needs at least one genome")
        options, k = genomes[0].options, genomes[0].k
        for i, g in enumerate(genomes):
            if g.options != options or g.k != k:
                raise ValueError(
                    f"genome {i} differs from genome 0 in k or RuleOptions ({g.k} vs {k}); a population "
                    "shares one structure: build one Network per structure")
        options.check_states(k)
        dicts = [g.tensors() for g in genomes]
        names = list(MATRICES) + list(SCALARS) + [n for n, flag in OPTIONAL.items() if getattr(options, flag)]
        fields = {}
        for name in names:
            parts = []
            for i, d in enumerate(dicts):
                if name not in d:
                    raise ValueError(f"genome {i} lacks {name!r}, which its options require")
                parts.append(torch.as_tensor(d[name]).to(dtype=dtype, device=device))
            fields[name] = torch.stack(parts)
        return cls(options=options, **fields)
