"""Network graphs: :class:`Topology` (neurons, forward and backward edges, superneurons)."""
from graphnet.topology.graph import EdgeBlock, NeuronGroup, Topology

__all__ = ["Topology", "NeuronGroup", "EdgeBlock"]
