"""Gradient meta-training: the loss goes down, the meta-gradient is the derivative of the unrolled
query loss, divergence is contained, and the topology specs the trainer builds."""
import dataclasses

import numpy as np
import pytest
import torch

import graphnet.meta.trainer as trainer_module
from graphnet import Network, Topology, topologies
from graphnet.data import EpisodeSampler, TaskSpec
from graphnet.meta import MetaConfig, MetaTrainer, query_loss, read_log, starting_genome
from graphnet.rules import Genome
from graphnet.rules.options import RuleOptions


def tiny(**changes) -> MetaConfig:
    settings = dict(tasks=("xor",), topologies=("mlp:4",), k=2, meta_steps=4, lr=1e-2, replicas=2, batch_size=8,
                    query_batches=1, unroll_start=2, unroll_max=2, checkpoint_every=100)
    return MetaConfig(**{**settings, **changes})


def values(genome: Genome) -> dict:
    return {name: t.detach().clone() for name, t in genome.tensors().items()}


# ------------------------------------------------------------------------------------------- learning
def test_meta_training_decreases_the_meta_loss(tmp_path):
    """Random genome on two moons: the query loss falls from chance (ln 2 = 0.693) to well below.

    Checked on episode seeds 0..5 with this genome seed (last-20 mean 0.36..0.39); 4 replicas per
    step keep the gradient steady enough to leave the plateau at chance every time."""
    config = MetaConfig(tasks=("moons",), topologies=("mlp:16",), k=4, meta_steps=100, lr=3e-2, replicas=4,
                        batch_size=32, query_batches=1, unroll_start=4, unroll_max=4, genome_seed=2, seed=0,
                        checkpoint_every=1000)
    MetaTrainer(config, tmp_path).run(progress=False)
    rows = read_log(tmp_path / "log.csv")
    assert [r["step"] for r in rows] == list(range(100))
    loss = np.array([r["loss"] for r in rows])
    accuracy = np.array([r["accuracy"] for r in rows])
    assert loss[:20].mean() > 0.65  # a random rule starts at chance
    assert loss[-20:].mean() < loss[:20].mean() - 0.15, (loss[:20].mean(), loss[-20:].mean())
    assert accuracy[-20:].mean() > 0.7
    assert sum(r["diverged"] for r in rows) == 0


# ------------------------------------------------------------------------------------------- meta-gradient
def unrolled_loss(genome: Genome, topology: Topology, episode, synapse_seed: int) -> torch.Tensor:
    """The meta-loss written out: unroll every replica, then mean cross-entropy on its query batches."""
    replicas, unroll = episode.support_x.shape[:2]
    net = Network(topology, [genome] * replicas, seed=synapse_seed, dtype=torch.float64)
    for s in range(unroll):
        net.step(episode.support_x[:, s], episode.support_y[:, s])
    logits = net.predict(episode.query_x.flatten(1, 2))  # [R, Q*B, C]
    y = episode.query_y.flatten(1, 2)  # [R, Q*B]
    return -torch.log_softmax(logits, -1).gather(-1, y.unsqueeze(-1)).mean()


def perturbed(genome: Genome, name: str, index: tuple, delta: float) -> Genome:
    tensors = values(genome)
    tensors[name][index] += delta
    return Genome(options=genome.options, **tensors)


def one_step_spy(monkeypatch, config, tmp_path):
    """Run meta-step 0 and return (trainer, genome before, what query_loss was called with)."""
    calls = []

    def spy(genome, topology, episode, synapse_seed, dtype, *rest):
        calls.append((topology, episode, synapse_seed))
        return query_loss(genome, topology, episode, synapse_seed, dtype, *rest)

    monkeypatch.setattr(trainer_module, "query_loss", spy)
    trainer = MetaTrainer(config, tmp_path)
    before = trainer.genome.detach().clone()
    result = trainer.meta_step()
    assert len(calls) == 1
    return trainer, before, calls[0], result


def applied_gradient(trainer: MetaTrainer) -> dict:
    """Adam's first moment after one step is (1 - beta1) * the (clipped) gradient it was given."""
    beta1 = trainer.optimizer.param_groups[0]["betas"][0]
    return {name: trainer.optimizer.state[t]["exp_avg"] / (1 - beta1) for name, t in trainer.genome.tensors().items()}


