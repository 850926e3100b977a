"""Held-out test accuracy of a CMA-ES run's distribution mean at every checkpoint, while the run goes.

Watches a run folder (experiments/cma-mnist.toml's, or any CMA-ES run on one task and topology).
At every new checkpoint it takes the mean genome from checkpoint.pt, saves it as
OUT/mean-GENERATION.json, trains fresh networks with it as meta-training does (the run's task and
topology, ``unroll_max`` inner steps on batches of ``batch_size`` from the training split; seeds
0..S-1) and scores the whole test split; it appends ``generation, mean, std, per-seed accuracies``
to OUT/heldout.csv. It stops when the run has reached its last generation. ``--rescore``
recomputes heldout.csv from the saved mean-*.json instead (e.g. with more seeds).

    .venv/bin/python experiments/track_heldout.py --run runs/cma-mnist --out runs/cma-mnist-heldout --threads 1
    .venv/bin/python experiments/track_heldout.py --run runs/cma-mnist --out runs/cma-mnist-heldout --rescore
"""
from __future__ import annotations

import argparse
import pathlib
import re
import time

import numpy as np
import torch

from graphnet import Genome, topologies
from graphnet.atomic import atomic_write
from graphnet.data import TaskSpec
from graphnet.evaluation import EvalTask, genome_curve
from graphnet.meta import resume
from graphnet.meta.checkpoint import CheckpointError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=pathlib.Path, required=True, help="a CMA-ES run folder (running or finished)")
    p.add_argument("--out", type=pathlib.Path, required=True, help="folder for heldout.csv and mean-*.json")
    p.add_argument("--seeds", type=int, default=5, help="networks per genome, seeds 0..n-1 (default 5)")
    p.add_argument("--rescore", action="store_true", help="score the saved mean-*.json in --out, do not watch")
    p.add_argument("--poll", type=float, default=20.0, help="seconds between looks at the run (default 20)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        trainer = resume(args.run)  # reads the run, changes nothing
        if trainer.method != "cma" or len(trainer.config.tasks) != 1 or len(trainer.config.topologies) != 1:
            raise ValueError(f"{args.run} is not a CMA-ES run on one task and one topology")
        score = scorer(trainer.config, range(args.seeds))
    except (OSError, ValueError, CheckpointError) as e:
        p.exit(1, f"{p.prog}: error: {e}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        saved = sorted(args.out.glob("mean-*.json"), key=lambda f: int(re.findall(r"\d+", f.stem)[0]))
        rows = [row(int(re.findall(r"\d+", f.stem)[0]), score(Genome.load(f))) for f in saved]
        atomic_write(args.out / "heldout.csv", "".join([HEADER, *rows]).encode())
        print("".join(rows), end="")
        return
    table = args.out / "heldout.csv"
    if not table.exists():
        table.write_text(HEADER)
    done = {int(line.split(",")[0]) for line in table.read_text().splitlines()[1:]}
    while True:
        trainer = resume(args.run)
        if trainer.step not in done:
            trainer.mean_genome().save(args.out / f"mean-{trainer.step}.json")
            line = row(trainer.step, score(trainer.mean_genome()))
            with open(table, "a") as f:
                f.write(line)
            print(line, end="", flush=True)
            done.add(trainer.step)
        if trainer.step >= trainer.config.meta_steps:
            return
        time.sleep(args.poll)


HEADER = "generation,mean,std,per_seed\n"


def row(generation: int, accuracy: np.ndarray) -> str:
    return (f"{generation},{np.nanmean(accuracy):.4f},{np.nanstd(accuracy):.4f},"
            f"{' '.join(f'{a:.4f}' for a in accuracy)}\n")


def scorer(config, seeds):
    """``genome -> accuracy [len(seeds)]``: test accuracy after ``config.unroll_max`` inner steps."""
    train, test = TaskSpec.parse(config.tasks[0]).splits()
    task = EvalTask(config.tasks[0], train.flat(), train.y, test.flat(), test.y, n_classes=train.n_classes)
    topology = topologies.build(config.topologies[0], task.n_features, task.n_classes)

    def score(genome: Genome) -> np.ndarray:
        curve = genome_curve(genome, topology, task, seeds=seeds, steps=(config.unroll_max,),
                             batch_size=config.batch_size)
        return curve.accuracy[:, 0]

    return score


if __name__ == "__main__":
    main()
