"""Gradient meta-training: backpropagate the query loss through unrolled inner learning to the genome.

One meta-step (docs/MODEL.md section 5):

1. draw a task and a topology from the config's lists, and ``replicas`` episodes of that task;
2. build a population network of ``replicas`` copies of the genome with fresh random synapses;
3. run ``N`` inner steps on the support batches (``N`` from the curriculum);
4. score softmax cross-entropy of the outputs on the query batches (forward sweeps only), after
   step N or averaged over ``score_points`` evenly spaced points of the unroll;
5. backpropagate to the genome, clip the gradient norm, take an Adam step.

Everything a meta-step draws is a function of ``(config.seed, step)``, so a run resumed from a
checkpoint repeats the uninterrupted run exactly. A replica whose outputs are not finite is left out
of the loss and counted; if no replica is finite, or the gradient is not finite, the genome is not
updated and the step is logged as diverged.

:class:`Trainer` is what this and the CMA-ES trainer (graphnet/meta/cma.py) share: the run folder,
the draws and episodes, the loop with its checkpoints, log and progress bar. :func:`start` and
:func:`resume` pick the trainer by ``config.method``.

Where the networks run is a runtime option, not part of the config or the checkpoint: the
gradient trainer's ``device``, the CMA-ES trainer's backend (with its own ``device``). Episodes
are drawn on the CPU and moved there; checkpoints and ``genome.json`` hold CPU tensors, so a run
started on a GPU resumes on a CPU-only machine and the other way round.
"""
from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import time

import numpy as np
import torch

from graphnet import topologies
from graphnet.data import EpisodeSampler, TaskSpec
from graphnet.engine import Network, resolve_device
from graphnet.meta.backend import LocalBackend
from graphnet.meta.checkpoint import CheckpointError, load_checkpoint, run_lock, save_checkpoint
from graphnet.meta.config import MetaConfig
from graphnet.meta.log import MetricsLog
from graphnet.meta.unroll import score_steps, unroll_logits
from graphnet.progress import Progress
from graphnet.rules import Genome
from graphnet.rules.options import RuleOptions, field_names
from graphnet.rules.shipped import genome_from

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclasses.dataclass
class StepResult:
    """What one meta-step measured: a row of the metrics log.

    Gradient: ``loss``/``accuracy`` over the finite replicas (NaN if none), ``grad_norm`` before
    clipping, ``diverged`` replicas. CMA-ES: ``loss``/``accuracy`` averaged over the generation's
    finite candidates, ``grad_norm`` holds the step size sigma after the update, ``diverged``
    counts candidates. ``task``/``topology`` join several draws with ``+``.
    """

    step: int
    unroll: int
    task: str
    topology: str
    loss: float
    accuracy: float
    grad_norm: float
    diverged: int
    seconds: float


def starting_genome(config: MetaConfig) -> Genome:
    """The genome a run starts from: ``config.init_genome`` (file or shipped name) or a random one."""
    dtype = _DTYPES[config.dtype]
    if config.init_genome is None:
        return Genome.random(config.k, seed=config.genome_seed, options=RuleOptions.from_dict(config.options),
                             dtype=dtype)
    return genome_from(config.init_genome).to(dtype=dtype)


