"""jaxgd.losses against torch.nn.functional (values and gradients), NumPy and the notes' numbers.

Every loss is compared with torch for all three reductions, in float32 and float64
(`jax.enable_x64`). Gradients are compared as vector-Jacobian products with a random cotangent,
so reduction "none" checks every element's derivative, not only the gradient of a sum. The
comparisons run jitted (one compile covers the three reductions); `test_jit_equals_eager` ties
the eager path to them. Inputs use a few fixed shapes so that compiled code is reused.

The hypothesis tests compare float32 results with torch evaluated in float64 on the same float32
inputs: torch's own float32 `binary_cross_entropy_with_logits` computes (1 - y) x - log s(x),
which cancels (x = -1e4, y = 1.19e-7: torch 9.8e-4, exact 1.19e-3, jaxgd 1.19e-3); see
`test_float32_torch_cancels_where_jaxgd_is_exact`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxgd import losses


@pytest.fixture(autouse=True, scope="module")
def _torch_single_thread():
    """Tiny tensors: torch's thread pool only adds contention here (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


REDUCTIONS = ("mean", "sum", "none")
DTYPES = (np.float32, np.float64)
TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
# Sums of up to 48 float32 terms may round differently in XLA and torch (summation order).
TOL_REDUCED = {np.float32: dict(rtol=4e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
PROPERTY = settings(max_examples=200, deadline=None)
CLASSIFICATION = ("cross_entropy", "nll_loss")


def _torch_layout(z, axis):
    """`z` with jaxgd's class axis `axis` moved to torch's (0 for one example, else 1)."""
    axis = z.ndim - 1 if axis is None else axis % z.ndim
    return z.movedim(axis, 0 if z.ndim == 1 else 1)


def _torch_ce(z, labels, reduction, axis=None, **options):
    if labels.is_floating_point():  # class probabilities: laid out like the logits
        labels = _torch_layout(labels, axis)
    else:
        labels = labels.long()
    return F.cross_entropy(_torch_layout(z, axis), labels, reduction=reduction, **options)


def _torch_nll(lp, labels, reduction, axis=None, **options):
    return F.nll_loss(_torch_layout(lp, axis), labels.long(), reduction=reduction, **options)


TORCH = {
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "l1_loss": F.l1_loss,
    "mse_loss": F.mse_loss,
    "rmse": lambda x, y, reduction: torch.sqrt(F.mse_loss(x, y, reduction=reduction)),
    "cross_entropy": _torch_ce,
    "nll_loss": _torch_nll,
}


@functools.cache
def _jax_runner(name, reductions, diff, options=()):
    """jit(args, weights, cotangents) -> [(loss, VJP w.r.t. args[diff])] for each reduction.

    `options` are (keyword, value) pairs that are not arrays (axis, ignore_index, ...)."""
    fn = functools.partial(getattr(losses, name), **dict(options))

    def run(args, weights, cots):
        results = []
        for reduction, cot in zip(reductions, cots, strict=True):

            def f(*d, reduction=reduction):
                a = list(args)
                for i, v in zip(diff, d, strict=True):
                    a[i] = v
                return fn(*a, **weights, reduction=reduction)

            out, vjp = jax.vjp(f, *(args[i] for i in diff))
            results.append((out, vjp(cot)))
        return results

    return jax.jit(run)


def check_against_torch(
    name, args, *, diff, dtype, ref_dtype=None, grad_masks=None, options=None, **weights
):
    """Compare loss and VJPs w.r.t. `args[i]`, i in `diff`, with torch for every reduction.

    torch runs in `ref_dtype` (default `dtype`) on the same `dtype`-rounded inputs;
    `grad_masks[i]` selects the entries of the i-th gradient to compare; `options` are keyword
    arguments other than arrays, given to both (`axis` is jaxgd's class axis).
    """
    options = dict(options or {})
    dtype = np.dtype(dtype).type
    ref_dtype = np.dtype(ref_dtype or dtype).type
    args = [a if np.issubdtype(a.dtype, np.integer) else a.astype(dtype) for a in args]
    weights = {k: v.astype(dtype) for k, v in weights.items() if v is not None}
    reductions = ("mean", "sum") if name == "rmse" else REDUCTIONS
    none_shape = args[0].shape
    if name in CLASSIFICATION:
        axis = options.get("axis", -1) % args[0].ndim
        none_shape = none_shape[:axis] + none_shape[axis + 1 :]
    rng = np.random.default_rng(0)
    cots = [
        rng.standard_normal(() if r != "none" else none_shape).astype(dtype) for r in reductions
    ]
    with jax.enable_x64(dtype is np.float64):
        runner = _jax_runner(name, reductions, tuple(diff), tuple(sorted(options.items())))
        results = runner(args, weights, cots)
        results = jax.tree.map(np.asarray, results)
    ref = lambda a: torch.tensor(a if np.issubdtype(a.dtype, np.integer) else a.astype(ref_dtype))
    for reduction, cot, (value, grads) in zip(reductions, cots, results, strict=True):
        targs = [ref(a).requires_grad_(i in diff) for i, a in enumerate(args)]
        tweights = {k: ref(v) for k, v in weights.items()}
        tout = TORCH[name](*targs, **tweights, **options, reduction=reduction)
        tgrads = torch.autograd.grad((tout * ref(cot)).sum(), [targs[i] for i in diff])
        tol = TOL[dtype] if reduction == "none" else TOL_REDUCED[dtype]
        msg = f"{name}, reduction={reduction!r}"
        assert value.dtype == dtype and value.shape == tuple(tout.shape), msg
        np.testing.assert_allclose(value, tout.detach().numpy(), **tol, err_msg=msg)
        if name == "rmse" and value == 0:  # exact fit: torch's gradient is NaN, jaxgd's 0
            assert all(np.all(g == 0) for g in grads), msg
            continue
        for i, g, tg in zip(diff, grads, tgrads, strict=True):
            mask = (grad_masks or {}).get(i, np.ones(g.shape, bool))
            assert g.dtype == dtype and np.all(np.isfinite(g[mask])), msg
            np.testing.assert_allclose(
                g[mask], tg.numpy()[mask], **TOL[dtype], err_msg=f"{msg}, gradient {i}"
            )


# ---------------------------------------------------------------- extreme and random inputs

# Every grid test uses this one shape, so the compiled comparisons are reused across tests.
GRID = (16, 3)


def _grid(xs, ys, rng, lo, hi, ylo=0.0, yhi=1.0):
    """All pairs (x, y) of the extremes, then random pairs, as two arrays of shape GRID."""
    x, y = (a.ravel() for a in np.meshgrid(np.float64(xs), np.float64(ys), indexing="ij"))
    n = GRID[0] * GRID[1] - x.size
    x = np.concatenate([x, rng.uniform(lo, hi, n)]).reshape(GRID)
    return x, np.concatenate([y, rng.uniform(ylo, yhi, n)]).reshape(GRID)


def _clamped(p):
    """Where torch clamps a log term of binary_cross_entropy (log p or log(1 - p) below -100)."""
    with np.errstate(divide="ignore"):
        return (np.log(p) <= -100) | (np.log1p(-p) <= -100)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_extremes_against_torch(dtype, weighted):
    rng = np.random.default_rng(1)
    probs = [0.0, 1.0, 1e-7, 1 - 2.0**-24, 1e-12, 1e-30, 0.5, 0.9]
    probs += [1e-50] if dtype is np.float64 else []  # normal in float64, log clamped
    p, y = _grid(probs, [0.0, 1.0, 0.25], rng, 0.0, 1.0)
    w = rng.uniform(0.5, 2.0, (3,)) if weighted else None
    masks = {1: ~_clamped(p.astype(dtype).astype(np.float64))}  # documented difference
    check_against_torch(
        "binary_cross_entropy", [p, y], diff=(0, 1), dtype=dtype, grad_masks=masks, weight=w
    )


def test_bce_at_zero_and_one_gives_torchs_numbers():
    p, y = jnp.array([0.0, 0.0, 1.0, 1.0]), jnp.array([0.0, 1.0, 0.0, 1.0])
    loss = lambda p, y, reduction: losses.binary_cross_entropy(p, y, reduction=reduction)
    value, (g_p, g_y) = jax.jit(
        lambda p, y: (loss(p, y, "none"), jax.grad(loss, (0, 1))(p, y, "sum"))
    )(p, y)
    assert value.tolist() == [0.0, 100.0, 100.0, 0.0]
    np.testing.assert_allclose(g_p, [0.0, -1e12, 1e12, 0.0], rtol=1e-6)  # torch's 1/max(.., 1e-12)
    # Documented difference: the targets' gradient is that of the clamped loss; torch gives inf.
    assert g_y.tolist() == [100.0, 100.0, -100.0, -100.0]
    ty = torch.tensor(np.asarray(y), requires_grad=True)
    F.binary_cross_entropy(torch.tensor(np.asarray(p)), ty, reduction="sum").backward()
    assert ty.grad.tolist() == [np.inf, np.inf, -np.inf, -np.inf]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighting", ["none", "both"])  # the two code paths of each weight
def test_bce_with_logits_extremes_against_torch(dtype, weighting):
    rng = np.random.default_rng(2)
    xs = [1e4, -1e4, 100.0, -100.0, 30.0, -30.0, 20.0, -20.0, 0.0, 1.5]
    x, y = _grid(xs, [0.0, 1.0, 0.3], rng, -10.0, 10.0)
    w = rng.uniform(0.5, 2.0, (GRID[0], 1)) if weighting == "both" else None  # per row
    pw = np.array([2.0, 0.5, 3.0]) if weighting == "both" else None  # per class
    check_against_torch(
        "binary_cross_entropy_with_logits",
        [x, y],
        diff=(0, 1),
        dtype=dtype,
        weight=w,
        pos_weight=pw,
    )


def test_float32_torch_cancels_where_jaxgd_is_exact():
    x = np.float32([20.0, -30.0, 1e4, -1e4, -1e4])
    y = np.float32([1.0, 0.0, 1.0, 0.0, 2.0**-23])
    exact = np.log1p(np.exp(-np.abs(np.float64(x)))) - np.float64(y) * np.minimum(x, 0)
    loss = lambda x, reduction: losses.binary_cross_entropy_with_logits(x, y, reduction=reduction)
    value, grad = jax.jit(lambda x: (loss(x, "none"), jax.grad(loss)(x, "sum")))(x)
    np.testing.assert_allclose(value, exact, rtol=1e-6, atol=0)
    np.testing.assert_allclose(grad, [-exact[0], exact[1], 0, 0, -y[4]], rtol=1e-5, atol=0)
    t = F.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y), reduction="none")
    assert t[1] == 0 and abs(t[4] / exact[4] - 1) > 0.1  # torch float32 loses these digits


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "rmse"])
def test_regression_losses_extremes_against_torch(dtype, name):
    values = [0.0, 1e4, -1e4, 1.5, -2.0, 100.0]  # the pairs include exact ties
    x, y = _grid(values, values, np.random.default_rng(3), -5.0, 5.0, -5.0, 5.0)
    check_against_torch(name, [x, y], diff=(0, 1), dtype=dtype)


