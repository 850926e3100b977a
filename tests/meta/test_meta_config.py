"""MetaConfig: the paper's defaults, the unroll curriculum, validation, and TOML/JSON files."""
import dataclasses
import json
import pathlib
import sys

import pytest

from graphnet.meta import MetaConfig


def test_defaults_follow_the_paper_protocol():
    c = MetaConfig()
    assert (c.lr, c.clip) == (5e-4, 10.0)
    assert (c.unroll_start, c.unroll_step, c.unroll_max) == (10, 5, 30)
    assert c.tasks == ("mnist:10x10", "mnist:10x10:0-4", "mnist:10x10:5-9")
    assert (c.dtype, c.init_genome, c.options) == ("float32", None, {})


def test_default_curriculum_by_hand():
    c = MetaConfig()  # 10, then +5 every 10_000 meta-steps, at most 30
    expected = {0: 10, 9_999: 10, 10_000: 15, 19_999: 15, 20_000: 20, 30_000: 25, 40_000: 30, 10**6: 30}
    assert {step: c.unroll(step) for step in expected} == expected


def test_custom_curriculum_by_hand():
    c = MetaConfig(unroll_start=2, unroll_step=3, unroll_every=4, unroll_max=9)
    assert [c.unroll(s) for s in range(14)] == [2, 2, 2, 2, 5, 5, 5, 5, 8, 8, 8, 8, 9, 9]
    flat = MetaConfig(unroll_start=3, unroll_step=0, unroll_every=1, unroll_max=7)
    assert {flat.unroll(s) for s in range(50)} == {3}


@pytest.mark.parametrize("changes, message", [
    ({"k": 0}, r"MetaConfig\.k must be a positive integer"),
    ({"k": 2.0}, r"MetaConfig\.k must be a positive integer"),
    ({"k": True}, r"MetaConfig\.k must be a positive integer"),
    ({"k": 1}, r"k >= 2"),
    ({"meta_steps": 0}, r"MetaConfig\.meta_steps"),
    ({"replicas": "2"}, r"MetaConfig\.replicas"),
    ({"checkpoint_every": 1.5}, r"MetaConfig\.checkpoint_every"),
    ({"score_points": 0}, r"MetaConfig\.score_points"),
    ({"seed": -1}, r"MetaConfig\.seed must be an integer >= 0"),
    ({"unroll_step": -1}, r"MetaConfig\.unroll_step must be an integer >= 0"),
    ({"lr": 0}, r"MetaConfig\.lr must be a positive number"),
    ({"lr": "0.1"}, r"MetaConfig\.lr must be a positive number"),
    ({"lr": float("nan")}, r"MetaConfig\.lr must be a positive number"),
    ({"clip": float("inf")}, r"MetaConfig\.clip must be a positive number"),
    ({"clip": True}, r"MetaConfig\.clip must be a positive number"),
    ({"tasks": ()}, r"MetaConfig\.tasks must be a non-empty list of strings"),
    ({"tasks": ("xor", 3)}, r"MetaConfig\.tasks must be a non-empty list of strings"),
    ({"topologies": ("",)}, r"MetaConfig\.topologies must be a non-empty list of strings"),
    ({"tasks": ("xor", "mnits:10x10")}, r"bad task spec 'mnits:10x10': unknown data set 'mnits'"),
    ({"unroll_start": 5, "unroll_max": 4}, r"unroll_max=4 is below unroll_start=5"),
    ({"dtype": "float16"}, r"MetaConfig\.dtype must be 'float32' or 'float64', got 'float16'"),
    ({"init_genome": 5}, r"MetaConfig\.init_genome"),
    ({"init_genome": ""}, r"MetaConfig\.init_genome"),
    ({"options": "normalize"}, r"rule options must be a dict"),
    ({"options": {"normalise": True}}, r"unknown rule option\(s\) \['normalise'\]"),
    ({"options": {"activation": "bogus"}}, r"RuleOptions\.activation='bogus' is not one of"),
    ({"k": 2, "options": {"backward_states": [0, 3]}}, r"names state\(s\) \[3\], but the genome has k=2"),
])
def test_bad_settings_are_rejected_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        MetaConfig(**changes)
    with pytest.raises(ValueError, match=message):  # replace() validates as well
        MetaConfig().replace(**changes)


def test_single_strings_become_tuples():
    c = MetaConfig(tasks="xor", topologies="mlp:8")
    assert (c.tasks, c.topologies) == (("xor",), ("mlp:8",))


def test_init_genome_path_is_stored_as_a_string():
    c = MetaConfig(init_genome=pathlib.Path("runs") / "genome.json")  # checkpoints hold plain types only
    assert c.init_genome == str(pathlib.Path("runs") / "genome.json")
    assert MetaConfig.from_dict(c.to_dict()) == c


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MetaConfig().lr = 1.0