class Trainer:
    """What both meta-trainers share: the run folder, the episode stream, the log, the loop.

    A subclass sets ``method`` (the config's), ``checkpoint_keys`` (what its checkpoint adds),
    ``_setup(state)`` (its genome and optimizer, fresh or from a checkpoint; may raise before the
    run folder is touched), ``meta_step()`` and ``_checkpoint()`` (its part of ``checkpoint.pt``).
    ``self.genome`` is the genome the run stands at: the one ``run`` returns and ``genome.json`` holds.
    """

    method = ""
    checkpoint_keys: tuple[str, ...] = ()
    genome: Genome

    def __init__(self, config: MetaConfig, out_dir, *, log_name: str = "log.csv", overwrite: bool = False,
                 _state: dict | None = None):
        if _state is None and not overwrite and (pathlib.Path(out_dir) / "checkpoint.pt").exists():
            raise FileExistsError(f"{out_dir} already holds a meta-training run: resume it with "
                                  f"{type(self).__name__}.resume({str(out_dir)!r}), or pass overwrite=True")
        if config.method != self.method:
            raise ValueError(f"{type(self).__name__} runs method={self.method!r}, the config has "
                             f"method={config.method!r} (graphnet.meta.start picks the trainer)")
        self.config = config
        self._tasks = [TaskSpec.parse(t) for t in config.tasks]  # bad inputs fail before out_dir is touched
        self.dtype = _DTYPES[config.dtype]
        self._setup(_state)
        self.out_dir = pathlib.Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step = 0 if _state is None else int(_state["step"])
        self.diverged = 0 if _state is None else int(_state["diverged"])
        self.log = MetricsLog(self.out_dir / log_name, resume_step=self.step)
        self._samplers: dict[int, EpisodeSampler] = {}
        self._topologies: dict[tuple[int, int], object] = {}

    def _setup(self, state: dict | None) -> None:
        raise NotImplementedError

    @classmethod
    def resume(cls, out_dir, *, meta_steps: int | None = None, log_name: str | None = None, **options):
        """Continue the run saved in ``out_dir`` (optionally with a new total ``meta_steps``);
        ``options`` are the trainer's runtime options (gradient: ``device``; CMA-ES: ``backend``)."""
        path = pathlib.Path(out_dir) / "checkpoint.pt"
        state, config = _load_run(path)
        if config.method != cls.method:
            raise CheckpointError(f"checkpoint {path} holds a method={config.method!r} run, not {cls.method!r}: "
                                  "resume it with graphnet.meta.resume")
        missing = [key for key in cls.checkpoint_keys if key not in state]
        if missing:
            raise CheckpointError(f"checkpoint {path} lacks {missing}")
        if meta_steps is not None:
            config = config.replace(meta_steps=meta_steps)
        return cls(config, out_dir, log_name=log_name or state["log_name"], _state=state, **options)

    # ------------------------------------------------------------------ episodes
    def _sampler(self, task: int) -> EpisodeSampler:
        if task not in self._samplers:
            spec = self._tasks[task]
            dataset = spec.build("train")
            self._samplers[task] = EpisodeSampler(dataset, batch_size=self.config.batch_size,
                                                  query_batches=self.config.query_batches, ways=spec.ways,
                                                  seed=self.config.seed * 7919 + task)
        return self._samplers[task]

    def _topology(self, task: int, topology: int, n_inputs: int, n_outputs: int):
        key = (task, topology)
        if key not in self._topologies:
            self._topologies[key] = topologies.build(self.config.topologies[topology], n_inputs, n_outputs)
        return self._topologies[key]

    def draws(self, step: int) -> list[tuple[int, int, int]]:
        """The ``config.draws`` ``(task index, topology index, synapse seed)`` of meta-step ``step``."""
        rng = np.random.default_rng([self.config.seed, step])
        return [(int(rng.integers(len(self.config.tasks))), int(rng.integers(len(self.config.topologies))),
                 int(rng.integers(2**31 - 1 - self.config.replicas))) for _ in range(self.config.draws)]

    def draw(self, step: int) -> tuple[int, int, int]:
        """The first (for the gradient trainer: the only) draw of meta-step ``step``."""
        return self.draws(step)[0]

    def episode(self, step: int, draw: int, task: int, topology: int):
        """``(episode, topology)`` of draw ``draw`` of meta-step ``step``: ``replicas`` episodes of
        ``N = config.unroll(step)`` support batches, and the topology built for the task's sizes."""
        config = self.config
        episode = self._sampler(task).episode(step * config.draws + draw, support_batches=config.unroll(step),
                                              replicas=config.replicas)
        return episode, self._topology(task, topology, episode.support_x.shape[-1], episode.n_classes)

    def meta_step(self) -> StepResult:
        raise NotImplementedError

    # ------------------------------------------------------------------ the loop
    def run(self, until: int | None = None, progress: bool = True) -> Genome:
        """Train until meta-step ``until`` (default ``config.meta_steps``), checkpointing on the way;
        returns a detached copy of ``self.genome`` on the CPU."""
        until = self.config.meta_steps if until is None else min(until, self.config.meta_steps)
        # the lock first: a second process on this run fails there (RunInUseError), before any output
        with run_lock(self.out_dir), (Progress(until, desc=f"meta-train ({self.method})") if progress
                                      else contextlib.nullcontext()) as bar:
            if progress:
                bar.n = self.step
            recent: list[StepResult] = []
            while self.step < until:
                result = self.meta_step()
                recent = (recent + [result])[-20:]
                if progress:
                    bar.update(1, N=result.unroll, loss=_mean(r.loss for r in recent),
                               acc=_mean(r.accuracy for r in recent), diverged=self.diverged, **self._progress())
                if self.step % self.config.checkpoint_every == 0 or self.step == until:
                    self.save()
        return self.genome.detach().to(device="cpu").clone()

    def _progress(self) -> dict:
        """Extra fields of the progress bar."""
        return {}

    def _checkpoint(self) -> dict:
        raise NotImplementedError

    def save(self) -> None:
        """Write ``checkpoint.pt`` and ``genome.json`` (both atomically)."""
        save_checkpoint({"config": self.config.to_dict(), "step": self.step, "diverged": self.diverged,
                         "log_name": self.log.path.name, **self._checkpoint()}, self.out_dir / "checkpoint.pt")
        self.genome.detach().clone().save(self.out_dir / "genome.json")