def _log_softmax(z):
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_losses_extremes_against_torch(dtype, name):
    rows = [[1e4, -1e4, 0.0], [100.0, -100.0, 0.0], [0.0, 0.0, 0.0], [-1e4, -1e4, -1e4]]
    z = np.concatenate([np.repeat(rows, 3, axis=0), np.random.default_rng(4).normal(0, 3, (4, 3))])
    labels = np.tile(np.arange(3, dtype=np.int32), 16)[:16]  # every extreme row with every label
    z = _log_softmax(z) if name == "nll_loss" else z
    check_against_torch(name, [z, labels], diff=(0,), dtype=dtype)


def _options_cases():
    """(name, args, diff, weights, options) for PyTorch's class weights, ignore_index, label
    smoothing, probability targets and (N, C, d1, ...) layout, alone and together."""
    rng = np.random.default_rng(11)
    z, z4 = rng.normal(0, 3, (8, 4)), rng.normal(0, 3, (3, 4, 4, 2))  # (N, C) and (N, C, d1, d2)
    y = np.array([0, 1, 2, 3, -100, 1, -100, 2], np.int32)  # -100: PyTorch's ignored label
    y4 = rng.integers(0, 4, (3, 4, 2)).astype(np.int32)
    y4[0, 1, 0] = y4[2, 3, 1] = -100
    w = np.array([0.5, 2.0, 1.0, 3.0])
    p = rng.dirichlet(np.ones(4), 8)  # class probabilities, one row per example
    p4 = np.moveaxis(rng.dirichlet(np.ones(4), (3, 4, 2)), -1, 1)  # (N, C, d1, d2)
    square = rng.normal(0, 3, (5, 4, 4))  # d1 == C: only `axis` says which axis holds classes
    y_sq = rng.integers(0, 4, (5, 4)).astype(np.int32)
    lp = _log_softmax(z)
    return [
        ("cross_entropy", [z, y], (0,), {"weight": w}, {}),
        ("cross_entropy", [z, np.where(y < 0, 2, y)], (0,), {}, {"ignore_index": 2}),
        ("cross_entropy", [z, y], (0,), {}, {"label_smoothing": 0.1}),
        ("cross_entropy", [z, y], (0,), {"weight": w}, {"label_smoothing": 0.25}),
        ("cross_entropy", [z, p], (0, 1), {}, {}),
        ("cross_entropy", [z, p], (0, 1), {"weight": w}, {"label_smoothing": 0.2}),
        ("cross_entropy", [z4, y4], (0,), {"weight": w}, {"axis": 1, "label_smoothing": 0.1}),
        ("cross_entropy", [z4, p4], (0, 1), {"weight": w}, {"axis": 1}),
        ("cross_entropy", [np.moveaxis(z4, 1, -1), y4], (0,), {"weight": w}, {"axis": -1}),
        ("cross_entropy", [square, y_sq], (0,), {}, {"axis": 1}),
        ("cross_entropy", [square, y_sq[:, :4]], (0,), {}, {"axis": 2}),
        ("cross_entropy", [z[0], np.int32(3)], (0,), {"weight": w}, {"label_smoothing": 0.1}),
        ("cross_entropy", [z[0], p[0]], (0, 1), {"weight": w}, {}),
        ("nll_loss", [lp, y], (0,), {"weight": w}, {}),
        ("nll_loss", [lp, np.where(y < 0, 0, y)], (0,), {"weight": w}, {"ignore_index": 0}),
        ("nll_loss", [_log_softmax(np.moveaxis(z4, 1, -1)).transpose(0, 3, 1, 2), y4], (0,),
         {"weight": w}, {"axis": 1}),
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(_options_cases())))
def test_torch_loss_options_against_torch(dtype, case):
    """Values and VJPs (logits, and probability targets) for every reduction, as torch gives."""
    name, args, diff, weights, options = _options_cases()[case]
    args = [np.asarray(a) for a in args]
    check_against_torch(name, args, diff=diff, dtype=dtype, options=options, **weights)


