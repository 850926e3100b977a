"""The same network trained by autograd: SGD and Adam baselines for a learned rule.

"The same network" means the same topology (any DAG or cyclic graph, superneuron blocks or
neuron-level edges, with the bias neuron), the same initial synapses and the same batches as a
graphnet :class:`~graphnet.Network` run by a genome. The baseline does not re-implement the
network: it runs the engine's own forward sweep with a forward-only genome (the backprop genome
with linear outputs, :func:`forward_genome`), makes the synapse tensor ``W [pop, n_edges, 1]``
a leaf, sets ``net.forward_weights = W`` and differentiates the softmax cross-entropy of
``net.predict(x)`` with respect to ``W``. A whole grid (learning rates x seeds) is one
population: member ``p = i * n_seeds + j`` has learning rate ``lrs[i]``, the initial synapses of
seed ``seeds[j]`` and the batch stream of seed ``seeds[j]``.

This module also holds the plumbing the genome evaluation (:mod:`graphnet.evaluation`) shares,
so the two paths cannot drift apart: the task adapter (:class:`EvalTask`, :func:`as_task`), the
batch stream (:func:`batch_stream`, :func:`member_batches`), initial synapses for arbitrary seeds
(:func:`seed_synapses`), test-set scoring (:func:`score`) and the curve record (:class:`Curves`).

Default learning-rate grids (half-decade steps, configurable everywhere):

- SGD ``(0.01, 0.03, 0.1, 0.3, 1.0)``;
- Adam ``(1e-4, 3e-4, 1e-3, 3e-3, 1e-2)``, PyTorch's defaults otherwise (betas 0.9, 0.999, eps 1e-8).

Divergence: a member whose batch loss or synapses become NaN/Inf is frozen (its synapses are
zeroed so the population keeps running, its learning rate set to 0), ``diverged_at`` records the
inner step, and its test accuracy and loss are NaN from that step on. Nothing raises.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from graphnet.engine import Network
from graphnet.rules import Genome
from graphnet.topology import Topology

DEFAULT_SGD_LRS = (0.01, 0.03, 0.1, 0.3, 1.0)
DEFAULT_ADAM_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
DEFAULT_STEPS = (1, 2, 5, 10, 20, 50, 100)
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam defaults
ADAM_EPS = 1e-8
OPTIMIZERS = ("sgd", "adam")
# Test-set chunks are sized so the neuron states [pop, k, n_neurons, chunk] hold at most this many numbers.
STATE_BUDGET = 1 << 24


# ---------------------------------------------------------------------------------------------- tasks
@dataclasses.dataclass(frozen=True, eq=False)
class EvalTask:
    """A classification task: train and test split as flat tensors.

    Attributes:
        name: shown in tables and plots.
        x_train: ``[N, n_features]`` float (more dims are flattened); ``y_train``: ``[N]`` int labels.
        x_test: ``[M, n_features]``; ``y_test``: ``[M]``.
        n_classes: number of classes (0: ``max label + 1`` over both splits).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int = 0

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x = torch.as_tensor(getattr(self, f"x_{split}"))
            y = torch.as_tensor(getattr(self, f"y_{split}"))
            if x.dim() < 2:
                raise ValueError(f"task {self.name!r}: x_{split} must be [N, n_features], got shape {list(x.shape)}")
            x = x.reshape(x.shape[0], -1)
            if not x.is_floating_point():
                x = x.float()
            if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
                raise ValueError(f"task {self.name!r}: y_{split} must be 1-D integer labels, got "
                                 f"{y.dtype} of shape {list(y.shape)}")
            if y.shape[0] != x.shape[0] or x.shape[0] == 0:
                raise ValueError(f"task {self.name!r}: x_{split} has {x.shape[0]} rows, y_{split} {y.shape[0]} "
                                 "(need the same, > 0)")
            if int(y.min()) < 0:
                raise ValueError(f"task {self.name!r}: y_{split} has negative labels")
            if not torch.isfinite(x).all():
                raise ValueError(f"task {self.name!r}: x_{split} contains NaN or Inf")
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y.long())
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(f"task {self.name!r}: train has {self.x_train.shape[1]} features, "
                             f"test {self.x_test.shape[1]}")
        top = int(max(self.y_train.max(), self.y_test.max())) + 1
        n_classes = int(self.n_classes) or top
        if n_classes < top:
            raise ValueError(f"task {self.name!r}: n_classes={n_classes} but labels reach {top - 1}")
        object.__setattr__(self, "n_classes", n_classes)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def chance(self) -> float:
        """Accuracy of guessing: ``1 / n_classes``."""
        return 1.0 / self.n_classes

    def __repr__(self) -> str:
        return (f"EvalTask({self.name!r}, train {len(self.y_train)}, test {len(self.y_test)}, "
                f"{self.n_features} features, {self.n_classes} classes)")


