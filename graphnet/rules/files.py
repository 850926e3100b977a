"""Genome files: versioned, checksummed, human-readable JSON.

Imported lazily by :meth:`Genome.save` / :meth:`Genome.load`. A file looks like::

    {
      "format": "graphnet-genome",
      "version": 1,
      "k": 2,
      "dtype": "float32",
      "options": {"activation": "sigmoid", ...},        # RuleOptions.to_dict()
      "tensors": {"nu": [[1.0, 0.0], [1.0, 0.0]], ..., "f": 0.0, ...},
      "sha256": "9f2c..."
    }

``tensors`` holds every field of :meth:`Genome.tensors` as nested lists (one matrix row per line,
so files diff well). Numbers are written with Python's shortest round-trip ``repr`` of the float64
value of each entry, so float16/bfloat16/float32/float64 genomes come back bit for bit.

``sha256`` is the hex SHA-256 of the *canonical* JSON of every other key of the document
(``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``), so any changed
digit, option or header is detected; a file edited by hand must be re-saved through
:meth:`Genome.save`. Files are written atomically (temporary file in the same folder, fsync,
``os.replace``), so a crash never leaves a half-written genome under the final name.

Every defect found on loading raises :class:`GenomeFileError` (a ``ValueError``) whose message
names the path and the problem; a missing file raises ``FileNotFoundError``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib

import torch

from graphnet.atomic import atomic_write
from graphnet.rules.genome import Genome
from graphnet.rules.options import field_names
from graphnet.rules.options import RuleOptions

FORMAT = "graphnet-genome"
VERSION = 1
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
           "float64": torch.float64}
_KEYS = ("format", "version", "k", "dtype", "options", "tensors", "sha256")


class GenomeFileError(ValueError):
    """A genome file that cannot be read: corrupt, truncated, wrong format or version, bad values."""


class _NonFinite(Exception):
    pass


def checksum(body: dict) -> str:
    """Hex SHA-256 of the canonical JSON of ``body`` (the document without its ``sha256`` key)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def genome_to_dict(genome: Genome) -> dict:
    """The file document of ``genome`` (JSON-serializable, checksum included)."""
    genome.validate()
    dtype = str(genome.dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        raise ValueError(f"cannot save a {dtype} genome; genome files hold {', '.join(_DTYPES)}")
    body = {
        "format": FORMAT,
        "version": VERSION,
        "k": genome.k,
        "dtype": dtype,
        "options": genome.options.to_dict(),
        "tensors": {name: t.detach().cpu().tolist() for name, t in genome.tensors().items()},
    }
    return {**body, "sha256": checksum(body)}


def _render(doc: dict) -> str:
    """Indented JSON with one option and one matrix row per line."""
    lines = []
    for key, value in doc.items():
        if key == "tensors":
            items = []
            for name, t in value.items():
                if isinstance(t, list) and t and isinstance(t[0], list):
                    rows = ",\n".join("      " + json.dumps(row, allow_nan=False) for row in t)
                    items.append(f"    {json.dumps(name)}: [\n{rows}\n    ]")
                else:
                    items.append(f"    {json.dumps(name)}: {json.dumps(t, allow_nan=False)}")
            text = "{\n" + ",\n".join(items) + "\n  }"
        elif isinstance(value, dict):  # options: one per line
            items = [f"    {json.dumps(name)}: {json.dumps(v, allow_nan=False)}" for name, v in value.items()]
            text = "{\n" + ",\n".join(items) + "\n  }"
        else:
            text = json.dumps(value, allow_nan=False)
        lines.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def save_genome(genome: Genome, path: str | os.PathLike) -> pathlib.Path:
    """Write ``genome`` to ``path`` atomically; returns the path. The folder must exist."""
    path = pathlib.Path(path)
    doc = genome_to_dict(genome)
    text = _render(doc)
    assert json.loads(text) == doc, "genome file renderer lost information"
    atomic_write(path, text)
    return path


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _reject_constant(text: str):
    raise _NonFinite(text)


def load_genome(path: str | os.PathLike) -> Genome:
    """Read a genome file written by :func:`save_genome` (see the module docstring)."""
    shown = os.fspath(path)

    def fail(what: str) -> GenomeFileError:
        return GenomeFileError(f"genome file {shown}: {what}")

    try:
        raw = pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"genome file {shown} does not exist") from None
    except OSError as e:
        raise fail(f"cannot be read ({e.strerror or e})") from None
    if not raw.strip():
        raise fail("is empty")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_float=_finite_float, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise fail("is not UTF-8 text (corrupt, or not a genome file)") from None
    except json.JSONDecodeError as e:
        raise fail(f"is not valid JSON, probably truncated or corrupt ({e.msg} at line {e.lineno} "
                   f"column {e.colno})") from None
    except _NonFinite as e:
        raise fail(f"contains the non-finite number {e.args[0]}; genome values must be finite") from None
    except RecursionError:
        raise fail("is nested too deeply to be a genome file") from None

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise fail(f"is not a graphnet genome file (format {found!r}, expected {FORMAT!r})")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        newer = " (written by a newer graphnet?)" if type(version) is int and version > VERSION else ""
        raise fail(f"has unsupported version {version!r}{newer}; this graphnet reads version {VERSION}")
    missing = [key for key in _KEYS if key not in doc]
    unknown = sorted(set(doc) - set(_KEYS))
    if missing or unknown:
        raise fail(f"has missing key(s) {missing} / unknown key(s) {unknown}; expected keys {list(_KEYS)}")
    body = {key: value for key, value in doc.items() if key != "sha256"}
    computed = checksum(body)
    if doc["sha256"] != computed:
        raise fail(f"checksum mismatch: the file is corrupt or was edited by hand (stored sha256 "
                   f"{str(doc['sha256'])[:16]}..., contents hash to {computed[:16]}...)")

    # The checksum matched, so what follows guards against files written by other tools.
    dtype_name, k = doc["dtype"], doc["k"]
    if dtype_name not in _DTYPES:
        raise fail(f"has dtype {dtype_name!r}; valid dtypes: {', '.join(_DTYPES)}")
    if type(k) is not int:
        raise fail(f"has k={k!r}; expected an integer")
    if not isinstance(doc["options"], dict):
        raise fail(f"has options of type {type(doc['options']).__name__}; expected an object")
    try:
        options = RuleOptions.from_dict(doc["options"])
    except (TypeError, ValueError) as e:
        raise fail(f"has invalid options: {e}") from None
    tensors = doc["tensors"]
    if not isinstance(tensors, dict):
        raise fail(f"has tensors of type {type(tensors).__name__}; expected an object")
    expected = field_names(options)
    missing = [name for name in expected if name not in tensors]
    unknown = sorted(set(tensors) - set(expected))
    if missing or unknown:
        raise fail(f"has missing tensor(s) {missing} / unexpected tensor(s) {unknown} for its options; "
                   f"expected {list(expected)}")
    fields = {}
    for name in expected:
        try:
            fields[name] = torch.tensor(tensors[name], dtype=_DTYPES[dtype_name])
        except (TypeError, ValueError, RuntimeError) as e:
            raise fail(f"tensor {name!r} is not a numeric array ({e})") from None
    try:
        genome = Genome(options=options, **fields)
    except ValueError as e:
        raise fail(str(e)) from None
    if genome.k != k:
        raise fail(f"declares k={k} but nu has shape {list(genome.nu.shape)}")
    return genome
