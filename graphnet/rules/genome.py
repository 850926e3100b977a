"""The genome: the small parameter set of docs/MODEL.md section 2 shared by every neuron and synapse.

A :class:`Genome` holds the learned numbers of an update rule under the paper's names, plus the
:class:`~graphnet.rules.options.RuleOptions` that say how the engine uses them:

========================  ========  =====================================================
field                     shape     role
========================  ========  =====================================================
``nu``                    [k, k]    forward message mixing, ``m[c] = Σ_d nu[c, d] a_u[d]``
``mu``                    [k, k]    backward message mixing, same form
``P``                     [k, k]    Hebbian pre transform, ``pre[c] = Σ_e a_s[e] P[e, c]``
``Q``                     [k, k]    Hebbian post transform, ``post[c] = Σ_d Q[c, d] a_t[d]``
``f``, ``eta``            []        neuron keep and update gates, ``a ← σ(f·a + eta·m)``
``f_tilde``, ``eta_tilde``  []      synapse keep and update gates, ``w ← f̃·w + η̃·Δw``
``init_scale``            []        initial synapses ``w ~ N(0, 1) · init_scale / sqrt(fan_in)``
``oja``                   []        Oja-like decay multiplier (only when ``options.oja``)
``norm_scale``            [k]       pre-activation normalization scale (``options.normalize``)
``norm_shift``            [k]       pre-activation normalization shift (``options.normalize``)
========================  ========  =====================================================

The fields are plain torch tensors (they may require grad; nothing is copied on construction, so
a genome built from slices of a vector stays in that vector's autograd graph). The flat vector
layout used by CMA-ES is documented on :meth:`Genome.to_vector`.

The engine never imports this class: it consumes :meth:`Genome.tensors` through
``graphnet.engine.rule.RuleTensors.stack``.
"""
from __future__ import annotations

import functools
import os
from typing import Sequence

import torch

from graphnet.rules.options import OPTIONAL as OPTIONAL_FIELDS
from graphnet.rules.options import (MATRICES, SCALARS, Activation, BackwardUpdate, Feedback, RuleOptions,
                                    field_names, field_shape)

_LOSSES = {"mse": Feedback.MSE_GRADIENT, "cross_entropy": Feedback.CE_GRADIENT}


def _fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


