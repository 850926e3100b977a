"""The ``graphnet`` command: ``meta-train``, ``evaluate``, ``genomes`` and the main job, ``demo``.

Every command has ``--help``. Bad flags, missing files and unusable inputs end with one line
``graphnet: error: ...`` and exit status 2 (flags) or 1 (everything else); an interrupted
meta-training run says how to resume it.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

from graphnet.data import DataUnavailableError

DEMO_TASKS = ("mnist:28x28", "fashion-mnist:28x28", "kmnist:28x28")
DEFAULT_STEPS = "1,2,5,10,20,50,100"


class CommandError(Exception):
    """A user error to print as one line (no traceback)."""


# ---------------------------------------------------------------------------------------------- argument types
def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return values


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if any(not 0 < v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"learning rates must be positive, got {text!r}")
    return values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _device(text: str) -> torch.device:
    """A torch device this machine has (graphnet.engine.resolve_device), else a flag error."""
    from graphnet.engine import resolve_device

    try:
        return resolve_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object, e.g. '{{\"normalize\": true}}' ({e.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"normalize\": true}'")
    return value


# ---------------------------------------------------------------------------------------------- meta-train
_META_FLAGS = {  # flag -> (MetaConfig field, type, help)
    "--tasks": ("tasks", str, "task strings, e.g. mnist:10x10 mnist:10x10:0-4 (graphnet.data.TaskSpec)"),
    "--topologies": ("topologies", str, "topology specs: mlp:256, skip:64,32 or a .graphml file"),
    "--k": ("k", positive_int, "states per neuron"),
    "--options": ("options", _json_object, "rule options as JSON, e.g. '{\"normalize\": true}'"),
    "--init-genome": ("init_genome", str, "start from this genome file or shipped genome name"),
    "--genome-seed": ("genome_seed", int, "seed of the random starting genome"),
    "--meta-steps": ("meta_steps", positive_int, "total genome updates"),
    "--lr": ("lr", float, "Adam learning rate (paper: 5e-4)"),
    "--clip": ("clip", float, "gradient-norm clip (paper: 10)"),
    "--replicas": ("replicas", positive_int, "episodes per meta-step (one batched population)"),
    "--batch-size": ("batch_size", positive_int, "inner batch size"),
    "--query-batches": ("query_batches", positive_int, "query batches scored after the last inner step"),
    "--score-points": ("score_points", positive_int, "average the query loss over this many points of the unroll"),
    "--unroll-start": ("unroll_start", positive_int, "curriculum: first unroll length N"),
    "--unroll-step": ("unroll_step", int, "curriculum: N grows by this much ..."),
    "--unroll-every": ("unroll_every", positive_int, "curriculum: ... every this many meta-steps"),
    "--unroll-max": ("unroll_max", positive_int, "curriculum: largest N"),
    "--seed": ("seed", int, "seed of the episode stream"),
    "--checkpoint-every": ("checkpoint_every", positive_int, "meta-steps between checkpoints"),
    "--dtype": ("dtype", str, "float32 or float64"),
    "--population": ("population", positive_int, "CMA-ES: candidates per generation (default: pycma's 4 + 3 ln n)"),
    "--sigma0": ("sigma0", float, "CMA-ES: initial step size (default 0.1)"),
    "--fitness": ("fitness", str, "CMA-ES: accuracy (default) or loss, on the query batches"),
    "--search": ("search", str, "CMA-ES: genome entries searched, e.g. nu mu 'norm_*' eta_tilde (default: all)"),
    "--draws": ("draws", positive_int, "CMA-ES: (task, topology) draws scored per generation"),
}


def _add_meta_parser(sub) -> None:
    p = sub.add_parser("meta-train", allow_abbrev=False,
                       help="meta-train a genome (gradient descent through unrolled learning, or CMA-ES)",
                       description="Meta-train one genome across tasks and topologies, by gradient descent through "
                                   "the unrolled inner steps or (--method cma) by CMA-ES. Settings come from "
                                   "--config (TOML or JSON) and are overridden by flags. Writes checkpoint.pt, "
                                   "log.csv and genome.json into --out; --resume continues a run exactly.")
    p.add_argument("--config", type=pathlib.Path, help="a .toml or .json file of MetaConfig settings")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/meta"), help="run folder (default runs/meta)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--method", choices=("gradient", "cma"),
                   help="meta-training method (default: the config's, else gradient); cma needs pip install cma")
    p.add_argument("--log", choices=("csv", "jsonl"), default="csv", help="metrics log format")
    p.add_argument("--plot", action="store_true", help="also write meta_log.png (meta-loss and accuracy)")
    p.add_argument("--device", type=_device, default="cpu",
                   help="torch device the networks run on: cpu (default), cuda, cuda:1, ...; it must exist on "
                        "this machine. For both methods (with --ray: cpu or cuda, on every worker); not saved in "
                        "the run, so --resume may pick another")
    _add_common(p)
    for flag, (_, kind, text) in _META_FLAGS.items():
        many = flag in ("--tasks", "--topologies", "--search")
        p.add_argument(flag, type=kind, nargs="+" if many else None, help=text)
    ray = p.add_argument_group("distributed CMA-ES scoring (not saved in the run: --resume may change them; "
                               "results are the same)")
    ray.add_argument("--ray", action="store_true",
                     help="score each generation's candidates on Ray workers (pip install 'ray>=2')")
    ray.add_argument("--ray-address", metavar="ADDR", help="with --ray: the cluster to join, e.g. HEAD:6379 "
                                                           "(default: start a local Ray)")
    ray.add_argument("--ray-workers", type=positive_int, metavar="N",
                     help="with --ray: shares per generation (default: Ray's CPUs / --ray-threads)")
    ray.add_argument("--ray-threads", type=positive_int, metavar="N",
                     help="with --ray: torch threads per share (default 1)")
    ray.add_argument("--max-candidates", type=positive_int, metavar="N",
                     help="without --ray: score at most N candidates per population pass (default: all in one; "
                          "smaller passes can be faster for large networks on a CPU)")
    p.set_defaults(run=_meta_train)


def _meta_config(args):
    from graphnet.meta import MetaConfig

    config = MetaConfig.load(args.config) if args.config else MetaConfig()
    changes = {field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in _META_FLAGS.items()}
    changes = {k: v for k, v in changes.items() if v is not None}
    if args.method is not None:
        changes["method"] = args.method
    return config.replace(**changes) if changes else config


_RAY_NEEDS_CMA = ("--ray scores CMA-ES generations: it needs --method cma "
                  "(gradient meta-training runs in one process)")


def _meta_train(args) -> None:
    from graphnet import meta
    from graphnet.meta import read_log
    from graphnet.meta.checkpoint import being_trained

    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {args.out} is a file, not a folder")
    ray_options = [f for f in ("--ray-address", "--ray-workers", "--ray-threads")
                   if getattr(args, f[2:].replace("-", "_")) is not None]
    if ray_options and not args.ray:
        raise CommandError(f"{', '.join(ray_options)} apply with --ray")
    if args.resume:
        if args.config or args.method or any(getattr(args, f[2:].replace("-", "_")) is not None for f in _META_FLAGS
                                             if f != "--meta-steps"):
            raise CommandError("--resume continues the saved run with its own settings: of --config, --method and "
                               "the config flags only --meta-steps may be given with it (runtime options such as "
                               "--threads, --device, --max-candidates and --ray may)")
        if not (args.out / "checkpoint.pt").exists():
            raise CommandError(f"--resume: {args.out} holds no run to resume (no checkpoint.pt there)")
        if being_trained(args.out):
            raise CommandError(str(meta.RunInUseError(args.out)))
    elif (args.out / "checkpoint.pt").exists():
        raise CommandError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
    config = None if args.resume else _meta_config(args)
    if args.ray and config is not None and config.method != "cma":
        raise CommandError(_RAY_NEEDS_CMA)
    if args.max_candidates and (args.ray or (config is not None and config.method != "cma")):
        raise CommandError("--max-candidates applies to CMA-ES runs scored in this process (not with --ray)")
    device = {} if args.ray else {"device": args.device}  # with --ray the Ray backend runs on it
    try:  # pycma or Ray missing: the message says how to install it
        backend = (meta.RayBackend(args.ray_address, args.ray_workers, args.ray_threads or 1, device=args.device)
                   if args.ray else None)
        trainer = (_resumed(args, **device) if args.resume
                   else meta.start(config, args.out, log_name=f"log.{args.log}", **device))
    except ImportError as e:
        raise CommandError(str(e)) from None
    if args.max_candidates:
        if trainer.method != "cma":
            raise CommandError("--max-candidates applies to CMA-ES runs scored in this process (not with --ray)")
        trainer.backend = meta.LocalBackend(args.max_candidates, device=args.device)  # a runtime option
    try:
        if backend is not None:
            _join_ray(trainer, backend)
        genome = trainer.run(progress=not args.no_progress)
    except meta.RunInUseError as e:
        raise CommandError(str(e)) from None
    except KeyboardInterrupt:  # the last periodic checkpoint is exact; a half-done step is not saved
        if not (args.out / "checkpoint.pt").exists():
            raise CommandError(f"interrupted at meta-step {trainer.step}, before the first checkpoint (every "
                               f"{trainer.config.checkpoint_every} meta-steps): nothing to resume; run the same "
                               f"command again to start over") from None
        raise CommandError(f"interrupted at meta-step {trainer.step}; resume from the last checkpoint with: "
                           f"graphnet meta-train --resume --out {args.out}") from None
    finally:
        if backend is not None:
            backend.close()  # shuts down the Ray it started
    if args.plot:
        from graphnet.plots import plot_meta_log
        plot_meta_log(read_log(trainer.log.path), args.out / "meta_log.png")
    if trainer.method == "cma":
        print(f"best genome after {trainer.step} generations (fitness {trainer.best_fitness:.4g}): "
              f"{args.out / 'genome.json'}, distribution mean: {args.out / 'mean.json'} ({trainer.diverged} "
              f"diverged candidates); log: {trainer.log.path}")
    else:
        print(f"genome after {trainer.step} meta-steps: {args.out / 'genome.json'} ({trainer.diverged} diverged "
              f"replicas); log: {trainer.log.path}")
    print(genome)


def _resumed(args, **device):
    from graphnet import meta

    trainer = meta.resume(args.out, meta_steps=args.meta_steps, **device)
    if trainer.step > trainer.config.meta_steps:
        raise CommandError(f"the run in {args.out} is already at meta-step {trainer.step}; pass a larger "
                           "--meta-steps to extend it")
    if args.ray and trainer.method != "cma":
        raise CommandError(_RAY_NEEDS_CMA)
    print(f"resuming {args.out} at meta-step {trainer.step} of {trainer.config.meta_steps}", file=sys.stderr)
    return trainer


def _join_ray(trainer, backend) -> None:
    """Start or join Ray now (a bad address fails before the first generation) and score there."""
    try:
        backend.start()
    except Exception as e:  # Ray's own errors: an unreachable cluster, a refused token, ...
        raise CommandError(f"--ray: cannot start or join Ray ({type(e).__name__}: {e})") from None
    print(backend.describe(), file=sys.stderr)
    trainer.backend = backend  # a runtime option, not saved with the run


# ---------------------------------------------------------------------------------------------- evaluate
def _add_eval_options(p, tasks_default, steps=DEFAULT_STEPS, seeds=5, test_size=None) -> None:
    p.add_argument("--tasks", nargs="+", default=list(tasks_default),
                   help=f"task strings (default: {' '.join(tasks_default)})")
    p.add_argument("--topologies", nargs="+", default=["mlp:256"], help="topology specs (default mlp:256)")
    p.add_argument("--steps", type=int_list, default=int_list(steps),
                   help=f"inner steps at which test accuracy is recorded (default {steps})")
    p.add_argument("--seeds", type=positive_int, default=seeds, help=f"networks per method (seeds 0..n-1, default {seeds})")
    p.add_argument("--batch-size", type=positive_int, default=128, help="inner batch size (default 128)")
    p.add_argument("--sgd-lrs", type=_float_list, help="SGD learning-rate grid (default 0.01,0.03,0.1,0.3,1)")
    p.add_argument("--adam-lrs", type=_float_list, help="Adam learning-rate grid (default 1e-4,...,1e-2)")
    p.add_argument("--test-size", type=positive_int, default=test_size,
                   help=f"score on the first N test examples (default: {test_size or 'all'})")


def _add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", allow_abbrev=False, help="genomes x tasks x topologies against tuned SGD and Adam",
                       description="Train fresh networks with each genome and with autograd SGD and Adam "
                                   "(learning-rate sweeps) on the same batches; write results.json, "
                                   "table.md and curves.png into --out.")
    p.add_argument("--genomes", nargs="+", default=[None],
                   help="genome files or shipped names (default: the default shipped genome)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/evaluate"), help="output folder")
    _add_eval_options(p, DEMO_TASKS)
    _add_common(p)
    p.set_defaults(run=_evaluate)


RUN_GENOMES = {"genome.json": "{run}", "mean.json": "{run} (mean)"}  # a run folder's genomes, as tables name them


def _genome(source):
    """``(name for tables, genome)`` of a ``--genomes`` value (None: the default shipped genome): a
    shipped name, a run's ``genome.json`` / ``mean.json`` named after the run folder, else the file's stem."""
    from graphnet.rules.shipped import catalog, genome_from

    source = catalog()["default"] if source is None else source
    path = pathlib.Path(source)
    if path.is_dir():
        held = [name for name in RUN_GENOMES if (path / name).is_file()]
        raise CommandError(f"--genomes {source} is a folder; give a genome file"
                           + (f" in it: {', '.join(str(path / name) for name in held)}" if held else ""))
    if len(path.parts) == 1 and not path.suffix:
        name = source
    elif path.name in RUN_GENOMES and path.parent.name:
        name = RUN_GENOMES[path.name].format(run=path.parent.name)
    else:
        name = path.stem
    return name, genome_from(source)


def _named_genomes(sources) -> dict:
    """``{name for tables: genome}`` of the ``--genomes`` values. Short names (``_genome``) that
    collide, like two runs' ``mean_genome.json``, fall back to the paths as given; the same
    genome given twice is an error."""
    named = [_genome(source) for source in sources]
    short = [name for name, _ in named]
    names = [name if short.count(name) == 1 else str(source) for (name, _), source in zip(named, sources)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CommandError(f"--genomes: {', '.join(map(repr, repeated))} given more than once")
    return {name: genome for name, (_, genome) in zip(names, named)}


def _evaluate(args) -> None:
    genomes = _named_genomes(args.genomes)
    setup = eval_tasks(args)
    prepare_out(args.out)
    comparison = compare_on(genomes, args, *setup)
    report(comparison, args.out)


def eval_tasks(args) -> tuple[list, dict]:
    """The tasks and topologies of the CLI's evaluation flags, loaded and checked up front (so a
    missing data set or a bad spec fails before any long computation)."""
    from graphnet import topologies
    from graphnet.data import TaskSpec
    from graphnet.evaluation import EvalTask

    tasks = []
    for text in args.tasks:
        spec = TaskSpec.parse(text)
        if spec.ways is not None:
            raise CommandError(f"task {text!r}: N-way episodes are for meta-training; evaluate on a fixed set of "
                               f"classes instead (e.g. {spec.dataset}:0-4)")
        train, test = spec.splits()
        n_test = len(test) if args.test_size is None else min(args.test_size, len(test))
        tasks.append(EvalTask(text, train.flat(), train.y, test.flat()[:n_test], test.y[:n_test],
                              n_classes=train.n_classes))
    for spec in args.topologies:
        for task in tasks:
            topologies.build(spec, task.n_features, task.n_classes)
    tops = {pathlib.Path(spec).stem if spec.endswith(".graphml") else spec:
            (lambda task, spec=spec: topologies.build(spec, task.n_features, task.n_classes))
            for spec in args.topologies}
    return tasks, tops


def compare_on(genomes: dict, args, tasks: list, tops: dict):
    """Run :func:`graphnet.evaluation.compare` with the CLI's step, seed and learning-rate flags."""
    from graphnet.evaluation import compare

    kwargs = {"steps": args.steps, "seeds": range(args.seeds), "batch_size": args.batch_size,
              "progress": not args.no_progress}
    if args.sgd_lrs is not None:
        kwargs["sgd_lrs"] = args.sgd_lrs
    if args.adam_lrs is not None:
        kwargs["adam_lrs"] = args.adam_lrs
    return compare(genomes, tasks, tops, **kwargs)


