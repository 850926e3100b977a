"""Distributed CMA-ES scoring on Ray: a generation split across Ray workers gets the single-process
fitnesses bit for bit, and a run on Ray (from the API, the CLI, or resumed there from a local run)
repeats the run without it. Starts a local Ray of 2 CPUs (about 5 s)."""
import json

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2')")

from graphnet.cli import main  # noqa: E402
from graphnet.meta import CMATrainer, LocalBackend, MetaConfig, RayBackend, read_log, resume  # noqa: E402
from graphnet.meta.backend import Draw  # noqa: E402

# two draws (tasks, topologies with a skip graph), replicas, score points, normalization: every path of a generation
CONFIG = MetaConfig(method="cma", tasks=("xor", "moons"), topologies=("mlp:4", "skip:5,4"), draws=2, k=2,
                    options={"normalize": True}, meta_steps=3, population=7, sigma0=0.5, replicas=2, batch_size=8,
                    query_batches=2, score_points=2, unroll_start=3, unroll_max=3, checkpoint_every=2)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def rows(path) -> list[dict]:
    log = read_log(path)
    for row in log:
        row.pop("seconds")
    return log


def test_shares_on_ray_score_as_one_local_pass(tmp_path):
    trainer = CMATrainer(CONFIG, tmp_path)
    candidates = trainer.es.ask()
    candidates[1] = candidates[1] * np.nan  # left out before the split
    candidates[4] = np.full_like(candidates[4], 1e30)  # diverges inside its share
    local = trainer.fitness(candidates, 5)
    draws = [Draw(topology, episode, seed) for d, (t, topo, seed) in enumerate(trainer.draws(5))
             for episode, topology in [trainer.episode(5, d, t, topo)]]
    vectors = torch.stack([trainer.genome_of(c).to_vector() for c in candidates[2:]])
    expected = LocalBackend().score(vectors, trainer.start, draws, trainer.dtype, CONFIG.score_points)
    for workers in (2, 3, 9):  # even, uneven, more workers than candidates
        backend = RayBackend(workers=workers)
        trainer.backend = backend
        fitness, loss, accuracy = trainer.fitness(candidates, 5)
        assert np.array_equal(fitness, local[0]) and np.isinf(fitness[[1, 4]]).all()
        assert np.isfinite(fitness).sum() == 5
        assert np.array_equal(loss, local[1], equal_nan=True) and np.array_equal(accuracy, local[2], equal_nan=True)
        scores = backend.score(vectors, trainer.start, draws, trainer.dtype, CONFIG.score_points)
        for got, want in zip(scores, expected):
            assert torch.equal(got.finite, want.finite) and not got.finite[2]  # candidate 4 diverged
            torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0, equal_nan=True)  # bit for bit
            torch.testing.assert_close(got.accuracy, want.accuracy, rtol=0, atol=0, equal_nan=True)
        backend.close()
        assert ray.is_initialized()  # it did not start Ray, so it leaves it running


def test_a_run_on_ray_repeats_the_local_run(tmp_path):
    local = CMATrainer(CONFIG, tmp_path / "local")
    local.run(progress=False)
    with RayBackend(workers=2) as backend:
        distributed = CMATrainer(CONFIG, tmp_path / "ray", backend=backend)
        distributed.run(progress=False)
        moved = CMATrainer(CONFIG, tmp_path / "moved")  # two generations here, the third on Ray
        moved.run(until=2, progress=False)
        moved = resume(tmp_path / "moved", backend=backend)
        assert moved.backend is backend
        moved.run(progress=False)
    for other in (distributed, moved):
        assert torch.equal(other.genome.to_vector(), local.genome.to_vector())
        assert other.best_fitness == local.best_fitness and other.diverged == local.diverged
        assert np.array_equal(other.es.mean, local.es.mean) and other.es.sigma == local.es.sigma
    assert rows(tmp_path / "ray" / "log.csv") == rows(tmp_path / "moved" / "log.csv") == rows(
        tmp_path / "local" / "log.csv")
    assert len(rows(tmp_path / "local" / "log.csv")) == 3


def test_cli_ray_flags(capsys, tmp_path):
    path = tmp_path / "cma.json"
    path.write_text(json.dumps({**CONFIG.to_dict(), "meta_steps": 2}))
    assert main(["meta-train", "--config", str(path), "--out", str(tmp_path / "local"), "--no-progress"]) == 0
    assert main(["meta-train", "--config", str(path), "--out", str(tmp_path / "ray"), "--no-progress", "--ray",
                 "--ray-workers", "3"]) == 0
    err = capsys.readouterr().err
    assert "Ray: 1 node(s), 2 CPUs; each generation is split into up to 3 share(s) of 1 thread(s)" in err
    assert main(["meta-train", "--resume", "--out", str(tmp_path / "ray"), "--meta-steps", "3", "--no-progress",
                 "--ray", "--ray-threads", "2"]) == 0
    assert "up to 1 share(s) of 2 thread(s)" in capsys.readouterr().err
    assert main(["meta-train", "--resume", "--out", str(tmp_path / "local"), "--meta-steps", "3",
                 "--no-progress"]) == 0
    assert rows(tmp_path / "ray" / "log.csv") == rows(tmp_path / "local" / "log.csv")
    assert ray.is_initialized()  # the CLI joined this process's Ray and left it running


def test_ray_backend_devices(tmp_path):
    """The device's name is checked when the backend is built, the cluster's GPUs when it starts
    (the workers, not this process, run on it); on the CPU a share scores as the local pass."""
    with pytest.raises(ValueError, match="device='tpu' is not a torch device"):
        RayBackend(device="tpu")
    with pytest.raises(ValueError, match=r"RayBackend\(device='cuda:1'\): expected 'cpu' or 'cuda' \(Ray assigns"):
        RayBackend(device="cuda:1")
    if not ray.cluster_resources().get("GPU"):
        with pytest.raises(ValueError, match=r"RayBackend\(device='cuda'\), but the Ray cluster has no GPU"):
            RayBackend(device="cuda").start()
    trainer = CMATrainer(CONFIG, tmp_path)
    candidates = trainer.es.ask()
    local = trainer.fitness(candidates, 0)
    with RayBackend(workers=2, device="cpu") as backend:
        assert "of 1 thread(s) on cpu" in backend.describe() and "device='cpu'" in repr(backend)
        trainer.backend = backend
        for got, want in zip(trainer.fitness(candidates, 0), local):
            assert np.array_equal(got, want, equal_nan=True)
