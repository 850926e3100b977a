"""`Dataset`: a labelled set of examples held as two tensors.

``x`` is float32 ``[N, *shape]`` (images ``[N, H, W]`` with values in [0, 1], 2-D toy tasks
``[N, 2]``) and ``y`` is int64 ``[N]`` with labels ``0 .. n_classes - 1``. A `Dataset` is an
immutable value: every function in `graphnet.data` returns a new one and never writes into the
tensors it was given; callers should treat ``x`` and ``y`` as read-only too (`flat` returns a view).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dataset:
    """Examples ``x`` (float32 ``[N, *shape]``) with labels ``y`` (int64 ``[N]``)."""

    x: torch.Tensor
    y: torch.Tensor
    name: str
    n_classes: int

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.dtype != torch.float32 or self.x.ndim < 2:
            raise ValueError(f"dataset {self.name!r}: x must be a float32 tensor [N, *shape], got "
                             f"{_describe(self.x)}")
        if not isinstance(self.y, torch.Tensor) or self.y.dtype != torch.int64 or self.y.ndim != 1:
            raise ValueError(f"dataset {self.name!r}: y must be an int64 tensor [N], got {_describe(self.y)}")
        if len(self.x) != len(self.y):
            raise ValueError(f"dataset {self.name!r}: x has {len(self.x)} examples but y has {len(self.y)} labels")
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 1:
            raise ValueError(f"dataset {self.name!r}: n_classes must be a positive int, got {self.n_classes!r}")
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= self.n_classes):
            raise ValueError(f"dataset {self.name!r}: labels must lie in 0..{self.n_classes - 1}, got "
                             f"{int(self.y.min())}..{int(self.y.max())}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: ``(H, W)`` for images, ``(2,)`` for toy tasks."""
        return tuple(self.x.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of features of one example (the product of `shape`)."""
        return math.prod(self.shape)

    def flat(self) -> torch.Tensor:
        """Examples as float32 ``[N, n_features]`` (a view of ``x``: do not write into it)."""
        return self.x.reshape(len(self), self.n_features)

    def take(self, indices) -> Dataset:
        """The examples at ``indices`` (int64 ``[M]``, or anything `torch.as_tensor` accepts)."""
        index = torch.as_tensor(indices)
        if index.numel() == 0:
            index = index.to(torch.int64).reshape(0)
        if index.dtype not in (torch.int64, torch.int32) or index.ndim != 1:
            raise ValueError(f"take needs a 1-D tensor of integer indices, got {_describe(index)}")
        if len(index) and (int(index.min()) < -len(self) or int(index.max()) >= len(self)):
            raise IndexError(f"take: index out of range for dataset {self.name!r} of {len(self)} examples")
        return Dataset(self.x[index], self.y[index], self.name, self.n_classes)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} x {list(self.shape)}, {self.n_classes} classes)"


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {list(value.shape)}"
    return type(value).__name__
