"""The simulator: state tensors, sweeps, synapse updates and kernels."""
from graphnet.engine.network import Network
from graphnet.engine.rule import RuleTensors

__all__ = ["Network", "RuleTensors"]
