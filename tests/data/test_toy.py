"""The 2-D toy tasks: range, exact balance, determinism and each label rule, checked independently."""
import math

import pytest
import torch

from graphnet.data import TOY_TASKS, toy


def _cross(a, b, p):
    return (b[0] - a[0]) * (p[:, 1] - a[1]) - (b[1] - a[1]) * (p[:, 0] - a[0])


# independent statements of the documented rules (class 1 region)
RULES = {
    "and": lambda p: (p[:, 0] > 0) & (p[:, 1] > 0),
    "or": lambda p: ~((p[:, 0] <= 0) & (p[:, 1] <= 0)),
    "xor": lambda p: torch.sign(p[:, 0]) != torch.sign(p[:, 1]),
    "circle": lambda p: (p ** 2).sum(1) < 2 / math.pi,
    "small_circle": lambda p: (p ** 2).sum(1) < 0.16,
    "pie": lambda p: ((p ** 2).sum(1) < 1) & (torch.atan2(p[:, 1], p[:, 0]).abs() < math.pi / 4),
    "cross": lambda p: p.abs().min(1).values < 0.25,
    "triangle": lambda p: ((_cross((-0.8, -0.7), (0.8, -0.7), p) > 0) & (_cross((0.8, -0.7), (0, 0.8), p) > 0)
                           & (_cross((0, 0.8), (-0.8, -0.7), p) > 0)),
}


@pytest.mark.parametrize("name", list(TOY_TASKS))
def test_every_task_is_in_range_balanced_and_deterministic(name):
    ds = toy(name, n=1001, seed=3)
    n_classes = 5 if name == "blobs" else 2
    assert ds.x.shape == (1001, 2) and ds.x.dtype == torch.float32 and ds.n_classes == n_classes
    assert float(ds.x.abs().max()) <= 1
    expected = [201, 200, 200, 200, 200] if name == "blobs" else [501, 500]
    assert torch.bincount(ds.y).tolist() == expected
    again = toy(name, n=1001, seed=3)
    assert torch.equal(ds.x, again.x) and torch.equal(ds.y, again.y)
    assert not torch.equal(ds.x, toy(name, n=1001, seed=4).x)
    assert ds.y[:50].unique().numel() == n_classes  # shuffled, not sorted by class


@pytest.mark.parametrize("name", list(RULES))
def test_region_labels_follow_the_rule(name):
    ds = toy(name, n=2000)
    assert torch.equal(RULES[name](ds.x).long(), ds.y)


def test_moons_and_blobs_are_separable_as_documented():
    moons = toy("moons", n=2000)
    assert moons.x[moons.y == 0, 1].mean() > moons.x[moons.y == 1, 1].mean() + 0.2  # upper moon is class 0
    blobs = toy("blobs", n=2000)
    centers = torch.stack([blobs.x[blobs.y == c].mean(0) for c in range(5)])
    nearest = torch.cdist(blobs.x, centers).argmin(1)
    assert (nearest == blobs.y).float().mean() > 0.95
    torch.testing.assert_close(centers.norm(dim=1), torch.full((5,), 0.6), atol=0.03, rtol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown toy task 'spiral'.*xor"):
        toy("spiral")
    with pytest.raises(ValueError, match="n must be an int >= 5"):
        toy("blobs", n=4)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        toy("xor", seed=-1)