class MetaTrainer(Trainer):
    """Meta-trains one genome shared by every task and topology of ``config``, by gradient descent.

    ``MetaTrainer(config, out_dir)`` starts a run: ``out_dir`` receives ``checkpoint.pt``,
    ``log.csv`` (or ``.jsonl``: ``log_name``) and ``genome.json`` (the genome after the last step).
    ``MetaTrainer.resume(out_dir)`` continues the run saved there. :meth:`run` trains up to
    ``config.meta_steps`` (or ``until``) and returns the genome.

    ``device``: where the genome, Adam's state and the networks live, a torch device or its name
    (``"cuda"``, ``"cuda:1"``; None: the CPU); episodes are moved there. One this machine lacks
    raises ``ValueError`` before ``out_dir`` is touched. It is not saved: ``resume(out_dir,
    device=...)`` may pick another one. On the CPU a run is the same bit for bit as without it.
    """

    method = "gradient"
    checkpoint_keys = ("genome", "optimizer")

    def __init__(self, config: MetaConfig, out_dir, *, device: str | torch.device | None = None, **kwargs):
        self.device = resolve_device(device)
        super().__init__(config, out_dir, **kwargs)

    def _setup(self, state: dict | None) -> None:
        genome = starting_genome(self.config) if state is None else genome_from_state(state["genome"])
        self.genome = genome.detach().to(device=self.device).clone().requires_grad_()
        self.optimizer = torch.optim.Adam(self.genome.parameters(), lr=self.config.lr)
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])  # moves the moments to the genome's device

    # ------------------------------------------------------------------ one meta-step
    def meta_step(self) -> StepResult:
        """Run meta-step ``self.step`` and advance; returns what it measured."""
        start = time.perf_counter()
        config, step = self.config, self.step
        task, topo, synapse_seed = self.draw(step)
        unroll = config.unroll(step)
        episode, topology = self.episode(step, 0, task, topo)
        loss, accuracy, finite = query_loss(self.genome, topology, episode, synapse_seed, self.dtype,
                                            config.score_points, self.device)
        grad_norm = float("nan")
        diverged = int((~finite).sum())
        if finite.any():
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.genome.parameters(), config.clip))
            if np.isfinite(grad_norm):
                self.optimizer.step()
            else:
                diverged = max(diverged, 1)
        self.diverged += diverged
        result = StepResult(step, unroll, config.tasks[task], config.topologies[topo], float(loss.detach()),
                            accuracy, grad_norm, diverged, time.perf_counter() - start)
        self.log.write(dataclasses.asdict(result))
        self.step += 1
        return result

    def _checkpoint(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "genome": genome_state(self.genome)}


def start(config: MetaConfig, out_dir, *, log_name: str = "log.csv", backend=None, device=None) -> Trainer:
    """A new run of ``config`` in ``out_dir``: a :class:`MetaTrainer` or, for ``method="cma"``, a
    :class:`graphnet.meta.CMATrainer` (scoring its generations on ``backend``, default here).

    ``device`` (a torch device or its name, e.g. ``"cuda"``; None: the CPU) is where the networks
    run: the gradient trainer's, or for CMA-ES that of the default ``LocalBackend(device=device)``
    (a given ``backend`` has its own: passing both raises ``ValueError``)."""
    return _trainer_class(config.method)(config, out_dir, log_name=log_name,
                                         **_options(config, out_dir, backend, device))


def resume(out_dir, *, meta_steps: int | None = None, log_name: str | None = None, backend=None,
           device=None) -> Trainer:
    """The trainer of the run saved in ``out_dir`` (gradient or CMA-ES, as its config says), ready
    to continue it exactly (a CMA-ES run on ``backend``, whichever it was started on), on
    ``device`` (as in :func:`start`; whichever the run was started on)."""
    _, config = _load_run(pathlib.Path(out_dir) / "checkpoint.pt")
    return _trainer_class(config.method).resume(out_dir, meta_steps=meta_steps, log_name=log_name,
                                                **_options(config, out_dir, backend, device))


