"""Genomes that ship with graphnet, as package data in ``graphnet/genomes/``.

``graphnet/genomes/catalog.json`` lists them: ``{"default": name, "genomes": {name: {"file": ...,
"description": ..., "command": ..., ...}}}``. Each genome file is a normal genome file
(:mod:`graphnet.rules.files`).
"""
from __future__ import annotations

import json
import os
import pathlib
from importlib import resources


def catalog() -> dict:
    """The catalog of shipped genomes: ``{"default": name, "genomes": {name: metadata}}``."""
    text = resources.files("graphnet.genomes").joinpath("catalog.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_shipped(name: str | None = None):
    """The shipped genome ``name`` (None: the default one)."""
    from graphnet.rules.files import load_genome

    entries = catalog()
    name = entries["default"] if name is None else name
    if name not in entries["genomes"]:
        raise ValueError(f"no shipped genome named {name!r}; shipped genomes: {sorted(entries['genomes'])} "
                         "(list them with `graphnet genomes`)")
    with resources.as_file(resources.files("graphnet.genomes").joinpath(entries["genomes"][name]["file"])) as path:
        return load_genome(path)


def genome_from(source: str | os.PathLike):
    """A genome file (a path: it ends in ``.json``, exists or names a folder) or a shipped genome's name."""
    path = pathlib.Path(source)
    if path.suffix == ".json" or path.exists() or len(path.parts) > 1:
        from graphnet.rules.files import load_genome
        return load_genome(path)
    return load_shipped(str(source))
