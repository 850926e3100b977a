"""Meta-training on a chosen torch device: device="cpu" repeats the default run bit for bit (both
trainers), a bad device is one clear error before any run folder is made or touched, the device is
not saved (a run resumes on another), and, where CUDA is available, short runs on the GPU match the
CPU to rounding. The CLI's --device is tested in tests/test_cli.py, RayBackend's in test_cma_ray.py."""
import numpy as np
import pytest
import torch

from graphnet.meta import CMATrainer, LocalBackend, MetaConfig, MetaTrainer, read_log, resume, start
from graphnet.meta.checkpoint import load_checkpoint
from graphnet.rules import Genome

CONFIGS = {
    "gradient": MetaConfig(tasks=("xor", "moons"), topologies=("mlp:4", "mlp:3,3"), k=2, meta_steps=4, lr=1e-2,
                           replicas=2, batch_size=8, query_batches=1, unroll_start=2, unroll_step=1, unroll_every=2,
                           unroll_max=3, checkpoint_every=2),
    "cma": MetaConfig(method="cma", tasks=("xor", "moons"), topologies=("mlp:4", "mlp:3,3"), k=2, meta_steps=4,
                      population=6, draws=2, replicas=1, batch_size=8, query_batches=1, unroll_start=2, unroll_step=1,
                      unroll_every=2, unroll_max=3, checkpoint_every=2),
}
METHODS = list(CONFIGS)


def rows(path) -> list[dict]:
    log = read_log(path)
    for row in log:
        row.pop("seconds")
    return log


def assert_same_run(a, b) -> None:
    """Two finished trainers: same step, genome, log, genome.json and checkpoint (bit for bit)."""
    assert (a.step, a.diverged) == (b.step, b.diverged)
    assert torch.equal(a.genome.to_vector(), b.genome.to_vector())
    assert rows(a.log.path) == rows(b.log.path)
    assert Genome.load(a.out_dir / "genome.json").allclose(Genome.load(b.out_dir / "genome.json"), rtol=0, atol=0)
    state_a, state_b = (load_checkpoint(t.out_dir / "checkpoint.pt", ()) for t in (a, b))
    assert state_a.keys() == state_b.keys() and state_a["config"] == state_b["config"]
    assert all(torch.equal(x, y) for x, y in zip(state_a["genome"]["tensors"].values(),
                                                  state_b["genome"]["tensors"].values()))
    if a.method == "gradient":
        moments = [t.optimizer.state_dict()["state"][0]["exp_avg"] for t in (a, b)]
        assert torch.equal(*moments)
    else:
        assert a.best_fitness == b.best_fitness and np.array_equal(a.es.mean, b.es.mean) and a.es.sigma == b.es.sigma


