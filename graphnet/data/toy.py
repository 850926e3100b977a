"""The paper's 2-D toy tasks, generated deterministically: ``toy(name, n, seed) -> Dataset``.

Points are float32 ``[n, 2]`` in ``[-1, 1]^2`` and labels int64 ``[n]``; the same (name, n, seed)
always gives the same set, in shuffled order.

Class balance. Region tasks label a region of the square as class 1 and the rest as class 0; they
are exactly balanced: class 1 gets ``n // 2`` points, class 0 the other ``n - n // 2``, each
uniform over its own region (rejection sampling), so a small region is sampled more densely than
its complement. ``moons`` puts ``n - n // 2`` points on the upper moon (class 0) and ``n // 2`` on
the lower one; ``blobs`` gives class ``c`` ``n // 5`` points, one more for ``c < n % 5``.
"""
from __future__ import annotations

import math
import numbers

import torch

from graphnet.data.dataset import Dataset

CIRCLE_RADIUS = math.sqrt(2 / math.pi)  # the disk covers half of the 2x2 square
SMALL_CIRCLE_RADIUS = 0.4
CROSS_HALF_WIDTH = 0.25
TRIANGLE = ((-0.8, -0.7), (0.8, -0.7), (0.0, 0.8))
MOONS_NOISE = 0.06  # std of the Gaussian noise added to each moon coordinate (after scaling)
BLOB_RADIUS, BLOB_STD, N_BLOBS = 0.6, 0.12, 5


def _triangle(p: torch.Tensor) -> torch.Tensor:
    """Inside the triangle `TRIANGLE`: on the same side of all three edges (counter-clockwise)."""
    inside = torch.ones(len(p), dtype=torch.bool)
    for (ax, ay), (bx, by) in zip(TRIANGLE, TRIANGLE[1:] + TRIANGLE[:1]):
        inside &= (bx - ax) * (p[:, 1] - ay) - (by - ay) * (p[:, 0] - ax) > 0
    return inside


# region task -> rule mapping points [m, 2] to "in class 1" [m] bool
_REGIONS = {
    "and": lambda p: (p[:, 0] > 0) & (p[:, 1] > 0),
    "or": lambda p: (p[:, 0] > 0) | (p[:, 1] > 0),
    "xor": lambda p: p[:, 0] * p[:, 1] < 0,
    "circle": lambda p: p.norm(dim=1) < CIRCLE_RADIUS,
    "small_circle": lambda p: p.norm(dim=1) < SMALL_CIRCLE_RADIUS,
    "pie": lambda p: (p.norm(dim=1) < 1) & (p[:, 1].abs() < p[:, 0]),
    "cross": lambda p: (p[:, 0].abs() < CROSS_HALF_WIDTH) | (p[:, 1].abs() < CROSS_HALF_WIDTH),
    "triangle": _triangle,
}

TOY_TASKS = {
    "and": "class 1 iff x0 > 0 and x1 > 0",
    "or": "class 1 iff x0 > 0 or x1 > 0",
    "xor": "class 1 iff x0 and x1 have opposite signs (x0 * x1 < 0)",
    "moons": "two interleaved half circles with Gaussian noise (classes 0: upper, 1: lower)",
    "circle": f"class 1 inside the centered circle of radius {CIRCLE_RADIUS:.3f} (half the square)",
    "small_circle": f"class 1 inside the centered circle of radius {SMALL_CIRCLE_RADIUS}",
    "pie": "class 1 in the unit-disk slice |angle| < 45 degrees (x0 > |x1|), opening to the right",
    "cross": f"class 1 on the plus-shaped cross |x0| < {CROSS_HALF_WIDTH} or |x1| < {CROSS_HALF_WIDTH}",
    "triangle": f"class 1 inside the triangle with corners {TRIANGLE}",
    "blobs": f"{N_BLOBS} Gaussian blobs (std {BLOB_STD}) on a regular pentagon of radius {BLOB_RADIUS}, "
             f"{N_BLOBS} classes",
}


def toy(name: str, n: int = 1000, seed: int = 0) -> Dataset:
    """Generate ``n`` labelled points of toy task ``name`` (see `TOY_TASKS`) from ``seed``."""
    if name not in TOY_TASKS:
        raise ValueError(f"unknown toy task {name!r}; valid: {', '.join(TOY_TASKS)}")
    n_classes = N_BLOBS if name == "blobs" else 2
    if not isinstance(n, numbers.Integral) or n < n_classes:
        raise ValueError(f"toy {name!r}: n must be an int >= {n_classes} (one point per class), got {n!r}")
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"toy: seed must be a non-negative int, got {seed!r}")
    gen = torch.Generator().manual_seed(int(seed))
    if name == "moons":
        x, y = _moons(n, gen)
    elif name == "blobs":
        x, y = _blobs(n, gen)
    else:
        x, y = _region(_REGIONS[name], n, gen)
    order = torch.randperm(n, generator=gen)
    return Dataset(x[order].to(torch.float32), y[order], name, n_classes)


def _region(rule, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n - n // 2`` uniform points outside the region, then ``n // 2`` inside: [n, 2], [n]."""
    wanted = (n - n // 2, n // 2)
    batches = []
    while True:
        batches.append(torch.rand(4 * n + 64, 2, generator=gen) * 2 - 1)
        points = torch.cat(batches)
        inside = rule(points)
        if (~inside).sum() >= wanted[0] and inside.sum() >= wanted[1]:
            break
    x = torch.cat([points[~inside][:wanted[0]], points[inside][:wanted[1]]])
    y = torch.cat([torch.zeros(wanted[0], dtype=torch.int64), torch.ones(wanted[1], dtype=torch.int64)])
    return x, y


def _moons(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two moons (upper: class 0, lower: class 1), centered and scaled into the square."""
    y = torch.cat([torch.zeros(n - n // 2, dtype=torch.int64), torch.ones(n // 2, dtype=torch.int64)])
    t = torch.rand(n, generator=gen) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)  # x in [-1, 1], y in [0, 1]
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)  # x in [0, 2], y in [-0.5, 0.5]
    x = torch.where((y == 1).unsqueeze(1), lower, upper)
    x = (x - torch.tensor([0.5, 0.25])) * 0.6  # now x in [-0.9, 0.9], y in [-0.45, 0.45]
    x = x + MOONS_NOISE * torch.randn(n, 2, generator=gen)
    return x.clamp(-1, 1), y


def _blobs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`N_BLOBS` isotropic Gaussian blobs, clipped to the square: [n, 2], [n]."""
    y = torch.arange(n) % N_BLOBS
    angles = math.pi / 2 + 2 * math.pi * torch.arange(N_BLOBS) / N_BLOBS
    centers = BLOB_RADIUS * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # [5, 2]
    x = centers[y] + BLOB_STD * torch.randn(n, 2, generator=gen)
    return x.clamp(-1, 1), y