def test_nothing_counted_is_nan_with_torchs_gradients():
    """All labels ignored: NaN mean, zero gradient; all weights zero: NaN mean and gradient."""
    z = np.random.default_rng(12).normal(size=(3, 4)).astype(np.float32)
    cases = [(np.full(3, -100, np.int32), None), (np.ones(3, np.int32), np.array([1.0, 0, 1, 1]))]
    for labels, weight in cases:
        w = None if weight is None else weight.astype(np.float32)
        for smoothing in (0.0, 0.1):
            loss = lambda z, s=smoothing, w=w, labels=labels: losses.cross_entropy(
                z, labels, weight=w, label_smoothing=s
            )
            value, grad = jax.value_and_grad(loss)(jnp.asarray(z))
            tz = torch.tensor(z, requires_grad=True)
            tw = None if w is None else torch.tensor(w)
            tout = F.cross_entropy(tz, torch.tensor(labels).long(), weight=tw,
                                   label_smoothing=smoothing)  # fmt: skip
            tout.backward()
            assert np.isnan(value) and torch.isnan(tout)
            np.testing.assert_array_equal(np.isnan(grad), tz.grad.isnan().numpy())
            np.testing.assert_array_equal(np.nan_to_num(grad), tz.grad.nan_to_num().numpy())
    summed = losses.nll_loss(jnp.zeros((1, 3)), jnp.array([-100]), reduction="sum")
    assert float(summed) == 0.0  # a one-example loss with an ignored label: 0 under "sum"