def test_meta_gradient_equals_finite_differences_of_the_unrolled_loss(monkeypatch, tmp_path):
    config = tiny(dtype="float64", k=3, topologies=("mlp:3",), unroll_start=3, unroll_max=3, clip=1e6, lr=1e-3)
    trainer, before, (topology, episode, seed), result = one_step_spy(monkeypatch, config, tmp_path)
    assert episode.support_x.shape == (2, 3, 8, 2) and episode.query_x.shape == (2, 1, 8, 2)

    base = unrolled_loss(before, topology, episode, seed)
    assert result.loss == pytest.approx(float(base), rel=1e-12)
    grad = applied_gradient(trainer)
    h = 1e-6
    probes = [("nu", (0, 1)), ("mu", (2, 0)), ("P", (1, 1)), ("Q", (0, 2)), ("f", ()), ("eta", ()),
              ("f_tilde", ()), ("eta_tilde", ()), ("init_scale", ())]
    for name, index in probes:
        up = unrolled_loss(perturbed(before, name, index, h), topology, episode, seed)
        down = unrolled_loss(perturbed(before, name, index, -h), topology, episode, seed)
        fd = float(up - down) / (2 * h)
        assert float(grad[name][index]) == pytest.approx(fd, rel=1e-5, abs=1e-9), name
    norm = torch.cat([g.flatten() for g in grad.values()]).norm()
    assert result.grad_norm == pytest.approx(float(norm), rel=1e-12)
    assert float(norm) > 1e-4  # the probes above compare something that is not ~0

    # Adam's first step moves each entry by lr * g / (|g| + eps)
    for name, t in trainer.genome.tensors().items():
        g = grad[name]
        expected = before.tensors()[name] - config.lr * g / (g.abs() + 1e-8)
        assert torch.allclose(t.detach(), expected, rtol=0, atol=1e-12), name


def test_gradient_is_clipped_to_clip(monkeypatch, tmp_path):
    free = tiny(dtype="float64", clip=1e6)
    trainer, _, _, result = one_step_spy(monkeypatch, free, tmp_path / "free")
    full = applied_gradient(trainer)
    norm = float(torch.cat([g.flatten() for g in full.values()]).norm())
    clip = norm / 4
    trainer, _, _, clipped_result = one_step_spy(monkeypatch, free.replace(clip=clip), tmp_path / "clipped")
    clipped = applied_gradient(trainer)
    assert clipped_result.grad_norm == pytest.approx(norm, rel=1e-12)  # the log shows the norm before clipping
    for name in full:  # scaled by clip / norm (torch adds 1e-6 to the norm)
        assert torch.allclose(clipped[name], full[name] * clip / norm, rtol=1e-4, atol=0), name
    assert float(torch.cat([g.flatten() for g in clipped.values()]).norm()) == pytest.approx(clip, rel=1e-4)


def test_query_loss_without_autograd_gives_the_same_value():
    ds = TaskSpec.parse("xor").build("train")
    episode = EpisodeSampler(ds, batch_size=8, query_batches=2, seed=1).episode(3, support_batches=2, replicas=3)
    topology = topologies.build("mlp:4", 2, 2)
    genome = Genome.random(2, seed=3, dtype=torch.float64).requires_grad_()
    loss, accuracy, finite = query_loss(genome, topology, episode, 11, torch.float64)
    with torch.no_grad():
        plain, plain_accuracy, _ = query_loss(genome, topology, episode, 11, torch.float64)
    assert finite.tolist() == [True] * 3
    expected = float(unrolled_loss(genome.detach(), topology, episode, 11))
    assert float(plain) == float(loss.detach()) == pytest.approx(expected, rel=1e-12)
    assert plain_accuracy == accuracy


def test_score_points_average_the_loss_over_the_unroll():
    """score_points=2 with N=4: the mean of the query losses after inner steps 2 and 4."""
    ds = TaskSpec.parse("moons").build("train")
    episode = EpisodeSampler(ds, batch_size=8, query_batches=1, seed=2).episode(0, support_batches=4, replicas=2)
    topology = topologies.build("mlp:4", 2, 2)
    genome = Genome.random(2, seed=1, dtype=torch.float64)
    loss, _, _ = query_loss(genome, topology, episode, 3, torch.float64, 2)
    first_half = dataclasses.replace(episode, support_x=episode.support_x[:, :2], support_y=episode.support_y[:, :2])
    expected = (unrolled_loss(genome, topology, first_half, 3) + unrolled_loss(genome, topology, episode, 3)) / 2
    assert float(loss) == pytest.approx(float(expected), rel=1e-12)
    assert float(loss) != pytest.approx(float(unrolled_loss(genome, topology, episode, 3)), rel=1e-6)


