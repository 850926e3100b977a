#!/usr/bin/env python
"""Step-time benchmark of the graphnet engine against plain PyTorch baselines.

Three cases, each measured in one process with interleaved repetitions (the compared runs
alternate, their order flips every repetition) and reported as medians; a ratio is the median
of the per-repetition ratios (graphnet time / baseline time of the same repetition), so load
from other processes on the shared machine hits both sides alike (shared/PERF-NOTES.md).

1. Learned-rule inner step on a 784-256-10 MLP (k = 4, batch 128, ``Genome.random``, default
   options) vs a plain dense PyTorch implementation of the same math written below
   (``plain_step``), checked first to give the same synapses after one step. Timed without
   autograd (``torch.no_grad``) and with it (genome requires grad; one step, then a loss on
   ``predict`` and its backward). Target: <= 1.5x.
2. Backprop genome (``Genome.backprop(lr=0.1, activation="sigmoid")``, k = 2) vs autograd +
   ``torch.optim.SGD`` on the equivalent ``torch.nn`` MLP. Target: <= 2x.
3. A neuron-level random graph (100k neurons, 1M edges, k = 2, batch 8): step time, effective
   GB/s (bytes counted as printed) and the reference gather/scatter kernel as a ratio.

Usage: python bench/step_time.py [--quick] [--reps N] [--threads 2] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

import graphnet as gn  # noqa: E402

warnings.filterwarnings("ignore", ".*[Ss]parse.*")


# ----------------------------------------------------------------------------- timing
class Bench:
    def __init__(self, device: torch.device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def interleaved(self, cases: dict, reps: int, warmup: int = 1, grad: bool = False) -> dict[str, list[float]]:
        """``cases``: name -> (setup, run); ``setup()`` (untimed) returns the argument of ``run``.

        Every repetition runs each case once, in an order that flips every repetition."""
        names = list(cases)
        context = torch.enable_grad if grad else torch.no_grad
        times = {n: [] for n in names}
        for rep in range(warmup + reps):
            for name in (names if rep % 2 == 0 else names[::-1]):
                setup, run = cases[name]
                with context():
                    arg = setup()
                    self.sync()
                    t0 = time.perf_counter()
                    run(arg)
                    self.sync()
                    dt = time.perf_counter() - t0
                if rep >= warmup:
                    times[name].append(dt)
        return times


def median_ms(ts):
    return 1e3 * statistics.median(ts)


def paired_ratio(a, b):
    """Median and quartiles of the per-repetition ratios ``a[i] / b[i]``."""
    ratios = sorted(x / y for x, y in zip(a, b))
    if len(ratios) < 4:
        return statistics.median(ratios), ratios[0], ratios[-1]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q1, q3


# ----------------------------------------------------------------------------- plain MLP rule
def _mix(m: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``out[c] = Σ_d m[c, d] a[d]`` on channel-major states ``a [k, B, n]``."""
    k = a.shape[0]
    return (m @ a.reshape(k, -1)).reshape(a.shape)


_ACT = {
    "relu_tanh": lambda z: torch.relu(torch.tanh(z)),
    "tanh": torch.tanh,
}


def plain_states(x: torch.Tensor, k: int, n_hidden: list[int], n_out: int):
    """Initial states ``[k, B, n]``: inputs state 0 = x, bias state 0 = 1, everything else 0."""
    batch = x.shape[0]
    zeros = lambda n: x.new_zeros(k - 1, batch, n)  # noqa: E731
    inputs = torch.cat([x.unsqueeze(0), zeros(x.shape[1])])
    bias = torch.cat([x.new_ones(1, batch, 1), zeros(1)])
    layers = [x.new_zeros(k, batch, n) for n in n_hidden + [n_out]]
    return inputs, bias, layers