def test_class_axis_is_never_guessed_beyond_two_axes():
    """(N, C, d1) with d1 == C was computed on the last axis without a word: now `axis` says."""
    z = jnp.asarray(np.random.default_rng(13).normal(size=(2, 3, 3)), jnp.float32)
    labels = jnp.array([[0, 1, 2], [2, 2, 0]])
    with pytest.raises(ValueError, match=r"with 3 axes, say which one holds the classes: `axis=1` "
                       r"for PyTorch's layout \(N, C, d1, ...\), or `axis=-1`"):  # fmt: skip
        losses.cross_entropy(z, labels)
    torch_layout = losses.cross_entropy(z, labels, axis=1)
    classes_last = losses.cross_entropy(jnp.moveaxis(z, 1, -1), labels, axis=-1)
    np.testing.assert_allclose(torch_layout, classes_last, rtol=1e-6)
    expected = F.cross_entropy(torch.tensor(np.asarray(z)), torch.tensor(np.asarray(labels)).long())
    np.testing.assert_allclose(torch_layout, expected.numpy(), rtol=1e-6)
    assert not np.allclose(losses.cross_entropy(z, labels, axis=-1), torch_layout)


def test_probability_targets_are_not_the_argmax_loss():
    """The old error suggested `labels.argmax(-1)`: a different loss for soft targets."""
    z = jnp.array([[2.0, 0.0, -1.0]])
    soft = jnp.array([[0.6, 0.3, 0.1]])
    by_probs = losses.cross_entropy(z, soft)
    by_argmax = losses.cross_entropy(z, soft.argmax(-1))
    q = jax.nn.log_softmax(z)
    np.testing.assert_allclose(by_probs, -(soft * q).sum(), rtol=1e-6)
    assert abs(float(by_probs) - float(by_argmax)) > 0.1