def _is_dataset(obj) -> bool:
    return callable(getattr(obj, "flat", None)) and hasattr(obj, "y")


def as_task(*data, name: str | None = None) -> EvalTask:
    """Adapt what callers have to an :class:`EvalTask`. Accepted forms:

    - ``(task,)``: an :class:`EvalTask` (returned as is, or renamed);
    - ``(train, test)``: two dataset objects with ``.flat() -> [N, n_features]`` and ``.y`` (and
      optionally ``.name``, ``.n_classes``), e.g. ``graphnet.data`` splits;
    - ``(x_train, y_train, x_test, y_test)`` tensors, or ``(name, x_train, y_train, x_test, y_test)``;
    - any of these as one tuple.
    """
    if len(data) == 1 and isinstance(data[0], (tuple, list)):
        data = tuple(data[0])
    if len(data) == 1 and isinstance(data[0], EvalTask):
        task = data[0]
        return task if name is None or name == task.name else dataclasses.replace(task, name=name)
    if len(data) == 2 and all(_is_dataset(d) for d in data):
        train, test = data
        n_classes = int(getattr(train, "n_classes", 0) or 0)
        return EvalTask(name or str(getattr(train, "name", "task")), train.flat(), train.y, test.flat(), test.y,
                        n_classes=n_classes)
    if len(data) == 5 and isinstance(data[0], str):
        return EvalTask(name or data[0], *data[1:])
    if len(data) == 4:
        return EvalTask(name or "task", *data)
    raise TypeError("a task is an EvalTask, (train, test) datasets with .flat() and .y, "
                    "(x_train, y_train, x_test, y_test) or (name, x_train, y_train, x_test, y_test); "
                    f"got {len(data)} item(s): {[type(d).__name__ for d in data]}")


# ---------------------------------------------------------------------------------------------- batches
def stream_seed(batch_seed: int, seed: int) -> int:
    """The seed of the batch stream of network seed ``seed`` (a hash of both, via numpy's SeedSequence)."""
    if batch_seed < 0 or seed < 0:
        raise ValueError(f"batch_seed and seed must be >= 0, got {batch_seed}, {seed}")
    return int(np.random.SeedSequence([int(batch_seed), int(seed)]).generate_state(1)[0])