# ------------------------------------------------------------------------------------------- divergence
def exploding_genome_file(tmp_path, k=2) -> str:
    """A finite genome whose synapses grow 1e30-fold every inner step (f_tilde = 1e30): float32 overflows."""
    tensors = values(Genome.random(k, seed=0))
    tensors["f_tilde"] = torch.tensor(1e30)
    path = tmp_path / "exploding.json"
    Genome(**tensors).save(path)
    return str(path)


def test_all_replicas_diverging_leaves_the_genome_unchanged(tmp_path):
    config = tiny(init_genome=exploding_genome_file(tmp_path), meta_steps=3)
    trainer = MetaTrainer(config, tmp_path / "run")
    before = values(trainer.genome)
    result = trainer.meta_step()  # must not raise
    assert result.diverged == 2 and trainer.diverged == 2
    assert np.isnan(result.loss) and np.isnan(result.accuracy)
    after = values(trainer.genome)
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert all(torch.isfinite(t).all() for t in after.values())
    assert trainer.optimizer.state == {}  # no Adam step was taken
    trainer.run(progress=False)
    assert trainer.step == 3 and trainer.diverged == 6
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [r["diverged"] for r in rows] == [2, 2, 2]
    assert Genome.load(tmp_path / "run" / "genome.json").allclose(Genome.load(config.init_genome), rtol=0, atol=0)


def corrupt_replica_1(episode):
    """Replica 1 learns from inputs of size 1e30: its synapses overflow float32 after one inner step."""
    x = episode.support_x.clone()
    x[1] *= 1e30
    return dataclasses.replace(episode, support_x=x)


def test_query_loss_masks_a_diverged_replica_out_of_loss_and_gradient():
    ds = TaskSpec.parse("xor").build("train")
    episode = EpisodeSampler(ds, batch_size=8, query_batches=1, seed=0).episode(0, support_batches=3, replicas=2)
    topology = topologies.build("mlp:4", 2, 2)
    genome = Genome.random(3, seed=1).requires_grad_()

    loss, accuracy, finite = query_loss(genome, topology, corrupt_replica_1(episode), 5, torch.float32)
    assert finite.tolist() == [True, False]
    loss.backward()
    grad = {n: t.grad.clone() for n, t in genome.tensors().items()}
    assert all(torch.isfinite(g).all() for g in grad.values())

    # replica 0 of a population is the single network with the same synapse seed
    alone = dataclasses.replace(episode, **{f: getattr(episode, f)[:1] for f in
                                            ("support_x", "support_y", "query_x", "query_y")})
    genome.requires_grad_(False)
    reference = genome.detach().clone().requires_grad_()
    ref_loss, ref_accuracy, ref_finite = query_loss(reference, topology, alone, 5, torch.float32)
    ref_loss.backward()
    assert ref_finite.tolist() == [True]
    assert float(loss.detach()) == pytest.approx(float(ref_loss.detach()), rel=1e-6) and accuracy == ref_accuracy
    for name, t in reference.tensors().items():
        assert torch.allclose(grad[name], t.grad, rtol=1e-5, atol=1e-7), name
    assert any(g.abs().max() > 0 for g in grad.values())


def test_meta_step_learns_from_the_finite_replicas(monkeypatch, tmp_path):
    class CorruptingSampler(EpisodeSampler):
        def episode(self, *args, **kwargs):
            return corrupt_replica_1(super().episode(*args, **kwargs))

    monkeypatch.setattr(trainer_module, "EpisodeSampler", CorruptingSampler)
    trainer = MetaTrainer(tiny(unroll_start=3, unroll_max=3), tmp_path)
    before = values(trainer.genome)
    result = trainer.meta_step()
    assert result.diverged == 1 and trainer.diverged == 1
    assert np.isfinite(result.loss) and np.isfinite(result.grad_norm) and result.grad_norm > 0
    after = values(trainer.genome)
    assert all(torch.isfinite(t).all() for t in after.values())
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert read_log(tmp_path / "log.csv")[0]["diverged"] == 1