def test_second_derivative_against_torch():
    # rtol 1e-5: both sides form s'(x) as s(1 - s), which cancels at x = 25 (s(-25) = 1.4e-11).
    x = np.array([-30.0, -2.0, 0.0, 0.5, 3.0, 25.0])
    y = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.7])
    pw = np.array(2.5)
    with jax.enable_x64(True):
        f = lambda x: losses.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="sum")
        h = jax.jit(jax.grad(lambda x: jnp.sum(jax.grad(f)(x))))(x)  # elementwise: the diagonal
    tx = torch.tensor(x, requires_grad=True)
    t = F.binary_cross_entropy_with_logits(
        tx, torch.tensor(y), pos_weight=torch.tensor(pw), reduction="sum"
    )
    (g,) = torch.autograd.grad(t, tx, create_graph=True)
    np.testing.assert_allclose(h, torch.autograd.grad(g.sum(), tx)[0], rtol=1e-5, atol=1e-16)


# ---------------------------------------------------------------- property tests (hypothesis)
# float32 against torch in float64 (see the module docstring), every reduction per example,
# shapes from a small fixed set (0-d, 1-d, 2-d; one example, batch, 3-d batch for classes) so
# that each compiles once and drawing stays cheap.

SHAPES = st.sampled_from([(), (5,), (4, 3)])
LOGIT_SHAPES = st.sampled_from([(5,), (4, 3), (2, 2, 3)])  # classes on the last axis (axis=-1)


def _arrays(shape, lo, hi, extremes):
    floats = st.floats(lo, hi, allow_nan=False, allow_subnormal=False, width=32)
    return hnp.arrays(np.float64, shape, elements=st.one_of(st.sampled_from(extremes), floats))


def _check_float32(name, args, **kwargs):
    check_against_torch(name, args, dtype=np.float32, ref_dtype=np.float64, **kwargs)


@PROPERTY
@given(data=st.data(), shape=SHAPES)
def test_property_bce(data, shape):
    p = data.draw(_arrays(shape, 0, 1, [0.0, 1.0, 1e-7, 1 - 2.0**-24]))
    y = data.draw(_arrays(shape, 0, 1, [0.0, 1.0]))
    w = data.draw(_arrays(shape[-1:], 0, 4, [0.0, 1.0]))  # torch-style trailing broadcast
    masks = {1: ~_clamped(p.astype(np.float32).astype(np.float64))}
    _check_float32("binary_cross_entropy", [p, y], diff=(0, 1), grad_masks=masks, weight=w)


@PROPERTY
@given(data=st.data(), shape=SHAPES)
def test_property_bce_with_logits(data, shape):
    x = data.draw(_arrays(shape, -1e4, 1e4, [1e4, -1e4, 100.0, -100.0, 0.0]))
    y = data.draw(_arrays(shape, 0, 1, [0.0, 1.0]))
    w, pw = (data.draw(_arrays(shape[-1:], 0, 4, [0.0, 1.0])) for _ in range(2))
    _check_float32("binary_cross_entropy_with_logits", [x, y], diff=(0, 1), weight=w, pos_weight=pw)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "rmse"])
@PROPERTY
@given(data=st.data(), shape=SHAPES)
def test_property_regression(name, data, shape):
    x = data.draw(_arrays(shape, -1e4, 1e4, [0.0, 1e4, -1e4]))
    y = data.draw(_arrays(shape, -1e4, 1e4, [0.0, 1e4, -1e4]))
    y = np.where(data.draw(hnp.arrays(bool, shape)), x, y)  # exact ties
    _check_float32(name, [x, y], diff=(0, 1))


