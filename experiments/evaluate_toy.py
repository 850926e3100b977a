"""Evaluate a genome meta-trained on the toy tasks (experiments/cma-toy.toml) on the paper's 2-D tasks.

Trains fresh networks (2-H-C, one hidden layer of H: the run's, 32 in cma-toy.toml) with the genome's rule
and with autograd SGD and Adam (learning-rate sweeps SGD_LRS and ADAM_LRS; the best rate is picked
per step budget on the test set, which favours the baselines) on the held-out tasks (circle,
small_circle, pie, blobs, cross, triangle) and, for reference, the training tasks (and, xor, moons);
2000 training and 2000 test points per task (toy seeds 0 and 1), batches of 32, test accuracy
after 1, 5, 10, 20 and 50 inner steps, 5 seeds. Writes table.md, results.json and curves.png into
--out (default runs/eval-NAME) and prints the table. The run's genomes are labelled by its folder name.

    python experiments/evaluate_toy.py --run runs/cma-toy --mean --out runs/eval-cma-toy --threads 1
    python experiments/evaluate_toy.py --genome some/genome.json --out runs/eval-other
"""
from __future__ import annotations

import argparse
import pathlib
import re

import torch

from graphnet import Genome, topologies
from graphnet.cli import int_list, positive_int
from graphnet.data import TaskSpec
from graphnet.evaluation import compare
from graphnet.meta import resume
from graphnet.meta.checkpoint import CheckpointError

HELD_OUT = ("circle", "small_circle", "pie", "blobs", "cross", "triangle")
TRAINED_ON = ("and", "xor", "moons")
# wider than the library's defaults: on these tasks the best SGD / Adam rates sit at the defaults' top ends
SGD_LRS = (0.1, 0.3, 1.0, 3.0, 10.0)
ADAM_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=pathlib.Path, help="a CMA-ES run folder: its genome.json (the best candidate)")
    source.add_argument("--genome", type=pathlib.Path, help="any genome file")
    p.add_argument("--mean", action="store_true",
                   help="with --run: also evaluate the CMA-ES distribution's mean (as in mean.json)")
    p.add_argument("--hidden", type=positive_int,
                   help="hidden layer size (default: the run's, if it meta-trained on one mlp:N; else 32)")
    p.add_argument("--seeds", type=positive_int, default=5, help="networks per method, seeds 0..n-1 (default 5)")
    p.add_argument("--steps", type=int_list, default="1,5,10,20,50", help="inner steps to score at (default 1,5,10,20,50)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="inner batch size (default 32)")
    p.add_argument("--no-baselines", action="store_true", help="genome only (a quick check)")
    p.add_argument("--out", type=pathlib.Path, help="output folder (default runs/eval-NAME, NAME: the run or genome)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    args = p.parse_args()
    if args.mean and args.run is None:
        p.error("--mean goes with --run (the distribution mean of a CMA-ES run)")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        genomes, hidden = load(args.run, args.genome, args.mean)
    except (OSError, ValueError, CheckpointError) as e:
        p.exit(1, f"{p.prog}: error: {e}\n")
    hidden = args.hidden or hidden
    name = args.run.name if args.run else args.genome.stem
    out = args.out or pathlib.Path("runs") / f"eval-{name}"
    tasks = [TaskSpec.parse(name).splits() for name in HELD_OUT + TRAINED_ON]  # (train, test) Datasets
    mlp = {f"mlp:{hidden}": lambda t: topologies.build(f"mlp:{hidden}", t.n_features, t.n_classes)}
    lrs = {"sgd_lrs": (), "adam_lrs": ()} if args.no_baselines else {"sgd_lrs": SGD_LRS, "adam_lrs": ADAM_LRS}
    comparison = compare(genomes, tasks, mlp, steps=args.steps,
                         seeds=range(args.seeds), batch_size=args.batch_size, **lrs)
    out.mkdir(parents=True, exist_ok=True)
    comparison.to_json(out / "results.json")
    table = comparison.table()
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    comparison.plot(out / "curves.png")
    print(table)
    print(f"\n{comparison.seconds:.0f} s; wrote {out}/table.md, results.json, curves.png")


def load(run: pathlib.Path | None, genome: pathlib.Path | None, mean: bool) -> tuple[dict, int]:
    """The genomes to evaluate, by label, and the hidden size to evaluate them on (the run's, or 32)."""
    if run is None:
        return {genome.stem: Genome.load(genome)}, 32
    if not (run / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"{run} holds no run (no checkpoint.pt there)")
    trainer = resume(run)  # reads the run, changes nothing
    genomes = {run.name: Genome.load(run / "genome.json")}
    if mean:
        genomes[f"{run.name} (mean)"] = trainer.mean_genome()  # the checkpoint's, as saved in mean.json
    specs = trainer.config.topologies
    one_mlp = len(specs) == 1 and re.fullmatch(r"mlp:\d+", specs[0])
    return genomes, int(specs[0][4:]) if one_mlp else 32


if __name__ == "__main__":
    main()