def prepare_out(out: pathlib.Path) -> pathlib.Path:
    """Create the output folder now, so a bad ``--out`` fails before any computation."""
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".graphnet-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CommandError(f"--out {out} cannot be written ({e.strerror or e})") from None
    return out


def report(comparison, out: pathlib.Path) -> None:
    """Write results.json, table.md and curves.png into ``out`` and print the table."""
    out.mkdir(parents=True, exist_ok=True)
    comparison.to_json(out / "results.json")
    table = comparison.table()
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    try:
        comparison.plot(out / "curves.png")
        plot = f", plot: {out / 'curves.png'}"
    except ImportError:
        plot = " (no plot: pip install matplotlib)"
    print(f"\ntable: {out / 'table.md'}{plot}, every curve: {out / 'results.json'}")


# ---------------------------------------------------------------------------------------------- genomes
def _add_genomes_parser(sub) -> None:
    p = sub.add_parser("genomes", allow_abbrev=False, help="list the genomes that ship with graphnet",
                       description="List shipped genomes (load one with graphnet.Genome.pretrained(name)).")
    p.set_defaults(run=_genomes)


def _genomes(args) -> None:
    from graphnet.rules.shipped import catalog

    entries = catalog()
    for name, meta in entries["genomes"].items():
        default = " (default)" if name == entries["default"] else ""
        print(f"{name}{default}: {meta['description']}")
        for key in ("trained_on", "command", "results"):
            if key in meta:
                print(f"    {key}: {meta[key]}")