def _options(config: MetaConfig, out_dir, backend, device) -> dict:
    """The runtime options of ``config.method``'s trainer: ``device`` (gradient) or ``backend`` (CMA-ES)."""
    if config.method == "cma":
        if backend is not None and device is not None:
            raise ValueError(f"device={device!r} and backend={backend!r}: a CMA-ES run scores on its backend's "
                             "device; give the device to the backend (LocalBackend(device=...), "
                             "RayBackend(device=...)) and no device here")
        return {"backend": LocalBackend(device=device) if backend is None else backend}
    if backend is not None:
        raise ValueError(f"a scoring backend ({backend!r}) applies to CMA-ES runs; the run in {out_dir} has "
                         f"method={config.method!r} (gradient meta-training runs in one process)")
    return {"device": device}


def _trainer_class(method: str) -> type[Trainer]:
    if method == "cma":
        from graphnet.meta.cma import CMATrainer  # imports trainer.py: imported here, not at the top
        return CMATrainer
    return MetaTrainer


def _load_run(path: pathlib.Path) -> tuple[dict, MetaConfig]:
    state = load_checkpoint(path, ("config", "step", "diverged", "log_name"))
    try:
        config = MetaConfig.from_dict(state["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} holds an unusable config: {e}") from None
    return state, config


def query_loss(genome: Genome, topology, episode, synapse_seed: int, dtype, score_points: int = 1,
               device=None) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Unroll ``genome`` on ``episode`` (replicas as a population) and score its query batches.

    The network runs on ``device`` (a torch device or its name; None: the CPU), where the episode
    is moved. Returns ``(loss, accuracy, finite)``: softmax cross-entropy of the output states on
    the query batches over the finite replicas, averaged over ``score_points`` evenly spaced points
    of the unroll (a 0-d tensor on ``device``, differentiable to the genome); their query accuracy
    after the last step (a float); and ``finite [replicas]`` (bool, on ``device``). The gradient
    comes from the finite replicas only: a diverged replica's own backward pass gives
    ``0 * inf = NaN``, so each replica runs on its own copy of the genome whose gradient is dropped
    when that replica is not finite.
    """
    replicas, unroll = episode.support_x.shape[:2]
    points = score_steps(unroll, score_points)
    finite = None  # [replicas] bool, set below before any backward pass reads it in the hooks

    def member(r: int) -> Genome:
        copy = genome.clone()
        for t in (t for t in copy.parameters() if t.requires_grad):
            t.register_hook(lambda g, r=r: g if bool(finite[r]) else torch.zeros_like(g))
        return copy

    differentiable = torch.is_grad_enabled() and any(t.requires_grad for t in genome.parameters())
    members = [member(r) for r in range(replicas)] if differentiable else [genome] * replicas
    net = Network(topology, members, seed=synapse_seed, dtype=dtype, device=device)
    episode = episode.to(net.device)
    y = episode.query_y.flatten(1, 2)  # [R, Q*B]
    logits = unroll_logits(net, episode, points)  # [points, R, Q*B, n_out]
    finite = torch.isfinite(logits).flatten(2).all(2).all(0) & net.finite()
    if not finite.any():
        return logits.new_tensor(float("nan")), float("nan"), finite
    kept = logits[:, finite]
    loss = torch.nn.functional.cross_entropy(kept.flatten(0, 2), y[finite].repeat(len(points), 1).flatten())
    accuracy = float((kept[-1].argmax(-1) == y[finite]).float().mean())
    return loss, accuracy, finite


def genome_state(genome: Genome) -> dict:
    """A genome as checkpoints hold it: plain types and tensors."""
    genome = genome.detach().clone()
    return {"options": genome.options.to_dict(), "tensors": genome.tensors()}


def genome_from_state(genome: dict) -> Genome:
    """Inverse of :func:`genome_state`."""
    options = RuleOptions.from_dict(genome["options"])
    tensors = genome["tensors"]
    if set(tensors) != set(field_names(options)):
        raise ValueError(f"checkpoint genome has tensors {sorted(tensors)}, expected {list(field_names(options))}")
    return Genome(options=options, **tensors)


def _mean(values) -> float:
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")
