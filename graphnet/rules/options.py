"""Rule options: the switches of docs/MODEL.md section 2 that are not learned numbers.

A :class:`RuleOptions` is a frozen, validated value shared by a genome and the engine. The
defaults follow the paper's main configuration (BLUR's default network spec): ReLU-tanh on hidden
neurons, tanh on outputs, additive backward update, multi-channel untied synapses, feedback by
writing the target into state 1.
"""
from __future__ import annotations

import dataclasses
import enum


# The genome's tensor fields in vector order, shared by graphnet.Genome and the engine's RuleTensors.
MATRICES = ("nu", "mu", "P", "Q")  # [k, k]
SCALARS = ("f", "eta", "f_tilde", "eta_tilde", "init_scale")  # []
OPTIONAL = (("oja", "oja"), ("norm_scale", "normalize"), ("norm_shift", "normalize"))  # (field, option): [], [k], [k]


def field_names(options: "RuleOptions") -> tuple[str, ...]:
    """The tensor fields a genome with ``options`` has, in vector order."""
    return MATRICES + SCALARS + tuple(name for name, flag in OPTIONAL if getattr(options, flag))


def field_shape(name: str, k: int) -> tuple[int, ...]:
    """Shape of genome field ``name`` for ``k`` states."""
    if name in MATRICES:
        return (k, k)
    if name in ("norm_scale", "norm_shift"):
        return (k,)
    return ()


class Activation(str, enum.Enum):
    """Neuron nonlinearity ``σ`` (each has a closed-form derivative, used by ``derivative_states``)."""

    TANH = "tanh"
    SIGMOID = "sigmoid"
    RELU_TANH = "relu_tanh"  # relu(tanh(x)): BLUR's default hidden activation
    RELU = "relu"
    IDENTITY = "identity"


class BackwardUpdate(str, enum.Enum):
    """How the backward sweep writes a neuron: ``σ(f·a + η·m')`` or ``a ⊙ m'`` (backprop)."""

    ADDITIVE = "additive"
    MULTIPLICATIVE = "multiplicative"


class Feedback(str, enum.Enum):
    """What is written into state 1 of the output neurons before the backward sweep.

    - ``target``: +1 for the true class, -1 for the others (or the float target as given);
      states 2.. are set to 0. This is the learned-rule feedback of docs/MODEL.md section 3.
    - ``mse_gradient``: ``(h - t) · a[1]`` with ``t`` the one-hot label (or float target), i.e.
      ``dL/dz`` of ``L = mean_batch Σ_o ½ (h_o - t_o)²`` when state 1 holds ``σ'(z)``.
    - ``ce_gradient``: ``(softmax(h) - t) · a[1]``, the same for softmax cross-entropy on ``h``.
    """

    TARGET = "target"
    MSE_GRADIENT = "mse_gradient"
    CE_GRADIENT = "ce_gradient"


