"""Torch devices by name: parsed, and checked to exist on this machine, with errors that say why.

:class:`graphnet.Network` resolves its ``device`` here; so do the meta-trainers and their
scoring backends (graphnet/meta), so a bad name fails before any run folder is touched.
"""
from __future__ import annotations

import torch

EXAMPLES = "'cpu', 'cuda' or 'cuda:1'"


def parse_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``: a name such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a
    ``torch.device``, or None (the CPU). Does not check that the device exists here
    (:func:`resolve_device` does); a name that is no torch device raises ``ValueError``."""
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):  # torch: "Expected one of cpu, cuda, ... at start of device string: tpu"
        raise ValueError(f"device={device!r} is not a torch device: expected e.g. {EXAMPLES}") from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """:func:`parse_device`, checked to exist on this machine.

    Raises ``ValueError`` naming the device when it is no torch device (``"tpu"``), when this
    torch build sees no device of its type (``"cuda"`` on a CPU-only build or machine), or when
    its index is past the last one (``"cuda:7"`` with 2 GPUs). Types other than ``cpu`` and
    ``cuda`` (``mps``, ``xpu``) pass when their torch backend reports them available.
    """
    resolved = parse_device(device)
    if resolved.type == "cpu":
        return resolved
    backend = getattr(torch, resolved.type, None)  # torch.cuda, torch.mps, torch.xpu
    kind = "CUDA GPU" if resolved.type == "cuda" else f"{resolved.type} device"
    if not (hasattr(backend, "is_available") and hasattr(backend, "device_count") and backend.is_available()):
        raise ValueError(f"device={str(resolved)!r}, but this torch build ({torch.__version__}) sees no {kind}")
    count = backend.device_count()
    if resolved.index is not None and resolved.index >= count:
        raise ValueError(f"device={str(resolved)!r}, but this machine has {count} {kind}(s): "
                         f"{resolved.type}:0 to {resolved.type}:{count - 1}")
    return resolved
