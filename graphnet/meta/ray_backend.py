"""Distributed scoring of CMA-ES generations on Ray (an optional extra: ``pip install 'ray>=2'``).

Each generation, :class:`RayBackend` splits the candidates into ``workers`` contiguous shares,
sends each share to a Ray task that scores it with :func:`graphnet.meta.backend.score_share` (one
population pass per draw, as the local backend scores the whole generation) and joins the
scores in candidate order. A candidate's scores depend only on its own vector and the
generation's episodes and seeds, so the fitnesses are the single-process run's, bit for bit
(``tests/meta/test_cma_ray.py``).

Sent per generation: each draw's episode (one object in Ray's object store, read by every task),
each share's candidate vectors (``[P/workers, n_total]``); back: three numbers per candidate. The
starting genome (its layout) and each topology are put in the object store once per run.

With ``device="cuda"`` each share's task reserves one GPU of the cluster (Ray then shows it that
GPU alone, as ``cuda``), and by default there is one share per GPU.
"""
from __future__ import annotations

import torch

from graphnet.engine import parse_device
from graphnet.meta.backend import Draw, concat_scores, score_share, shares
from graphnet.meta.unroll import Scores


def ray_module():
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError("distributed CMA-ES scoring (--ray) needs Ray: pip install 'ray>=2' "
                          "(or, in graphnet's source folder, pip install -e '.[ray]')") from None
    return ray


def _score_task(vectors, like, draws, dtype, score_points, threads, device):
    """A Ray task: score one share (topologies arrive as object refs, put once per run)."""
    import ray

    torch.set_num_threads(threads)
    topologies = ray.get([d.topology for d in draws])
    draws = [d._replace(topology=t) for d, t in zip(draws, topologies)]
    return score_share(vectors, like, draws, dtype, score_points, device)


class RayBackend:
    """Scores each generation's candidates on Ray workers, in ``workers`` contiguous shares.

    Args:
        address: the Ray cluster to join (``"HEAD:6379"``, ``"auto"``); None starts a local Ray
            (or uses ``$RAY_ADDRESS``). A Ray already initialized in this process is used as is.
        workers: shares per generation (default: the CPUs Ray reports, divided by ``threads``;
            with a CUDA ``device``: the GPUs Ray reports).
        threads: torch threads of each share's task (it reserves that many CPUs).
        device: where each share's population networks run: ``"cpu"`` (None, the default) or
            ``"cuda"``: each share's task then reserves one GPU (``num_gpus=1``), which Ray picks,
            so the name takes no index. The workers, not this machine, need the GPUs: :meth:`start`
            checks that the cluster has some (``ValueError`` if not).

    Ray is imported when the backend is built (ImportError saying how to install it) and started
    on :meth:`start` or the first generation; :meth:`close` shuts down a Ray it started. Use it as
    ``CMATrainer(config, out, backend=RayBackend())``, or ``with RayBackend() as backend: ...``.
    """

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1,
                 device: str | torch.device | None = None):
        for name, value in (("workers", workers), ("threads", threads)):
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"RayBackend.{name} must be a positive integer, got {value!r}")
        self.device = parse_device(device)
        if self.device.type not in ("cpu", "cuda") or (self.device.type == "cuda" and self.device.index is not None):
            raise ValueError(f"RayBackend(device={str(self.device)!r}): expected 'cpu' or 'cuda' (Ray assigns each "
                             "share's task its GPU, so no index)")
        self.gpus = 1 if self.device.type == "cuda" else 0  # GPUs each share's task reserves
        self.ray = ray_module()
        self.address, self.threads = address, threads
        self.workers = workers  # set from the cluster's CPUs (or GPUs) on start() when None
        self._started = False  # whether we initialized Ray (and so shut it down)
        self._task = None
        self._refs: dict[int, tuple[object, object]] = {}  # id(obj) -> (obj, ref): put once per run

    def start(self) -> "RayBackend":
        """Connect to (or start) Ray and fix the number of shares; idempotent."""
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            self._started = True
        if self.gpus and ray.cluster_resources().get("GPU", 0) < self.gpus:
            raise ValueError("RayBackend(device='cuda'), but the Ray cluster has no GPU (ray.cluster_resources())")
        if self.workers is None:
            self.workers = (int(ray.cluster_resources()["GPU"]) if self.gpus
                            else max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads))
        if self._task is None:
            self._task = ray.remote(_score_task).options(num_cpus=self.threads, num_gpus=self.gpus)
        return self

    def describe(self) -> str:
        """One line: where the shares run."""
        cpus = int(self.ray.cluster_resources().get("CPU", 0))
        nodes = sum(1 for node in self.ray.nodes() if node.get("Alive"))
        return (f"Ray: {nodes} node(s), {cpus} CPUs; each generation is split into up to {self.workers} "
                f"share(s) of {self.threads} thread(s) on {self.device}")

    def _put(self, obj):
        if id(obj) not in self._refs:  # holding obj keeps its id from being reused
            self._refs[id(obj)] = (obj, self.ray.put(obj))
        return self._refs[id(obj)][1]

    def score(self, vectors: torch.Tensor, like, draws, dtype, score_points: int) -> list[Scores]:
        self.start()
        ray = self.ray
        sent = ray.put([Draw(self._put(d.topology), d.episode, d.synapse_seed) for d in draws])
        # clone: a view (vectors[part]) would be pickled with all of its storage
        futures = [self._task.remote(vectors[part].clone(), self._put(like), sent, dtype, score_points, self.threads,
                                     self.device) for part in shares(len(vectors), self.workers)]
        results = ray.get(futures)  # [share][draw]
        return [concat_scores([share[d] for share in results]) for d in range(len(draws))]

    def close(self) -> None:
        """Drop the refs held for this run and shut down the Ray this backend started."""
        self._refs.clear()
        self._task = None
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def __enter__(self) -> "RayBackend":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"RayBackend(address={self.address!r}, workers={self.workers!r}, threads={self.threads}, "
                f"device={str(self.device)!r})")
