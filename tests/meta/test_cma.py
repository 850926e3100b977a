"""CMA-ES meta-training: the ask/tell loop improves fitness, one population pass scores every
candidate as it would be scored alone (and in any share of a generation, as the Ray backend splits
it), a resumed run repeats the uninterrupted one, divergence is contained, the CLI runs it, and a
missing pycma or Ray is one clear error. Ray itself runs in test_cma_ray.py."""
import json
import sys

import numpy as np
import pytest
import torch

from graphnet import topologies
from graphnet.cli import main
from graphnet.data import EpisodeSampler, task
from graphnet.meta import (CheckpointError, CMATrainer, LocalBackend, MetaConfig, MetaTrainer, RayBackend,
                           population_scores, query_loss, read_log, resume, start)
from graphnet.meta.backend import Draw, concat_scores, score_share, shares
from graphnet.meta.checkpoint import load_checkpoint
from graphnet.meta.cma import search_indices
from graphnet.rules import Genome
from graphnet.rules.options import RuleOptions


def cma_config(**changes) -> MetaConfig:
    settings = dict(method="cma", tasks=("xor",), topologies=("mlp:4",), k=2, meta_steps=4, population=6, replicas=2,
                    batch_size=8, query_batches=1, unroll_start=2, unroll_max=2, checkpoint_every=100)
    return MetaConfig(**{**settings, **changes})


def one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphnet: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ------------------------------------------------------------------------------------------- learning
def test_ask_tell_improves_fitness_within_a_few_generations(tmp_path):
    """From SGD with a learning rate too small to learn in 4 steps (the backprop genome, tanh, lr
    0.01: about chance on two moons), CMA-ES over eta_tilde (= -lr) and init_scale finds a rule that
    does (lr 0.3-1 reach ~0.8) in 6 generations of 8. Scored on 10 held-out episodes; with episode
    seeds 0..5 the start scored 0.46-0.63, the final mean 0.75-0.78, the best candidate 0.69-0.76."""
    start = Genome.backprop(lr=0.01, activation="tanh")
    start.save(tmp_path / "sgd.json")
    config = MetaConfig(method="cma", tasks=("moons",), topologies=("mlp:8",), init_genome=str(tmp_path / "sgd.json"),
                        meta_steps=6, population=8, sigma0=0.3, search=("eta_tilde", "init_scale"), replicas=2,
                        batch_size=32, query_batches=1, unroll_start=4, unroll_max=4, checkpoint_every=100)
    trainer = CMATrainer(config, tmp_path / "run")
    best = trainer.run(progress=False)

    def held_out(genome: Genome) -> float:
        accuracies = []
        for step in range(1000, 1010):  # generations the run never reached
            (t, topo, seed), = trainer.draws(step)
            episode, topology = trainer.episode(step, 0, t, topo)
            accuracies.append(float(population_scores([genome], topology, episode, seed).accuracy[0]))
        return float(np.mean(accuracies))

    before, after = held_out(trainer.start), held_out(trainer.mean_genome())
    assert before < 0.65 and after > max(0.72, before + 0.12), (before, after)
    assert held_out(best) > 0.65
    assert float(best.eta_tilde) < -0.1  # a larger learning rate
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [r["step"] for r in rows] == list(range(6)) and sum(r["diverged"] for r in rows) == 0
    assert np.mean([r["accuracy"] for r in rows[-3:]]) > np.mean([r["accuracy"] for r in rows[:3]])
    assert trainer.best_fitness < -0.7  # fitness = -accuracy of the best candidate
    frozen = [i for i, n in enumerate(start.vector_names()) if n not in ("eta_tilde", "init_scale")]
    assert torch.equal(best.to_vector()[frozen], start.to_vector()[frozen])  # only the searched entries moved
    assert Genome.load(tmp_path / "run" / "genome.json").allclose(best, rtol=0, atol=0)
    mean = Genome.load(tmp_path / "run" / "mean.json")  # the distribution's mean, saved with the checkpoint
    assert mean.allclose(trainer.mean_genome(), rtol=0, atol=0)
    assert torch.allclose(mean.to_vector()[trainer.searched].double(), torch.as_tensor(trainer.es.mean), atol=1e-6)


