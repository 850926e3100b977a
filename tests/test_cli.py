"""The `graphnet` command, called in process: help, flag errors, one-line user errors, meta-train
(new run, refusal to overwrite, resume) and evaluate. `demo` and `genomes` need a shipped genome."""
import json
import pathlib
import subprocess
import sys

import pytest
import torch

from graphnet.cli import main
from graphnet.evaluation import Comparison
from graphnet.meta import MetaConfig, read_log
from graphnet.meta.checkpoint import load_checkpoint
from graphnet.rules import Genome

SETTINGS = {"tasks": ["xor"], "topologies": ["mlp:4"], "k": 2, "meta_steps": 3, "lr": 0.01, "replicas": 2,
            "batch_size": 8, "query_batches": 1, "unroll_start": 2, "unroll_max": 2, "checkpoint_every": 2}


def one_error_line(err: str, *fragments: str) -> str:
    """stderr is exactly one line `graphnet: error: ...` holding every fragment, and no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphnet: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse: --help and flag errors
        return e.code


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SETTINGS))
    return path


# ------------------------------------------------------------------------------------------- help and flags
@pytest.mark.parametrize("argv, flags", [
    ([], ["demo", "meta-train", "evaluate", "genomes"]),
    (["meta-train"], ["--config", "--out", "--resume", "--method", "--log", "--meta-steps", "--tasks",
                      "--topologies", "--lr", "--clip", "--unroll-start", "--no-progress", "--threads", "--device"]),
    (["evaluate"], ["--genomes", "--tasks", "--topologies", "--steps", "--seeds", "--sgd-lrs", "--adam-lrs",
                    "--out", "--test-size"]),
    (["demo"], ["--out", "--meta-steps", "--unroll", "--tasks", "--seeds"]),
    (["genomes"], ["usage: graphnet genomes"]),
])
def test_help(capsys, argv, flags):
    assert exit_code(argv + ["--help"]) == 0
    out = capsys.readouterr().out
    for flag in flags:
        assert flag in out, flag


@pytest.mark.parametrize("argv, message", [
    (["meta-train", "--bogus"], "unrecognized arguments: --bogus"),
    (["meta-train", "--k", "0"], "expected a positive integer, got '0'"),
    (["meta-train", "--options", "[1]"], "expected a JSON object"),
    (["meta-train", "--method", "evolution"], "invalid choice: 'evolution'"),
    (["meta-train", "--device", "tpu"], "argument --device: device='tpu' is not a torch device: expected e.g. 'cpu'"),
    (["evaluate", "--steps", "1,x"], "expected comma-separated integers"),
    (["evaluate", "--sgd-lrs", "0.1,-1"], "learning rates must be positive"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "required"),
])
def test_bad_flags_exit_2_with_one_error_line(capsys, argv, message):
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


def test_entry_point_runs():
    script = pathlib.Path(sys.executable).parent / "graphnet"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "graphnet.cli"]
    done = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "meta-train" in done.stdout and "evaluate" in done.stdout


# ------------------------------------------------------------------------------------------- meta-train
def test_meta_train_missing_config(capsys, tmp_path):
    missing = tmp_path / "nope.toml"
    assert main(["meta-train", "--config", str(missing), "--out", str(tmp_path / "run")]) == 1
    one_error_line(capsys.readouterr().err, str(missing), "does not exist")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, fragment", [
    ("{\"tasks\": [\"xor\"], \"epochs\": 3}", "unknown meta-training setting(s) ['epochs']"),
    ("{\"tasks\": [\"xor\"", "is not valid JSON"),
    ("{\"tasks\": [\"xorr\"]}", "unknown data set 'xorr'"),
])
def test_meta_train_bad_config(capsys, tmp_path, content, fragment):
    path = tmp_path / "config.json"
    path.write_text(content)
    assert main(["meta-train", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    one_error_line(capsys.readouterr().err, str(path), fragment)
    assert not (tmp_path / "run").exists()


def test_meta_train_bad_flag_values_are_one_line(capsys, config_file, tmp_path):
    out = str(tmp_path / "run")
    assert main(["meta-train", "--config", str(config_file), "--out", out, "--dtype", "float16"]) == 1
    one_error_line(capsys.readouterr().err, "float16")
    assert main(["meta-train", "--config", str(config_file), "--out", out, "--tasks", "mnist:3x4"]) == 1
    one_error_line(capsys.readouterr().err, "mnist:3x4", "square")
    assert main(["meta-train", "--config", str(config_file), "--out", out, "--no-progress",
                 "--init-genome", str(tmp_path / "missing.json")]) == 1
    one_error_line(capsys.readouterr().err, "missing.json", "does not exist")
    assert not (tmp_path / "run").exists()


def test_meta_train_cma_with_gradient_settings_is_a_clear_error(capsys, config_file, tmp_path):
    """CMA-ES runs are tested in tests/meta/test_cma.py; a gradient-only setting (lr) is refused by name."""
    assert main(["meta-train", "--config", str(config_file), "--out", str(tmp_path / "run"), "--method", "cma"]) == 1
    one_error_line(capsys.readouterr().err, "['lr'] apply only to method='gradient'")
    assert not (tmp_path / "run").exists()


def test_meta_train_writes_a_run_refuses_to_overwrite_and_resumes(capsys, config_file, tmp_path):
    out = tmp_path / "run"
    assert main(["meta-train", "--config", str(config_file), "--out", str(out), "--no-progress", "--plot"]) == 0
    stdout = capsys.readouterr().out
    assert str(out / "genome.json") in stdout and "after 3 meta-steps" in stdout
    assert {p.name for p in out.iterdir()} == {"checkpoint.pt", "log.csv", "genome.json", "meta_log.png"}
    assert [r["step"] for r in read_log(out / "log.csv")] == [0, 1, 2]
    state = load_checkpoint(out / "checkpoint.pt", ("config", "step"))
    assert state["step"] == 3 and MetaConfig.from_dict(state["config"]) == MetaConfig.from_dict(SETTINGS)
    genome_before = Genome.load(out / "genome.json")

    # a second run into the same folder is refused and changes nothing
    assert main(["meta-train", "--config", str(config_file), "--out", str(out), "--no-progress"]) == 1
    one_error_line(capsys.readouterr().err, str(out), "already holds a run", "--resume")
    assert Genome.load(out / "genome.json").allclose(genome_before, rtol=0, atol=0)

    # --resume takes no other settings
    assert main(["meta-train", "--resume", "--out", str(out), "--lr", "0.1"]) == 1
    one_error_line(capsys.readouterr().err, "only --meta-steps")

    assert main(["meta-train", "--resume", "--out", str(out), "--meta-steps", "5", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "resuming" in captured.err and "meta-step 3 of 5" in captured.err
    assert "after 5 meta-steps" in captured.out
    assert [r["step"] for r in read_log(out / "log.csv")] == [0, 1, 2, 3, 4]
    assert load_checkpoint(out / "checkpoint.pt", ("step",))["step"] == 5
    assert not Genome.load(out / "genome.json").allclose(genome_before, rtol=0, atol=0)


def test_meta_train_flags_override_the_config_and_jsonl_log(capsys, config_file, tmp_path):
    out = tmp_path / "run"
    assert main(["meta-train", "--config", str(config_file), "--out", str(out), "--no-progress", "--log", "jsonl",
                 "--meta-steps", "2", "--seed", "4", "--topologies", "mlp:3", "mlp:2,2", "--options",
                 "{\"normalize\": true}"]) == 0
    config = MetaConfig.from_dict(load_checkpoint(out / "checkpoint.pt", ("config",))["config"])
    assert config == MetaConfig.from_dict({**SETTINGS, "meta_steps": 2, "seed": 4, "topologies": ["mlp:3", "mlp:2,2"],
                                           "options": {"normalize": True}})
    assert len(read_log(out / "log.jsonl")) == 2 and not (out / "log.csv").exists()
    assert Genome.load(out / "genome.json").options.normalize


CMA_SETTINGS = {"method": "cma", "tasks": ["xor"], "topologies": ["mlp:4"], "k": 2, "meta_steps": 3, "population": 5,
                "replicas": 1, "batch_size": 8, "query_batches": 1, "unroll_start": 2, "unroll_max": 2,
                "checkpoint_every": 2}


@pytest.mark.parametrize("settings, extra", [(SETTINGS, []), (CMA_SETTINGS, []),
                                             (CMA_SETTINGS, ["--max-candidates", "2"])])
def test_meta_train_device_flag(capsys, tmp_path, settings, extra):
    """--device cpu (the default) gives the run without it bit for bit, for new runs and --resume, both methods."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(settings))
    plain, on_cpu = tmp_path / "plain", tmp_path / "cpu"
    assert main(["meta-train", "--config", str(path), "--out", str(plain), "--no-progress"] + extra) == 0
    assert main(["meta-train", "--config", str(path), "--out", str(on_cpu), "--no-progress", "--device", "cpu"]
                + extra) == 0
    assert main(["meta-train", "--resume", "--out", str(plain), "--meta-steps", "4", "--no-progress"] + extra) == 0
    assert main(["meta-train", "--resume", "--out", str(on_cpu), "--meta-steps", "4", "--no-progress", "--device",
                 "cpu"] + extra) == 0
    assert Genome.load(plain / "genome.json").allclose(Genome.load(on_cpu / "genome.json"), rtol=0, atol=0)
    rows = [read_log(out / "log.csv") for out in (plain, on_cpu)]
    for row in rows[0] + rows[1]:
        row.pop("seconds")
    assert rows[0] == rows[1] and len(rows[0]) == 4
    assert "device" not in load_checkpoint(on_cpu / "checkpoint.pt", ("config",))["config"]