def plain_forward(W: dict, R: dict, inputs, bias, layers):
    """Forward sweep: mix with ν, per-channel bmm with ``[k, n_in, n_out]`` plus the bias row,
    ``σ(f·a + η·m)`` with relu_tanh on hidden layers and tanh on the output layer."""
    mixed_bias = _mix(R["nu"], bias)  # [k, B, 1]
    prev = inputs
    new_layers = []
    for l, a in enumerate(layers):
        message = torch.baddbmm(mixed_bias * W["fb"][l], _mix(R["nu"], prev), W["f"][l])
        act = _ACT["tanh"] if l == len(layers) - 1 else _ACT["relu_tanh"]
        prev = act(R["f"] * a + R["eta"] * message)
        new_layers.append(prev)
    return new_layers


def plain_predict(W: dict, R: dict, x: torch.Tensor) -> torch.Tensor:
    k = R["nu"].shape[0]
    inputs, bias, layers = plain_states(x, k, [w.shape[2] for w in W["f"][:-1]], W["f"][-1].shape[2])
    return plain_forward(W, R, inputs, bias, layers)[-1][0]


def plain_step(W: dict, R: dict, x: torch.Tensor, target: torch.Tensor) -> dict:
    """One inner step; returns the new synapses (out of place, differentiable).

    W: ``f[l] [k, n_l, n_l+1]`` forward, ``fb[l] [k, 1, n_l+1]`` bias -> layer l+1,
    ``b[l] [k, n_l+1, n_l]`` backward, ``bb[l] [k, n_l+1, 1]`` layer l+1 -> bias.
    target: ``[B, n_out]`` with ±1."""
    k = R["nu"].shape[0]
    inputs, bias, layers = plain_states(x, k, [w.shape[2] for w in W["f"][:-1]], W["f"][-1].shape[2])
    layers = plain_forward(W, R, inputs, bias, layers)
    # feedback: state 1 of the outputs <- target, states >= 2 <- 0
    out = layers[-1]
    layers[-1] = torch.cat([out[:1], target.unsqueeze(0), torch.zeros_like(out[2:])])
    # backward sweep along the backward weights: receivers are the hidden layers (top down)
    for l in range(len(layers) - 2, -1, -1):
        message = torch.bmm(_mix(R["mu"], layers[l + 1]), W["b"][l + 1])
        layers[l] = _ACT["relu_tanh"](R["f"] * layers[l] + R["eta"] * message)
    # Hebbian update on every synapse: Δw = mean_b pre_s post_t, w <- f̃ w + η̃ Δw
    everyone = [inputs] + layers
    pre = [_mix(R["P"].t(), a).transpose(1, 2) for a in everyone]  # [k, n, B]
    post = [_mix(R["Q"], a) for a in everyone]  # [k, B, n]
    pre_bias = _mix(R["P"].t(), bias).transpose(1, 2)
    post_bias = _mix(R["Q"], bias)
    rate = R["eta_tilde"] / x.shape[0]  # tensors, so the genome gets gradients
    keep = R["f_tilde"]
    new = {"f": [], "fb": [], "b": [], "bb": []}
    for l in range(len(layers)):
        new["f"].append(keep * W["f"][l] + rate * torch.bmm(pre[l], post[l + 1]))
        new["fb"].append(keep * W["fb"][l] + rate * torch.bmm(pre_bias, post[l + 1]))
        new["b"].append(keep * W["b"][l] + rate * torch.bmm(pre[l + 1], post[l]))
        new["bb"].append(keep * W["bb"][l] + rate * torch.bmm(pre[l + 1], post_bias))
    return new


def _sizes_blocks(sizes):
    """Edge-order slices of the mlp topology: user blocks (layer pairs), then bias -> each layer."""
    blocks, start = [], 0
    for a, b in zip(sizes, sizes[1:]):
        blocks.append((start, a, b))
        start += a * b
    bias_blocks = []
    for b in sizes[1:]:
        bias_blocks.append((start, 1, b))
        start += b
    return blocks, bias_blocks


