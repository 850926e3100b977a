"""graphnet: multi-state neural networks on arbitrary graphs, trained by meta-learned
bidirectional Hebbian rules (Sandler et al., ICML 2021), simulated by message passing."""
__version__ = "0.1.0"

from graphnet import topologies
from graphnet.engine import Network
from graphnet.rules import Genome
from graphnet.rules.options import Activation, BackwardUpdate, Feedback, RuleOptions
from graphnet.topology import Topology
from graphnet import baselines, data, evaluation, meta  # after the core: they build on it

__all__ = ["Activation", "BackwardUpdate", "Feedback", "Genome", "Network", "RuleOptions", "Topology",
           "baselines", "data", "evaluation", "meta", "topologies"]