@pytest.mark.parametrize("device, gpus, message", [
    ("cuda", 0, "argument --device: device='cuda', but this torch build"),
    ("cuda:3", 2, "argument --device: device='cuda:3', but this machine has 2 CUDA GPU(s): cuda:0 to cuda:1"),
])
def test_meta_train_bad_device_exits_2_before_any_work(capsys, monkeypatch, config_file, tmp_path, device, gpus,
                                                       message):
    done = tmp_path / "done"
    assert main(["meta-train", "--config", str(config_file), "--out", str(done), "--no-progress"]) == 0
    files = {p.name: p.read_bytes() for p in done.iterdir()}
    capsys.readouterr()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    for argv in (["--config", str(config_file), "--out", str(tmp_path / "new")],
                 ["--resume", "--out", str(done), "--meta-steps", "4"]):
        assert exit_code(["meta-train", "--device", device] + argv) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
    assert not (tmp_path / "new").exists()
    assert {p.name: p.read_bytes() for p in done.iterdir()} == files


def test_resume_without_a_run(capsys, tmp_path):
    assert main(["meta-train", "--resume", "--out", str(tmp_path)]) == 1
    one_error_line(capsys.readouterr().err, str(tmp_path), "no run to resume")


def test_resume_from_a_corrupt_checkpoint(capsys, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["meta-train", "--resume", "--out", str(tmp_path)]) == 1
    one_error_line(capsys.readouterr().err, str(tmp_path / "checkpoint.pt"), "cannot be read")