@pytest.mark.parametrize("name", CLASSIFICATION)
@PROPERTY
@given(data=st.data(), shape=LOGIT_SHAPES)
def test_property_classification(name, data, shape):
    lo, hi = (-1e4, 1e4) if name == "cross_entropy" else (-1e4, 0.0)
    z = data.draw(_arrays(shape, lo, hi, [lo, hi, 0.0]))
    labels = data.draw(hnp.arrays(np.int32, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
    _check_float32(name, [z, labels], diff=(0,), options={"axis": -1} if len(shape) > 2 else None)


# ---------------------------------------------------------------- transformations


def _batch(name, rng, n=5):
    if name in ("cross_entropy", "nll_loss"):
        return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 4, n).astype(np.int32)
    x = rng.uniform(0.01, 0.99, n) if name == "binary_cross_entropy" else rng.normal(size=n)
    return x.astype(np.float32), rng.uniform(0, 1, n).astype(np.float32)


ALL = [n for n in losses.__all__ if n != "mnist_loss"]


@pytest.mark.parametrize("name", ALL)
def test_jit_equals_eager(name):
    x, y = _batch(name, np.random.default_rng(5))
    fn = getattr(losses, name)

    def values_and_grads(x, y):
        out = []
        for reduction in ("mean", "sum") if name == "rmse" else REDUCTIONS:
            scalar = lambda x, reduction=reduction: jnp.sum(fn(x, y, reduction=reduction))
            out.append((fn(x, y, reduction=reduction), jax.grad(scalar)(x)))
        return out

    jax.tree.map(
        np.testing.assert_array_equal, jax.jit(values_and_grads)(x, y), values_and_grads(x, y)
    )


def test_no_retrace_on_new_values():
    traces = []

    @jax.jit
    def f(p, y):
        traces.append(None)
        return losses.binary_cross_entropy(p, y)

    f(jnp.array([0.2, 0.7]), jnp.array([0.0, 1.0]))
    f(jnp.array([0.4, 0.1]), jnp.array([1.0, 1.0]))
    assert len(traces) == 1


@pytest.mark.parametrize("name", [n for n in ALL if n != "rmse"])
def test_vmap_of_one_example_equals_batch(name):
    x, y = _batch(name, np.random.default_rng(6))
    fn = getattr(losses, name)

    @jax.jit
    def both(x, y):
        per_example = jax.vmap(lambda a, b: fn(a, b, reduction="none"))(x, y)
        grads = jax.vmap(jax.grad(fn))(x, y), jax.grad(fn)(x, y)
        return per_example, fn(x, y, reduction="none"), fn(x, y), grads

    per_example, batched, mean, (per_example_grads, batch_grad) = both(x, y)
    np.testing.assert_allclose(per_example, batched, rtol=1e-6)
    np.testing.assert_allclose(jnp.mean(per_example), mean, rtol=1e-6)
    # Each example touches only its own row: the batch gradient is the per-example ones over n.
    np.testing.assert_allclose(per_example_grads / len(x), batch_grad, rtol=1e-6)


def test_vmap_rmse_and_mnist_loss_of_one_example():
    x, y = _batch("mse_loss", np.random.default_rng(7))
    t = (y > 0.5).astype(np.int32)
    f = lambda x, y, t: (
        jax.vmap(losses.rmse)(x, y),
        jax.vmap(losses.mnist_loss)(x, t),
        losses.mnist_loss(x, t),
    )
    rmse_per_example, mnist_per_example, mnist_batch = jax.jit(f)(x, y, t)
    np.testing.assert_allclose(rmse_per_example, np.abs(x - y), rtol=1e-6)
    np.testing.assert_allclose(jnp.mean(mnist_per_example), mnist_batch, rtol=1e-6)


# ---------------------------------------------------------------- references other than torch


def test_notes_numbers_with_both_bce_forms():
    w, b, x, y = 0.23, 0.1, 1.23, 1.0
    z = w * x + b
    assert round(z, 4) == 0.3829 and round(float(jax.nn.sigmoid(z)), 4) == 0.5946
    bce = lambda w, b: losses.binary_cross_entropy(jax.nn.sigmoid(w * x + b), y)
    bce_logits = lambda w, b: losses.binary_cross_entropy_with_logits(w * x + b, y)
    for loss in (bce, bce_logits):
        value, (dw, db) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(w, b)
        assert [round(float(v), 4) for v in (value, dw, db)] == [0.5199, -0.4987, -0.4054]


@pytest.mark.parametrize("shape", [(7, 1), (2, 3, 4)])  # 0-d: see the vmap test
def test_mnist_loss_against_numpy(shape):
    rng = np.random.default_rng(8)
    x = rng.normal(0, 3, shape).astype(np.float32)
    t = rng.integers(0, 2, shape)  # fastbook's integer targets
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    expected = np.mean(np.where(t == 1, 1 - p, p))
    f = lambda x, t: (
        losses.mnist_loss(x, t),
        losses.mnist_loss(x, t.astype(bool)),
        jax.grad(losses.mnist_loss)(x, t),
    )
    value, value_bool, grad = jax.jit(f)(x, t)
    np.testing.assert_allclose([value, value_bool], [expected, expected], rtol=1e-6)
    expected_grad = np.where(t == 1, -1, 1) * p * (1 - p) / x.size
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_rmse_is_sqrt_of_mse(reduction):
    x, y = _batch("mse_loss", np.random.default_rng(9), n=11)
    mse = losses.mse_loss(x, y, reduction=reduction)
    np.testing.assert_allclose(losses.rmse(x, y, reduction=reduction), np.sqrt(mse), rtol=1e-6)


def test_rmse_gradient_is_zero_at_an_exact_fit_where_torch_gives_nan():
    x = jnp.array([1.0, 2.0, 3.0])
    assert jax.grad(losses.rmse)(x, x).tolist() == [0.0, 0.0, 0.0]
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    torch.sqrt(F.mse_loss(tx, tx.detach())).backward()
    assert torch.isnan(tx.grad).all()


# ---------------------------------------------------------------- dtype policy and bad input


@pytest.mark.parametrize(
    "name",
    ["binary_cross_entropy", "binary_cross_entropy_with_logits", "l1_loss", "mse_loss", "rmse"],
)
@pytest.mark.parametrize("target_dtype", [np.int32, np.int64, bool])
def test_integer_and_bool_targets_are_cast_to_the_prediction_dtype(name, target_dtype):
    x = np.array([0.2, 0.6, 0.9, 0.4], np.float32)
    t = np.array([1, 0, 1, 1]).astype(target_dtype)
    fn = getattr(losses, name)
    out = fn(x, t)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, fn(x, t.astype(np.float32)))