# ---------------------------------------------------------------------------------------------- demo
def _add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", allow_abbrev=False, help="the main job: short meta-training on 10x10 MNIST, then evaluation "
                                    "at 28x28 on MNIST, Fashion-MNIST and KMNIST against SGD and Adam",
                       description="Meta-train a genome for a few minutes on 10x10 MNIST (all digits, 0-4, 5-9; "
                                   "the paper's protocol, shortened), then train fresh 28x28 networks with it, "
                                   "with the shipped genome and with tuned SGD and Adam, and print the table. "
                                   "Default settings take under 10 minutes on 2 CPU cores.")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/demo"), help="output folder")
    p.add_argument("--meta-steps", type=positive_int, default=600, help="meta-training steps (default 600)")
    p.add_argument("--unroll-max", type=positive_int, default=20,
                   help="the unroll curriculum goes 10, 15, ... up to this, in equal stages (default 20)")
    _add_eval_options(p, DEMO_TASKS, steps="1,2,5,10,20,50", seeds=3, test_size=2000)
    _add_common(p)
    p.set_defaults(run=_demo)


def _demo(args) -> None:
    from graphnet.meta import MetaConfig, MetaTrainer
    from graphnet.rules import Genome
    from graphnet.rules.shipped import catalog

    start = time.perf_counter()
    shipped = Genome.pretrained()
    tasks, tops = eval_tasks(args)  # fail now, not after meta-training, if a data set is missing
    prepare_out(args.out)
    start_unroll = min(10, args.unroll_max)
    stages = (args.unroll_max - start_unroll) // 5 + 1
    config = MetaConfig(k=shipped.k, options=shipped.options.to_dict(), meta_steps=args.meta_steps, lr=3e-3,
                        genome_seed=2, score_points=4, unroll_start=start_unroll, unroll_step=5,
                        unroll_every=max(1, -(-args.meta_steps // stages)), unroll_max=args.unroll_max,
                        checkpoint_every=50)
    run = args.out / "meta"
    print(f"[1/2] meta-training a genome from scratch on {', '.join(config.tasks)} ({config.meta_steps} meta-steps, "
          f"unrolls {config.unroll_start} -> {config.unroll_max}) -> {run}", file=sys.stderr)
    if (run / "checkpoint.pt").exists():
        trainer = MetaTrainer.resume(run, meta_steps=config.meta_steps)
    else:
        trainer = MetaTrainer(config, run)
    demo_genome = trainer.run(progress=not args.no_progress)
    print(f"[2/2] evaluating at 28x28 on {', '.join(args.tasks)} against SGD and Adam -> {args.out}", file=sys.stderr)
    default = catalog()["default"]
    comparison = compare_on({"demo (just meta-trained)": demo_genome, f"{default} (shipped)": shipped}, args,
                            tasks, tops)
    report(comparison, args.out)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")


# ---------------------------------------------------------------------------------------------- main
def _add_common(p) -> None:
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphnet", description="Meta-learned bidirectional update rules on graphs.",
                                allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True, metavar="{demo,meta-train,evaluate,genomes}")
    _add_demo_parser(sub)
    _add_meta_parser(sub)
    _add_evaluate_parser(sub)
    _add_genomes_parser(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        args.run(args)
    except (CommandError, DataUnavailableError, FileNotFoundError, ValueError) as e:
        print(f"graphnet: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("graphnet: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