# ------------------------------------------------------------------------------------------- runs
def test_same_config_same_run_other_seed_other_run(tmp_path):
    a = MetaTrainer(tiny(), tmp_path / "a").run(progress=False)
    b = MetaTrainer(tiny(), tmp_path / "b").run(progress=False)
    c = MetaTrainer(tiny(seed=1), tmp_path / "c").run(progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


def test_run_until_stops_and_checkpoints(tmp_path):
    trainer = MetaTrainer(tiny(meta_steps=5, checkpoint_every=2), tmp_path)
    trainer.run(until=3, progress=False)
    assert trainer.step == 3
    assert len(read_log(tmp_path / "log.csv")) == 3
    assert MetaTrainer.resume(tmp_path).step == 3  # the checkpoint at the stop, not the one at step 2


def test_starting_genome(tmp_path):
    config = tiny(k=3, genome_seed=7, options={"normalize": True}, dtype="float64")
    expected = Genome.random(3, seed=7, options=RuleOptions(normalize=True), dtype=torch.float64)
    assert starting_genome(config).allclose(expected, rtol=0, atol=0)
    path = tmp_path / "start.json"
    Genome.random(2, seed=5).save(path)
    loaded = starting_genome(tiny(init_genome=str(path), dtype="float64"))
    assert loaded.dtype == torch.float64 and loaded.allclose(Genome.load(path), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        starting_genome(tiny(init_genome=str(tmp_path / "missing.json")))
    with pytest.raises(FileNotFoundError, match="sub/genome"):  # a path without .json is not a shipped name
        starting_genome(tiny(init_genome=str(tmp_path / "sub" / "genome")))


def test_bad_inputs_fail_before_the_run_folder_is_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        MetaTrainer(tiny(init_genome=str(tmp_path / "missing.json")), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unknown_topology_spec_is_a_value_error(tmp_path):
    trainer = MetaTrainer(tiny(topologies=("lstm:4",)), tmp_path)
    with pytest.raises(ValueError, match="unknown topology spec 'lstm:4'"):
        trainer.meta_step()


# ------------------------------------------------------------------------------------------- topology specs
@pytest.mark.parametrize("spec, hidden, n_forward", [
    ("mlp", [], 3 * 2 + 2),                                    # input->output + bias->output
    ("mlp:5", [5], 3 * 5 + 5 * 2 + 5 + 2),
    ("mlp:5,4", [5, 4], 3 * 5 + 5 * 4 + 4 * 2 + 5 + 4 + 2),
    ("skip:4", [4], 3 * 4 + 4 * 2 + 3 * 2 + 4 + 2),             # chain + input->output skip
    ("skip:4,3", [4, 3], 3 * 4 + 4 * 3 + 3 * 2 + 3 * 3 + 4 * 2 + 4 + 3 + 2),
])
def test_build_sizes(spec, hidden, n_forward):
    t = topologies.build(spec, 3, 2)
    assert (len(t.inputs), len(t.outputs)) == (3, 2)
    assert t.n_neurons == 3 + sum(hidden) + 2 + 1  # + bias
    assert len(t.forward_edges) == n_forward


def test_build_graphml_checks_sizes(tmp_path):
    path = tmp_path / "net.graphml"
    saved = topologies.build("skip:4,3", 3, 2)
    saved.save(path)
    loaded = topologies.build(str(path), 3, 2)
    assert loaded.n_neurons == saved.n_neurons and loaded.forward_edges == saved.forward_edges
    with pytest.raises(ValueError, match=r"has 3 inputs and 2 outputs; the task needs 4 and 2"):
        topologies.build(str(path), 4, 2)
    with pytest.raises(FileNotFoundError, match="nothere.graphml"):
        topologies.build(str(tmp_path / "nothere.graphml"), 3, 2)


@pytest.mark.parametrize("spec, message", [
    ("", "non-empty string"), ("rnn:4", "unknown topology spec"), ("mlp:0", "positive integers"),
    ("mlp:-2", "positive integers"), ("mlp:a", "positive integers"), ("mlp:2.5", "positive integers"),
    ("skip", "positive integers"), ("skip:", "positive integers"),
])
def test_build_rejects_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        topologies.build(spec, 3, 2)