@pytest.mark.parametrize("interrupt_at, fragments", [
    (1, ["interrupted at meta-step 1, before the first checkpoint (every 2 meta-steps)", "run the same command"]),
    (3, ["interrupted at meta-step 3", "graphnet meta-train --resume --out"]),
])
def test_ctrl_c_says_how_to_go_on(capsys, monkeypatch, config_file, tmp_path, interrupt_at, fragments):
    from graphnet.meta import MetaTrainer

    step = MetaTrainer.meta_step

    def interrupted(self):
        if self.step == interrupt_at:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(MetaTrainer, "meta_step", interrupted)
    out = tmp_path / "run"
    argv = ["meta-train", "--config", str(config_file), "--meta-steps", "5", "--out", str(out), "--no-progress"]
    assert main(argv) == 1
    one_error_line(capsys.readouterr().err, *fragments)
    monkeypatch.setattr(MetaTrainer, "meta_step", step)
    again = argv if interrupt_at == 1 else ["meta-train", "--resume", "--out", str(out), "--no-progress"]
    assert main(again) == 0  # the advice works
    assert [row["step"] for row in read_log(out / "log.csv")] == list(range(5))


def test_resuming_a_run_another_process_trains_is_one_line(capsys, config_file, tmp_path):
    from graphnet.meta.checkpoint import run_lock

    out = tmp_path / "run"
    assert main(["meta-train", "--config", str(config_file), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    with run_lock(out):  # as the process training it holds it
        assert main(["meta-train", "--resume", "--out", str(out), "--meta-steps", "5", "--no-progress"]) == 1
    one_error_line(capsys.readouterr().err, f"{out} is being trained by another process")
    assert [row["step"] for row in read_log(out / "log.csv")] == [0, 1, 2]


# ------------------------------------------------------------------------------------------- evaluate
def test_evaluate_writes_results_table_and_plot(capsys, tmp_path):
    genome_path = tmp_path / "mine.json"
    Genome.random(2, seed=0).save(genome_path)
    out = tmp_path / "eval"
    assert main(["evaluate", "--genomes", str(genome_path), "--tasks", "xor", "--topologies", "mlp:8",
                 "--steps", "1,2,5", "--seeds", "2", "--sgd-lrs", "0.1", "--adam-lrs", "0.01", "--out", str(out),
                 "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    table = (out / "table.md").read_text()
    assert table.strip() in stdout
    assert "| xor | mlp:8 | mine |" in table and "SGD" in table and "Adam" in table
    comparison = Comparison.from_json(out / "results.json")
    assert tuple(comparison.steps) == (1, 2, 5) and tuple(comparison.seeds) == (0, 1)
    entry = comparison.entry("xor", "mlp:8")
    assert set(entry.genomes) == {"mine"} and set(entry.baselines) == {"sgd", "adam"}
    assert entry.genomes["mine"].accuracy.shape == (2, 3)
    assert list(entry.baselines["sgd"].lrs) == [0.1] and list(entry.baselines["adam"].lrs) == [0.01]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_names_genomes_apart(capsys, tmp_path):
    """Two runs' ``mean_genome.json`` keep their own rows (named by path); one file twice is an error."""
    paths = []
    for run, seed in (("a", 0), ("b", 1)):
        (tmp_path / run).mkdir()
        paths.append(tmp_path / run / "mean_genome.json")
        Genome.random(2, seed=seed).save(paths[-1])
    out = tmp_path / "eval"
    assert main(["evaluate", "--genomes", *map(str, paths), "--tasks", "xor", "--topologies", "mlp:8", "--steps", "1",
                 "--seeds", "1", "--sgd-lrs", "0.1", "--adam-lrs", "0.01", "--out", str(out), "--no-progress"]) == 0
    entry = Comparison.from_json(out / "results.json").entry("xor", "mlp:8")
    assert set(entry.genomes) == set(map(str, paths))
    capsys.readouterr()
    assert main(["evaluate", "--genomes", str(paths[0]), str(paths[0]), "--tasks", "xor", "--out",
                 str(tmp_path / "eval2"), "--no-progress"]) == 1
    one_error_line(capsys.readouterr().err, "given more than once")


def test_evaluate_names_a_runs_genomes_after_the_run_and_refuses_its_folder(capsys, tmp_path):
    run = tmp_path / "c1"
    run.mkdir()
    for name, seed in (("genome.json", 0), ("mean.json", 1)):
        Genome.random(2, seed=seed).save(run / name)
    flags = ["--tasks", "xor", "--topologies", "mlp:8", "--steps", "1", "--seeds", "1", "--sgd-lrs", "0.1",
             "--adam-lrs", "0.01", "--no-progress"]
    assert main(["evaluate", "--genomes", str(run), "--out", str(tmp_path / "e0"), *flags]) == 1
    one_error_line(capsys.readouterr().err, f"--genomes {run} is a folder", str(run / "genome.json"),
                   str(run / "mean.json"))
    assert not (tmp_path / "e0").exists()
    assert main(["evaluate", "--genomes", str(run / "genome.json"), str(run / "mean.json"),
                 "--out", str(tmp_path / "e1"), *flags]) == 0
    assert set(Comparison.from_json(tmp_path / "e1" / "results.json").entry("xor", "mlp:8").genomes) == {
        "c1", "c1 (mean)"}


@pytest.mark.parametrize("genome", ["missing.json", "sub/genome"])
def test_evaluate_missing_genome(capsys, tmp_path, genome):
    path = tmp_path / genome
    assert main(["evaluate", "--genomes", str(path), "--tasks", "xor", "--out", str(tmp_path / "eval")]) == 1
    one_error_line(capsys.readouterr().err, str(path), "does not exist")


@pytest.mark.parametrize("argv, fragments", [
    (["--tasks", "xorr"], ["bad task spec 'xorr'", "unknown data set"]),
    (["--tasks", "mnist:10x10:4-2"], ["bad task spec 'mnist:10x10:4-2'", "must go up"]),
    (["--tasks", "xor", "--topologies", "mlp:x"], ["'mlp:x'", "positive integers"]),
])
def test_evaluate_bad_inputs_are_one_line(capsys, tmp_path, argv, fragments):
    genome_path = tmp_path / "g.json"
    Genome.random(2, seed=0).save(genome_path)
    code = main(["evaluate", "--genomes", str(genome_path), "--out", str(tmp_path / "eval"), "--steps", "1",
                 "--seeds", "1", "--no-progress", *argv])
    assert code == 1
    one_error_line(capsys.readouterr().err, *fragments)


def test_torch_threads_flag(tmp_path, config_file):
    before = torch.get_num_threads()
    try:
        assert main(["meta-train", "--config", str(config_file), "--out", str(tmp_path / "run"), "--no-progress",
                     "--meta-steps", "1", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_genomes_lists_the_catalog(capsys):
    assert main(["genomes"]) == 0
    out = capsys.readouterr().out
    assert "blur-mnist-k4 (default)" in out and "experiments/pretrained.toml" in out


def test_demo_end_to_end_tiny(capsys, tmp_path):
    pytest.importorskip("sklearn")
    out_dir = tmp_path / "demo"
    argv = ["demo", "--out", str(out_dir), "--meta-steps", "2", "--unroll-max", "10", "--tasks", "digits",
            "--seeds", "2", "--steps", "1,2", "--sgd-lrs", "0.1", "--adam-lrs", "0.01", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "demo (just meta-trained)" in out and "blur-mnist-k4 (shipped)" in out and "SGD (best lr)" in out
    assert read_log(out_dir / "meta" / "log.csv")[-1]["step"] == 1
    comparison = Comparison.from_json(out_dir / "results.json")
    assert set(comparison.entries[0].genomes) == {"demo (just meta-trained)", "blur-mnist-k4 (shipped)"}
    assert (out_dir / "table.md").read_text().startswith("| task") and (out_dir / "curves.png").stat().st_size > 1000


def test_demo_fails_before_meta_training_when_data_is_missing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path / "empty"))
    assert main(["demo", "--out", str(tmp_path / "demo"), "--tasks", "kmnist:28x28"]) == 1
    one_error_line(capsys.readouterr().err, "kmnist", "GRAPHNET_DATA")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("argv, fragments", [
    (["evaluate", "--tasks", "mnist:28x28:5way"], ["N-way", "mnist:0-4"]),
    (["evaluate", "--tasks", "mnist:28"], ["28x28"]),
])
def test_evaluate_rejects_misread_tasks(capsys, tmp_path, argv, fragments):
    assert main(argv + ["--out", str(tmp_path / "e")]) == 1
    one_error_line(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "e").exists()


def test_flags_are_never_abbreviated(capsys):
    assert exit_code(["evaluate", "--seed", "3"]) == 2  # not silently --seeds 3
    assert "unrecognized arguments: --seed" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "meta-train"])
def test_out_that_is_a_file_fails_before_any_work(capsys, tmp_path, config_file, command):
    target = tmp_path / "a_file"
    target.write_text("x")
    extra = ["--tasks", "xor", "--topologies", "mlp:4"] if command == "evaluate" else ["--config", str(config_file)]
    assert main([command, "--out", str(target), *extra]) == 1
    one_error_line(capsys.readouterr().err, "is a file")
    assert target.read_text() == "x"
