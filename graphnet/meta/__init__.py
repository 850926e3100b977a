"""Meta-training of genomes: by gradient descent through unrolled inner learning, or by CMA-ES."""
from graphnet.meta.backend import LocalBackend
from graphnet.meta.checkpoint import CheckpointError, RunInUseError
from graphnet.meta.cma import CMATrainer
from graphnet.meta.config import MetaConfig
from graphnet.meta.log import MetricsLog, read_log
from graphnet.meta.ray_backend import RayBackend  # imports Ray only when a RayBackend is built
from graphnet.meta.trainer import MetaTrainer, query_loss, resume, start, starting_genome
from graphnet.meta.unroll import Scores, population_scores

__all__ = ["CMATrainer", "CheckpointError", "LocalBackend", "MetaConfig", "MetaTrainer", "MetricsLog", "RayBackend",
           "RunInUseError", "Scores", "population_scores", "query_loss", "read_log", "resume", "start",
           "starting_genome"]
