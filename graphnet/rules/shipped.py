"""Genomes that ship with graphnet, as package data in ``graphnet/genomes/``.

``graphnet/genomes/catalog.json`` lists them: ``{"default": name, "genomes": {name: {"file": ...,
"description": ..., "command": ..., ...}}}``. Each genome file is a normal genome file
(:mod:`graphnet.rules.files`).
"""
from __future__ import annotations

import json
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
