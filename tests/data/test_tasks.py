"""`TaskSpec`: the compact grammar (parse, canonical str, errors) and what `build` produces."""
import numpy as np
import pytest
import torch

from graphnet.data import DataUnavailableError, TaskSpec, load, paper_10x10, resize, select_classes, task, toy


@pytest.mark.parametrize("text, fields", [
    ("mnist", ("mnist", None, None, None)),
    ("mnist:10x10", ("mnist", 10, None, None)),
    ("mnist:10x10:0-4", ("mnist", 10, (0, 1, 2, 3, 4), None)),
    ("mnist:10x10:5-9", ("mnist", 10, (5, 6, 7, 8, 9), None)),
    ("fashion-mnist:28x28", ("fashion-mnist", 28, None, None)),
    ("omniglot:28x28:5way", ("omniglot", 28, None, 5)),
    ("kmnist:14x14:7,2,5", ("kmnist", 14, (7, 2, 5), None)),
    ("xor", ("xor", None, None, None)),
])
def test_parse_and_round_trip(text, fields):
    spec = TaskSpec.parse(text)
    assert (spec.dataset, spec.size, spec.classes, spec.ways) == fields
    assert str(spec) == text and TaskSpec.parse(str(spec)) == spec


def test_canonical_form():
    assert str(TaskSpec.parse("mnist:3,4,5:10x10")) == "mnist:10x10:3-5"
    assert str(TaskSpec("mnist", classes=[1, 2])) == "mnist:1-2"


@pytest.mark.parametrize("text, message", [
    ("emnist:10x10", "unknown data set 'emnist'"),
    ("mnist:10x12", "must be square"),
    ("mnist:10by10", "'10by10' is not a size"),
    ("mnist:10x10:14x14", "size given twice"),
    ("mnist:4-0", "must go up"),
    ("mnist:1,1", "distinct"),
    ("mnist:0-2:4way", "4way needs at least 4 classes"),
    ("mnist:1way", "ways must be an int >= 2"),
    ("mnist:0x0", "size must be a positive int"),
    ("xor:10x10", "toy task 'xor' takes no size"),
])
def test_bad_strings_name_the_forms(text, message):
    with pytest.raises(ValueError, match=f"bad task spec '{text}'.*{message}"):
        TaskSpec.parse(text)


def test_bad_part_error_lists_valid_forms():
    with pytest.raises(ValueError, match=r"<dataset>\[:<N>x<N>\].*mnist, fashion-mnist.*toy task: and, or, xor"):
        TaskSpec.parse("mnist:big")


def test_toy_task_splits_are_two_seeds():
    train, test = task("xor"), task("xor", "test")
    assert len(train) == len(test) == 2000 and train.name == "xor"
    assert torch.equal(train.x, toy("xor", n=2000, seed=0).x) and torch.equal(test.x, toy("xor", n=2000, seed=1).x)
    with pytest.raises(ValueError, match="unknown split 'valid' for toy task 'xor'; valid: train, test"):
        task("xor", "valid")


def test_build_on_small_offline_files(tmp_path, monkeypatch):
    (tmp_path / "kmnist").mkdir()
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "kmnist" / "test.npz", x=images, y=np.array([0, 1, 2, 3, 0, 1, 2, 3]))
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path))
    raw = load("kmnist", "test")
    paper = task("kmnist:10x10:2,0", "test")
    assert paper.name == "kmnist:10x10:2,0" and paper.n_classes == 2 and paper.shape == (10, 10)
    assert torch.equal(paper.x, paper_10x10(select_classes(raw, [2, 0])).x) and paper.y.tolist() == [1, 0, 1, 0]
    assert torch.equal(task("kmnist:14x14", "test").x, resize(raw, 14).x)
    assert torch.equal(task(TaskSpec("kmnist", size=28), "test").x, raw.x)


def test_build_on_mnist():
    try:
        train = task("mnist:10x10:5-9")
    except DataUnavailableError as error:
        pytest.skip(str(error))
    full = load("mnist")
    assert train.shape == (10, 10) and train.n_classes == 5
    assert torch.bincount(train.y).tolist() == torch.bincount(full.y)[5:].tolist()


def test_omniglot_is_not_a_train_test_pair():
    with pytest.raises(ValueError, match="N-way episodes"):
        TaskSpec.parse("omniglot:28x28").splits()


def test_a_bare_number_is_not_a_single_class():
    with pytest.raises(ValueError, match="28x28"):
        TaskSpec.parse("mnist:28")
