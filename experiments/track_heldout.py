"""Held-out test accuracy of a CMA-ES run's distribution mean at every checkpoint, while the run goes.

Watches a run folder (experiments/cma-mnist.toml's, or any CMA-ES run on one task and topology).
At every new checkpoint it takes the mean genome from checkpoint.pt, saves it as
OUT/mean-GENERATION.json, trains fresh networks with it as meta-training does (the run's task and
topology, ``unroll_max`` inner steps on batches of ``batch_size`` from the training split; seeds
0..S-1) and scores the whole test split; it appends ``generation, mean, std, per-seed accuracies``
to OUT/heldout.csv. Start it with the run or any time after: it waits for the first checkpoint,
and it stops when no process trains the run any more (finished, extended and finished, or
stopped), after scoring the last checkpoint. Only the newest checkpoint is on disk, so one written
and replaced between two looks (``--poll``) is not scored (it says so). ``--rescore`` recomputes
heldout.csv from the saved mean-*.json instead (e.g. with more seeds).

    python experiments/track_heldout.py --run runs/cma-mnist --out runs/cma-mnist-heldout --threads 1
    python experiments/track_heldout.py --run runs/cma-mnist --out runs/cma-mnist-heldout --rescore
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

from graphnet import Genome, topologies
from graphnet.atomic import atomic_write
from graphnet.cli import positive_float, positive_int
from graphnet.data import TaskSpec
from graphnet.evaluation import as_task, genome_curve
from graphnet.meta import resume
from graphnet.meta.checkpoint import CheckpointError, being_trained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=pathlib.Path, required=True, help="a CMA-ES run folder (running or finished)")
    p.add_argument("--out", type=pathlib.Path, required=True, help="folder for heldout.csv and mean-*.json")
    p.add_argument("--seeds", type=positive_int, default=5, help="networks per genome, seeds 0..n-1 (default 5)")
    p.add_argument("--rescore", action="store_true", help="score the saved mean-*.json in --out, do not watch")
    p.add_argument("--poll", type=positive_float, default=20.0, help="seconds between looks at the run (default 20)")
    p.add_argument("--wait", type=positive_float, default=60.0,
                   help="seconds a run folder without a checkpoint may take to show it is being trained (default 60)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        from_start = not args.rescore and wait_for_a_checkpoint(args.run, args.poll, args.wait)
        trainer = resume(args.run)  # reads the run, changes nothing
        if trainer.method != "cma" or len(trainer.config.tasks) != 1 or len(trainer.config.topologies) != 1:
            raise ValueError(f"{args.run} is not a CMA-ES run on one task and one topology")
        score = scorer(trainer.config, range(args.seeds))
        if args.rescore:
            rescore(args.out, score)
        else:
            watch(args.run, args.out, score, args.poll, from_start)
    except (OSError, ValueError, CheckpointError) as e:
        p.exit(1, f"{p.prog}: error: {e}\n")


def wait_for_a_checkpoint(run: pathlib.Path, poll: float, grace: float = 60.0) -> bool:
    """Return once ``run`` holds a checkpoint (True: it had none at first, so the run is watched
    from its start); a run that is starting gets ``grace`` seconds to create its folder and take its lock."""
    began = time.monotonic()
    if (run / "checkpoint.pt").is_file():
        return False
    print(f"waiting for the first checkpoint of {run}", file=sys.stderr, flush=True)
    while not (run / "checkpoint.pt").is_file():
        if time.monotonic() - began > grace and not (run.is_dir() and being_trained(run)):
            raise FileNotFoundError(f"{run} holds no checkpoint and no process is training it")
        time.sleep(min(poll, 5.0))
    return True


def watch(run: pathlib.Path, out: pathlib.Path, score, poll: float, from_start: bool) -> None:
    """Score each new checkpoint's mean into ``out``; return when no process trains ``run``.
    ``from_start``: generation 0 counts as seen, so a first checkpoint missed is reported."""
    out.mkdir(parents=True, exist_ok=True)
    table = out / "heldout.csv"
    if not table.exists():
        table.write_text(HEADER)
    done = {int(line.split(",")[0]) for line in table.read_text().splitlines()[1:]} | ({0} if from_start else set())
    idle = 0  # looks in a row that found no process training the run; two end the watch (the first may
    while True:  # fall between a resumed run's start and its first generation)
        running = being_trained(run)  # before reading: once it is False, the checkpoint read next is the last
        trainer = resume(run)
        step, config = trainer.step, trainer.config
        if step not in done:
            if done and max(done) < step - config.checkpoint_every:  # a checkpoint came and went unseen
                print(f"checkpoints between generations {max(done)} and {step} were replaced before they could be "
                      f"scored (--poll {poll:g} s is too slow for this run)", file=sys.stderr)
            mean = trainer.mean_genome()
            mean.save(out / f"mean-{step}.json")
            line = row(step, score(mean))
            with open(table, "a") as f:
                f.write(line)
            print(line, end="", flush=True)
            done.add(step)
        idle = idle + 1 if running is False else 0
        if idle == 2 or (running is None and step >= config.meta_steps):
            if step < config.meta_steps:
                print(f"{run} is not being trained (stopped at generation {step} of {config.meta_steps}); "
                      "run this again after resuming it", file=sys.stderr)
            return
        time.sleep(poll)


def rescore(out: pathlib.Path, score) -> None:
    """Rewrite ``out/heldout.csv`` from the ``mean-*.json`` saved there."""
    saved = sorted((int(f.stem[5:]), f) for f in out.glob("mean-*.json") if f.stem[5:].isdigit())  # mean-GEN
    if not saved:
        raise FileNotFoundError(f"{out} holds no mean-*.json to rescore")
    rows = [row(generation, score(Genome.load(f))) for generation, f in saved]
    atomic_write(out / "heldout.csv", "".join([HEADER, *rows]).encode())
    print("".join(rows), end="")


HEADER = "generation,mean,std,per_seed\n"


def row(generation: int, accuracy: np.ndarray) -> str:
    return (f"{generation},{np.nanmean(accuracy):.4f},{np.nanstd(accuracy):.4f},"
            f"{' '.join(f'{a:.4f}' for a in accuracy)}\n")


def scorer(config, seeds):
    """``genome -> accuracy [len(seeds)]``: test accuracy after ``config.unroll_max`` inner steps."""
    task = as_task(*TaskSpec.parse(config.tasks[0]).splits(), name=config.tasks[0])
    topology = topologies.build(config.topologies[0], task.n_features, task.n_classes)

    def score(genome: Genome) -> np.ndarray:
        curve = genome_curve(genome, topology, task, seeds=seeds, steps=(config.unroll_max,),
                             batch_size=config.batch_size)
        return curve.accuracy[:, 0]

    return score


if __name__ == "__main__":
    main()