def pretend_gpus(monkeypatch, count: int) -> None:
    """torch reports ``count`` CUDA GPUs (0: no CUDA at all); nothing is run on them here."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


# ------------------------------------------------------------------------------------------- the CPU
@pytest.mark.parametrize("method", METHODS)
def test_cpu_device_repeats_the_default_run_bit_for_bit(tmp_path, method):
    config = CONFIGS[method]
    default = start(config, tmp_path / "default")
    default.run(progress=False)
    on_cpu = start(config, tmp_path / "cpu", device="cpu")
    returned = on_cpu.run(progress=False)
    assert_same_run(default, on_cpu)
    assert returned.device == torch.device("cpu") and torch.equal(returned.to_vector(), on_cpu.genome.to_vector())
    if method == "gradient":
        assert on_cpu.device == torch.device("cpu") and on_cpu.genome.device == torch.device("cpu")
        explicit = MetaTrainer(config, tmp_path / "explicit", device=torch.device("cpu"))
    else:
        assert on_cpu.backend.device == torch.device("cpu")
        explicit = CMATrainer(config, tmp_path / "explicit", backend=LocalBackend(2, device="cpu"))
    explicit.run(progress=False)
    assert_same_run(default, explicit)
    result = start(config, tmp_path / "one", device="cpu").meta_step()  # what the log and progress bar get
    assert all(type(getattr(result, key)) is float for key in ("loss", "accuracy", "grad_norm", "seconds"))
    assert all(type(getattr(result, key)) is int for key in ("step", "unroll", "diverged"))


# ------------------------------------------------------------------------------------------- bad devices
BAD_DEVICES = [  # (device, GPUs torch pretends to see, message)
    ("tpu", 0, r"device='tpu' is not a torch device: expected e.g. 'cpu', 'cuda' or 'cuda:1'"),
    ("cuda", 0, r"device='cuda', but this torch build \(.*\) sees no CUDA GPU"),
    ("cuda:7", 2, r"device='cuda:7', but this machine has 2 CUDA GPU\(s\): cuda:0 to cuda:1"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("device, gpus, message", BAD_DEVICES)
def test_a_bad_device_fails_before_the_run_folder_is_made_or_touched(tmp_path, monkeypatch, method, device, gpus,
                                                                     message):
    config = CONFIGS[method].replace(meta_steps=2)
    done = tmp_path / "done"
    start(config, done).run(progress=False)
    files = {p.name: p.read_bytes() for p in done.iterdir()}
    pretend_gpus(monkeypatch, gpus)
    with pytest.raises(ValueError, match=message):
        start(config, tmp_path / "new", device=device)
    with pytest.raises(ValueError, match=message):
        resume(done, meta_steps=3, device=device)
    with pytest.raises(ValueError, match=message):
        if method == "gradient":
            MetaTrainer(config, tmp_path / "new", device=device)
        else:
            LocalBackend(device=device)
    assert not (tmp_path / "new").exists()
    assert {p.name: p.read_bytes() for p in done.iterdir()} == files


def test_device_and_backend_are_one_or_the_other(tmp_path):
    with pytest.raises(ValueError, match=r"device='cpu' and backend=LocalBackend\(max_candidates=None, device='cpu'\): "
                                         r"a CMA-ES run scores on its backend's device"):
        start(CONFIGS["cma"], tmp_path / "both", backend=LocalBackend(), device="cpu")
    with pytest.raises(ValueError, match="applies to CMA-ES runs; the run in .* has method='gradient'"):
        start(CONFIGS["gradient"], tmp_path / "both", backend=LocalBackend(device="cpu"))
    with pytest.raises(TypeError, match="device"):  # the CMA-ES trainer's device is its backend's
        CMATrainer(CONFIGS["cma"], tmp_path / "both", device="cpu")
    assert not (tmp_path / "both").exists()


# ------------------------------------------------------------------------------------------- resume elsewhere
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("first, then", [("cpu", None), (None, "cpu")])
def test_the_device_is_not_saved_so_a_run_resumes_on_another(tmp_path, method, first, then):
    config = CONFIGS[method]
    whole = start(config, tmp_path / "whole")
    whole.run(progress=False)
    half = start(config, tmp_path / "half", device=first)
    half.run(until=2, progress=False)
    state = load_checkpoint(tmp_path / "half" / "checkpoint.pt", ())
    assert "device" not in state and "device" not in state["config"] and "backend" not in state
    resumed = resume(tmp_path / "half", device=then)
    assert resumed.step == 2
    resumed.run(progress=False)
    assert_same_run(whole, resumed)


# ------------------------------------------------------------------------------------------- a GPU
def tensors_in(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [t for item in value for t in tensors_in(item)] if isinstance(value, (list, tuple)) else []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.is_available() is False")
def test_short_runs_on_cuda_match_the_cpu(tmp_path):
    """float64, so the GPU's other summation order stays far below the tolerance."""
    gradient = CONFIGS["gradient"].replace(dtype="float64", meta_steps=3)
    on_cpu = start(gradient, tmp_path / "g-cpu")
    on_cpu.run(progress=False)
    on_gpu = start(gradient, tmp_path / "g-cuda", device="cuda")
    returned = on_gpu.run(progress=False)
    assert on_gpu.genome.device.type == "cuda" and returned.device == torch.device("cpu")
    assert on_gpu.optimizer.state_dict()["state"][0]["exp_avg"].device.type == "cuda"
    assert returned.allclose(on_cpu.genome, rtol=1e-6, atol=1e-9)
    for a, b in zip(rows(on_cpu.log.path), rows(on_gpu.log.path)):
        assert (a["task"], a["topology"], a["unroll"], a["diverged"]) == (b["task"], b["topology"], b["unroll"],
                                                                          b["diverged"])
        np.testing.assert_allclose([b["loss"], b["grad_norm"]], [a["loss"], a["grad_norm"]], rtol=1e-6)
    raw = torch.load(tmp_path / "g-cuda" / "checkpoint.pt", weights_only=True)  # no map_location
    assert tensors_in(raw) and all(t.device.type == "cpu" for t in tensors_in(raw))
    moved = resume(tmp_path / "g-cuda", meta_steps=4)  # the GPU run goes on on the CPU
    assert moved.genome.device == torch.device("cpu")
    assert moved.run(progress=False).allclose(resume(tmp_path / "g-cpu", meta_steps=4).run(progress=False),
                                              rtol=1e-6, atol=1e-9)

    cma = CONFIGS["cma"].replace(dtype="float64", fitness="loss", meta_steps=2)
    cma_cpu = start(cma, tmp_path / "c-cpu")
    cma_gpu = start(cma, tmp_path / "c-cuda", device="cuda")
    assert cma_gpu.backend.device.type == "cuda"
    candidates = cma_cpu.es.ask()
    fitness_cpu, fitness_gpu = cma_cpu.fitness(candidates, 0), cma_gpu.fitness(candidates, 0)
    for a, b in zip(fitness_cpu, fitness_gpu):  # fitness, loss, accuracy: numpy float64 on the CPU
        assert isinstance(b, np.ndarray) and b.dtype == np.float64
        np.testing.assert_allclose(b, a, rtol=1e-6)
    cma_cpu, cma_gpu = start(cma, tmp_path / "c-cpu2"), start(cma, tmp_path / "c-cuda2", device="cuda")
    cma_cpu.run(progress=False)
    cma_gpu.run(progress=False)
    np.testing.assert_allclose(cma_gpu.best_fitness, cma_cpu.best_fitness, rtol=1e-6)
    assert cma_gpu.genome.allclose(cma_cpu.genome, rtol=1e-6, atol=1e-9)
