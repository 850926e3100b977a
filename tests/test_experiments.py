"""experiments/evaluate_toy.py, the toy reproduction's evaluation script, on a tiny CMA-ES run."""
import pathlib
import subprocess
import sys
import time

import pytest

from graphnet.evaluation import Comparison
from graphnet.meta import MetaConfig, start
from graphnet.rules import Genome

pytest.importorskip("cma", reason="pycma is not installed (pip install cma)")
SCRIPT = pathlib.Path(__file__).parents[1] / "experiments" / "evaluate_toy.py"
# a tiny CMA-ES run on one task and one topology (what track_heldout.py scores)
TINY = MetaConfig(method="cma", tasks=("xor",), topologies=("mlp:6",), k=2, meta_steps=2, population=4, sigma0=0.3,
                  batch_size=8, query_batches=1, unroll_start=2, unroll_max=2)


def evaluate_toy(*argv):
    return subprocess.run([sys.executable, str(SCRIPT), "--threads", "1", *map(str, argv)],
                          capture_output=True, text=True, timeout=300)


def test_evaluates_a_run_on_its_own_width_and_labels_it_by_folder(tmp_path):
    start(TINY, tmp_path / "tiny-run").run(progress=False)
    done = evaluate_toy("--run", tmp_path / "tiny-run", "--mean", "--no-baselines", "--seeds", 2, "--steps", "1,3",
                        "--out", tmp_path / "eval")
    assert done.returncode == 0, done.stderr
    comparison = Comparison.from_json(tmp_path / "eval" / "results.json")
    circle = comparison.entry("circle", "mlp:6")  # the run's hidden width, not the default 32
    assert sorted(circle.genomes) == ["tiny-run", "tiny-run (mean)"]
    assert circle.genomes["tiny-run"].accuracy.shape == (2, 2)


@pytest.mark.parametrize("argv, message", [
    (["--run", "nowhere", "--mean"], "nowhere holds no run (no checkpoint.pt there)"),
    (["--genome", "missing.json"], "genome file missing.json does not exist"),
    (["--genome", "missing.json", "--mean"], "--mean goes with --run"),
    (["--genome", "g.json", "--hidden", "0"], "argument --hidden: expected a positive integer, got '0'"),
    (["--genome", "g.json", "--steps", "1,x"], "argument --steps: expected comma-separated integers, got '1,x'"),
])
def test_bad_input_is_one_line(tmp_path, argv, message):
    done = evaluate_toy(*argv)
    assert done.returncode in (1, 2)
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


TRACK = SCRIPT.with_name("track_heldout.py")


def test_track_heldout_scores_the_mean_at_the_last_checkpoint_and_rescores_the_same(tmp_path):
    trainer = start(TINY.replace(meta_steps=4, unroll_start=3, unroll_max=3), tmp_path / "run")
    trainer.run(progress=False)
    argv = [sys.executable, str(TRACK), "--run", tmp_path / "run", "--out", tmp_path / "held", "--seeds", "3",
            "--threads", "1", "--poll", "0.2"]
    done = subprocess.run(list(map(str, argv)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # a finished run: one look, then it stops
    assert Genome.load(tmp_path / "held" / "mean-4.json").allclose(trainer.mean_genome(), rtol=0, atol=0)
    (watched,) = (tmp_path / "held" / "heldout.csv").read_text().splitlines()[1:]
    generation, mean, std, per_seed = watched.split(",")
    accuracies = [float(a) for a in per_seed.split()]
    assert generation == "4" and len(accuracies) == 3 and all(0 <= a <= 1 for a in accuracies)
    assert float(mean) == pytest.approx(sum(accuracies) / 3, abs=1e-4)
    again = subprocess.run(list(map(str, argv + ["--rescore"])), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "held" / "heldout.csv").read_text().splitlines()[1:] == [watched]


@pytest.mark.parametrize("method, message", [(None, "holds no checkpoint and no process is training it"),
                                             ("gradient", "is not a CMA-ES run on one task and one topology")])
def test_track_heldout_refuses_a_run_it_cannot_score(tmp_path, method, message):
    if method is not None:
        start(MetaConfig(tasks=("xor",), topologies=("mlp:4",), k=2, meta_steps=1, batch_size=8, query_batches=1,
                         unroll_start=1, unroll_max=1), tmp_path).run(progress=False)
    done = subprocess.run([sys.executable, str(TRACK), "--run", str(tmp_path), "--out", str(tmp_path / "held"),
                           "--wait", "1", "--poll", "0.2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("track_heldout.py: error: ") and "Traceback" not in done.stderr, done.stderr
    assert str(tmp_path) in error and message in error


def track(run, out, *flags):
    return subprocess.Popen([sys.executable, str(TRACK), "--run", str(run), "--out", str(out), "--seeds", "2",
                             "--threads", "1", "--poll", "0.2", *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_track_heldout_started_before_the_run_follows_it_to_its_end(tmp_path):
    watcher = track(tmp_path / "run", tmp_path / "held")  # the run folder does not exist yet
    assert watcher.stderr.readline().startswith("waiting for the first checkpoint")
    trainer = start(TINY.replace(meta_steps=40, checkpoint_every=20), tmp_path / "run")
    step = trainer.meta_step
    trainer.meta_step = lambda: (time.sleep(0.1), step())[1]  # a run of about 4 s, the watcher looking on
    trainer.run(progress=False)
    out, err = watcher.communicate(timeout=120)
    assert watcher.returncode == 0, err
    generations = [line.split(",")[0] for line in (tmp_path / "held" / "heldout.csv").read_text().splitlines()[1:]]
    assert generations[-1] == "40" and set(generations) <= {"20", "40"}
    assert ("40" in generations) and ("20" in generations or "were replaced before" in err)
    assert Genome.load(tmp_path / "held" / "mean-40.json").allclose(trainer.mean_genome(), rtol=0, atol=0)


def test_track_heldout_stops_when_the_run_is_stopped(tmp_path):
    start(TINY.replace(meta_steps=10, checkpoint_every=2), tmp_path / "run").run(until=4, progress=False)  # stopped at 4 of 10: nothing trains it
    out, err = track(tmp_path / "run", tmp_path / "held").communicate(timeout=120)
    assert "is not being trained (stopped at generation 4 of 10)" in err, err
    assert out.split(",")[0] == "4"


def test_track_heldout_rescore_needs_saved_means(tmp_path):
    start(TINY, tmp_path / "run").run(progress=False)
    (tmp_path / "held").mkdir()
    watcher = track(tmp_path / "run", tmp_path / "held", "--rescore")
    out, err = watcher.communicate(timeout=120)
    assert watcher.returncode == 1 and "holds no mean-*.json to rescore" in err and "Traceback" not in err, err


@pytest.mark.parametrize("flag, value, message", [("--seeds", "0", "expected a positive integer"),
                                                  ("--poll", "-1", "expected a positive number"),
                                                  ("--wait", "nan", "expected a positive number")])
def test_track_heldout_bad_flags_are_one_line(tmp_path, flag, value, message):
    done = subprocess.run([sys.executable, str(TRACK), "--run", str(tmp_path), "--out", str(tmp_path / "held"), flag,
                           value], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and f"argument {flag}: {message}, got '{value}'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
