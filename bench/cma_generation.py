#!/usr/bin/env python
"""Time of one CMA-ES generation scored as one population pass against a loop over its candidates.

One generation of ``P`` candidates (pycma's ``ask()`` from a random k = 2 genome, sigma0 0.1) on one
episode of 14x14 MNIST, an MLP with one hidden layer, ``N`` inner steps on batches of 128, then the
query batches scored: ``CMATrainer.fitness`` (all candidates in one population network, the
trainer's own code path) against ``P`` sequential single-genome evaluations of the same candidates
on the same episode and synapses (``population_scores([genome], ...)`` in a Python loop). The two
are checked to give the same fitness first. Repetitions alternate the two (order flipping each
time); the ratio printed is the median of per-repetition ratios (sequential / batched).

Defaults finish in about 10 s on 2 CPU cores (hidden 64, 5 inner steps, 2 query batches);
``--full`` is the paper's CMA-ES setting (hidden 512, 15 training batches, 20 query batches,
population 80).

Usage: python bench/cma_generation.py [--full] [--population 80] [--hidden 64] [--steps 5]
       [--query-batches 2] [--replicas 1] [--reps 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

from graphnet.meta import CMATrainer, LocalBackend, MetaConfig, population_scores  # noqa: E402

warnings.filterwarnings("ignore", ".*[Ss]parse.*")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="the paper's setting: hidden 512, 15 steps, 20 query batches")
    p.add_argument("--population", type=int, default=80)
    p.add_argument("--hidden", type=int, default=None, help="hidden neurons (default 64; --full: 512)")
    p.add_argument("--steps", type=int, default=None, help="inner steps (default 5; --full: 15)")
    p.add_argument("--query-batches", type=int, default=None, help="query batches (default 2; --full: 20)")
    p.add_argument("--replicas", type=int, default=1, help="episodes per candidate")
    p.add_argument("--size", type=int, default=14, help="MNIST resized to size x size")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-candidates", type=int, default=10,
                   help="also time passes of at most this many candidates (LocalBackend(max_candidates))")
    args = p.parse_args(argv)
    hidden = args.hidden or (512 if args.full else 64)
    steps = args.steps or (15 if args.full else 5)
    query = args.query_batches or (20 if args.full else 2)
    torch.set_num_threads(args.threads)

    config = MetaConfig(method="cma", tasks=(f"mnist:{args.size}x{args.size}",), topologies=(f"mlp:{hidden}",), k=2,
                        population=args.population, replicas=args.replicas, batch_size=128, query_batches=query,
                        unroll_start=steps, unroll_max=steps, meta_steps=1)
    with tempfile.TemporaryDirectory() as out:
        trainer = CMATrainer(config, out)
        candidates = trainer.es.ask()
        (task, topo, seed), = trainer.draws(0)
        episode, topology = trainer.episode(0, 0, task, topo)
        print(f"one generation: population {len(candidates)} x {args.replicas} replica(s), {config.tasks[0]}, "
              f"{topology}, k=2, {steps} inner steps of 128, {query} query batches, {torch.get_num_threads()} "
              f"thread(s), torch {torch.__version__}")

        def batched():
            trainer.backend = LocalBackend()
            return trainer.fitness(candidates, 0)[0]

        def chunked():
            trainer.backend = LocalBackend(args.max_candidates)
            return trainer.fitness(candidates, 0)[0]

        def sequential():
            accuracy = [population_scores([trainer.genome_of(c)], topology, episode, seed, trainer.dtype).accuracy[0]
                        for c in candidates]
            return -np.array([float(a) for a in accuracy])

        together, alone, capped = batched(), sequential(), chunked()  # also a warm-up
        print(f"check: fitness of the batched pass vs the loop: max |diff| {np.abs(together - alone).max():.2e}, "
              f"vs passes of <= {args.max_candidates}: {np.abs(together - capped).max():.2e} "
              f"(accuracy over {query * 128 * args.replicas} query examples; mean {-together.mean():.3f})")
        times = {"batched": [], "sequential": [], "chunked": []}
        for rep in range(args.reps):
            order = [("batched", batched), ("sequential", sequential), ("chunked", chunked)]
            for name, run in (order if rep % 2 == 0 else order[::-1]):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        ratios = [s / b for s, b in zip(times["sequential"], times["batched"])]
        b, s = statistics.median(times["batched"]), statistics.median(times["sequential"])
        print(f"batched (one population pass)     {b:8.3f} s per generation")
        print(f"sequential ({len(candidates)} single-genome runs) {s:8.3f} s per generation")
        c = statistics.median(times["chunked"])
        print(f"passes of <= {args.max_candidates} candidates    {c:8.3f} s per generation")
        print(f"ratio sequential / batched: {statistics.median(ratios):.2f}x "
              f"(median of {args.reps}; per repetition {', '.join(f'{r:.2f}' for r in ratios)})")
        print(f"ratio sequential / passes of <= {args.max_candidates}: {s / c:.2f}x")


if __name__ == "__main__":
    main()
