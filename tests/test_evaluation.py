"""Genome curves, the comparison against SGD / Adam, its table and JSON, and the progress bar."""
import io
import json

import numpy as np
import pytest
import torch

import graphnet as gn
from graphnet.baselines import Curves, EvalTask, train_autograd
from graphnet.evaluation import Comparison, Entry, compare, genome_curve
from graphnet.progress import Progress


def blobs(n_train=240, n_test=120, d=12, classes=3, seed=0, name="blobs"):
    gen = torch.Generator().manual_seed(seed)
    centers = 1.5 * torch.randn(classes, d, generator=gen)

    def split(n):
        y = torch.randint(0, classes, (n,), generator=gen)
        return centers[y] + torch.randn(n, d, generator=gen), y

    return EvalTask(name, *split(n_train), *split(n_test))


def skip_dag():
    return gn.topologies.superneuron_skip((12, 8, 6, 3))


def diverging_genome():
    """Synapses multiply by 1e30 per step: Inf, then NaN, within a few steps."""
    g = gn.Genome.random(2, seed=0)
    g.f_tilde, g.eta_tilde = torch.tensor(1e30), torch.tensor(1e30)
    return g


@pytest.fixture(scope="module")
def comparison():
    genomes = {"backprop": gn.Genome.backprop(0.3, activation="relu", loss="cross_entropy",
                                              output_activation="identity"),
               "random": gn.Genome.random(2, seed=1), "diverging": diverging_genome()}
    return compare(genomes, [blobs(), blobs(seed=1, name="blobs2")], {"skip": skip_dag()}, steps=(0, 1, 5, 20),
                   seeds=(0, 1, 2), batch_size=16, sgd_lrs=(0.03, 0.3, 3.0), adam_lrs=(1e-3, 1e-2), progress=False)


def test_backprop_genome_curve_equals_sgd_baseline():
    """The learned-rule path with the backprop genome (relu, linear outputs, CE feedback =
    (softmax(h) - t) · 1) is SGD on logits: the same curve as the autograd baseline, seed by seed."""
    task, top = blobs(), skip_dag()
    kw = dict(seeds=(3, 4, 5), steps=(0, 1, 3, 10, 25), batch_size=16, batch_seed=2, dtype=torch.float64)
    for lr in (0.1, 0.5):
        genome = gn.Genome.backprop(lr, activation="relu", loss="cross_entropy", output_activation="identity",
                                    dtype=torch.float64)
        curve = genome_curve(genome, top, task.x_train, task.y_train, task.x_test, task.y_test, **kw)
        sgd = train_autograd(top, task, optimizer="sgd", lrs=(lr,), activation="relu", **kw)
        np.testing.assert_array_equal(curve.accuracy, sgd.accuracy[0])
        np.testing.assert_allclose(curve.loss, sgd.loss[0], rtol=1e-9, atol=1e-12)
        assert curve.accuracy[:, -1].mean() > curve.accuracy[:, 0].mean() + 0.2


def test_genome_curve_per_seed_determinism():
    """Member i of any seed list equals a run of that seed alone (non-consecutive seeds included)."""
    task, top, genome = blobs(), skip_dag(), gn.Genome.random(2, seed=3)
    kw = dict(steps=(1, 4, 8), batch_size=16, batch_seed=1)
    both = genome_curve(genome, top, task, seeds=(2, 9), **kw)
    alone = genome_curve(genome, top, task, seeds=(9,), **kw)
    again = genome_curve(genome, top, task, seeds=(2, 9), **kw)
    np.testing.assert_array_equal(both.accuracy, again.accuracy)
    np.testing.assert_array_equal(both.accuracy[1], alone.accuracy[0])
    np.testing.assert_allclose(both.loss[1], alone.loss[0], rtol=1e-5)
    assert both.accuracy.shape == (2, 3) and both.lrs is None


def test_diverging_genome_is_reported(comparison):
    e = comparison.entry("blobs", "skip")
    div = e.genomes["diverging"]
    assert div.diverged.all() and (div.diverged_at >= 1).all()
    after = np.asarray(div.steps)[None, :] >= div.diverged_at[:, None]  # [S, T]: recorded at or after divergence
    assert after[:, -1].all()
    np.testing.assert_array_equal(np.isnan(div.accuracy), after)
    np.testing.assert_array_equal(np.isnan(div.loss), after)
    assert not e.genomes["backprop"].diverged.any() and not e.genomes["random"].diverged.any()
    mean, _ = div.summary(e.chance)
    assert np.isclose(mean[-1], e.chance)  # diverged seeds count at chance
    row = next(line for line in comparison.table().splitlines() if "| diverging |" in line)
    assert "(3 div)" in row
    # best-lr means are never NaN, whatever the grid's members did
    assert np.isfinite(e.baselines["sgd"].best(e.chance)["mean"]).all()


def test_best_lr_is_the_max(comparison):
    for e in comparison.entries:
        for curves in e.baselines.values():
            best = curves.best(e.chance)
            mean, _ = curves.summary(e.chance)
            np.testing.assert_array_equal(best["mean"], mean.max(0))
            np.testing.assert_array_equal(best["lr"], np.asarray(curves.lrs)[mean.argmax(0)])
        # the backprop genome with lr 0.3 is SGD with lr 0.3 (float32: equal up to rounding)
        sgd = e.baselines["sgd"]
        np.testing.assert_allclose(e.genomes["backprop"].accuracy, sgd.accuracy[1], atol=0.02)