class Genome:
    """Parameters of one learned update rule (docs/MODEL.md section 2).

    Build one with :meth:`random`, :meth:`backprop`, :meth:`from_vector` or :meth:`load`, or
    directly from tensors (keyword arguments only; numbers and nested lists are converted)::

        Genome(nu=..., mu=..., P=..., Q=..., f=..., eta=..., f_tilde=..., eta_tilde=...,
               init_scale=..., options=RuleOptions(), oja=None, norm_scale=None, norm_shift=None)

    ``oja`` must be given only when ``options.oja`` and ``norm_scale``/``norm_shift`` only when
    ``options.normalize``; when the options ask for them and they are omitted they default to
    ``oja = 0``, ``norm_scale = 1``, ``norm_shift = 0`` (the identity). Every field must be a
    finite floating tensor of the documented shape, on one device, of one dtype (that of ``nu``;
    non-tensor and integer inputs are converted to it). Violations raise ``ValueError`` naming the
    field. Fields may be reassigned or updated in place (optimizers do); call :meth:`validate`
    to re-check afterwards.
    """

    nu: torch.Tensor
    mu: torch.Tensor
    P: torch.Tensor
    Q: torch.Tensor
    f: torch.Tensor
    eta: torch.Tensor
    f_tilde: torch.Tensor
    eta_tilde: torch.Tensor
    init_scale: torch.Tensor
    oja: torch.Tensor | None
    norm_scale: torch.Tensor | None
    norm_shift: torch.Tensor | None
    options: RuleOptions

    def __init__(self, *, nu, mu, P, Q, f, eta, f_tilde, eta_tilde, init_scale,
                 options: RuleOptions | None = None, oja=None, norm_scale=None, norm_shift=None) -> None:
        options = RuleOptions() if options is None else options
        if not isinstance(options, RuleOptions):
            raise TypeError(f"Genome.options must be a RuleOptions, got {type(options).__name__} "
                            "(use RuleOptions.from_dict for a dict)")
        self.options = options
        given = dict(nu=nu, mu=mu, P=P, Q=Q, f=f, eta=eta, f_tilde=f_tilde, eta_tilde=eta_tilde,
                     init_scale=init_scale, oja=oja, norm_scale=norm_scale, norm_shift=norm_shift)
        nu_t = given["nu"]
        if isinstance(nu_t, torch.Tensor) and nu_t.is_floating_point():
            dtype, device = nu_t.dtype, nu_t.device
        else:
            dtype, device = torch.get_default_dtype(), (nu_t.device if isinstance(nu_t, torch.Tensor) else None)
        for name in MATRICES + SCALARS:
            if given[name] is None:
                raise ValueError(f"Genome.{name} is required, got None")
        for name, flag in OPTIONAL_FIELDS:
            wanted = getattr(options, flag)
            if given[name] is not None and not wanted:
                raise ValueError(f"Genome.{name} was given but options.{flag} is False; "
                                 f"set RuleOptions({flag}=True) or drop {name}")
        for name, value in given.items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                try:
                    value = torch.as_tensor(value, dtype=dtype, device=device)
                except (TypeError, ValueError, RuntimeError) as e:
                    raise ValueError(f"Genome.{name}: cannot convert {type(value).__name__} to a tensor ({e})") from None
            elif not value.is_floating_point():
                value = value.to(dtype=dtype)
            setattr(self, name, value)
        k = self.k
        for name, flag in OPTIONAL_FIELDS:
            if getattr(options, flag) and given[name] is None:
                fill = 1.0 if name == "norm_scale" else 0.0
                setattr(self, name, torch.full(field_shape(name, k), fill, dtype=dtype, device=device))
            elif given[name] is None:
                setattr(self, name, None)
        self.validate()

    # ------------------------------------------------------------------ structure
    @property
    def k(self) -> int:
        """States per neuron (from ``nu``'s shape)."""
        if self.nu.dim() != 2 or self.nu.shape[0] != self.nu.shape[1]:
            raise ValueError(f"Genome.nu: expected a square [k, k] matrix, got shape {_fmt_shape(self.nu.shape)}")
        return int(self.nu.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.nu.dtype

    @property
    def device(self) -> torch.device:
        return self.nu.device

    def validate(self) -> "Genome":
        """Check shapes, dtype, device, finiteness and options; raise ``ValueError`` naming the field."""
        k = self.k
        self.options.check_states(k)
        for name, flag in OPTIONAL_FIELDS:
            present = getattr(self, name, None) is not None
            if present != bool(getattr(self.options, flag)):
                need = "requires" if not present else "does not use"
                raise ValueError(f"Genome.{name}: options.{flag}={getattr(self.options, flag)} {need} it")
        for name in field_names(self.options):
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"Genome.{name}: expected a tensor, got {type(t).__name__}")
            expected = field_shape(name, k)
            if tuple(t.shape) != expected:
                raise ValueError(f"Genome.{name}: expected shape {_fmt_shape(expected)}, got {_fmt_shape(t.shape)}")
            if t.dtype != self.dtype:
                raise ValueError(f"Genome.{name}: dtype {t.dtype} differs from nu's {self.dtype}")
            if t.device != self.device:
                raise ValueError(f"Genome.{name}: device {t.device} differs from nu's {self.device}")
            bad = ~torch.isfinite(t.detach())
            if bool(bad.any()):
                first = bad.nonzero()[0].tolist()
                raise ValueError(f"Genome.{name} contains NaN or Inf ({int(bad.sum())} of {t.numel()} "
                                 f"entries, first at index {first})")
        return self

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fields the engine reads, by name, in vector order (the tensors themselves, not copies).

        Keys: ``nu, mu, P, Q, f, eta, f_tilde, eta_tilde, init_scale``, then ``oja`` if
        ``options.oja``, then ``norm_scale, norm_shift`` if ``options.normalize``: exactly
        ``MATRICES + SCALARS`` and the applicable ``OPTIONAL`` names of graphnet/rules/options.py.
        """
        return {name: getattr(self, name) for name in field_names(self.options)}

    def parameters(self) -> list[torch.Tensor]:
        """The tensors as a list, for ``torch.optim`` (order of :meth:`tensors`)."""
        return list(self.tensors().values())

    def _map(self, fn) -> "Genome":
        return Genome(options=self.options, **{name: fn(t) for name, t in self.tensors().items()})

    def requires_grad_(self, flag: bool = True) -> "Genome":
        """Set ``requires_grad`` on every field in place (fields must be leaves); returns self."""
        for name, t in self.tensors().items():
            if not t.is_leaf:
                raise ValueError(f"Genome.{name} is not a leaf tensor (it was computed from others); "
                                 "call genome.detach() first to make a fresh leaf genome")
            t.requires_grad_(flag)
        return self

    def detach(self) -> "Genome":
        """A genome of detached tensors (sharing storage), outside any autograd graph."""
        return self._map(lambda t: t.detach())

    def clone(self) -> "Genome":
        """A genome of cloned tensors. Like ``Tensor.clone`` it stays in the autograd graph; use
        ``genome.detach().clone()`` for an independent copy."""
        return self._map(lambda t: t.clone())

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> "Genome":
        """A genome with every field converted (differentiable, like ``Tensor.to``)."""
        return self._map(lambda t: t.to(dtype=dtype, device=device))

    def allclose(self, other: "Genome", rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        """Same ``k``, same options and every field close (compared in float64 on the CPU)."""
        if not isinstance(other, Genome) or other.options != self.options or other.k != self.k:
            return False
        a, b = self.tensors(), other.tensors()
        return all(torch.allclose(a[n].detach().cpu().double(), b[n].detach().cpu().double(), rtol=rtol, atol=atol)
                   for n in a)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def random(cls, k: int, seed: int = 0, options: RuleOptions | None = None,
               dtype: torch.dtype = torch.float32) -> "Genome":
        """A random rule: a starting point for meta-training.

        ``nu, mu, P, Q ~ N(0, 1/k)`` (i.e. standard deviation ``1/sqrt(k)``, so a mixed message
        has about the variance of one state), drawn in that order, in float64, from a CPU
        ``torch.Generator`` seeded with ``seed`` and then cast to ``dtype``: the same seed gives the
        same genome on every run and (up to rounding) in every dtype. The gates start at
        neutral, stable values so that only the matrices are random:

        - ``f = 0.5``: the backward sweep blends the forward state and the feedback equally;
        - ``eta = 1``: messages enter at full strength;
        - ``f_tilde = 1``: synapses do not decay;
        - ``eta_tilde = 0.01``: small Hebbian steps, so a random rule does not blow up synapses;
        - ``init_scale = 1``: ``w ~ N(0, 1) / sqrt(fan_in)``;
        - ``oja = 0``, ``norm_scale = 1``, ``norm_shift = 0`` when the options use them.
        """
        options = RuleOptions() if options is None else options
        k = int(k)
        options.check_states(k)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        mats = {name: (torch.randn(k, k, generator=gen, dtype=torch.float64) / k ** 0.5).to(dtype)
                for name in MATRICES}
        scalar = functools.partial(torch.tensor, dtype=dtype)
        return cls(**mats, f=scalar(0.5), eta=scalar(1.0), f_tilde=scalar(1.0), eta_tilde=scalar(0.01),
                   init_scale=scalar(1.0), options=options)

    @classmethod
    def backprop(cls, lr: float, activation: str | Activation = "sigmoid", loss: str = "mse",
                 dtype: torch.dtype = torch.float32,
                 output_activation: str | Activation | None = None) -> "Genome":
        """The genome that makes the simulator run plain SGD with learning rate ``lr`` (docs/MODEL.md §4).

        ``k = 2``; state 0 holds the activation ``h`` and state 1 holds ``σ'(z)`` after the forward
        sweep and the error ``δ = ∂L/∂z`` after the backward sweep.

        - forward: ``nu = [[1, 0], [1, 0]]`` routes the sender's state 0 into both states
          (``m[c] = Σ_d nu[c, d] a[d]``), so both receive ``z_v = Σ_u w_uv h_u``; ``f = 0``,
          ``eta = 1``, and ``derivative_states=(1,)`` gives ``a_v = (σ(z_v), σ'(z_v))``;
        - feedback: output state 1 ← ``∂L/∂h_out · σ'(z_out)`` for the loss
          ``"mse"``: ``L = mean_batch Σ_o ½ (h_o - t_o)²`` with ``t`` the one-hot label, or
          ``"cross_entropy"``: ``L = mean_batch CE(softmax(h), t)``, softmax cross-entropy on ``h``;
          the batch mean is taken by the synapse update's ``mean_batch``;
        - backward: ``mu = I``, multiplicative on state 1 only:
          ``a_u[1] ← σ'(z_u) · Σ_v w_uv δ_v`` (the chain rule), over every edge leaving ``u``;
        - synapse: ``P = I`` and ``Q = [[0, 1], [1, 0]]`` (swap), so ``Δw_uv = mean_batch h_u δ_v``
          ``= ∂L/∂w_uv``; ``f_tilde = 1``, ``eta_tilde = -lr``: the update ``w ← w - lr ∂L/∂w`` is
          SGD; single-channel synapses, backward edges tied to their forward twins.

        ``activation`` is any :class:`~graphnet.rules.options.Activation` value, applied to hidden
        and output neurons alike unless ``output_activation`` names another one for the outputs
        (``"identity"`` makes the outputs linear logits, so ``loss="cross_entropy"`` is softmax
        cross-entropy on logits, as in ``torch.nn.CrossEntropyLoss``); ``init_scale = 1``.
        """
        acts = {}
        for name, value in (("activation", activation), ("output_activation", output_activation)):
            try:
                acts[name] = None if value is None else Activation(value)
            except ValueError:
                valid = ", ".join(repr(m.value) for m in Activation)
                raise ValueError(f"Genome.backprop: {name}={value!r} is not one of {valid}") from None
        act = acts["activation"]
        out_act = act if acts["output_activation"] is None else acts["output_activation"]
        if loss not in _LOSSES:
            raise ValueError(f"Genome.backprop: loss={loss!r} is not one of {', '.join(map(repr, _LOSSES))}")
        lr = float(lr)
        if lr != lr or lr in (float("inf"), float("-inf")):
            raise ValueError(f"Genome.backprop: lr must be finite, got {lr}")
        options = RuleOptions(activation=act, output_activation=out_act, derivative_states=(1,),
                              backward_update=BackwardUpdate.MULTIPLICATIVE, backward_states=(1,),
                              feedback=_LOSSES[loss], tied_backward=True, single_channel=True)
        t = functools.partial(torch.tensor, dtype=dtype)
        return cls(nu=t([[1.0, 0.0], [1.0, 0.0]]), mu=t([[1.0, 0.0], [0.0, 1.0]]),
                   P=t([[1.0, 0.0], [0.0, 1.0]]), Q=t([[0.0, 1.0], [1.0, 0.0]]),
                   f=t(0.0), eta=t(1.0), f_tilde=t(1.0), eta_tilde=t(-lr), init_scale=t(1.0),
                   options=options)

    # ------------------------------------------------------------------ flat vectors
    @staticmethod
    def vector_dim(k: int, options: RuleOptions | None = None) -> int:
        """Length of :meth:`to_vector` for ``k`` states: ``4k² + 5 (+1 oja) (+2k normalize)``."""
        options = RuleOptions() if options is None else options
        return sum(int(torch.Size(field_shape(n, k)).numel()) for n in field_names(options))

    def to_vector(self) -> torch.Tensor:
        """All fields flattened into one 1-D tensor (differentiable), in this fixed order:

        ``nu`` (row-major: ``nu[0,0], nu[0,1], ..., nu[k-1,k-1]``), ``mu``, ``P``, ``Q`` (each
        row-major, k² entries), ``f, eta, f_tilde, eta_tilde, init_scale``, then ``oja`` if
        ``options.oja``, then ``norm_scale[0..k-1], norm_shift[0..k-1]`` if ``options.normalize``.
        :meth:`vector_names` names each entry.
        """
        return torch.cat([t.reshape(-1) for t in self.tensors().values()])

    def vector_names(self) -> list[str]:
        """The name of each :meth:`to_vector` entry, e.g. ``"nu[0,1]"``, ``"f"``, ``"norm_shift[2]"``."""
        names = []
        for name, t in self.tensors().items():
            if t.dim() == 0:
                names.append(name)
            elif t.dim() == 1:
                names.extend(f"{name}[{i}]" for i in range(t.shape[0]))
            else:
                names.extend(f"{name}[{i},{j}]" for i in range(t.shape[0]) for j in range(t.shape[1]))
        return names

    @classmethod
    def from_vector(cls, vec, like: "Genome | None" = None, k: int | None = None,
                    options: RuleOptions | None = None) -> "Genome":
        """Inverse of :meth:`to_vector`. Fields are views/slices of ``vec``, so gradients flow back.

        The layout comes from ``like`` (its ``k`` and options) or from ``k`` and ``options``
        (default ``RuleOptions()``). A wrong length raises ``ValueError`` with expected vs got.
        """
        if like is not None:
            if k is not None and int(k) != like.k:
                raise ValueError(f"Genome.from_vector: k={k} contradicts like.k={like.k}")
            if options is not None and options != like.options:
                raise ValueError("Genome.from_vector: options contradict like.options")
            k, options = like.k, like.options
        elif k is None:
            raise ValueError("Genome.from_vector needs like= or k=")
        options = RuleOptions() if options is None else options
        k = int(k)
        options.check_states(k)
        if not isinstance(vec, torch.Tensor):
            vec = torch.as_tensor(vec, dtype=like.dtype if like is not None else torch.get_default_dtype())
        if vec.dim() != 1:
            raise ValueError(f"Genome.from_vector: expected a 1-D vector, got shape {_fmt_shape(vec.shape)}")
        expected = cls.vector_dim(k, options)
        if vec.shape[0] != expected:
            raise ValueError(f"Genome.from_vector: vector has {vec.shape[0]} entries, expected {expected} "
                             f"for k={k} (oja={options.oja}, normalize={options.normalize})")
        fields, at = {}, 0
        for name in field_names(options):
            shape = field_shape(name, k)
            n = int(torch.Size(shape).numel())
            fields[name] = vec[at:at + n].reshape(shape)
            at += n
        return cls(options=options, **fields)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> str:
        """Write a versioned, checksummed JSON genome file atomically (see graphnet/rules/files.py)."""
        from graphnet.rules import files
        return files.save_genome(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Genome":
        """Read a file written by :meth:`save`; any defect raises ``ValueError`` naming the path."""
        from graphnet.rules import files
        return files.load_genome(path)

    @classmethod
    def pretrained(cls, name: str | None = None) -> "Genome":
        """A genome that ships with graphnet (``graphnet genomes`` lists them); None: the default one.

        Shipped genomes take images as flattened pixels scaled to [0, 1]; any normalization they need
        is part of their rule options."""
        from graphnet.rules import shipped
        return shipped.load_shipped(name)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        default = RuleOptions().to_dict()
        changed = {n: v for n, v in self.options.to_dict().items() if default[n] != v}
        opts = ", ".join(f"{n}={v!r}" for n, v in changed.items()) or "defaults"
        nums = ", ".join(f"{n}={float(getattr(self, n).detach()):.4g}" for n in SCALARS)
        if self.options.oja:
            nums += f", oja={float(self.oja.detach()):.4g}"
        norms = ", ".join(f"|{n}|={float(getattr(self, n).detach().norm()):.3g}" for n in MATRICES)
        dtype = str(self.dtype).replace("torch.", "")
        return f"Genome(k={self.k}, {dtype}, {nums}, {norms}; options: {opts})"
