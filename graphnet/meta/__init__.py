"""Meta-training of genomes by gradient descent through unrolled inner learning."""
from graphnet.meta.checkpoint import CheckpointError
from graphnet.meta.config import MetaConfig
from graphnet.meta.log import MetricsLog, read_log
from graphnet.meta.trainer import MetaTrainer, query_loss, starting_genome

__all__ = ["CheckpointError", "MetaConfig", "MetaTrainer", "MetricsLog", "query_loss", "read_log", "starting_genome"]