@dataclasses.dataclass(frozen=True)
class RuleOptions:
    """Structural options of an update rule. Every field is validated at construction.

    Attributes:
        activation: ``σ`` of hidden neurons.
        output_activation: ``σ`` of output neurons (None: same as ``activation``).
        derivative_states: states that receive ``σ'(pre)`` instead of ``σ(pre)`` when a neuron is
            updated additively (backprop keeps ``σ'(z)`` in state 1).
        backward_update: additive ``a ← σ(f·a + η·m')`` or multiplicative ``a ← a ⊙ m'``.
        backward_states: states the backward sweep writes (None: all); the others keep their
            forward values.
        feedback: see :class:`Feedback`.
        tied_backward: each backward edge reuses the weights of its forward twin (the reversed
            forward edge) and owns no synapse of its own.
        single_channel: synapses carry one channel that serves every state (else ``k`` channels).
        normalize: per-channel normalization of pre-activations over (batch, neurons updated
            together), with learnable ``norm_scale``/``norm_shift`` in the genome.
        synapse_normalization: divide each synapse by the root sum of squares of the synapses
            into the same neuron (same channel), when computing activations only.
        oja: add the Oja-like decay ``-oja · mean_batch(post²) · w`` to the synapse update.
        forward_synapse_update: also update synapses right after the forward sweep.
        fixed_backward: backward synapses keep their initial values (random fixed feedback, as in
            feedback alignment); only forward synapses learn.
        fan_in_update: divide each synapse's step ``η̃ · Δw`` by the fan-in of its receiver (in its
            own edge set). With the ``1/sqrt(fan_in)`` initialization this keeps the change of a
            pre-activation per step independent of layer width, so a genome meta-trained on 10x10
            images keeps its meaning on 28x28 ones (a width-independent, muP-like parametrization).
    """

    activation: Activation = Activation.RELU_TANH
    output_activation: Activation | None = Activation.TANH
    derivative_states: tuple[int, ...] = ()
    backward_update: BackwardUpdate = BackwardUpdate.ADDITIVE
    backward_states: tuple[int, ...] | None = None
    feedback: Feedback = Feedback.TARGET
    tied_backward: bool = False
    single_channel: bool = False
    normalize: bool = False
    synapse_normalization: bool = False
    oja: bool = False
    forward_synapse_update: bool = False
    fixed_backward: bool = False
    fan_in_update: bool = False

    def __post_init__(self) -> None:
        coerce = {"activation": Activation, "backward_update": BackwardUpdate, "feedback": Feedback}
        if self.output_activation is not None:
            coerce["output_activation"] = Activation
        for name, kind in coerce.items():
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                valid = ", ".join(repr(m.value) for m in kind)
                raise ValueError(f"RuleOptions.{name}={value!r} is not one of {valid}") from None
        for f in dataclasses.fields(self):
            if f.type == "bool" and not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"RuleOptions.{f.name} must be True or False, got {getattr(self, f.name)!r}")
        for name in ("derivative_states", "backward_states"):
            value = getattr(self, name)
            if value is None and name == "backward_states":
                continue
            if not isinstance(value, (tuple, list)) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                                for s in value):
                raise ValueError(f"RuleOptions.{name}={value!r}: expected a tuple of state indices")
            states = tuple(value)
            if any(s < 0 for s in states) or len(set(states)) != len(states):
                raise ValueError(f"RuleOptions.{name}={value!r}: state indices must be distinct and >= 0")
            object.__setattr__(self, name, states)
        if self.tied_backward and self.fixed_backward:
            raise ValueError("fixed_backward and tied_backward exclude each other: tied backward synapses "
                             "follow their (learning) forward twins")
        if self.feedback is not Feedback.TARGET and 1 not in self.derivative_states:
            raise ValueError(
                f"feedback={self.feedback.value!r} multiplies by σ'(z) held in state 1: "
                "add 1 to derivative_states")

    def check_states(self, k: int) -> None:
        """Raise if a state index named by these options does not exist for ``k`` states."""
        if k < 2:
            raise ValueError(f"a rule needs k >= 2 states per neuron (state 1 carries feedback), got k={k}")
        for name in ("derivative_states", "backward_states"):
            bad = [s for s in (getattr(self, name) or ()) if s >= k]
            if bad:
                raise ValueError(f"RuleOptions.{name} names state(s) {bad}, but the genome has k={k} states")

    @classmethod
    def from_dict(cls, data: dict) -> "RuleOptions":
        """Build from a plain dict (as stored in files); unknown keys are rejected by name."""
        if not isinstance(data, dict):
            raise ValueError(f"rule options must be a dict, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown rule option(s) {unknown}; valid options: {sorted(fields)}")
        data = dict(data)
        for name in ("derivative_states", "backward_states"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)

    def to_dict(self) -> dict:
        """Plain, JSON-serializable dict (enums as their string values)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, enum.Enum) else (
                list(value) if isinstance(value, tuple) else value)
        return out
