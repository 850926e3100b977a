"""CMA-ES meta-training (pycma's ask/tell): the genome vector, or chosen entries of it, is searched.

One generation (a meta-step, docs/MODEL.md section 5):

1. ``es.ask()`` gives ``P`` candidate vectors of the searched entries of :meth:`Genome.to_vector`;
   the other entries stay at the starting genome's values (``MetaConfig.search``);
2. ``draws`` (task, topology) pairs and their episodes are drawn as in gradient meta-training, a
   function of ``(seed, generation)`` only;
3. for each draw, all candidates x ``replicas`` run as ONE population network (no Python loop over
   candidates), every candidate on the same batches and the same initial synapse noise (common
   random numbers, so the ranking compares rules, not luck), without autograd;
4. fitness (minimized) = minus the query accuracy, or the query loss, averaged over draws,
   replicas and score points; a candidate that diverged anywhere, or whose vector is not finite in
   the run's dtype, gets ``+inf`` (the worst) and is counted;
5. ``es.tell(candidates, fitness)``; the best candidate seen so far is the run's genome.

Step 3 runs on the trainer's ``backend`` (graphnet/meta/backend.py): in this process by default, or
split across Ray workers (:class:`graphnet.meta.ray_backend.RayBackend`) with the same results. The
backend, and the device it scores on (``LocalBackend(device="cuda")``), is a runtime option, not
part of the config or the checkpoint: a run may be resumed on another one.

pycma is an optional extra (``pip install cma``), imported when a CMA-ES trainer is built. Its
random numbers come from a numpy Generator held inside the ``CMAEvolutionStrategy`` (option
``randn``), so pickling the strategy saves its whole state: a resumed run repeats the
uninterrupted one exactly.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import pickle
import time

import numpy as np
import torch

from graphnet.meta.backend import Draw, LocalBackend
from graphnet.meta.checkpoint import CheckpointError
from graphnet.meta.trainer import StepResult, Trainer, genome_from_state, genome_state, starting_genome
from graphnet.rules import Genome


def pycma():
    """The ``cma`` module, or an ImportError that says how to install it."""
    try:
        import cma
    except ImportError:
        raise ImportError("CMA-ES meta-training needs pycma: pip install cma "
                          "(or, in graphnet's source folder, pip install -e '.[cma]')") from None
    return cma


class _Normal:
    """pycma's ``randn(lam, n)`` from a numpy Generator of its own (picklable, unlike a lambda)."""

    def __init__(self, seed: np.random.SeedSequence):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


def search_indices(names: list[str], patterns) -> list[int]:
    """Positions in ``names`` (``Genome.vector_names()``) that any of ``patterns`` selects.

    A pattern matches an entry name (``"nu[0,1]"``) or its field name (``"nu"``); ``*`` and ``?``
    are wildcards, brackets are literal. A pattern that matches nothing raises ``ValueError``."""
    fields = [name.split("[")[0] for name in names]
    chosen = set()
    for pattern in patterns:
        literal = pattern.replace("[", "[[]")  # fnmatch would read "[0,1]" as a character class
        hits = {i for i, (name, field) in enumerate(zip(names, fields))
                if fnmatch.fnmatchcase(name, literal) or fnmatch.fnmatchcase(field, literal)}
        if not hits:
            raise ValueError(f"MetaConfig.search pattern {pattern!r} matches no genome entry; fields: "
                             f"{list(dict.fromkeys(fields))}, entries like {names[0]!r}")
        chosen |= hits
    return sorted(chosen)


