"""`EpisodeSampler`: shapes, index-addressed determinism, support/query disjointness and N-way relabeling.

The data sets here store each example's id in feature 0 and its label in feature 1, so an episode
can be traced back to the examples it drew.
"""
import pytest
import torch

from graphnet.data import Dataset, EpisodeSampler


def _traceable(n_classes, per_class):
    """Examples [n_classes * per_class, 2] holding (id, label), in class-interleaved order."""
    y = torch.arange(n_classes * per_class) % n_classes
    x = torch.stack([torch.arange(len(y)), y], dim=1).to(torch.float32)
    return Dataset(x, y, "traceable", n_classes)


def _ids(x):
    return x[..., 0].long()


def test_shapes_with_and_without_replicas():
    sampler = EpisodeSampler(_traceable(10, 100), batch_size=8, support_batches=5, query_batches=3, seed=1)
    one = sampler.episode(0)
    assert one.support_x.shape == (5, 8, 2) and one.support_y.shape == (5, 8)
    assert one.query_x.shape == (3, 8, 2) and one.query_y.shape == (3, 8) and one.n_classes == 10
    assert one.support_x.dtype == torch.float32 and one.support_y.dtype == torch.int64
    many = sampler.episode(0, replicas=4, support_batches=2)
    assert many.support_x.shape == (4, 2, 8, 2) and many.query_y.shape == (4, 3, 8)
    first = sampler.episode(0, replicas=4)
    assert torch.equal(first.support_x[0], one.support_x) and torch.equal(first.query_y[0], one.query_y)
    assert not torch.equal(first.support_x[0], first.support_x[1])


def test_episode_to_a_device():
    episode = EpisodeSampler(_traceable(10, 100), batch_size=8, seed=1).episode(0, replicas=2)
    moved = episode.to("cpu")  # the trainers move episodes to their device; on the CPU nothing is copied
    assert moved.n_classes == episode.n_classes
    for field in ("support_x", "support_y", "query_x", "query_y"):
        assert getattr(moved, field) is getattr(episode, field)


def test_episodes_are_a_function_of_seed_and_index():
    data = _traceable(10, 100)
    sampler = EpisodeSampler(data, batch_size=16, seed=7)
    later = [sampler.episode(i) for i in (0, 1, 2, 5)][-1]
    fresh = EpisodeSampler(data, batch_size=16, seed=7).episode(5)
    for field in ("support_x", "support_y", "query_x", "query_y"):
        assert torch.equal(getattr(later, field), getattr(fresh, field))
    assert not torch.equal(fresh.support_x, sampler.episode(6).support_x)
    assert not torch.equal(fresh.support_x, EpisodeSampler(data, batch_size=16, seed=8).episode(5).support_x)


def test_large_pool_draws_distinct_examples():
    data = _traceable(10, 100)
    episode = EpisodeSampler(data, batch_size=20, support_batches=10, query_batches=2).episode(3, replicas=3)
    for r in range(3):
        ids = torch.cat([_ids(episode.support_x[r]).flatten(), _ids(episode.query_x[r]).flatten()])
        assert ids.unique().numel() == 240
        assert torch.equal(episode.support_y[r], data.y[_ids(episode.support_x[r])])
        assert torch.equal(episode.query_y[r], data.y[_ids(episode.query_x[r])])


def test_small_pool_keeps_query_unseen_and_stratified():
    data = _traceable(4, 30)  # 120 examples for 10 x 32 support + 2 x 32 query
    episode = EpisodeSampler(data, batch_size=32).episode(0, replicas=5)
    for r in range(5):
        support, query = _ids(episode.support_x[r]).unique(), _ids(episode.query_x[r]).unique()
        assert len(set(support.tolist()) & set(query.tolist())) == 0
        assert data.y[query].unique().tolist() == [0, 1, 2, 3]
        assert torch.equal(episode.query_y[r], data.y[_ids(episode.query_x[r])])


def test_ways_relabels_a_random_class_subset():
    data = _traceable(50, 20)  # Omniglot-like: 20 examples per class
    sampler = EpisodeSampler(data, batch_size=25, support_batches=4, query_batches=2, ways=5, seed=3)
    episode = sampler.episode(11, replicas=6)
    assert episode.n_classes == 5 and sampler.n_classes == 5
    drawn = []
    for r in range(6):
        support_ids, query_ids = _ids(episode.support_x[r]), _ids(episode.query_x[r])
        assert set(support_ids.flatten().tolist()).isdisjoint(query_ids.flatten().tolist())
        original = torch.cat([data.y[support_ids].flatten(), data.y[query_ids].flatten()])
        new = torch.cat([episode.support_y[r].flatten(), episode.query_y[r].flatten()])
        assert set(new.tolist()) <= set(range(5)) and original.unique().numel() == 5
        mapping = {}
        for old, label in zip(original.tolist(), new.tolist()):
            assert mapping.setdefault(label, old) == old  # one original class per new label
        assert set(data.y[query_ids].flatten().tolist()) <= set(data.y[support_ids].flatten().tolist())
        drawn.append(frozenset(mapping.values()))
    assert len(set(drawn)) > 1  # replicas draw their own classes


def test_ways_with_a_large_pool_is_distinct():
    data = _traceable(10, 100)
    episode = EpisodeSampler(data, batch_size=10, support_batches=3, query_batches=1, ways=2).episode(0)
    ids = torch.cat([_ids(episode.support_x).flatten(), _ids(episode.query_x).flatten()])
    assert ids.unique().numel() == 40 and data.y[ids].unique().numel() == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be an int >= 1"),
    ({"query_batches": 0}, "query_batches must be an int >= 1"),
    ({"ways": 11}, "ways=11 exceeds the 10 classes"),
    ({"ways": 1}, "ways must be an int >= 2"),
    ({"seed": -1}, "seed must be an int >= 0"),
])
def test_bad_sampler_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpisodeSampler(_traceable(10, 3), **kwargs)


def test_bad_episode_arguments():
    sampler = EpisodeSampler(_traceable(10, 3))
    for kwargs, message in (({"index": -1}, "index must be"), ({"index": 0, "replicas": 0}, "replicas must be"),
                            ({"index": 0, "support_batches": 0}, "support_batches must be")):
        with pytest.raises(ValueError, match=message):
            sampler.episode(**kwargs)
    single = Dataset(torch.zeros(3, 1), torch.tensor([0, 1, 2]), "singletons", 3)
    with pytest.raises(ValueError, match="single example"):
        EpisodeSampler(single, batch_size=4).episode(0)
