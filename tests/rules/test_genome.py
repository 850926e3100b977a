"""Tests for graphnet.rules.genome and graphnet.rules.files.

References are independent of the code under test: hand-built genomes whose vector is known
entry by entry, a dense re-implementation of docs/MODEL.md section 3 against torch autograd for the
backprop genome, and a checksum recomputed here with hashlib.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from graphnet.rules import Activation, BackwardUpdate, Feedback, Genome, RuleOptions

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OPTION_SETS = [
    RuleOptions(),
    RuleOptions(oja=True),
    RuleOptions(normalize=True),
    RuleOptions(oja=True, normalize=True, single_channel=True),
]


def hand_built(dtype=torch.float64) -> Genome:
    """k=2 genome whose to_vector() must be 1, 2, ..., 26 in the documented layout."""
    t = lambda *v: torch.tensor(v, dtype=dtype)  # noqa: E731
    return Genome(nu=t([1, 2], [3, 4]), mu=t([5, 6], [7, 8]), P=t([9, 10], [11, 12]), Q=t([13, 14], [15, 16]),
                  f=t(17)[0], eta=t(18)[0], f_tilde=t(19)[0], eta_tilde=t(20)[0], init_scale=t(21)[0],
                  oja=t(22)[0], norm_scale=t(23, 24), norm_shift=t(25, 26),
                  options=RuleOptions(oja=True, normalize=True))


def assert_same(a: Genome, b: Genome) -> None:
    assert a.options == b.options
    ta, tb = a.tensors(), b.tensors()
    assert list(ta) == list(tb)
    for name in ta:
        assert ta[name].dtype == tb[name].dtype, name
        assert torch.equal(ta[name], tb[name]), name


# ---------------------------------------------------------------- vector layout


def test_vector_layout_of_hand_built_genome():
    g = hand_built()
    assert torch.equal(g.to_vector(), torch.arange(1, 27, dtype=torch.float64))
    assert g.vector_names() == [
        "nu[0,0]", "nu[0,1]", "nu[1,0]", "nu[1,1]", "mu[0,0]", "mu[0,1]", "mu[1,0]", "mu[1,1]",
        "P[0,0]", "P[0,1]", "P[1,0]", "P[1,1]", "Q[0,0]", "Q[0,1]", "Q[1,0]", "Q[1,1]",
        "f", "eta", "f_tilde", "eta_tilde", "init_scale", "oja",
        "norm_scale[0]", "norm_scale[1]", "norm_shift[0]", "norm_shift[1]"]
    back = Genome.from_vector(torch.arange(1, 27, dtype=torch.float64), k=2, options=g.options)
    assert_same(back, g)


def test_vector_names_index_the_vector():
    g = Genome.random(3, seed=4, options=RuleOptions(oja=True, normalize=True))
    vec, names = g.to_vector(), g.vector_names()
    assert len(names) == len(vec) == len(set(names))
    for i, name in enumerate(names):
        m = re.fullmatch(r"(\w+)(?:\[(\d+)(?:,(\d+))?\])?", name)
        idx = tuple(int(x) for x in m.groups()[1:] if x is not None)
        assert vec[i] == getattr(g, m.group(1))[idx], name


@pytest.mark.parametrize("k,options,dim", [
    (2, RuleOptions(), 21), (2, RuleOptions(oja=True), 22), (2, RuleOptions(normalize=True), 25),
    (3, RuleOptions(oja=True, normalize=True), 48), (8, RuleOptions(), 261)])
def test_vector_dim(k, options, dim):
    assert Genome.vector_dim(k, options) == dim
    assert Genome.random(k, options=options).to_vector().shape == (dim,)


@pytest.mark.parametrize("options", OPTION_SETS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vector_round_trip_is_exact(options, dtype):
    g = Genome.random(3, seed=7, options=options, dtype=dtype)
    g.f = torch.tensor(0.123456789, dtype=dtype)  # not a round number
    if options.normalize:
        g.norm_shift = torch.randn(3, dtype=dtype)
    assert_same(Genome.from_vector(g.to_vector(), like=g), g)
    assert_same(Genome.from_vector(g.to_vector(), k=3, options=options), g)


def test_from_vector_keeps_gradient_flow():
    options = RuleOptions(normalize=True)
    v = torch.randn(Genome.vector_dim(2, options), dtype=torch.float64, requires_grad=True)
    g = Genome.from_vector(v, k=2, options=options)
    (g.nu.sum() + 3 * g.f + (g.norm_shift * torch.tensor([5.0, 7.0], dtype=torch.float64)).sum()).backward()
    expected = torch.zeros_like(v)
    expected[0:4] = 1        # nu
    expected[16] = 3         # f
    expected[23:25] = torch.tensor([5.0, 7.0])  # norm_shift (after norm_scale at 21:23)
    assert torch.equal(v.grad, expected)


def test_to_vector_is_differentiable():
    g = Genome.random(2).requires_grad_()
    (g.to_vector() * torch.arange(21.0)).sum().backward()
    assert torch.equal(g.Q.grad, torch.tensor([[12.0, 13.0], [14.0, 15.0]]))
    assert g.init_scale.grad == 20.0


def test_from_vector_bad_inputs():
    with pytest.raises(ValueError, match=r"20 entries, expected 21"):
        Genome.from_vector(torch.zeros(20), k=2)
    with pytest.raises(ValueError, match=r"1-D"):
        Genome.from_vector(torch.zeros(1, 21), k=2)
    with pytest.raises(ValueError, match=r"like= or k="):
        Genome.from_vector(torch.zeros(21))
    with pytest.raises(ValueError, match=r"k=3 contradicts like.k=2"):
        Genome.from_vector(torch.zeros(21), like=Genome.random(2), k=3)
    with pytest.raises(ValueError, match=r"k=1"):
        Genome.from_vector(torch.zeros(9), k=1)


# ---------------------------------------------------------------- engine interface


@pytest.mark.parametrize("options", OPTION_SETS)
def test_tensors_match_engine_names(options):
    from graphnet.engine.rule import RuleTensors
    from graphnet.rules.options import MATRICES, OPTIONAL, SCALARS
    OPTIONAL = dict(OPTIONAL)
    g = Genome.random(3, options=options)
    expected = list(MATRICES) + list(SCALARS) + [n for n, flag in OPTIONAL.items() if getattr(options, flag)]
    assert list(g.tensors()) == expected
    assert all(g.tensors()[n] is getattr(g, n) for n in expected)
    g2 = Genome.random(3, seed=1, options=options)
    rt = RuleTensors.stack([[g], [g2]])  # two members, one genome group each
    assert rt.pop == 2 and rt.groups == 1 and rt.k == 3
    assert torch.equal(rt.nu[1, 0], g2.nu) and torch.equal(rt.eta_tilde, torch.tensor([[0.01], [0.01]]))
    for name, flag in OPTIONAL.items():
        assert (getattr(rt, name) is not None) == getattr(options, flag)


@pytest.mark.parametrize("first", ["graphnet.engine.rule", "graphnet.rules", "graphnet.rules.genome"])
def test_imports_are_not_circular(first):
    code = f"import {first}; from graphnet.rules import Genome; import graphnet.engine.rule; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    code = "import sys, graphnet.rules; print('graphnet.rules.files' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "False", "files.py must be imported lazily"


# ---------------------------------------------------------------- constructor validation


def fields(k=2, dtype=torch.float32):
    return dict(nu=torch.zeros(k, k, dtype=dtype), mu=torch.zeros(k, k, dtype=dtype), P=torch.zeros(k, k, dtype=dtype),
                Q=torch.zeros(k, k, dtype=dtype), f=torch.tensor(0.0, dtype=dtype), eta=torch.tensor(1.0, dtype=dtype),
                f_tilde=torch.tensor(1.0, dtype=dtype), eta_tilde=torch.tensor(0.0, dtype=dtype),
                init_scale=torch.tensor(1.0, dtype=dtype))


@pytest.mark.parametrize("name,bad,expected", [
    ("mu", torch.zeros(3, 2), "[2, 2]"), ("P", torch.zeros(2), "[2, 2]"), ("Q", torch.zeros(2, 2, 1), "[2, 2]"),
    ("f", torch.zeros(1), "[]"), ("eta_tilde", torch.zeros(2), "[]"), ("init_scale", torch.zeros(1, 1), "[]")])
def test_wrong_shape_names_field_expected_and_got(name, bad, expected):
    kw = fields()
    kw[name] = bad
    with pytest.raises(ValueError) as e:
        Genome(**kw)
    msg = str(e.value)
    assert f"Genome.{name}" in msg and f"expected shape {expected}" in msg
    assert f"got {list(bad.shape)}" in msg


def test_wrong_shape_of_optional_and_nu():
    with pytest.raises(ValueError, match=r"Genome.norm_shift: expected shape \[2\], got \[3\]"):
        Genome(**fields(), options=RuleOptions(normalize=True), norm_shift=torch.zeros(3))
    kw = fields()
    kw["nu"] = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"Genome.nu: expected a square"):
        Genome(**kw)


@pytest.mark.parametrize("name", ["nu", "Q", "eta", "f_tilde", "oja", "norm_scale"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_names_field(name, value):
    kw = fields()
    options = RuleOptions(oja=True, normalize=True)
    kw.update(oja=torch.tensor(0.0), norm_scale=torch.ones(2))
    kw[name] = kw[name].clone()
    kw[name].view(-1)[-1] = value
    with pytest.raises(ValueError, match=rf"Genome\.{name} contains NaN or Inf"):
        Genome(**kw, options=options)


def test_optional_fields_present_iff_options_require():
    with pytest.raises(ValueError, match=r"Genome.oja was given but options.oja is False"):
        Genome(**fields(), oja=torch.tensor(0.1))
    with pytest.raises(ValueError, match=r"Genome.norm_scale was given but options.normalize is False"):
        Genome(**fields(), norm_scale=torch.ones(2))
    g = Genome(**fields(k=3), options=RuleOptions(oja=True, normalize=True))
    assert torch.equal(g.oja, torch.tensor(0.0))
    assert torch.equal(g.norm_scale, torch.ones(3)) and torch.equal(g.norm_shift, torch.zeros(3))
    g = Genome(**fields())
    assert g.oja is None and g.norm_scale is None and g.norm_shift is None
    g.oja = torch.tensor(1.0)  # reassigned behind the constructor's back
    with pytest.raises(ValueError, match=r"Genome.oja: options.oja=False does not use it"):
        g.validate()


def test_constructor_checks_states_dtype_and_types():
    with pytest.raises(ValueError, match=r"derivative_states names state\(s\) \[2\].*k=2"):
        Genome(**fields(), options=RuleOptions(derivative_states=(1, 2)))
    with pytest.raises(ValueError, match=r"k >= 2"):
        Genome(**fields(k=1))
    kw = fields()
    kw["eta"] = torch.tensor(1.0, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"Genome.eta: dtype torch.float64 differs from nu's torch.float32"):
        Genome(**kw)
    with pytest.raises(TypeError, match=r"RuleOptions"):
        Genome(**fields(), options={"oja": True})
    kw = fields()
    kw["f"] = None
    with pytest.raises(ValueError, match=r"Genome.f is required"):
        Genome(**kw)


def test_constructor_converts_numbers_and_keeps_tensors():
    nu = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    g = Genome(nu=nu, mu=[[1, 0], [0, 1]], P=torch.eye(2, dtype=torch.int64).to(torch.float64), Q=torch.eye(2, dtype=torch.float64),
               f=0, eta=1.0, f_tilde=1, eta_tilde=-0.5, init_scale=2)
    assert g.nu is nu  # no copy: gradients reach the caller's tensor
    assert g.mu.dtype == torch.float64 and torch.equal(g.mu, torch.eye(2, dtype=torch.float64))
    assert g.eta_tilde.shape == () and float(g.eta_tilde) == -0.5 and g.k == 2


# ---------------------------------------------------------------- random


def test_random_is_deterministic_and_seeded():
    a, b, c = Genome.random(4, seed=3), Genome.random(4, seed=3), Genome.random(4, seed=4)
    assert_same(a, b)
    for name in ("nu", "mu", "P", "Q"):
        assert not torch.equal(getattr(a, name), getattr(c, name)), name
    assert not torch.equal(a.nu, a.mu)  # matrices are drawn independently
    # the same numbers in a fresh interpreter (deterministic across runs)
    code = "from graphnet.rules import Genome; print(Genome.random(4, seed=3).to_vector().tolist())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == a.to_vector().tolist()


def test_random_values_and_dtype():
    g = Genome.random(64, seed=0)
    for name in ("nu", "mu", "P", "Q"):
        t = getattr(g, name)
        assert abs(t.std().item() - 1 / 8) < 0.01 and abs(t.mean().item()) < 0.01, name
    assert (g.f.item(), g.eta.item(), g.f_tilde.item(), g.eta_tilde.item(), g.init_scale.item()) == \
        (0.5, 1.0, 1.0, pytest.approx(0.01), 1.0)
    g32, g64 = Genome.random(3, seed=5), Genome.random(3, seed=5, dtype=torch.float64)
    assert g32.dtype == torch.float32 and g64.dtype == torch.float64
    assert torch.equal(g64.to(torch.float32).to_vector(), g32.to_vector())
    g = Genome.random(2, options=RuleOptions(oja=True, normalize=True))
    assert g.oja.item() == 0.0 and g.norm_scale.tolist() == [1.0, 1.0] and g.norm_shift.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="k >= 2"):
        Genome.random(1)


# ---------------------------------------------------------------- backprop


@pytest.mark.parametrize("loss,feedback", [("mse", Feedback.MSE_GRADIENT), ("cross_entropy", Feedback.CE_GRADIENT)])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_backprop_genome_values_and_options(loss, feedback, activation):
    g = Genome.backprop(0.25, activation=activation, loss=loss)
    assert g.k == 2 and g.dtype == torch.float32
    assert g.nu.tolist() == [[1, 0], [1, 0]]
    assert g.mu.tolist() == [[1, 0], [0, 1]]
    assert g.P.tolist() == [[1, 0], [0, 1]]
    assert g.Q.tolist() == [[0, 1], [1, 0]]
    assert [g.f.item(), g.eta.item(), g.f_tilde.item(), g.eta_tilde.item(), g.init_scale.item()] == [0, 1, 1, -0.25, 1]
    assert g.options == RuleOptions(
        activation=Activation(activation), output_activation=Activation(activation), derivative_states=(1,),
        backward_update=BackwardUpdate.MULTIPLICATIVE, backward_states=(1,), feedback=feedback,
        tied_backward=True, single_channel=True, normalize=False, synapse_normalization=False, oja=False,
        forward_synapse_update=False)


def test_backprop_bad_arguments_list_valid_values():
    with pytest.raises(ValueError, match=r"activation='softplus' is not one of .*'tanh', 'sigmoid'.*'relu'"):
        Genome.backprop(0.1, activation="softplus")
    with pytest.raises(ValueError, match=r"loss='hinge' is not one of 'mse', 'cross_entropy'"):
        Genome.backprop(0.1, loss="hinge")
    with pytest.raises(ValueError, match=r"lr must be finite"):
        Genome.backprop(float("nan"))


def _sigma(name, z):
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[name](z)


def _dsigma(name, z):
    s = _sigma(name, z)
    return {"sigmoid": s * (1 - s), "tanh": 1 - s * s}[name]


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_backprop_genome_is_sgd(loss, activation):
    """Run docs/MODEL.md section 3 densely with the genome's numbers; compare with autograd + SGD."""
    torch.manual_seed(0)
    lr, B = 0.3, 5
    g = Genome.backprop(lr, activation=activation, loss=loss, dtype=torch.float64)
    W = [torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)]
    x = torch.randn(B, 3, dtype=torch.float64)
    t = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1]), 2).double()

    # autograd reference
    Wg = [w.clone().requires_grad_() for w in W]
    h = _sigma(activation, _sigma(activation, x @ Wg[0]) @ Wg[1])
    if loss == "mse":
        L = (0.5 * (h - t) ** 2).sum(1).mean()
    else:
        L = torch.nn.functional.cross_entropy(h, t.argmax(1))
    L.backward()
    sgd = [w - lr * wg.grad for w, wg in zip(W, Wg)]

    # the genome's rule; states [B, neurons, k]; single-channel synapses w[u, v]
    def forward(a_u, w):
        msg = a_u @ g.nu.T                          # Σ_d nu[c, d] a_u[d]
        z = g.f * 0 + g.eta * torch.einsum("buc,uv->bvc", msg, w)
        return torch.stack([_sigma(activation, z[..., 0]), _dsigma(activation, z[..., 1])], -1)

    a0 = torch.stack([x, torch.zeros_like(x)], -1)
    a1 = forward(a0, W[0])
    a2 = forward(a1, W[1])
    h = a2[..., 0]
    err = (h - t) if loss == "mse" else (torch.softmax(h, 1) - t)
    a2 = torch.stack([h, err * a2[..., 1]], -1)     # feedback into state 1
    back = torch.einsum("bvc,uv->buc", a2 @ g.mu.T, W[1])   # tied: same w_uv
    a1 = torch.stack([a1[..., 0], a1[..., 1] * back[..., 1]], -1)  # multiplicative on state 1
    new = []
    for a_s, a_t, w in ((a0, a1, W[0]), (a1, a2, W[1])):
        pre = a_s @ g.P                              # Σ_e a_s[e] P[e, c]
        post = a_t @ g.Q.T                           # Σ_d Q[c, d] a_t[d]
        dw = torch.einsum("bu,bv->uv", pre[..., 0], post[..., 0]) / B
        new.append(g.f_tilde * w + g.eta_tilde * dw)
    for a, b in zip(new, sgd):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- torch plumbing