def test_search_patterns():
    names = Genome.random(2, options=RuleOptions(normalize=True)).vector_names()
    assert search_indices(names, ["*"]) == list(range(len(names)))
    assert [names[i] for i in search_indices(names, ["nu"])] == ["nu[0,0]", "nu[0,1]", "nu[1,0]", "nu[1,1]"]
    assert [names[i] for i in search_indices(names, ["nu[0,1]", "eta*"])] == ["nu[0,1]", "eta", "eta_tilde"]
    assert [names[i] for i in search_indices(names, ["norm_*"])] == ["norm_scale[0]", "norm_scale[1]",
                                                                       "norm_shift[0]", "norm_shift[1]"]
    with pytest.raises(ValueError, match=r"pattern 'nu\[0,2\]' matches no genome entry"):
        search_indices(names, ["nu", "nu[0,2]"])


@pytest.mark.parametrize("changes, message", [
    ({"population": 1}, r"MetaConfig\.population must be an integer >= 2"),
    ({"fitness": "acc"}, r"MetaConfig\.fitness must be one of \['accuracy', 'loss'\]"),
    ({"sigma0": 0.0}, r"MetaConfig\.sigma0 must be a positive number"),
    ({"search": ()}, r"MetaConfig\.search must be a non-empty list of strings"),
    ({"lr": 0.1}, r"\['lr'\] apply only to method='gradient'"),
    ({"method": "gradient"}, r"\['population'\] apply only to method='cma'"),
])
def test_bad_cma_settings_are_rejected_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        cma_config(**changes)


