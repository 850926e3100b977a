"""`Dataset` validation and the transforms, checked against hand computations in numpy."""
import numpy as np
import pytest
import torch

from graphnet.data import Dataset, center_crop, feature_stats, paper_10x10, resize, select_classes, standardize


def _images(n=3, height=28, width=28, n_classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return Dataset(torch.rand(n, height, width, generator=gen), torch.arange(n) % n_classes, "img", n_classes)


def test_dataset_properties_and_take():
    ds = _images(n=4)
    assert len(ds) == 4 and ds.shape == (28, 28) and ds.n_features == 784
    assert ds.flat().shape == (4, 784) and torch.equal(ds.flat()[1], ds.x[1].flatten())
    part = ds.take([3, 0])
    assert torch.equal(part.x, ds.x[[3, 0]]) and part.y.tolist() == [0, 0] and part.n_classes == 3
    assert len(ds.take([])) == 0
    assert repr(ds) == "Dataset('img', 4 x [28, 28], 3 classes)"


@pytest.mark.parametrize("x, y, n_classes, message", [
    (torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.int64), 1, "x must be a float32"),
    (torch.zeros(2), torch.zeros(2, dtype=torch.int64), 1, "x must be a float32 tensor \\[N, \\*shape\\]"),
    (torch.zeros(2, 2), torch.zeros(2, dtype=torch.int32), 1, "y must be an int64"),
    (torch.zeros(2, 2), torch.zeros(3, dtype=torch.int64), 1, "2 examples but y has 3"),
    (torch.zeros(2, 2), torch.tensor([0, 2]), 2, "labels must lie in 0..1"),
    (torch.zeros(2, 2), torch.tensor([0, 0]), 0, "n_classes must be a positive int"),
])
def test_dataset_rejects_bad_fields(x, y, n_classes, message):
    with pytest.raises(ValueError, match=message):
        Dataset(x, y, "bad", n_classes)


def test_take_rejects_bad_indices():
    ds = _images(n=2)
    with pytest.raises(IndexError, match="out of range"):
        ds.take([2])
    with pytest.raises(ValueError, match="integer indices"):
        ds.take([0.5])


def test_center_crop_is_the_middle_window():
    ds = _images(height=28, width=27)
    assert torch.equal(center_crop(ds, 20).x, ds.x[:, 4:24, 3:23])
    assert torch.equal(center_crop(ds, (3, 5)).x, ds.x[:, 12:15, 11:16])
    with pytest.raises(ValueError, match="exceeds the 28x27 images"):
        center_crop(ds, 28)
    with pytest.raises(ValueError, match="positive int"):
        center_crop(ds, 0)


def test_area_resize_is_a_block_mean():
    ds = _images()
    blocks = ds.x.numpy().reshape(3, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(resize(ds, 14).x.numpy(), blocks, rtol=0, atol=1e-6)
    thirds = ds.x.numpy()[:, :27, :27].reshape(3, 9, 3, 9, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(resize(Dataset(ds.x[:, :27, :27].contiguous(), ds.y, "img", 3), 9).x.numpy(),
                               thirds, rtol=0, atol=1e-6)


def test_upsampling_is_bilinear_with_half_pixel_centers():
    ds = Dataset(torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]), torch.tensor([0]), "tiny", 1)
    weights = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])  # source pixel weights per output row
    expected = weights @ ds.x[0].numpy() @ weights.T
    np.testing.assert_allclose(resize(ds, 4).x[0].numpy(), expected, atol=1e-6)


def test_paper_10x10_crops_then_block_averages():
    ds = _images()
    out = paper_10x10(ds)
    assert out.shape == (10, 10)
    expected = ds.x.numpy()[:, 4:24, 4:24].reshape(3, 10, 2, 10, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(out.x.numpy(), expected, atol=1e-6)


def test_image_transforms_reject_non_images():
    points = Dataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64), "xor", 2)
    with pytest.raises(ValueError, match="needs images \\[N, H, W\\]; dataset 'xor' has examples of shape \\[2\\]"):
        resize(points, 2)


def test_select_classes_relabels_in_given_order():
    ds = Dataset(torch.arange(8, dtype=torch.float32).reshape(8, 1), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]), "d", 4)
    out = select_classes(ds, [3, 1])
    assert out.n_classes == 2
    assert out.x.flatten().tolist() == [1, 3, 5, 7] and out.y.tolist() == [1, 0, 1, 0]
    for classes, message in (([], "no classes"), ([1, 1], "distinct"), ([4], "out of range"), ([0.5], "ints")):
        with pytest.raises(ValueError, match=message):
            select_classes(ds, classes)
    with pytest.raises(ValueError, match="classes \\[3\\] have no examples"):
        select_classes(ds.take([0, 1, 2]), [0, 3])


def test_standardize_with_own_and_given_stats():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(500, 3, generator=gen) * torch.tensor([1.0, 4.0, 0.0]) + torch.tensor([0.0, 2.0, 0.5])
    ds = Dataset(x, torch.zeros(500, dtype=torch.int64), "d", 1)
    out = standardize(ds)
    torch.testing.assert_close(out.x.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.x.std(0, unbiased=False), torch.tensor([1.0, 1.0, 0.0]), atol=1e-5, rtol=0)
    stats = feature_stats(ds)
    other = ds.take(torch.arange(10))
    torch.testing.assert_close(standardize(other, stats).x, (other.x - stats[0]) / stats[1])
    with pytest.raises(ValueError, match="mean must be a tensor of shape \\[3\\]"):
        standardize(ds, (torch.zeros(2), torch.ones(2)))
