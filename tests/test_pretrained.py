"""The shipped genome: it loads by name, and it trains fresh 28x28 MNIST networks from [0, 1] pixels.

The full claim of the README (beats best-learning-rate SGD on MNIST and Fashion-MNIST at 10 and 20
inner steps, 5 seeds, full test sets) is checked by the ``slow`` test at the end
(``pytest -m slow tests/test_pretrained.py``, about 10 minutes on 2 cores).
"""
import pytest

import graphnet as gn
from graphnet.data import DataUnavailableError, TaskSpec
from graphnet.evaluation import compare, genome_curve
from graphnet.rules.shipped import catalog


def _task(spec):
    try:
        return TaskSpec.parse(spec).splits()
    except DataUnavailableError as error:
        pytest.skip(str(error))


def test_every_catalog_entry_loads_and_the_default_is_listed():
    entries = catalog()
    assert entries["default"] in entries["genomes"]
    for name, meta in entries["genomes"].items():
        genome = gn.Genome.pretrained(name)
        assert genome.k >= 2 and all(key in meta for key in ("file", "description", "command"))
    assert gn.Genome.pretrained().allclose(gn.Genome.pretrained(entries["default"]))


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="shipped genomes"):
        gn.Genome.pretrained("no-such-genome")


def test_default_genome_trains_28x28_mnist_from_raw_pixels():
    train, test = _task("mnist:28x28")
    assert float(train.x.min()) >= 0 and float(train.x.max()) <= 1  # what users feed
    topology = gn.topologies.mlp([784, 256, 10])
    curves = genome_curve(gn.Genome.pretrained(), topology, train.flat(), train.y, test.flat()[:1000],
                          test.y[:1000], seeds=(0, 1), steps=(0, 10), progress=None)
    before, after = curves.accuracy.mean(0)
    assert before < 0.3 and after > 0.6, (before, after)


@pytest.mark.slow
def test_default_genome_beats_best_lr_sgd_at_10_and_20_steps():
    for spec in ("mnist:28x28", "fashion-mnist:28x28"):
        train, test = _task(spec)
        result = compare({"shipped": gn.Genome.pretrained()}, [(train, test)],
                         {"mlp:256": gn.topologies.mlp([784, 256, 10])}, steps=(10, 20), seeds=range(5),
                         adam_lrs=(), progress=False)
        entry = result.entries[0]
        genome, _ = entry.genomes["shipped"].summary(chance=0.1)  # diverged seeds count at chance
        sgd = entry.baselines["sgd"].best(chance=0.1)["mean"]  # best lr per step budget
        assert (genome > sgd).all(), (spec, genome, sgd)