def test_trainers_check_the_method(tmp_path):
    with pytest.raises(ValueError, match="CMATrainer runs method='cma'"):
        CMATrainer(MetaConfig(tasks=("xor",)), tmp_path / "a")
    with pytest.raises(ValueError, match=r"search pattern 'bogus'"):
        CMATrainer(cma_config(search=("nu", "bogus")), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ------------------------------------------------------------------------------------------- batched scoring
def test_one_population_pass_equals_each_candidate_alone():
    """P candidates x R replicas in one network score as each candidate alone on the same episode and
    synapses; the loss is the gradient trainer's meta-loss of that genome."""
    episode = EpisodeSampler(task("moons", "train"), batch_size=16, query_batches=2, seed=3).episode(
        5, support_batches=4, replicas=3)
    topology = topologies.build("skip:5,4", 2, 2)
    options = RuleOptions(normalize=True)
    genomes = [Genome.random(2, seed=s, options=options, dtype=torch.float64) for s in range(5)]
    for g in genomes:
        g.eta_tilde = torch.tensor(0.3, dtype=torch.float64)  # learn visibly within 4 steps
    genomes[2].init_scale = torch.tensor(2.0, dtype=torch.float64)
    together = population_scores(genomes, topology, episode, synapse_seed=11, dtype=torch.float64, score_points=2)
    assert together.loss.shape == together.accuracy.shape == together.finite.shape == (5,)
    assert together.finite.all() and len(set(together.loss.tolist())) == 5
    for p, genome in enumerate(genomes):
        alone = population_scores([genome], topology, episode, synapse_seed=11, dtype=torch.float64, score_points=2)
        torch.testing.assert_close(alone.loss[0], together.loss[p], rtol=1e-12, atol=1e-12)
        assert alone.accuracy[0] == together.accuracy[p]
        loss, _, _ = query_loss(genome, topology, episode, 11, torch.float64, 2)
        torch.testing.assert_close(loss.double(), together.loss[p], rtol=1e-12, atol=1e-12)


def test_generation_scores_every_candidate_on_the_same_draws(tmp_path):
    """The trainer's fitness of a generation = -accuracy of each candidate alone on that generation's
    episodes (two draws, their replicas and synapse seeds), averaged over the draws."""
    config = cma_config(tasks=("xor", "moons"), topologies=("mlp:4", "mlp:3,3"), draws=2, population=4,
                        dtype="float64")
    trainer = CMATrainer(config, tmp_path)
    candidates = trainer.es.ask()
    fitness, loss, accuracy = trainer.fitness(candidates, 7)
    for p, candidate in enumerate(candidates):
        genome = trainer.genome_of(candidate)
        alone = []
        for d, (t, topo, seed) in enumerate(trainer.draws(7)):
            episode, topology = trainer.episode(7, d, t, topo)
            alone.append(population_scores([genome], topology, episode, seed, torch.float64))
        assert fitness[p] == pytest.approx(-np.mean([s.accuracy[0] for s in alone]), abs=1e-12)
        assert loss[p] == pytest.approx(np.mean([s.loss[0] for s in alone]), abs=1e-12)
    assert np.array_equal(fitness, -accuracy)


def test_a_candidate_scores_the_same_bits_in_any_share():
    """What the Ray backend relies on: the population axis is a batch axis, so scoring a generation
    in contiguous shares and joining them gives exactly the one-pass scores (float32, two draws)."""
    options = RuleOptions(normalize=True)
    vectors = torch.stack([Genome.random(2, seed=s, options=options).to_vector() for s in range(7)])
    vectors[3] = 1e30  # diverges: NaN in its share as in the whole
    like = Genome.random(2, options=options)
    draws = [Draw(topologies.build(spec, 2, 2), EpisodeSampler(task(name, "train"), batch_size=16, query_batches=2,
                                                               seed=1).episode(4, support_batches=3, replicas=2), 11)
             for name, spec in (("moons", "skip:5,4"), ("xor", "mlp:6"))]
    whole = LocalBackend().score(vectors, like, draws, torch.float32, 2)
    assert [s.finite.tolist() for s in whole] == [[True] * 3 + [False] + [True] * 3] * 2
    for parts in (2, 3, 7):
        split = [score_share(vectors[part], like, draws, torch.float32, 2) for part in shares(7, parts)]
        for d, want in enumerate(whole):
            got = concat_scores([share[d] for share in split])
            assert torch.equal(got.finite, want.finite)
            torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0, equal_nan=True)
            torch.testing.assert_close(got.accuracy, want.accuracy, rtol=0, atol=0, equal_nan=True)
    for cap in (1, 2, 3):  # the local backend's passes of at most `cap` candidates
        for got, want in zip(LocalBackend(cap).score(vectors, like, draws, torch.float32, 2), whole):
            assert torch.equal(got.finite, want.finite)
            torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0, equal_nan=True)
            torch.testing.assert_close(got.accuracy, want.accuracy, rtol=0, atol=0, equal_nan=True)
    with pytest.raises(ValueError, match="max_candidates"):
        LocalBackend(0)


def test_shares_are_contiguous_and_balanced():
    assert shares(7, 3) == [slice(0, 3), slice(3, 5), slice(5, 7)]
    assert shares(2, 5) == [slice(0, 1), slice(1, 2)] and shares(4, 1) == [slice(0, 4)]