def batch_stream(n: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """Indices of ``steps`` batches into a dataset of ``n`` examples: ``LongTensor [steps, batch_size]``.

    Sampling is without replacement within an epoch: the stream is a concatenation of random
    permutations of ``range(n)`` (from a CPU generator seeded with ``seed``), cut into batches;
    a batch may straddle two epochs.
    """
    if n < 1 or batch_size < 1 or steps < 0:
        raise ValueError(f"batch_stream needs n >= 1, batch_size >= 1, steps >= 0; got {n}, {batch_size}, {steps}")
    gen = torch.Generator().manual_seed(int(seed))
    need = steps * batch_size
    perms = [torch.randperm(n, generator=gen) for _ in range(-(-need // n))]
    flat = torch.cat(perms) if perms else torch.zeros(0, dtype=torch.long)
    return flat[:need].view(steps, batch_size)


def member_batches(n: int, batch_size: int, steps: int, seeds, batch_seed: int) -> torch.Tensor:
    """The streams of every seed: ``[n_seeds, steps, batch_size]``; row ``j`` is
    ``batch_stream(n, batch_size, steps, stream_seed(batch_seed, seeds[j]))``, shared by the genome
    evaluation and both baselines."""
    return torch.stack([batch_stream(n, batch_size, steps, stream_seed(batch_seed, s)) for s in seeds])


# ---------------------------------------------------------------------------------------------- synapses
def check_seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct integers >= 0 (at least one), got {seeds}")
    return seeds


def check_steps(steps) -> tuple[int, ...]:
    """Recorded step counts: sorted, distinct, >= 0 (0 = before any training)."""
    steps = tuple(sorted({int(s) for s in steps}))
    if not steps or steps[0] < 0:
        raise ValueError(f"steps must be inner-step counts >= 0 (at least one), got {steps}")
    return steps


def seed_synapses(topology: Topology, genome, seeds, *, dtype=torch.float32, device=None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The initial synapses a single ``Network(topology, genome, seed=s)`` draws, for each ``s`` in
    ``seeds``: forward ``[n_seeds, n_forward_edges, channels]`` and backward
    ``[n_seeds, n_backward_edges, channels]`` (None when tied to the forward ones)."""
    seeds = check_seeds(seeds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a backprop genome's "not SGD" warnings are shown by the caller's network
        net = Network(topology, genome, seed=seeds[0], dtype=dtype, device=device)
    forward, backward = [], []
    tied = net.rule.options.tied_backward
    for s in seeds:
        net.reset(s)
        forward.append(net.forward_weights[0])
        if not tied:
            backward.append(net.backward_weights[0])
    return torch.stack(forward), (torch.stack(backward) if backward else None)


def population(topology: Topology, genome, seeds, *, dtype=torch.float32, device=None, **network_kwargs) -> Network:
    """``Network([genome] * len(seeds))`` whose member ``i`` has the initial synapses of seed ``seeds[i]``
    (consecutive seeds: the population's own draw; otherwise each member set from its seed)."""
    seeds = check_seeds(seeds)
    net = Network(topology, [genome] * len(seeds), seed=seeds[0], dtype=dtype, device=device, **network_kwargs)
    if seeds != tuple(range(seeds[0], seeds[0] + len(seeds))):
        forward, backward = seed_synapses(topology, genome, seeds, dtype=dtype, device=device)
        net.forward_weights = forward
        if backward is not None:
            net.backward_weights = backward
    return net


def forward_genome(activation: str = "relu", dtype: torch.dtype = torch.float32) -> Genome:
    """The genome whose forward sweep is the plain network the baselines train: the backprop genome
    (``k = 2``, one channel, ``init_scale = 1``) with ``activation`` on hidden neurons and linear
    (identity) outputs, i.e. logits. Its own learning rate is 0: only autograd changes synapses."""
    return Genome.backprop(0.0, activation=activation, loss="cross_entropy", dtype=dtype,
                           output_activation="identity")


# ---------------------------------------------------------------------------------------------- scoring
def chunk_size(n_members: int, k: int, n_neurons: int, n_examples: int) -> int:
    """Examples per test chunk so that the states ``[pop, k, n_neurons, chunk]`` stay within STATE_BUDGET."""
    return int(max(1, min(n_examples, STATE_BUDGET // max(1, n_members * k * n_neurons))))


@torch.no_grad()
def score(predict, x: torch.Tensor, y: torch.Tensor, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy and mean softmax cross-entropy of ``predict(x_chunk) -> [pop, b, n_outputs]`` over the
    whole set, in chunks of ``chunk`` examples.

    Returns ``accuracy [pop]``, ``loss [pop]`` and ``finite [pop]`` (False where some output was
    NaN/Inf; accuracy and loss are NaN there).
    """
    correct = loss = finite = None
    for start in range(0, x.shape[0], chunk):
        out = predict(x[start:start + chunk])  # [pop, b, n_out]
        yb = y[start:start + chunk]
        ok = torch.isfinite(out).flatten(1).all(1)  # [pop]
        safe = torch.where(ok.view(-1, 1, 1), out, torch.zeros_like(out)).double()
        c = (safe.argmax(2) == yb).sum(1)
        ce = F.cross_entropy(safe.transpose(1, 2), yb.expand(out.shape[0], -1), reduction="none").sum(1)
        correct = c if correct is None else correct + c
        loss = ce if loss is None else loss + ce
        finite = ok if finite is None else finite & ok
    n = x.shape[0]
    acc = (correct.double() / n).cpu().numpy()
    loss = (loss / n).cpu().numpy()
    finite = finite.cpu().numpy()
    acc[~finite] = np.nan
    loss[~finite] = np.nan
    return acc, loss, finite


def summary(accuracy: np.ndarray, chance: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 0) over the seed axis (second to last) of ``accuracy``,
    with a diverged member (NaN) counted at ``chance`` accuracy, so divergence is penalized, never
    dropped."""
    a = np.where(np.isnan(accuracy), chance, accuracy)
    return a.mean(axis=-2), a.std(axis=-2)


# ---------------------------------------------------------------------------------------------- curves
@dataclasses.dataclass(eq=False)
class Curves:
    """Test accuracy and loss of one method on one (task, topology), per seed and recorded step.

    Attributes:
        method: ``"sgd"``, ``"adam"`` or a genome's name.
        steps: recorded inner-step counts ``[T]``; seeds: ``[S]``.
        accuracy: ``[S, T]`` (genome) or ``[L, S, T]`` (baseline, one row per learning rate); NaN
            where the member had diverged.
        loss: test softmax cross-entropy of the outputs, same shape.
        diverged_at: ``[S]`` / ``[L, S]`` inner step at which a member diverged, -1 if never.
        lrs: ``[L]`` learning rates (baselines), None for a genome.
        train_loss: ``[L, S, max(steps)]`` batch loss before each update (baselines), or None.
        seconds: wall time of the run (training and test scoring).
    """

    method: str
    steps: tuple
    seeds: tuple
    accuracy: np.ndarray
    loss: np.ndarray
    diverged_at: np.ndarray
    lrs: tuple | None = None
    train_loss: np.ndarray | None = None
    seconds: float = 0.0

    @property
    def diverged(self) -> np.ndarray:
        """``[S]`` / ``[L, S]`` bool."""
        return self.diverged_at >= 0

    @property
    def is_baseline(self) -> bool:
        return self.lrs is not None

    def summary(self, chance: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over seeds (``[T]``, or ``[L, T]`` for a baseline); see :func:`summary`."""
        return summary(self.accuracy, chance)

    def best(self, chance: float) -> dict:
        """Best learning rate per step budget (baselines): for every recorded step, the lr with the
        highest mean test accuracy over seeds at that step (diverged seeds count at chance; ties go
        to the smaller lr). This is an oracle choice on the test set, favourable to the baselines.

        Returns ``{"lr_index": [T], "lr": [T], "mean": [T], "std": [T], "accuracy": [S, T]}``.
        """
        if not self.is_baseline:
            raise ValueError(f"{self.method}: best learning rate is defined for baselines only")
        mean, std = self.summary(chance)  # [L, T]
        index = mean.argmax(0)
        cols = np.arange(len(self.steps))
        return {"lr_index": index, "lr": np.asarray(self.lrs)[index], "mean": mean[index, cols],
                "std": std[index, cols], "accuracy": self.accuracy[index, :, cols].T}


# ---------------------------------------------------------------------------------------------- training
class AutogradTrainer:
    """A population of the same network trained by autograd, one learning rate per member.

    Member ``p`` has synapses ``weights[p]`` (``[pop, n_forward_edges]`` in topology edge order)
    and learning rate ``lrs[p]``. :meth:`step` runs the engine's forward sweep on ``x [pop, B, D]``,
    takes the softmax cross-entropy of the logits against ``y [pop, B]`` (mean over the batch), and
    updates every member with its own gradient: SGD ``w ← w − lr·g`` or Adam (PyTorch's update with
    bias correction; betas ``(0.9, 0.999)``, eps ``1e-8``).
    """

    def __init__(self, topology: Topology, weights: torch.Tensor, lrs, *, optimizer: str = "sgd",
                 activation: str = "relu", dtype: torch.dtype = torch.float32, device=None, kernel: str = "csr"):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r}: expected one of {OPTIMIZERS}")
        weights = torch.as_tensor(weights)
        pop = weights.shape[0]
        lrs = torch.as_tensor(lrs, dtype=torch.float64).flatten()
        if lrs.shape[0] != pop:
            raise ValueError(f"{lrs.shape[0]} learning rates for {pop} members")
        if not torch.isfinite(lrs).all() or (lrs < 0).any():
            raise ValueError(f"learning rates must be finite and >= 0, got {lrs.tolist()}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not SGD" warnings concern gradient feedback, unused here
            self.net = Network(topology, [forward_genome(activation, dtype)] * pop, dtype=dtype, device=device,
                               kernel=kernel)
        self.optimizer = optimizer
        device = self.net.device
        shape = (pop, topology.forward_index.shape[1], 1)
        self.weights = weights.detach().to(device, dtype).reshape(shape).clone()  # [pop, E, 1]
        self.lr = lrs.to(device, dtype).view(-1, 1, 1)
        self.t = 0
        self.diverged_at = torch.full((pop,), -1, dtype=torch.long)
        if optimizer == "adam":
            self.m = torch.zeros_like(self.weights)
            self.v = torch.zeros_like(self.weights)

    @property
    def population(self) -> int:
        return self.weights.shape[0]

    @property
    def alive(self) -> torch.Tensor:
        """``[pop]`` bool: members that have not diverged."""
        return self.diverged_at < 0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D]`` or ``[pop, B, D]`` -> logits ``[pop, B, n_outputs]`` (no autograd)."""
        with torch.no_grad():
            self.net.forward_weights = self.weights
            return self.net.predict(x)

    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch loss ``[pop]`` and its gradient w.r.t. the synapses ``[pop, E, 1]``."""
        w = self.weights.detach().requires_grad_(True)
        self.net.forward_weights = w  # the setter keeps the autograd graph
        logits = self.net.predict(x)  # [pop, B, C]
        y = torch.as_tensor(y, device=logits.device).long()
        loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)  # [pop]
        (grad,) = torch.autograd.grad(loss.sum(), w)  # members are independent: row p is dL_p/dW_p
        return loss.detach(), grad

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One update of every member on its batch ``x [pop, B, D]``, ``y [pop, B]``; returns the
        batch loss before the update ``[pop]`` (NaN for diverged members)."""
        loss, grad = self.loss_and_grad(x, y)
        self.t += 1
        with torch.no_grad():
            self._mark(~torch.isfinite(loss))
            live = self.alive.to(grad.device).view(-1, 1, 1)
            grad = torch.where(live & torch.isfinite(grad), grad, torch.zeros_like(grad))
            if self.optimizer == "sgd":
                self.weights -= self.lr * grad
            else:
                beta1, beta2 = ADAM_BETAS
                self.m.mul_(beta1).add_(grad, alpha=1 - beta1)
                self.v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias1 = 1 - beta1 ** self.t
                bias2_sqrt = math.sqrt(1 - beta2 ** self.t)
                denom = (self.v.sqrt() / bias2_sqrt).add_(ADAM_EPS)
                self.weights -= (self.lr / bias1) * self.m / denom
            self._mark(~torch.isfinite(self.weights).flatten(1).all(1))
        loss = loss.clone()
        loss[~self.alive.to(loss.device)] = float("nan")
        return loss

    def _mark(self, bad: torch.Tensor) -> None:
        """Freeze members that just diverged: record the step, zero synapses, lr and Adam moments."""
        new = bad.cpu() & self.alive
        if not new.any():
            return
        self.diverged_at[new] = self.t
        rows = new.to(self.weights.device)
        self.weights[rows] = 0.0
        self.lr[rows] = 0.0
        if self.optimizer == "adam":
            self.m[rows] = 0.0
            self.v[rows] = 0.0


def train_autograd(topology: Topology, *data, optimizer: str = "sgd", lrs=None, seeds=DEFAULT_SEEDS,
                   steps=DEFAULT_STEPS, batch_size: int = 128, activation: str = "relu", batch_seed: int = 0,
                   dtype: torch.dtype = torch.float32, device=None, kernel: str = "csr", progress=None) -> Curves:
    """Train the network ``topology`` with SGD or Adam for every (learning rate, seed) in one population.

    Args:
        topology: the graph; its inputs take the task's features, its outputs are the logits.
        *data: the task, in any form :func:`as_task` accepts, e.g. ``x_train, y_train, x_test, y_test``.
        optimizer: ``"sgd"`` or ``"adam"``.
        lrs: learning rates (default :data:`DEFAULT_SGD_LRS` / :data:`DEFAULT_ADAM_LRS`).
        seeds: member seed ``s`` starts from ``Network(topology, genome, seed=s)``'s initial synapses
            (``init_scale = 1``: ``N(0, 1) / sqrt(fan_in)``) and trains on the batch stream of ``s``.
        steps: inner-step counts at which the full test set is scored (0 = before training).
        batch_size, batch_seed: see :func:`member_batches`.
        activation: hidden-neuron activation; outputs are linear.
        dtype, device, kernel: of the engine network.
        progress: a :class:`graphnet.progress.Progress` advanced once per inner step, or None.

    Returns:
        :class:`Curves` with ``accuracy``/``loss`` ``[len(lrs), len(seeds), len(steps)]``,
        ``train_loss [len(lrs), len(seeds), max(steps)]`` and ``diverged_at [len(lrs), len(seeds)]``.
    """
    task = as_task(*data)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}: expected one of {OPTIMIZERS}")
    lrs = tuple(float(lr) for lr in (lrs if lrs is not None else
                                     DEFAULT_SGD_LRS if optimizer == "sgd" else DEFAULT_ADAM_LRS))
    if not lrs:
        raise ValueError("lrs is empty")
    seeds, steps = check_seeds(seeds), check_steps(steps)
    check_fit(topology, task)
    start = time.perf_counter()
    n_lr, n_seed = len(lrs), len(seeds)
    init, _ = seed_synapses(topology, forward_genome(activation, dtype), seeds, dtype=dtype, device=device)
    member_lrs = torch.tensor(lrs, dtype=torch.float64).repeat_interleave(n_seed)  # [L*S]
    trainer = AutogradTrainer(topology, init.repeat(n_lr, 1, 1), member_lrs,
                              optimizer=optimizer, activation=activation, dtype=dtype, device=device, kernel=kernel)
    device = trainer.net.device
    x_train, y_train = task.x_train.to(device, dtype), task.y_train.to(device)
    x_test, y_test = task.x_test.to(device, dtype), task.y_test.to(device)
    batches = member_batches(len(y_train), batch_size, steps[-1], seeds, batch_seed).to(device)  # [S, T, B]
    chunk = chunk_size(trainer.population, 2, topology.n_neurons, len(y_test))
    accuracy = np.full((n_lr * n_seed, len(steps)), np.nan)
    loss = np.full_like(accuracy, np.nan)
    train_loss = np.full((n_lr * n_seed, steps[-1]), np.nan)

    def record(t: int) -> None:
        col = steps.index(t)
        acc, test_loss, finite = score(trainer.logits, x_test, y_test, chunk)
        trainer._mark(torch.as_tensor(~finite))
        dead = ~trainer.alive.numpy()
        acc[dead], test_loss[dead] = np.nan, np.nan
        accuracy[:, col], loss[:, col] = acc, test_loss

    if steps[0] == 0:
        record(0)
    for t in range(1, steps[-1] + 1):
        idx = batches[:, t - 1]  # [S, B]
        x = x_train[idx].repeat(n_lr, 1, 1)  # [L*S, B, D], member p = i * S + j
        y = y_train[idx].repeat(n_lr, 1)
        train_loss[:, t - 1] = trainer.step(x, y).cpu().double().numpy()
        if t in steps:
            record(t)
        if progress is not None:
            progress.update(1)
    return Curves(method=optimizer, steps=steps, seeds=seeds, lrs=lrs,
                  accuracy=accuracy.reshape(n_lr, n_seed, -1), loss=loss.reshape(n_lr, n_seed, -1),
                  diverged_at=trainer.diverged_at.numpy().reshape(n_lr, n_seed),
                  train_loss=train_loss.reshape(n_lr, n_seed, -1), seconds=time.perf_counter() - start)


def check_fit(topology: Topology, task: EvalTask) -> None:
    """Raise if the task's features or classes do not fit the topology's inputs and outputs."""
    n_in, n_out = len(topology.input_index), len(topology.output_index)
    if n_in != task.n_features:
        raise ValueError(f"task {task.name!r} has {task.n_features} features, the topology {n_in} inputs")
    if n_out < task.n_classes:
        raise ValueError(f"task {task.name!r} has {task.n_classes} classes, the topology only {n_out} outputs")