def test_float64_targets_are_cast_to_float32_predictions():
    with jax.enable_x64(True):
        out = losses.mse_loss(jnp.zeros(3, jnp.float32), jnp.ones(3, jnp.float64))
        assert out.dtype == jnp.float32


def test_out_of_range_values_give_nan_not_an_error():
    @jax.jit  # values cannot be checked under jit: torch raises, jaxgd gives NaN
    def f():
        return (
            losses.binary_cross_entropy(jnp.array([1.5]), jnp.array([1.0])),
            losses.cross_entropy(jnp.zeros((2, 3)), jnp.array([1, 3]), reduction="none"),
            losses.nll_loss(jnp.zeros(3), -1),
        )

    bce, ce, nll = f()
    assert np.isnan(bce) and np.isnan(nll) and np.isnan(ce[1]) and not np.isnan(ce[0])


A, B = np.zeros(4, np.float32), np.zeros((4, 1), np.float32)
BAD_INPUT = [
    (lambda: losses.binary_cross_entropy(A, B), ValueError, r"`targets` has shape \(4, 1\) but `probs` has shape \(4,\); they must be equal .*Fix: pass `targets.reshape\(probs.shape\)`"),
    (lambda: losses.binary_cross_entropy_with_logits(A, A[:3]), ValueError, r"`targets` has shape \(3,\) but `logits` has shape \(4,\).*Fix: pass arrays with as many elements \(4 against 3\)"),
    (lambda: losses.mse_loss(A, B), ValueError, r"`targets` has shape \(4, 1\) but `predictions` has shape \(4,\).*silently give an \(n, n\) loss"),
    (lambda: losses.l1_loss(B, A), ValueError, r"`targets` has shape \(4,\) but `predictions` has shape \(4, 1\)"),
    (lambda: losses.rmse(A, 0.0), ValueError, r"`targets` has shape \(\) but `predictions`"),
    (lambda: losses.mnist_loss(A, B), ValueError, r"`targets` has shape \(4, 1\) but `predictions` has shape \(4,\)"),
    (lambda: losses.mse_loss(A, A, reduction="avg"), ValueError, r"`reduction` must be one of 'mean', 'sum', 'none'; got 'avg'"),
    (lambda: losses.cross_entropy(B, np.zeros(4, np.int32), reduction=None), ValueError, r"`reduction` must be one of .*got None"),
    (lambda: losses.rmse(A, A, reduction="none"), ValueError, r"'mean' or 'sum' for rmse; got 'none'.*l1_loss"),
    (lambda: losses.mse_loss(np.arange(4), A), TypeError, r"`predictions` must be a real floating-point array; got dtype int32.*astype"),
    (lambda: losses.binary_cross_entropy(A > 0, A), TypeError, r"`probs` must be a real floating-point array; got dtype bool"),
    (lambda: losses.binary_cross_entropy_with_logits(A.astype(np.complex64), A), TypeError, r"`logits` must be a real floating-point array; got dtype complex64"),
    (lambda: losses.cross_entropy(np.zeros((4, 3), np.int32), np.zeros(4, np.int32)), TypeError, r"`logits` must be a real floating-point"),
    (lambda: losses.mse_loss(A, A.astype(np.complex64)), TypeError, r"`targets` must be real .*got dtype complex64"),
    (lambda: losses.mnist_loss(A, A.astype(np.complex64)), TypeError, r"`targets` must be real"),
    (lambda: losses.binary_cross_entropy(A, A, weight=np.ones(3)), ValueError, r"`weight` has shape \(3,\), which does not broadcast to .* \(4,\)"),
    (lambda: losses.binary_cross_entropy_with_logits(A, A, pos_weight=np.ones((4, 1))), ValueError, r"`pos_weight` has shape \(4, 1\).*without enlarging"),
    (lambda: losses.cross_entropy(B, np.zeros(4, np.float32)), ValueError, r"`labels` of dtype float32 are class probabilities and must have the shape of `logits` \(4, 1\); got \(4,\). Fix: for class indices stored as floats pass `labels.astype\(jnp.int32\)` \(shape \(4,\)\)"),
    (lambda: losses.cross_entropy(np.zeros((4, 3), np.float32), np.zeros((3, 4), np.float32)), ValueError, r"got \(3, 4\). Fix: give one probability per class, shape \(4, 3\)"),
    (lambda: losses.nll_loss(B, np.zeros(4, np.float32)), TypeError, r"`labels` must be integer class indices; got dtype float32.*for class probabilities use `cross_entropy\(logits, probabilities\)`"),
    (lambda: losses.cross_entropy(np.zeros((4, 3), np.float32), np.zeros(4, np.int32), weight=np.ones(4)), ValueError, r"`weight` must have shape \(C,\) = \(3,\), one weight per class; got \(4,\)"),
    (lambda: losses.cross_entropy(np.zeros((4, 3), np.float32), np.zeros(4, np.int32), label_smoothing=1.5), ValueError, r"`label_smoothing` must be in \[0, 1\], got 1.5"),
    (lambda: losses.cross_entropy(np.zeros((4, 3), np.float32), np.zeros(4, np.int32), label_smoothing=jnp.float32(0.1)), TypeError, r"`label_smoothing` must be a number in \[0, 1\]"),
    (lambda: losses.nll_loss(np.zeros((4, 3), np.float32), np.zeros(4, np.int32), ignore_index=None), TypeError, r"`ignore_index` must be an int \(PyTorch's default is -100\), got None"),
    (lambda: losses.cross_entropy(np.zeros((2, 3, 5), np.float32), np.zeros((2, 5), np.int32), axis=3), ValueError, r"`axis`=3 is not an axis of `logits` \(shape \(2, 3, 5\)\); pass one in \[-3, 3\)"),
    (lambda: losses.cross_entropy(np.zeros((2, 3, 5), np.float32), np.zeros((2, 3), np.int32), axis=1), ValueError, r"labels must have shape `logits`'s shape without its class axis 1: \(2, 5\)"),
    (lambda: losses.nll_loss(B, np.zeros(4, bool)), TypeError, r"`labels` must be integer class indices; got dtype bool"),
    (lambda: losses.cross_entropy(B, np.zeros((4, 1), np.int32)), ValueError, r"`labels` has shape \(4, 1\) but `logits` has shape \(4, 1\); labels must have shape .* \(4,\)"),
    (lambda: losses.nll_loss(np.zeros((2, 3), np.float32), np.zeros(3, np.int32)), ValueError, r"labels must have shape `log_probs.shape\[:-1\]` = \(2,\)"),
    (lambda: losses.cross_entropy(np.float32(1.0), 0), ValueError, r"`logits` must have a class axis; got a 0-d array"),
    (lambda: jax.jit(losses.mse_loss)(A, B), ValueError, r"`targets` has shape \(4, 1\) but `predictions` has shape \(4,\)"),
    (lambda: jax.vmap(losses.binary_cross_entropy)(A, B), ValueError, r"`targets` has shape \(1,\) but `probs` has shape \(\)"),
    (lambda: jax.jit(losses.l1_loss)(np.arange(4), A), TypeError, r"got dtype int32"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, match", BAD_INPUT)
def test_bad_input_is_refused_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call()