def weights_from_net(net, sizes) -> dict:
    """graphnet edge-order synapses -> plain layer tensors (channel-major)."""
    fw, bw = net.forward_weights[0], net.backward_weights[0]  # [E, C]
    blocks, bias_blocks = _sizes_blocks(sizes)
    block = lambda w, s, a, b: w[s:s + a * b].reshape(a, b, -1)  # [a, b, C] (edge a_i -> b_j)  # noqa: E731
    return {
        "f": [block(fw, *blk).permute(2, 0, 1).contiguous() for blk in blocks],
        "fb": [block(fw, *blk).permute(2, 0, 1).contiguous() for blk in bias_blocks],
        "b": [block(bw, *blk).permute(2, 1, 0).contiguous() for blk in blocks],
        "bb": [block(bw, *blk).permute(2, 1, 0).contiguous() for blk in bias_blocks],
    }


def weights_to_edge_order(W: dict, sizes):
    """plain layer tensors -> ``[E, C]`` forward and backward, graphnet's edge order."""
    fw = [w.permute(1, 2, 0).reshape(-1, w.shape[0]) for w in W["f"] + W["fb"]]
    bw = [w.permute(2, 1, 0).reshape(-1, w.shape[0]) for w in W["b"] + W["bb"]]
    return torch.cat(fw), torch.cat(bw)


def plain_rule(genome) -> dict:
    return {name: t for name, t in genome.tensors().items()}


# ----------------------------------------------------------------------------- cases
def case_learned_rule(args, dev, bench, rows):
    sizes = [20, 16, 5] if args.quick else [784, 256, 10]
    k, batch = 4, (8 if args.quick else 128)
    topo = gn.topologies.mlp(sizes)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, sizes[0], generator=gen).to(dev)
    y = torch.randint(0, sizes[-1], (batch,), generator=gen).to(dev)
    target = 2 * torch.nn.functional.one_hot(y, sizes[-1]).float() - 1

    genome = gn.Genome.random(k, seed=0).to(device=dev)
    net = gn.Network(topo, genome, device=dev)
    # --- correctness: one step each from the same synapses
    W0 = weights_from_net(net, sizes)
    R = plain_rule(genome)
    init = dataclasses.replace(net.synapses)
    with torch.no_grad():
        net.step(x, y)
        W1 = plain_step(W0, R, x, target)
        fw, bw = weights_to_edge_order(W1, sizes)
        diff = max((fw - net.forward_weights[0]).abs().max().item(), (bw - net.backward_weights[0]).abs().max().item())
        moved = (fw - weights_to_edge_order(W0, sizes)[0]).abs().max().item()
    # gradients of a loss on predict after one step, both ways (the network stacks the genome's
    # tensors once, differentiably; every later backward adds into the same leaves)
    g_net = genome.clone().requires_grad_(True)
    net_g = gn.Network(topo, g_net, device=dev).detach_()  # initial synapses: no path to init_scale
    init_g = dataclasses.replace(net_g.synapses)
    net_g.step(x, y)
    torch.nn.functional.cross_entropy(net_g.predict(x), y).backward()
    g_plain = genome.clone().requires_grad_(True)
    Rg = plain_rule(g_plain)
    torch.nn.functional.cross_entropy(plain_predict(plain_step(W0, Rg, x, target), Rg, x), y).backward()
    grad = lambda t: torch.zeros_like(t) if t.grad is None else t.grad  # noqa: E731 (init_scale: no grad)
    pairs = list(zip(g_net.parameters(), g_plain.parameters()))
    grad_diff = max((grad(a) - grad(b)).abs().max().item() for a, b in pairs)
    grad_scale = max(grad(a).abs().max().item() for a, _ in pairs)
    rows.append(("check", f"1. plain vs graphnet after 1 step: max |Δw| = {diff:.2e} (synapses moved by up to "
                          f"{moved:.2e}); max |Δ grad genome| = {grad_diff:.2e} (grads up to {grad_scale:.2e})"))
    if not diff < 1e-4:
        raise SystemExit(f"plain implementation disagrees with graphnet (max |Δw| = {diff}): benchmark void")

    # --- no autograd
    def net_setup():
        net.synapses = dataclasses.replace(init)  # step() reassigns fields of this object
    times = bench.interleaved({
        "graphnet": (net_setup, lambda _: net.step(x, y)),
        "plain": (lambda: None, lambda _: plain_step(W0, R, x, target)),
    }, args.reps, warmup=2)
    rows.append(("1. learned rule, MLP %s, k=%d, B=%d, no_grad" % ("-".join(map(str, sizes)), k, batch),
                 median_ms(times["graphnet"]), "plain dense torch", median_ms(times["plain"]),
                 paired_ratio(times["graphnet"], times["plain"]), 1.5))

    # --- autograd: one step, loss on predict, backward into the genome leaves
    def net_grad_setup():
        net_g.synapses = dataclasses.replace(init_g)

    def net_grad_run(_):
        net_g.step(x, y)
        torch.nn.functional.cross_entropy(net_g.predict(x), y).backward()

    def plain_grad_setup():
        return Rg

    def plain_grad_run(Rg):
        torch.nn.functional.cross_entropy(plain_predict(plain_step(W0, Rg, x, target), Rg, x), y).backward()

    times = bench.interleaved({"graphnet": (net_grad_setup, net_grad_run),
                               "plain": (plain_grad_setup, plain_grad_run)},
                              args.reps, warmup=1, grad=True)
    rows.append(("1b. same, autograd: step + loss(predict) + backward",
                 median_ms(times["graphnet"]), "plain dense torch", median_ms(times["plain"]),
                 paired_ratio(times["graphnet"], times["plain"]), 1.5))


