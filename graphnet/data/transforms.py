"""Pure functions ``Dataset -> Dataset``: crops, resizing, class selection, standardization.

Each returns a new `Dataset` with new tensors and keeps the input's name. Image transforms need
examples ``[N, H, W]``; a ``size`` is an int (square) or an ``(height, width)`` pair.
"""
from __future__ import annotations

import numbers
from dataclasses import replace

import torch
import torch.nn.functional as F

from graphnet.data.dataset import Dataset

PAPER_CROP, PAPER_SIZE = 20, 10  # the paper's 10x10 protocol: center crop 20x20, then area-resize


def center_crop(ds: Dataset, size) -> Dataset:
    """Central ``size`` window of each image: ``[N, H, W] -> [N, h, w]``.

    The window starts at row ``(H - h) // 2`` and column ``(W - w) // 2``.
    """
    height, width = _image_shape(ds, "center_crop")
    h, w = _size(size, "center_crop")
    if h > height or w > width:
        raise ValueError(f"center_crop: size {h}x{w} exceeds the {height}x{width} images of {ds.name!r}")
    top, left = (height - h) // 2, (width - w) // 2
    return replace(ds, x=ds.x[:, top:top + h, left:left + w].clone())


def resize(ds: Dataset, size) -> Dataset:
    """Resize images ``[N, H, W] -> [N, h, w]``.

    Shrinking both sides averages over the covered area (``interpolate(mode="area")``; an integer
    factor is an exact block mean); any other change is bilinear with antialiasing.
    """
    height, width = _image_shape(ds, "resize")
    h, w = _size(size, "resize")
    if (h, w) == (height, width):
        return replace(ds, x=ds.x.clone())
    images = ds.x.unsqueeze(1)  # [N, 1, H, W]: interpolate wants a channel axis
    if h <= height and w <= width:
        out = F.interpolate(images, size=(h, w), mode="area")
    else:
        out = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return replace(ds, x=out.squeeze(1))


def paper_10x10(ds: Dataset) -> Dataset:
    """The paper's protocol for 28x28 digits: center crop to 20x20, then area-resize to 10x10."""
    return resize(center_crop(ds, PAPER_CROP), PAPER_SIZE)


def select_classes(ds: Dataset, classes) -> Dataset:
    """Keep the examples of ``classes`` (distinct labels) and relabel ``classes[i] -> i``.

    The result has ``n_classes = len(classes)``; example order is kept.
    """
    wanted = list(classes)
    if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in wanted):
        raise ValueError(f"select_classes: classes must be ints, got {wanted}")
    wanted = [int(c) for c in wanted]
    if not wanted:
        raise ValueError("select_classes: no classes given")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"select_classes: classes must be distinct, got {wanted}")
    bad = [c for c in wanted if not 0 <= c < ds.n_classes]
    if bad:
        raise ValueError(f"select_classes: classes {bad} out of range for {ds.name!r} "
                         f"(labels 0..{ds.n_classes - 1})")
    relabel = torch.full((ds.n_classes,), -1, dtype=torch.int64)
    relabel[wanted] = torch.arange(len(wanted))
    labels = relabel[ds.y]  # [N]: -1 for dropped examples
    keep = labels >= 0
    missing = sorted(set(wanted) - set(ds.y[keep].unique().tolist()))
    if missing:
        raise ValueError(f"select_classes: classes {missing} have no examples in {ds.name!r}")
    return Dataset(ds.x[keep], labels[keep], ds.name, len(wanted))


def feature_stats(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation, each float32 ``[*shape]``.

    A feature whose standard deviation is below 1e-6 (e.g. an always-black border pixel) gets
    std 1, so standardizing leaves it centered instead of dividing by zero.
    """
    if len(ds) == 0:
        raise ValueError(f"feature_stats: dataset {ds.name!r} is empty")
    mean = ds.x.mean(dim=0)
    std = ds.x.std(dim=0, unbiased=False)
    return mean, torch.where(std < 1e-6, torch.ones_like(std), std)


def standardize(ds: Dataset, stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> Dataset:
    """``(x - mean) / std`` per feature, with ``stats = (mean, std)`` from `feature_stats`.

    Without ``stats`` they are computed from ``ds``; pass the training set's stats to
    standardize its test set the same way. The result is no longer in [0, 1].
    """
    mean, std = feature_stats(ds) if stats is None else stats
    for label, value in (("mean", mean), ("std", std)):
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != ds.shape:
            raise ValueError(f"standardize: {label} must be a tensor of shape {list(ds.shape)} "
                             f"(one value per feature of {ds.name!r}), got {getattr(value, 'shape', value)}")
    if bool((std <= 0).any()):
        raise ValueError("standardize: std must be positive")
    return replace(ds, x=((ds.x - mean) / std).to(torch.float32))


def _image_shape(ds: Dataset, function: str) -> tuple[int, int]:
    if ds.x.ndim != 3:
        raise ValueError(f"{function} needs images [N, H, W]; dataset {ds.name!r} has examples of "
                         f"shape {list(ds.shape)}")
    return ds.shape


def _size(size, function: str) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in pair):
        raise ValueError(f"{function}: size must be a positive int or a (height, width) pair of them, "
                         f"got {size!r}")
    return pair