def test_parameters_requires_grad_detach_clone_to():
    g = Genome.random(2, options=RuleOptions(oja=True))
    assert g.requires_grad_() is g
    params = g.parameters()
    assert len(params) == 10 and all(p.requires_grad and p.is_leaf for p in params)
    opt = torch.optim.SGD(params, lr=1.0)
    g.to_vector().sum().backward()
    before = g.to_vector().detach().clone()
    opt.step()
    assert torch.equal(g.to_vector().detach(), before - 1)  # optimizer updated the genome in place
    d = g.detach()
    assert not any(t.requires_grad for t in d.parameters()) and d.nu.data_ptr() == g.nu.data_ptr()
    c = g.detach().clone()
    assert c.nu.data_ptr() != g.nu.data_ptr() and c.allclose(g, rtol=0, atol=0)
    assert g.to(dtype=torch.float64).dtype == torch.float64 and g.to(dtype=torch.float64).oja.dtype == torch.float64
    h = Genome.from_vector(torch.zeros(22, requires_grad=True) * 2, k=2, options=g.options)
    with pytest.raises(ValueError, match=r"not a leaf"):
        h.requires_grad_()
    assert h.detach().requires_grad_() is not None
    assert g.requires_grad_(False) is g and not g.nu.requires_grad


def test_allclose_and_repr():
    g = Genome.backprop(0.1)
    assert g.allclose(Genome.backprop(0.1)) and not g.allclose(Genome.backprop(0.2))
    assert not g.allclose(Genome.backprop(0.1, loss="cross_entropy"))
    r = repr(g)
    assert r.startswith("Genome(k=2") and "eta_tilde=-0.1" in r and "tied_backward=True" in r
    assert "normalize" not in r  # default options are not listed
    assert "defaults" in repr(Genome.random(2))


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("options", OPTION_SETS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_file_round_trip_is_exact(tmp_path, options, dtype):
    g = Genome.from_vector(torch.randn(Genome.vector_dim(3, options), dtype=torch.float64) * 7, k=3,
                           options=options).to(dtype=dtype)
    path = tmp_path / "genome.json"
    assert g.save(path) == path
    assert_same(Genome.load(path), g)
    assert_same(Genome.load(str(path)), g)
    assert os.listdir(tmp_path) == ["genome.json"]  # no temporary file left behind


def test_file_document_and_checksum(tmp_path):
    g = Genome.backprop(0.5, loss="cross_entropy")
    path = g.save(tmp_path / "g.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "graphnet-genome" and doc["version"] == 1 and doc["k"] == 2
    assert doc["dtype"] == "float32" and doc["options"] == g.options.to_dict()
    assert doc["tensors"]["Q"] == [[0.0, 1.0], [1.0, 0.0]] and doc["tensors"]["eta_tilde"] == -0.5
    body = {key: value for key, value in doc.items() if key != "sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert doc["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    g2 = Genome.random(2)
    g2.save(path)  # overwrite atomically
    assert_same(Genome.load(path), g2)


def _rewrite(path, mutate):
    """Edit a saved document and store it with a valid checksum (as another tool might)."""
    doc = json.loads(path.read_text())
    mutate(doc)
    body = {key: value for key, value in doc.items() if key != "sha256"}
    doc["sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    path.write_text(json.dumps(doc))


@pytest.fixture
def saved(tmp_path):
    return Genome.random(2, seed=1).save(tmp_path / "g.json")


def _load_error(path, match):
    with pytest.raises(ValueError, match=match) as e:
        Genome.load(path)
    assert str(path) in str(e.value)
    # one clear message, no chained JSONDecodeError/KeyError traceback
    assert e.value.__cause__ is None and (e.value.__context__ is None or e.value.__suppress_context__)
    return e.value


def test_load_truncated_file(saved):
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2])
    _load_error(saved, r"not valid JSON, probably truncated")


def test_load_flipped_digit_fails_checksum(saved):
    text = saved.read_text()
    start = text.index('"tensors"')
    pos = next(i for i in range(start, len(text)) if text[i] in "123456789")
    saved.write_text(text[:pos] + str(int(text[pos]) % 9 + 1) + text[pos + 1:])
    _load_error(saved, r"checksum mismatch")


def test_load_edited_option_fails_checksum(saved):
    saved.write_text(saved.read_text().replace('"oja": false', '"oja": true'))
    _load_error(saved, r"checksum mismatch")


def test_load_wrong_version_and_format(saved):
    text = saved.read_text()
    saved.write_text(text.replace('"version": 1', '"version": 99'))
    _load_error(saved, r"unsupported version 99 \(written by a newer graphnet\?\); this graphnet reads version 1")
    saved.write_text(text.replace('"graphnet-genome"', '"graphnet-topology"'))
    _load_error(saved, r"not a graphnet genome file \(format 'graphnet-topology'")
    saved.write_text("[1, 2, 3]")
    _load_error(saved, r"not a graphnet genome file")
    saved.write_text("")
    _load_error(saved, r"is empty")
    saved.write_bytes(b"\xff\xfe\x00garbage")
    _load_error(saved, r"not UTF-8")


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        Genome.load(path)
    with pytest.raises(ValueError, match=r"cannot be read"):
        Genome.load(tmp_path)  # a folder


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_load_non_finite_values(saved, number):
    saved.write_text(re.sub(r'"f": [^,]+,', f'"f": {number},', saved.read_text()))
    _load_error(saved, r"non-finite number")


def test_load_bad_contents_with_valid_checksum(saved):
    def check(mutate, match):
        good = saved.read_text()
        _rewrite(saved, mutate)
        _load_error(saved, match)
        saved.write_text(good)

    check(lambda d: d["tensors"].update(nu=[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), r"Genome.nu: expected a square")
    check(lambda d: d["tensors"].update(mu=[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
          r"Genome.mu: expected shape \[2, 2\], got \[2, 3\]")
    check(lambda d: d["tensors"].update(f=[1.0]), r"Genome.f: expected shape \[\], got \[1\]")
    check(lambda d: d["tensors"].update(P=[[1.0], [2.0, 3.0]]), r"tensor 'P' is not a numeric array")
    check(lambda d: d["tensors"].update(Q="abc"), r"tensor 'Q' is not a numeric array")
    check(lambda d: d["tensors"].pop("eta"), r"missing tensor\(s\) \['eta'\]")
    check(lambda d: d["tensors"].update(oja=0.0), r"unexpected tensor\(s\) \['oja'\]")
    check(lambda d: d["options"].update(learning_rate=1), r"unknown rule option\(s\) \['learning_rate'\]")
    check(lambda d: d["options"].update(activation="swish"), r"activation='swish' is not one of")
    check(lambda d: d.update(k=3), r"declares k=3")
    check(lambda d: d.update(dtype="int8"), r"dtype 'int8'; valid dtypes: float16")
    check(lambda d: d.update(extra=1), r"unknown key\(s\) \['extra'\]")
    check(lambda d: d.pop("options"), r"missing key\(s\) \['options'\]")