def case_backprop(args, dev, bench, rows):
    sizes = [20, 16, 5] if args.quick else [784, 256, 10]
    batch = 8 if args.quick else 128
    lr = 0.1
    topo = gn.topologies.mlp(sizes)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(batch, sizes[0], generator=gen).to(dev)
    y = torch.randint(0, sizes[-1], (batch,), generator=gen).to(dev)
    t = torch.nn.functional.one_hot(y, sizes[-1]).float()
    net = gn.Network(topo, gn.Genome.backprop(lr=lr, activation="sigmoid"), device=dev)
    W = weights_from_net(net, sizes)
    layers = []
    for l in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[l], sizes[l + 1]).to(dev)
        with torch.no_grad():
            lin.weight.copy_(W["f"][l][0].t())
            lin.bias.copy_(W["fb"][l][0, 0])
        layers += [lin, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def sgd_step(_):
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (model(x) - t).pow(2).sum(1).mean()
        loss.backward()
        opt.step()

    with torch.no_grad():
        net.step(x, y)
    sgd_step(None)
    W = weights_from_net(net, sizes)
    diff = max(max((lin.weight - W["f"][l][0].t()).abs().max().item(), (lin.bias - W["fb"][l][0, 0]).abs().max().item())
               for l, lin in enumerate(layers[::2]))
    rows.append(("check", f"2. backprop genome vs nn + SGD after 1 step: max |Δw| = {diff:.2e}"))

    def net_step(_):
        with torch.no_grad():  # the simulator's inner step needs no autograd
            net.step(x, y)
    times = bench.interleaved({"graphnet": (lambda: None, net_step),
                               "sgd": (lambda: None, sgd_step)}, args.reps, warmup=2, grad=True)
    rows.append(("2. backprop genome, MLP %s, k=2, B=%d" % ("-".join(map(str, sizes)), batch),
                 median_ms(times["graphnet"]), "nn + autograd + SGD", median_ms(times["sgd"]),
                 paired_ratio(times["graphnet"], times["sgd"]), 2.0))


def _step_bytes(net, batch):
    """Minimum bytes one step moves: see the printed legend."""
    k, channels, f32, idx = net.rule.k, net.rule.channels, 4, 8
    total = 0
    for program in (net.forward_program, net.backward_program):
        swept = sum(len(s.kernel.row) for s in program.stages)  # edges into updated receivers
        swept += sum(g.n_edges for g in program.dense)
        total += program.rounds * swept * (channels * f32 + idx + k * batch * f32)
        total += program.n_edges * (2 * channels * f32 + 2 * idx + 2 * channels * batch * f32)
    return total


def case_random_graph(args, dev, bench, rows):
    n, e, n_in, n_out = (2_000, 10_000, 20, 5) if args.quick else (100_000, 1_000_000, 1_000, 100)
    k, batch = 2, 8
    topo = gn.topologies.random_graph(n, e, n_inputs=n_in, n_outputs=n_out, rounds=3)
    genome = gn.Genome.random(k, seed=0)
    csr = gn.Network(topo, genome, device=dev)
    ref = gn.Network(topo, genome, device=dev, kernel="reference")
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(batch, n_in, generator=gen).to(dev)
    y = torch.randint(0, n_out, (batch,), generator=gen).to(dev)
    init_csr, init_ref = dataclasses.replace(csr.synapses), dataclasses.replace(ref.synapses)
    with torch.no_grad():
        csr.step(x, y)
        ref.step(x, y)
        diff = max((csr.forward_weights - ref.forward_weights).abs().max().item(),
                   (csr.backward_weights - ref.backward_weights).abs().max().item())
    rows.append(("check", f"3. csr vs reference kernel after 1 step: max |Δw| = {diff:.2e}"))

    def setup(which, init):
        def reset():
            which.synapses = dataclasses.replace(init)
        return reset
    times = bench.interleaved({"csr": (setup(csr, init_csr), lambda _: csr.step(x, y)),
                               "reference": (setup(ref, init_ref), lambda _: ref.step(x, y))},
                              max(3, args.reps // 3), warmup=1)
    nbytes = _step_bytes(csr, batch)
    ms = median_ms(times["csr"])
    label = "3. random graph N=%d, E=%d (+%d bias), k=2, B=%d, rounds=%d+%d" % (
        n, e, csr.plan.n_forward_edges - e, batch, csr.forward_program.rounds, csr.backward_program.rounds)
    rows.append((label, ms, "reference gather/scatter", median_ms(times["reference"]),
                 paired_ratio(times["csr"], times["reference"]), None))
    rows.append(("check", f"3. effective bandwidth: {nbytes / 1e6:.0f} MB / {ms:.1f} ms = "
                          f"{nbytes / (ms * 1e-3) / 1e9:.2f} GB/s"))
    rows.append(("legend", "bytes/step = per sweep round x edges into updated receivers x (C x 4 B value + 8 B "
                           "index + k x B x 4 B gathered sender states) + per edge set x edges x (2 x C x 4 B "
                           "value read+write + 2 x 8 B indices + 2 x C x B x 4 B gathered pre and post states); "
                           "float32, int64 indices, C = synapse channels; receiver-state writes, CSR row "
                           "pointers and the k x k mixing are not counted"))


# ----------------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test that runs in seconds")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per case (default 21, quick 3; the random graph runs a third of them)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--only", default="1,2,3", help="comma list of cases to run (1, 2, 3)")
    args = p.parse_args()
    if args.reps is None:
        args.reps = 3 if args.quick else 21
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    bench = Bench(dev)
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}, reps {args.reps}"
          f"{' (quick)' if args.quick else ''}; times are medians, ratio = median of per-repetition "
          "ratios graphnet/baseline (interleaved runs)")
    rows = []
    cases = {"1": case_learned_rule, "2": case_backprop, "3": case_random_graph}
    for key in args.only.split(","):
        cases[key.strip()](args, dev, bench, rows)

    table = [r for r in rows if r[0] not in ("check", "legend")]
    w = max(len(r[0]) for r in table)
    wb = max(len(r[2]) for r in table)
    print()
    print(f"{'case':<{w}}  {'graphnet ms':>11}  {'baseline':<{wb}}  {'base ms':>8}  {'ratio [quartiles]':>19}  target")
    for name, ms, base, base_ms, (ratio, q1, q3), target in table:
        verdict = "" if target is None else f"<= {target:g}x {'met' if ratio <= target else 'MISSED'}"
        quart = f"{ratio:.2f}x [{q1:.2f}-{q3:.2f}]"
        print(f"{name:<{w}}  {ms:>11.2f}  {base:<{wb}}  {base_ms:>8.2f}  {quart:>19}  {verdict}")
    print()
    for kind, text in [r[:2] for r in rows if r[0] in ("check", "legend")]:
        print(f"{kind}: {text}")


if __name__ == "__main__":
    main()
