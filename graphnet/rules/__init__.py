"""Update rules: the learned :class:`Genome` and its structural :class:`RuleOptions`.

Genome files (``Genome.save``/``Genome.load``, graphnet/rules/files.py) are imported lazily.
"""
from graphnet.rules.genome import Genome
from graphnet.rules.options import Activation, BackwardUpdate, Feedback, RuleOptions

__all__ = ["Genome", "RuleOptions", "Activation", "BackwardUpdate", "Feedback"]
