"""The simulator: state tensors, sweeps, synapse updates and kernels."""
from graphnet.engine.devices import parse_device, resolve_device
from graphnet.engine.network import Network
from graphnet.engine.rule import RuleTensors

__all__ = ["Network", "RuleTensors", "parse_device", "resolve_device"]