def test_table_contents():
    """A hand-made comparison: the table picks the lr with the highest mean at each step."""
    steps, seeds = (1, 10), (0, 1)
    acc = np.array([[[0.5, 0.6], [0.5, 0.8]],     # lr 0.1: means 0.5, 0.7
                    [[0.7, 0.2], [0.9, np.nan]]])  # lr 1.0: means 0.8, (0.2 + chance 0.5) / 2 = 0.35
    sgd = Curves("sgd", steps, seeds, acc, acc.copy(), np.array([[-1, -1], [-1, 10]]), lrs=(0.1, 1.0))
    genome = Curves("g", steps, seeds, np.array([[0.6, 0.9], [0.6, 0.7]]), np.zeros((2, 2)), np.array([-1, -1]))
    comp = Comparison([Entry("toy", "net", 2, {"g": genome}, {"sgd": sgd})], steps, seeds)
    lines = comp.table().splitlines()
    assert lines[0] == "| task | topology | method | 1 steps | 10 steps |"
    assert lines[2] == "| toy | net | g | 0.600 ± 0.000 | 0.800 ± 0.100 |"
    assert lines[3] == "| toy | net | SGD (best lr) | 0.800 ± 0.100 @1 | 0.700 ± 0.100 @0.1 |"
    assert comp.table(steps=[10]).splitlines()[3] == "| toy | net | SGD (best lr) | 0.700 ± 0.100 @0.1 |"
    with pytest.raises(ValueError, match="not recorded"):
        comp.table(steps=[5])


def test_json_round_trip(comparison, tmp_path):
    path = comparison.to_json(tmp_path / "cmp.json")
    data = json.loads(open(path).read())
    assert data["format"] == "graphnet.comparison" and data["graphnet_version"] == gn.__version__
    entry = data["entries"][0]
    assert entry["baselines"]["sgd"]["lrs"] == [0.03, 0.3, 3.0]
    assert len(entry["baselines"]["sgd"]["best"]["lr"]) == 4
    assert entry["genomes"]["diverging"]["accuracy"][0][-1] is None  # NaN written as null
    assert data["config"]["genomes"]["random"]["k"] == 2 and data["seconds"] > 0
    back = Comparison.from_json(path)
    assert back.table() == comparison.table()
    assert back.to_dict() == comparison.to_dict()
    for e, f in zip(comparison.entries, back.entries):
        for name in e.genomes:
            np.testing.assert_array_equal(e.genomes[name].accuracy, f.genomes[name].accuracy)
            np.testing.assert_array_equal(e.genomes[name].diverged_at, f.genomes[name].diverged_at)
        np.testing.assert_array_equal(e.baselines["adam"].train_loss, f.baselines["adam"].train_loss)


def test_corrupt_json_is_a_clear_error(comparison, tmp_path):
    path = comparison.to_json(tmp_path / "cmp.json")
    text = open(path).read()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="cut.json.*corrupt or truncated"):
        Comparison.from_json(tmp_path / "cut.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="format tag"):
        Comparison.from_json(tmp_path / "other.json")
    data = json.loads(text)
    data["entries"][0]["genomes"]["random"]["accuracy"][0].pop()
    (tmp_path / "shape.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"entries\[0\]\.genomes\.random\.accuracy.*shape"):
        Comparison.from_json(tmp_path / "shape.json")
    data = json.loads(text)
    del data["entries"][0]["baselines"]["sgd"]["lrs"]
    (tmp_path / "lrs.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="lrs"):
        Comparison.from_json(tmp_path / "lrs.json")


def test_compare_inputs():
    task = blobs(n_train=64, n_test=32)
    # a bare tuple task, a single genome, a topology built per task, no Adam
    comp = compare(gn.Genome.random(2, seed=0), ("tuple-task", task.x_train, task.y_train, task.x_test, task.y_test),
                   {"mlp": lambda t: gn.topologies.mlp((t.n_features, 6, t.n_classes))}, steps=(2,), seeds=(0,),
                   batch_size=8, sgd_lrs=(0.1,), adam_lrs=(), progress=False)
    (e,) = comp.entries
    assert (e.task, e.topology, list(e.genomes), list(e.baselines)) == ("tuple-task", "mlp", ["genome"], ["sgd"])
    with pytest.raises(ValueError, match="inputs"):
        compare(gn.Genome.random(2), task, gn.topologies.mlp((5, 3)), steps=(1,), seeds=(0,), progress=False)


def test_progress_plain_lines_and_tty():
    out = io.StringIO()
    with Progress(100, "run", stream=out) as bar:
        for _ in range(100):
            bar.update(1, loss=0.5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("run 100%") and "loss=0.5" in lines[-1]

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = Progress(10, "t", stream=tty, min_interval=0.0)
    bar.update(3)
    bar.close()
    assert tty.getvalue().startswith("\rt  30%") and tty.getvalue().endswith("\n")
    quiet = io.StringIO()
    with Progress(5, stream=quiet, enabled=False) as bar:
        bar.update(5)
    assert quiet.getvalue() == "" and bar.n == 5
    unknown = io.StringIO()
    with Progress(0, "open-ended", stream=unknown) as bar:
        bar.update(7)
    assert unknown.getvalue().startswith("open-ended 7")
