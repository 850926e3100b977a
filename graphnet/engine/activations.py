"""Neuron nonlinearities ``σ`` and their derivatives ``σ'`` (backprop keeps ``σ'(z)`` in a state)."""
from __future__ import annotations

import torch

from graphnet.rules.options import Activation


def _relu_tanh(x):
    return torch.relu(torch.tanh(x))


def _relu_tanh_prime(x):
    return (x > 0).to(x.dtype) * (1 - torch.tanh(x) ** 2)


def _sigmoid_prime(x):
    s = torch.sigmoid(x)
    return s * (1 - s)


FUNCTIONS = {
    Activation.TANH: (torch.tanh, lambda x: 1 - torch.tanh(x) ** 2),
    Activation.SIGMOID: (torch.sigmoid, _sigmoid_prime),
    Activation.RELU_TANH: (_relu_tanh, _relu_tanh_prime),  # relu(tanh(x)), BLUR's hidden activation
    Activation.RELU: (torch.relu, lambda x: (x > 0).to(x.dtype)),
    Activation.IDENTITY: (lambda x: x, torch.ones_like),
}


def activate(pre: torch.Tensor, activation: Activation, derivative_states: tuple[int, ...] = ()) -> torch.Tensor:
    """``σ(pre)`` on every state, except ``σ'(pre)`` on ``derivative_states``. ``pre``: ``[pop, k, R, B]``."""
    fn, prime = FUNCTIONS[activation]
    if not derivative_states:
        return fn(pre)
    return torch.stack([prime(pre[:, s]) if s in derivative_states else fn(pre[:, s])
                        for s in range(pre.shape[1])], dim=1)