class CMATrainer(Trainer):
    """Meta-trains one genome by CMA-ES across the tasks and topologies of ``config`` (``method="cma"``).

    ``CMATrainer(config, out_dir)`` starts a run; ``CMATrainer.resume(out_dir)`` continues one;
    :meth:`run` runs ``config.meta_steps`` generations (or up to ``until``) and returns the best
    genome so far (``self.genome``, also ``genome.json``; ``best_fitness`` is its fitness, on its
    generation's episodes). ``checkpoint.pt`` holds the pickled pycma strategy (its RNG inside),
    the starting genome (the frozen entries) and the best genome. :meth:`mean_genome` is the
    distribution's mean, written to ``mean.json`` with every checkpoint: selected on no single
    generation's episodes, it is often the better rule to evaluate.

    ``backend`` scores each generation: :class:`LocalBackend` (default) in this process,
    ``RayBackend(address, workers)`` on Ray workers, with identical results; either on its
    ``device`` (``LocalBackend(device="cuda")``; graphnet.meta.start(..., device=...) builds that
    one). It is not saved: ``resume(out_dir, backend=...)`` may pick another one. Closing it is the
    caller's job. The genomes and the fitness told to pycma stay on the CPU.
    """

    method = "cma"
    checkpoint_keys = ("genome", "start", "es", "best_fitness")

    def __init__(self, config, out_dir, *, backend=None, **kwargs):
        self.backend = LocalBackend() if backend is None else backend
        super().__init__(config, out_dir, **kwargs)

    def _setup(self, state: dict | None) -> None:
        cma = pycma()
        config = self.config
        self.start = (starting_genome(config) if state is None else genome_from_state(state["start"])).detach()
        self.searched = torch.as_tensor(search_indices(self.start.vector_names(), config.search))
        self._start_vector = self.start.to_vector().double()  # [n_total]; frozen entries come from here
        if state is None:
            options = {"randn": _Normal(np.random.SeedSequence(config.seed, spawn_key=(1,))),  # apart from episodes
                       "seed": float("nan"),  # keeps pycma off numpy's global RNG
                       "verbose": -9, "verb_log": 0, "verb_disp": 0}  # no output files, no printing
            if config.population is not None:
                options["popsize"] = config.population
            self.es = cma.CMAEvolutionStrategy(self._start_vector[self.searched].numpy(), config.sigma0, options)
            self.genome = self.start.clone()
            self.best_fitness = float("inf")
        else:
            self.es = _strategy(state["es"], cma, len(self.searched))
            self.genome = genome_from_state(state["genome"])
            self.best_fitness = float(state["best_fitness"])

    def genome_of(self, searched: np.ndarray | torch.Tensor) -> Genome:
        """The genome of a vector of the searched entries (the others at the starting values)."""
        full = self._start_vector.clone()
        full[self.searched] = torch.as_tensor(np.asarray(searched), dtype=torch.float64)
        return Genome.from_vector(full.to(self.dtype), like=self.start)

    def mean_genome(self) -> Genome:
        """The genome at the CMA-ES distribution's mean."""
        return self.genome_of(self.es.result.xfavorite)

    # ------------------------------------------------------------------ one generation
    def meta_step(self) -> StepResult:
        """Run generation ``self.step`` (ask, score the population, tell) and advance."""
        begin = time.perf_counter()
        config, step = self.config, self.step
        asked = self.es.ask()  # P float64 arrays [n_searched]
        fitness, loss, accuracy = self.fitness(asked, step)
        # pycma's update fails on a NaN vector: tell it the mean instead (ranked worst, it moves nothing)
        told = [x if np.isfinite(x).all() else self.es.mean.copy() for x in asked]
        self.es.tell(told, fitness.tolist())
        best = int(np.argmin(fitness))
        if fitness[best] < self.best_fitness:
            self.best_fitness = float(fitness[best])
            self.genome = self.genome_of(asked[best])
        diverged = int((~np.isfinite(fitness)).sum())
        self.diverged += diverged
        draws = self.draws(step)
        result = StepResult(step, config.unroll(step), "+".join(config.tasks[d[0]] for d in draws),
                            "+".join(config.topologies[d[1]] for d in draws), _mean(loss), _mean(accuracy),
                            float(self.es.sigma), diverged, time.perf_counter() - begin)
        self.log.write(dataclasses.asdict(result))
        self.step += 1
        return result

    def fitness(self, candidates, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score ``candidates`` (``P`` vectors of the searched entries) on generation ``step``'s draws.

        Returns ``(fitness, loss, accuracy)``, each ``[P]``: the fitness to minimize (``+inf`` for a
        candidate that diverged or is not finite in the run's dtype), its query loss and accuracy
        averaged over draws (NaN where it diverged).
        Each draw is one population pass over every usable candidate (on ``self.backend``: here,
        or in shares on Ray workers).
        """
        config = self.config
        n = len(candidates)
        full = self._start_vector.repeat(n, 1)  # [P, n_total]
        full[:, self.searched] = torch.as_tensor(np.stack(candidates), dtype=torch.float64)
        vectors = full.to(self.dtype)  # the values the engine will see
        usable = torch.isfinite(vectors).all(1)
        loss = torch.full((n,), float("nan"), dtype=torch.float64)
        accuracy = loss.clone()
        if usable.any():
            draws = []
            for d, (task, topo, synapse_seed) in enumerate(self.draws(step)):
                episode, topology = self.episode(step, d, task, topo)
                draws.append(Draw(topology, episode, synapse_seed))
            per_draw = self.backend.score(vectors[usable], self.start, draws, self.dtype, config.score_points)
            loss[usable] = torch.stack([s.loss for s in per_draw]).mean(0)  # NaN if any draw diverged
            accuracy[usable] = torch.stack([s.accuracy for s in per_draw]).mean(0)
        score = -accuracy if config.fitness == "accuracy" else loss
        fitness = torch.where(torch.isfinite(score), score, torch.tensor(float("inf"), dtype=torch.float64))
        return fitness.numpy(), loss.numpy(), accuracy.numpy()

    def _progress(self) -> dict:
        return {"sigma": float(self.es.sigma), "best": self.best_fitness}

    def save(self) -> None:
        """Write ``checkpoint.pt``, ``genome.json`` (the best candidate) and ``mean.json`` (the
        distribution's mean, :meth:`mean_genome`), each atomically."""
        super().save()
        self.mean_genome().save(self.out_dir / "mean.json")

    def _checkpoint(self) -> dict:
        return {"es": pickle.dumps(self.es, protocol=pickle.HIGHEST_PROTOCOL), "start": genome_state(self.start),
                "genome": genome_state(self.genome), "best_fitness": self.best_fitness}


def _strategy(data, cma, n_searched: int):
    """Unpickle the CMA-ES state of a checkpoint (our own file: pickle runs code, as torch.load would)."""
    if not isinstance(data, bytes):
        raise CheckpointError(f"checkpoint's CMA-ES state is a {type(data).__name__}, expected pickled bytes")
    try:
        es = pickle.loads(data)
    except Exception as e:  # truncated or from an incompatible pycma
        raise CheckpointError(f"checkpoint's CMA-ES state cannot be unpickled ({type(e).__name__}: {e}); "
                              f"pycma {cma.__version__} is installed") from None
    if not isinstance(es, cma.CMAEvolutionStrategy) or es.N != n_searched:
        raise CheckpointError(f"checkpoint's CMA-ES state does not fit this run: expected a "
                              f"CMAEvolutionStrategy over {n_searched} searched entries")
    return es


def _mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")

