"""Offline, deterministic data: image sets by name, transforms, 2-D toy tasks, task strings and
index-addressable episodes. Imports only torch and numpy (scikit-learn lazily, for ``digits``).

    ds = load("mnist", "test")                       # Dataset: x float32 [10000, 28, 28] in [0, 1]
    ds = task("mnist:10x10:0-4")                     # paper crop+resize, classes 0..4 relabeled
    episode = EpisodeSampler(ds, seed=0).episode(7)  # support_x [10, 128, 100], query_x [2, 128, 100]
"""
from graphnet.data.dataset import Dataset
from graphnet.data.episodes import Episode, EpisodeSampler
from graphnet.data.sources import DATASETS, DataUnavailableError, load
from graphnet.data.tasks import TaskSpec, task
from graphnet.data.toy import TOY_TASKS, toy
from graphnet.data.transforms import center_crop, feature_stats, paper_10x10, resize, select_classes, standardize

__all__ = ["DATASETS", "TOY_TASKS", "DataUnavailableError", "Dataset", "Episode", "EpisodeSampler", "TaskSpec",
           "center_crop", "feature_stats", "load", "paper_10x10", "resize", "select_classes", "standardize",
           "task", "toy"]