# ------------------------------------------------------------------------------------------- resume
RESUME = cma_config(tasks=("xor", "moons"), topologies=("mlp:4", "mlp:3,3"), draws=2, meta_steps=6, replicas=1,
                    unroll_start=2, unroll_step=1, unroll_every=3, unroll_max=3, checkpoint_every=2)


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    a = CMATrainer(RESUME, tmp_path / "a")
    a.run(progress=False)

    b = CMATrainer(RESUME, tmp_path / "b", log_name="log.jsonl")
    b.run(until=2, progress=False)  # checkpoint at generation 2
    b.meta_step()  # generation 2 runs and is logged, then the run "dies" before its next checkpoint
    assert len(read_log(tmp_path / "b" / "log.jsonl")) == 3
    b = resume(tmp_path / "b")
    assert isinstance(b, CMATrainer) and b.step == 2
    b.run(progress=False)

    assert (a.step, a.diverged, a.best_fitness) == (b.step, b.diverged, b.best_fitness) and a.step == 6
    assert torch.equal(a.genome.to_vector(), b.genome.to_vector())
    assert Genome.load(tmp_path / "a" / "genome.json").allclose(Genome.load(tmp_path / "b" / "genome.json"),
                                                                rtol=0, atol=0)
    assert np.array_equal(a.es.mean, b.es.mean) and a.es.sigma == b.es.sigma
    assert np.array_equal(a.es.ask(), b.es.ask())  # the RNG inside the strategy was restored too
    rows_a, rows_b = read_log(tmp_path / "a" / "log.csv"), read_log(tmp_path / "b" / "log.jsonl")
    for row in rows_a + rows_b:
        row.pop("seconds")
    assert rows_a == rows_b and [r["unroll"] for r in rows_a] == [2, 2, 2, 3, 3, 3]
    assert all("+" in r["task"] and r["grad_norm"] > 0 for r in rows_a)  # two draws a generation; sigma


def test_checkpoint_is_checked(tmp_path):
    CMATrainer(cma_config(meta_steps=1), tmp_path).run(progress=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt", ("es", "start", "genome", "best_fitness"))
    assert isinstance(state["es"], bytes) and state["config"]["method"] == "cma"
    with pytest.raises(CheckpointError, match="holds a method='cma' run"):
        MetaTrainer.resume(tmp_path)
    state["es"] = state["es"][:100]
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="CMA-ES state cannot be unpickled"):
        resume(tmp_path)


# ------------------------------------------------------------------------------------------- divergence
def test_diverging_and_non_finite_candidates_get_the_worst_fitness(tmp_path):
    trainer = CMATrainer(cma_config(meta_steps=3), tmp_path)
    ask = trainer.es.ask

    def poisoned():
        candidates = ask()
        candidates[0] = np.full_like(candidates[0], 1e30)  # finite, but its synapses overflow
        candidates[1] = candidates[1] * np.nan  # not a genome at all
        candidates[2] = np.full_like(candidates[2], 1e39)  # not finite in float32
        return candidates

    trainer.es.ask = poisoned
    result = trainer.meta_step()  # must not raise
    del trainer.es.ask
    assert result.diverged == 3 and trainer.diverged == 3
    assert np.isfinite(result.loss) and np.isfinite(result.accuracy) and np.isfinite(trainer.best_fitness)
    assert np.isfinite(trainer.es.mean).all() and np.isfinite(trainer.es.sigma)
    fitness, _, _ = trainer.fitness(poisoned(), 1)
    assert np.isinf(fitness[:3]).all() and np.isfinite(fitness[3:]).all()
    trainer.run(progress=False)  # the run goes on
    rows = read_log(tmp_path / "log.csv")
    assert [r["diverged"] for r in rows] == [3, 0, 0] and torch.isfinite(trainer.genome.to_vector()).all()

    overflowing = trainer.genome_of(np.full(len(trainer.searched), 1e30))
    episode, topology = trainer.episode(0, 0, 0, 0)
    assert not population_scores([overflowing], topology, episode, 0).finite[0]