def test_from_dict_names_unknown_keys_and_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown meta-training setting\(s\) \['learning_rate', 'steps'\]") as e:
        MetaConfig.from_dict({"tasks": ["xor"], "learning_rate": 0.1, "steps": 3})
    assert "'lr'" in str(e.value) and "'meta_steps'" in str(e.value)
    with pytest.raises(ValueError, match="must be a table/object, got list"):
        MetaConfig.from_dict(["xor"])


def test_to_dict_from_dict_round_trip_through_json():
    c = MetaConfig(tasks=("xor", "moons"), topologies=("mlp:8", "skip:4,3"), k=3,
                   options={"normalize": True, "derivative_states": [1]}, init_genome="g.json", genome_seed=4,
                   meta_steps=17, lr=0.003, clip=2.5, replicas=3, batch_size=5, query_batches=3, score_points=2,
                   unroll_start=2, unroll_step=1, unroll_every=7, unroll_max=6, seed=9, checkpoint_every=4,
                   dtype="float64")
    d = c.to_dict()
    assert d["tasks"] == ["xor", "moons"] and d["lr"] == 0.003 and d["dtype"] == "float64"
    assert set(d) == {f.name for f in dataclasses.fields(MetaConfig)}
    again = MetaConfig.from_dict(json.loads(json.dumps(d)))
    assert again == c
    assert MetaConfig.from_dict(MetaConfig().to_dict()) == MetaConfig()


# ------------------------------------------------------------------------------------------- files
TOML = """
tasks = ["xor", "moons"]
topologies = "mlp:8"
k = 3
lr = 0.01
unroll_start = 2
unroll_max = 4

[options]
normalize = true
"""
EXPECTED = MetaConfig(tasks=("xor", "moons"), topologies=("mlp:8",), k=3, lr=0.01, unroll_start=2, unroll_max=4,
                      options={"normalize": True})


def test_load_toml_top_level(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    assert MetaConfig.load(path) == EXPECTED


def test_load_toml_meta_table(tmp_path):
    path = tmp_path / "run.toml"
    meta = TOML.replace("[options]", "[meta.options]")
    path.write_text("[meta]\n" + meta)
    assert MetaConfig.load(str(path)) == EXPECTED


def test_load_json_top_level_and_meta_object(tmp_path):
    settings = {"tasks": ["xor", "moons"], "topologies": ["mlp:8"], "k": 3, "lr": 0.01, "unroll_start": 2,
                "unroll_max": 4, "options": {"normalize": True}}
    top, nested = tmp_path / "top.json", tmp_path / "nested.json"
    top.write_text(json.dumps(settings))
    nested.write_text(json.dumps({"meta": settings}))
    assert MetaConfig.load(top) == EXPECTED
    assert MetaConfig.load(nested) == EXPECTED


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(FileNotFoundError, match=f"config file {path} does not exist"):
        MetaConfig.load(path)


@pytest.mark.parametrize("name, content, message", [
    ("bad.toml", "tasks = [\"xor\"\nk = ", r"is not valid TOML"),
    ("bad.json", "{\"tasks\": [\"xor\"],}", r"is not valid JSON"),
    ("empty.json", "", r"is not valid JSON"),
    ("config.yaml", "tasks: [xor]\n", r"expected a \.toml or \.json file"),
    ("list.json", "[\"xor\"]", r"must be a table/object, got list"),
    ("unknown.toml", "tasks = [\"xor\"]\nlearning_rate = 0.1\n", r"unknown meta-training setting\(s\) \['learning_rate'\]"),
    ("badvalue.json", "{\"lr\": -1}", r"MetaConfig\.lr must be a positive number, got -1"),
    ("badtask.toml", "tasks = [\"mnist:10x12\"]\n", r"bad task spec 'mnist:10x12'"),
])
def test_bad_files_name_the_path(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as e:
        MetaConfig.load(path)
    assert str(path) in str(e.value)


def test_binary_file_names_the_path(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ValueError, match="is not valid TOML") as e:
        MetaConfig.load(path)
    assert str(path) in str(e.value)


def test_toml_without_a_toml_reader_says_what_to_install(tmp_path, monkeypatch):
    """Python 3.10 (supported by pyproject) has no tomllib: the error says how to get one."""
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` now raises ImportError
    monkeypatch.setitem(sys.modules, "tomli", None)
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    with pytest.raises(ValueError, match=r"pip install tomli") as e:
        MetaConfig.load(path)
    assert str(path) in str(e.value)
