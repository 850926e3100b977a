"""Checkpoints: a resumed run repeats the uninterrupted one bit for bit; bad files are named."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from graphnet.meta import CheckpointError, MetaConfig, MetaTrainer, RunInUseError, read_log
from graphnet.meta.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from graphnet.rules import Genome

# two tasks and two topologies (all 2 inputs, 2 classes), and a curriculum that grows within 8 steps
CONFIG = MetaConfig(tasks=("xor", "moons"), topologies=("mlp:4", "mlp:3,3"), k=2, meta_steps=8, lr=1e-2,
                    replicas=2, batch_size=8, query_batches=1, unroll_start=2, unroll_step=1, unroll_every=3,
                    unroll_max=4, checkpoint_every=2)
LOGS = ["log.csv", "log.jsonl"]


def run_through(out, log_name, config=CONFIG) -> MetaTrainer:
    trainer = MetaTrainer(config, out, log_name=log_name)
    trainer.run(progress=False)
    return trainer


def assert_same_run(a: MetaTrainer, b: MetaTrainer):
    assert (a.step, a.diverged) == (b.step, b.diverged)
    for (name, x), y in zip(a.genome.tensors().items(), b.genome.tensors().values()):
        assert torch.equal(x, y), name
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for key in sa["state"]:
        for field in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa["state"][key][field], sb["state"][key][field]), (key, field)
    rows_a, rows_b = read_log(a.log.path), read_log(b.log.path)
    assert len(rows_a) == len(rows_b) == a.step
    for ra, rb in zip(rows_a, rows_b):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb
    genome_a, genome_b = Genome.load(a.out_dir / "genome.json"), Genome.load(b.out_dir / "genome.json")
    assert genome_a.allclose(genome_b, rtol=0, atol=0)


@pytest.fixture(scope="module", params=LOGS)
def uninterrupted(request, tmp_path_factory):
    return run_through(tmp_path_factory.mktemp("a"), request.param)


def test_uninterrupted_run_follows_the_config(uninterrupted):
    rows = read_log(uninterrupted.log.path)
    assert [r["step"] for r in rows] == list(range(8))
    assert [r["unroll"] for r in rows] == [2, 2, 2, 3, 3, 3, 4, 4]
    assert {r["task"] for r in rows} <= set(CONFIG.tasks) and {r["topology"] for r in rows} <= set(CONFIG.topologies)
    saved = Genome.load(uninterrupted.out_dir / "genome.json")
    assert saved.allclose(uninterrupted.genome.detach(), rtol=0, atol=0)
    assert not saved.allclose(Genome.random(2, seed=0), rtol=0, atol=1e-6)  # it did train


def test_resume_repeats_the_uninterrupted_run(uninterrupted, tmp_path):
    log_name = uninterrupted.log.path.name
    first = MetaTrainer(CONFIG, tmp_path, log_name=log_name)
    first.run(until=4, progress=False)
    del first
    resumed = MetaTrainer.resume(tmp_path)
    assert resumed.step == 4 and resumed.log.path.name == log_name and resumed.config == CONFIG
    resumed.run(progress=False)
    assert_same_run(uninterrupted, resumed)


def test_resume_after_a_crash_past_the_last_checkpoint(uninterrupted, tmp_path):
    """The log has rows the checkpoint does not know about: they are dropped and redone."""
    log_name = uninterrupted.log.path.name
    trainer = MetaTrainer(CONFIG, tmp_path, log_name=log_name)
    trainer.run(until=4, progress=False)
    shutil.copy(tmp_path / "checkpoint.pt", tmp_path / "step4.bak")
    trainer.run(until=6, progress=False)
    del trainer
    os.replace(tmp_path / "step4.bak", tmp_path / "checkpoint.pt")  # "crash" after step 5, checkpoint of step 4
    assert len(read_log(tmp_path / log_name)) == 6
    resumed = MetaTrainer.resume(tmp_path)
    assert resumed.step == 4
    assert len(read_log(tmp_path / log_name)) == 6  # untouched until the resumed run logs its first step
    resumed.run(until=5, progress=False)
    assert [r["step"] for r in read_log(tmp_path / log_name)] == [0, 1, 2, 3, 4]
    resumed.run(progress=False)
    assert_same_run(uninterrupted, resumed)


@pytest.mark.parametrize("log_name", LOGS)
def test_reading_a_run_that_is_still_going_loses_none_of_its_log(tmp_path, log_name):
    """resume(out) only to read a run (its genome, the CMA-ES mean) while the run goes on and
    logs past its last checkpoint must not cut those rows off the log."""
    running = MetaTrainer(CONFIG, tmp_path, log_name=log_name)
    running.run(until=4, progress=False)  # checkpoint at step 4
    running.meta_step()  # step 4 logged after the checkpoint
    reader = MetaTrainer.resume(tmp_path)
    assert reader.step == 4 and reader.genome.allclose(Genome.load(tmp_path / "genome.json"), rtol=0, atol=0)
    running.meta_step()  # the run goes on appending
    assert [r["step"] for r in read_log(tmp_path / log_name)] == [0, 1, 2, 3, 4, 5]


def test_a_second_process_cannot_train_a_run_that_is_being_trained(tmp_path):
    """Another process holds the run (as a run in progress does); resuming it here fails before
    writing anything, reading it still works, and once the other process is gone the run goes on."""
    run_through(tmp_path, "log.csv", CONFIG.replace(meta_steps=4))
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from graphnet.meta.checkpoint import run_lock\n"
                               f"with run_lock({str(tmp_path)!r}):\n    print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        second = MetaTrainer.resume(tmp_path, meta_steps=6)  # reading is fine
        assert second.step == 4
        with pytest.raises(RunInUseError, match="being trained by another process"):
            second.run(progress=False)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    finally:
        holder.kill()
        holder.wait()
    MetaTrainer.resume(tmp_path, meta_steps=6).run(progress=False)  # the lock went with the process
    assert [r["step"] for r in read_log(tmp_path / "log.csv")] == list(range(6))


def test_resume_with_more_meta_steps_equals_a_longer_run(tmp_path):
    longer = run_through(tmp_path / "long", "log.csv", CONFIG.replace(meta_steps=10))
    run_through(tmp_path / "short", "log.csv")
    extended = MetaTrainer.resume(tmp_path / "short", meta_steps=10)
    assert extended.step == 8 and extended.config == CONFIG.replace(meta_steps=10)
    extended.run(progress=False)
    assert_same_run(longer, extended)


def test_checkpoint_contents(tmp_path):
    trainer = MetaTrainer(CONFIG.replace(meta_steps=3), tmp_path)
    trainer.run(progress=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt", ("config", "step"))
    assert state["format"] == FORMAT and state["version"] == VERSION
    assert state["config"] == CONFIG.replace(meta_steps=3).to_dict()
    assert (state["step"], state["diverged"], state["log_name"]) == (3, 0, "log.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "genome.json", "log.csv"]


# ------------------------------------------------------------------------------------------- bad files
@pytest.fixture
def good_checkpoint(tmp_path):
    trainer = MetaTrainer(CONFIG.replace(meta_steps=1), tmp_path / "run")
    trainer.run(progress=False)
    return tmp_path / "run" / "checkpoint.pt"


def test_a_garbled_checkpoint_names_the_fault_not_torchs_advice_to_unpickle_it(good_checkpoint):
    good_checkpoint.write_bytes(bytes(range(256)) * 8)  # not a zip file: torch's legacy unpickler rejects it
    with pytest.raises(CheckpointError, match="cannot be read") as e:
        MetaTrainer.resume(good_checkpoint.parent)
    assert str(good_checkpoint) in str(e.value) and "weights_only" not in str(e.value)
    assert "\n" not in str(e.value)


def test_truncated_checkpoint(good_checkpoint):
    data = good_checkpoint.read_bytes()
    good_checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read") as e:
        MetaTrainer.resume(good_checkpoint.parent)
    assert str(good_checkpoint) in str(e.value)


@pytest.mark.parametrize("content", [b"", os.urandom(2048), b"PK\x03\x04" + os.urandom(200)])
def test_garbage_checkpoint(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, ("step",))
    assert str(path) in str(e.value)


class NotAllowed:  # a class torch.load(weights_only=True) refuses to build
    pass


@pytest.mark.parametrize("content, message", [
    ({"step": 3}, "is not a graphnet meta-training checkpoint"),
    ([1, 2, 3], "is not a graphnet meta-training checkpoint"),
    (torch.zeros(3), "is not a graphnet meta-training checkpoint"),
    ({"format": FORMAT, "version": VERSION + 1, "step": 0}, f"has version {VERSION + 1}"),
    ({"format": FORMAT, "version": VERSION, "step": 0}, r"lacks \['genome'\]"),
    ({"format": FORMAT, "version": VERSION, "obj": NotAllowed()}, "cannot be read"),
])
def test_torch_file_of_the_wrong_format(tmp_path, content, message):
    path = tmp_path / "checkpoint.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message) as e:
        load_checkpoint(path, ("step", "genome"))
    assert str(path) in str(e.value)


def test_checkpoint_with_a_bad_config_names_the_file(good_checkpoint):
    state = torch.load(good_checkpoint, weights_only=True)
    state["config"]["lr"] = -1.0
    torch.save(state, good_checkpoint)
    with pytest.raises(CheckpointError, match="lr must be a positive number") as e:
        MetaTrainer.resume(good_checkpoint.parent)
    assert str(good_checkpoint) in str(e.value)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"checkpoint {tmp_path / 'checkpoint.pt'} does not exist"):
        MetaTrainer.resume(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "other.pt", ())


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)  # the CLI prints ValueErrors as one line


# ------------------------------------------------------------------------------------------- atomic writes
def test_save_leaves_no_temp_files_and_round_trips(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1, "t": torch.arange(3.0)}, path)
    save_checkpoint({"step": 2, "t": torch.arange(4.0)}, path)  # replace an existing one
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    state = load_checkpoint(path, ("step", "t"))
    assert state["step"] == 2 and torch.equal(state["t"], torch.arange(4.0))


def test_failed_save_keeps_the_old_checkpoint_and_no_temp_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1}, path)
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint({"step": 2, "bad": lambda: None}, path)  # a lambda cannot be pickled
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


@pytest.mark.parametrize("log_name, tail", [("log.jsonl", '{"step": 1, "unr'), ("log.csv", "1,2,xor")])
def test_a_corrupt_log_is_named_on_resume(tmp_path, log_name, tail):
    MetaTrainer(CONFIG.replace(meta_steps=2), tmp_path, log_name=log_name).run(progress=False)
    with open(tmp_path / log_name, "a") as fh:
        fh.write(tail + "\n")  # a half-written row
    with pytest.raises(ValueError, match="is not a graphnet meta-training log") as e:
        MetaTrainer.resume(tmp_path)
    assert str(tmp_path / log_name) in str(e.value)


def test_a_new_trainer_refuses_to_overwrite_a_run(tmp_path):
    MetaTrainer(CONFIG.replace(meta_steps=2), tmp_path).run(progress=False)
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(FileExistsError, match="resume"):
        MetaTrainer(CONFIG.replace(meta_steps=2), tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    MetaTrainer(CONFIG.replace(meta_steps=1), tmp_path, overwrite=True).run(progress=False)
    assert read_log(tmp_path / "log.csv")[-1]["step"] == 0
