"""experiments/evaluate_toy.py, the toy reproduction's evaluation script, on a tiny CMA-ES run."""
import pathlib
import subprocess
import sys

import pytest

from graphnet.evaluation import Comparison
from graphnet.meta import MetaConfig, start

pytest.importorskip("cma", reason="pycma is not installed (pip install cma)")
SCRIPT = pathlib.Path(__file__).parents[1] / "experiments" / "evaluate_toy.py"


def evaluate_toy(*argv):
    return subprocess.run([sys.executable, str(SCRIPT), "--threads", "1", *map(str, argv)],
                          capture_output=True, text=True, timeout=300)


def test_evaluates_a_run_on_its_own_width_and_labels_it_by_folder(tmp_path):
    config = MetaConfig(method="cma", tasks=("xor",), topologies=("mlp:6",), k=2, meta_steps=2, population=4,
                        sigma0=0.3, batch_size=8, query_batches=1, unroll_start=2, unroll_max=2)
    start(config, tmp_path / "tiny-run").run(progress=False)
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
])
def test_bad_input_is_one_line(tmp_path, argv, message):
    done = evaluate_toy(*argv)
    assert done.returncode in (1, 2)
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
