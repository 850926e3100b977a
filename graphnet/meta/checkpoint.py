"""Meta-training checkpoints: one file, written atomically, that resumes a run exactly.

A checkpoint holds the config, the meta-step reached, the genome (tensors and options), the Adam
state and the run's counters. Episodes are a function of ``(seed, meta-step)`` only, so nothing
else is needed to continue bit for bit. Tensors are written on the CPU and read onto it, so a
checkpoint of a run on a GPU loads on any machine (the trainer moves them where it runs).
"""
from __future__ import annotations

import contextlib
import io
import os
import pathlib

import torch

from graphnet.atomic import atomic_write

FORMAT = "graphnet-meta-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: corrupt, truncated, wrong format or version."""


class RunInUseError(RuntimeError):
    """Another process is training the run in this folder."""

    def __init__(self, out_dir):
        super().__init__(f"{out_dir} is being trained by another process; stop it (its last checkpoint is kept) or "
                         "let it finish before resuming the run")


@contextlib.contextmanager
def run_lock(out_dir):
    """Hold an exclusive lock on the run folder ``out_dir`` (``flock`` on the folder itself, released
    when the process ends, however it ends) while a trainer writes to it, so that a second process
    resuming the same run fails at once (:class:`RunInUseError`) instead of interleaving its log and
    checkpoints with the first's. Where the platform or file system has no ``flock``, the run goes
    on unguarded."""
    folder = _lock(out_dir)
    try:
        yield
    finally:
        if folder is not None:
            os.close(folder)  # releases the lock


def being_trained(out_dir) -> bool | None:
    """Whether a process holds :func:`run_lock` on ``out_dir`` now (None: this platform or file
    system cannot tell). The probe takes the lock for an instant when it is free."""
    try:
        folder = _lock(out_dir)
    except RunInUseError:
        return True
    if folder is None:
        return None
    os.close(folder)
    return False


def _lock(out_dir) -> int | None:
    """An open descriptor of ``out_dir`` holding its exclusive ``flock``, or None where there is no
    ``flock``; :class:`RunInUseError` if another process holds it."""
    try:
        import fcntl
        folder = os.open(out_dir, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return folder
    except BlockingIOError:
        os.close(folder)
        raise RunInUseError(out_dir) from None
    except OSError:  # no flock on this file system
        os.close(folder)
        return None


def save_checkpoint(state: dict, path) -> pathlib.Path:
    """Write ``state`` (plain types, tensors, and dicts, lists and tuples of them; tensors on any
    device are written from CPU copies) to ``path`` atomically (temp file, fsync, rename)."""
    path = pathlib.Path(path)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **_on_cpu(state)}, buffer)
    return atomic_write(path, buffer.getvalue())


def load_checkpoint(path, required: tuple[str, ...]) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; every key in ``required`` must be present."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} cannot be read (corrupt or truncated?): "
                              f"{type(e).__name__}: {_reason(e)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a graphnet meta-training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {state.get('version')!r}; "
                              f"this graphnet reads version {VERSION}")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    return state


def _reason(error: Exception) -> str:
    """The informative line of a ``torch.load`` error (not torch's advice to retry with ``weights_only=False``,
    which would execute code from the file)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _on_cpu(value):
    """``value`` with every tensor in it (through dicts, lists and tuples) on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(item) for item in value)
    return value