# ------------------------------------------------------------------------------------------- CLI
def test_cli_round_trip(capsys, tmp_path):
    path = tmp_path / "cma.json"
    path.write_text(json.dumps({**cma_config(meta_steps=3).to_dict(), "checkpoint_every": 2}))
    out = tmp_path / "run"
    assert main(["meta-train", "--config", str(path), "--out", str(out), "--no-progress", "--sigma0", "0.2"]) == 0
    stdout = capsys.readouterr().out
    assert "best genome after 3 generations" in stdout and str(out / "genome.json") in stdout
    assert str(out / "mean.json") in stdout
    assert {p.name for p in out.iterdir()} == {"checkpoint.pt", "log.csv", "genome.json", "mean.json"}
    config = MetaConfig.from_dict(load_checkpoint(out / "checkpoint.pt", ("config",))["config"])
    assert config.method == "cma" and config.sigma0 == 0.2 and config.population == 6
    assert main(["meta-train", "--resume", "--out", str(out), "--meta-steps", "5", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "meta-step 3 of 5" in captured.err and "after 5 generations" in captured.out
    assert [r["step"] for r in read_log(out / "log.csv")] == [0, 1, 2, 3, 4]

    # --method and the CMA flags on a config without a method
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"tasks": ["xor"], "topologies": ["mlp:4"], "k": 2, "meta_steps": 2, "replicas": 1,
                                 "batch_size": 8, "query_batches": 1, "unroll_start": 2, "unroll_max": 2}))
    assert main(["meta-train", "--config", str(plain), "--out", str(tmp_path / "r2"), "--no-progress",
                 "--method", "cma", "--population", "5", "--search", "nu", "eta_tilde", "--fitness", "loss"]) == 0
    config = MetaConfig.from_dict(load_checkpoint(tmp_path / "r2" / "checkpoint.pt", ("config",))["config"])
    assert (config.method, config.population, config.search, config.fitness) == ("cma", 5, ("nu", "eta_tilde"), "loss")
    capsys.readouterr()
    assert main(["meta-train", "--config", str(plain), "--out", str(tmp_path / "r3"), "--population", "5"]) == 1
    one_error_line(capsys.readouterr().err, "['population'] apply only to method='cma'")
    assert main(["meta-train", "--resume", "--out", str(out), "--method", "cma"]) == 1
    one_error_line(capsys.readouterr().err, "only --meta-steps")


def test_missing_pycma_is_one_clear_error(capsys, monkeypatch, tmp_path):
    CMATrainer(cma_config(meta_steps=1), tmp_path / "done").run(progress=False)
    monkeypatch.setitem(sys.modules, "cma", None)  # `import cma` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install cma"):
        CMATrainer(cma_config(), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    path = tmp_path / "cma.json"
    path.write_text(json.dumps(cma_config().to_dict()))
    assert main(["meta-train", "--config", str(path), "--out", str(tmp_path / "new")]) == 1
    one_error_line(capsys.readouterr().err, "needs pycma: pip install cma")
    assert main(["meta-train", "--resume", "--out", str(tmp_path / "done")]) == 1
    one_error_line(capsys.readouterr().err, "needs pycma: pip install cma")
    MetaTrainer(MetaConfig(tasks=("xor",), topologies=("mlp:4",), k=2, meta_steps=1, batch_size=8, query_batches=1,
                           unroll_start=2, unroll_max=2), tmp_path / "grad").run(progress=False)  # needs no pycma


def test_ray_options_are_checked_and_a_missing_ray_is_one_clear_error(capsys, monkeypatch, tmp_path):
    path = tmp_path / "cma.json"
    path.write_text(json.dumps(cma_config().to_dict()))
    gradient = tmp_path / "gradient.json"
    gradient.write_text(json.dumps({"tasks": ["xor"], "topologies": ["mlp:4"], "k": 2, "meta_steps": 1}))
    assert main(["meta-train", "--config", str(gradient), "--out", str(tmp_path / "g"), "--ray"]) == 1
    one_error_line(capsys.readouterr().err, "--ray scores CMA-ES generations: it needs --method cma")
    assert main(["meta-train", "--config", str(path), "--out", str(tmp_path / "c"), "--ray-workers", "2"]) == 1
    one_error_line(capsys.readouterr().err, "--ray-workers apply with --ray")
    with pytest.raises(ValueError, match="applies to CMA-ES runs; the run in .* has method='gradient'"):
        start(MetaConfig(tasks=("xor",)), tmp_path / "api", backend=LocalBackend())

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=r"needs Ray: pip install 'ray>=2'"):
        RayBackend()
    assert main(["meta-train", "--config", str(path), "--out", str(tmp_path / "c"), "--ray"]) == 1
    one_error_line(capsys.readouterr().err, "needs Ray: pip install 'ray>=2'")
    assert not any((tmp_path / name).exists() for name in ("g", "c", "api"))  # refused before any folder
