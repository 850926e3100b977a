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
    Activation.RELU_TANH: (_relu_tanh, _relu_tanh_prime),
    Activation.RELU: (torch.relu, lambda x: (x > 0).to(x.dtype)),
    Activation.IDENTITY: (lambda x: x, torch.ones_like),
}


def activate(pre: torch.Tensor, activation: Activation, derivative_mask: torch.Tensor | None) -> torch.Tensor:
    """``σ(pre)`` on states where ``derivative_mask`` is False, ``σ'(pre)`` where it is True.

    ``pre``: ``[pop, k, R, B]``; ``derivative_mask``: ``[k]`` bool or None (no derivative states).
    """
    fn, prime = FUNCTIONS[activation]
    value = fn(pre)
    if derivative_mask is None:
        return value
    return torch.where(derivative_mask.view(1, -1, 1, 1), prime(pre), value)
