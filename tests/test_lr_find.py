"""`lr_find` against a NumPy range test, on a problem whose stable learning rates are known."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgd.lr_find import LRFindResult, lr_find, suggest

lr_find_module = importlib.import_module("jaxgd.lr_find")  # jaxgd.lr_find is the function


def linear_loss(w, x, y):
    return 0.5 * (x @ w - y) ** 2


def known_problem(n=64, seed=0):
    """Linear regression with X^T X / n = diag(4, 1): curvature L = 4, GD is stable for lr < 0.5."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, 2)))
    X = np.sqrt(n) * Q * np.sqrt([4.0, 1.0])
    y = X @ np.array([1.0, -2.0]) + 0.3 * rng.normal(size=n)
    return X.astype(np.float32), y.astype(np.float32)


L = 4.0  # the largest eigenvalue of the loss's Hessian X^T X / n


def numpy_range_test(X, y, lrs, *, beta=0.98, factor=4.0):
    """fastai's range test, full batch, in float64: raw and smoothed losses up to the stop."""
    X, y = X.astype(np.float64), y.astype(np.float64)
    w, avg, best, raw, smooth = np.zeros(X.shape[1]), 0.0, np.inf, [], []
    for i, lr in enumerate(lrs):
        r = X @ w - y
        loss = 0.5 * np.mean(r**2)
        avg = beta * avg + (1 - beta) * loss
        s = avg / (1 - beta ** (i + 1))
        if not np.isfinite(s):
            break
        raw.append(loss)
        smooth.append(s)
        best = min(best, s)
        if s > factor * best:
            break
        w = w - lr * X.T @ r / len(y)
    return np.array(raw), np.array(smooth)


def test_matches_a_numpy_range_test_in_float64():
    X, y = known_problem()
    lrs = 1e-7 * (10 / 1e-7) ** (np.arange(100) / 99)
    raw, smooth = numpy_range_test(X, y, lrs)
    with jax.enable_x64(True):
        X64, y64 = X.astype(np.float64), y.astype(np.float64)
        r = lr_find(linear_loss, jnp.zeros(2, jnp.float64), (X64, y64), batch_size=None)
    assert isinstance(r, LRFindResult) and r.diverged
    assert len(r.learning_rates) == len(raw) < 100
    np.testing.assert_allclose(r.learning_rates, lrs[: len(raw)], rtol=1e-12)
    np.testing.assert_allclose(r.raw_losses, raw, rtol=1e-9)
    np.testing.assert_allclose(r.losses, smooth, rtol=1e-9)


def test_stops_after_the_stability_limit_and_suggests_below_it():
    X, y = known_problem()
    r = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None)
    assert r.diverged and r.learning_rates.dtype == np.float32
    assert np.all(np.diff(r.learning_rates) > 0)
    # The loss of GD on a quadratic cannot grow while lr < 2/L: the stop comes after that.
    assert r.learning_rates[-1] > 2 / L
    # Every suggestion is below the divergence threshold; the default one trains well.
    assert all(v < 2 / L for v in r.suggestions.values())
    assert r.rule == "minimum/10" and 0.01 / L < r.suggestion < 2 / L
    assert r.suggestion == suggest(r.learning_rates, r.losses, num_steps=100)["minimum/10"]
    steepest = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None, rule="steepest")
    assert steepest.suggestion == r.suggestions["steepest"]


def test_several_keys_at_once_show_the_spread():
    X, y = known_problem()
    keys = jax.random.split(jax.random.key(0), 4)
    runs = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=16, keys=keys)
    assert len(runs) == 4
    for r in runs:
        T = len(r.learning_rates)
        assert r.losses.shape == r.raw_losses.shape == (T,) and 10 < T <= 100
        assert np.all(np.diff(r.learning_rates) > 0)
        assert np.isfinite(r.losses).all()
        assert 0.01 / L < r.suggestion < 2 / L
    assert not np.allclose(runs[0].raw_losses[:10], runs[1].raw_losses[:10])  # other shuffles
    # Member k of the vmapped tests is the test with key k alone.
    alone = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=16, key=keys[2])
    np.testing.assert_allclose(alone.raw_losses, runs[2].raw_losses, rtol=1e-5)
    assert alone.suggestions == runs[2].suggestions


def test_optimizer_factory_matches_a_python_optax_loop():
    X, y = known_problem()
    factory = lambda lr: optax.sgd(lr, momentum=0.9)
    r = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None, optimizer=factory,
                num_steps=30, min_lr=1e-3, max_lr=3.0)  # fmt: skip
    w, state = jnp.zeros(2), factory(1e-3).init(jnp.zeros(2))
    raw = []
    for lr in r.learning_rates:
        loss, g = jax.value_and_grad(
            lambda w: jnp.mean(jax.vmap(linear_loss, (None, 0, 0))(w, X, y))
        )(w)
        raw.append(float(loss))
        updates, state = factory(float(lr)).update(g, state, w)
        w = optax.apply_updates(w, updates)
    np.testing.assert_allclose(r.raw_losses, raw, rtol=1e-4)
    # Heavy-ball momentum 0.9 is stable for lr < 2 (1 + 0.9) / L; the test stops past it.
    assert r.diverged and r.learning_rates[-1] > 3.8 / L


def test_no_recompile_for_new_learning_rates_or_smoothing():
    X, y = known_problem()
    lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None)
    before = lr_find_module._traces
    lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None, min_lr=1e-4, max_lr=1.0,
            smoothing=0.5, diverge_factor=10.0)  # fmt: skip
    lr_find(linear_loss, jnp.ones(2), (2 * X, y), batch_size=None)
    assert lr_find_module._traces == before


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(min_lr=1.0, max_lr=0.1), ValueError, "`min_lr` must be below `max_lr`"),
        (dict(min_lr=0.0), ValueError, r"`min_lr` must be finite and > 0, got 0.0"),
        (dict(num_steps=1), ValueError, "`num_steps` must be an integer >= 2"),
        (dict(smoothing=1.0), ValueError, r"`smoothing` must be in \[0, 1\)"),
        (dict(diverge_factor=1.0), ValueError, "`diverge_factor` must be > 1"),
        (dict(optimizer=optax.sgd(0.1)), TypeError, "sets the learning rate itself"),
        (dict(optimizer=lambda lr: "sgd"), TypeError, "returned str"),
        (
            dict(key=jax.random.key(0), keys=jax.random.split(jax.random.key(0), 2)),
            ValueError,
            "not both",
        ),  # fmt: skip
        (dict(rule="fastest"), ValueError, "`rule` must be one of"),
        (dict(batch_size=0), ValueError, "`batch_size` must be an integer >= 1"),
    ],
)
def test_bad_input_is_refused_before_compiling(kwargs, error, match):
    X, y = known_problem(n=8)
    kwargs = {"batch_size": 4, **kwargs}
    before = lr_find_module._traces
    with pytest.raises(error, match=match):
        lr_find(linear_loss, jnp.zeros(2), (X, y), **kwargs)
    assert lr_find_module._traces == before
