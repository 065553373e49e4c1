"""`sweep`: every member equals the single `fit` with its settings, and the sweep compiles once."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.sweeps import sweep


def logistic_loss(p, x, y):
    """Binary cross-entropy on the logit, for one example (written out, independent of losses)."""
    z = x @ p["w"] + p["b"]
    return jnp.logaddexp(0.0, z) - y * z


def accuracy(p, x, y):
    return ((x @ p["w"] + p["b"] > 0) == (y > 0.5)).astype(jnp.float32)


def make_data(n=13, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X @ np.arange(1, d + 1) + 0.5 * rng.normal(size=n) > 0).astype(np.float32)
    return X, y


def zeros(d=3):
    return {"w": jnp.zeros(d), "b": jnp.zeros(())}


def assert_member_equals(s, k, r, atol=1e-5):
    """Member k of sweep `s` against the single run `r` (a FitResult)."""
    m = s.member(k)
    assert isinstance(m, jaxgd.FitResult)
    for name in ("losses", "train_loss", "val_loss"):
        np.testing.assert_allclose(getattr(m, name), getattr(r, name), rtol=1e-5, atol=atol)
    for name, value in r.train_metrics.items():
        np.testing.assert_allclose(m.train_metrics[name], value, atol=atol)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol),
                 (m.params, m.opt_state), (r.params, r.opt_state))  # fmt: skip
    for name in ("diverged", "diverged_epoch", "diverged_update", "epochs_run"):
        assert int(getattr(m, name)) == int(getattr(r, name)), name


COMMON = dict(epochs=3, batch_size=4)  # data order: one compiled `fit` serves several tests
VAL = make_data(n=7, seed=1)


def momentum(lr):
    return optax.sgd(lr, momentum=0.9)


def test_learning_rates_equal_single_fits():
    X, y = make_data()
    lrs = [0.05, 0.3, 1.0, 2.5]
    s = sweep(logistic_loss, zeros(), (X, y), learning_rates=lrs, **COMMON)
    assert s.losses.shape == (4, 3, 4)
    assert s.params["w"].shape == (4, 3) and s.train_loss.shape == (4, 3)
    assert s.diverged.shape == (4,) and np.isnan(s.val_loss).all()
    np.testing.assert_allclose(s.learning_rates, lrs)
    for k, lr in enumerate(lrs):
        assert_member_equals(
            s, k, jaxgd.fit(logistic_loss, zeros(), (X, y), optimizer=lr, **COMMON)
        )


def test_learning_rates_keys_and_init_params_at_once_with_metrics():
    X, y = make_data()
    lrs = jnp.repeat(jnp.array([0.1, 0.8]), 2)  # 2 learning rates x 2 seeds = 4 members
    keys = jnp.tile(jax.random.split(jax.random.key(7), 2), 2)  # each shuffles on its own
    init = {"w": jax.random.normal(jax.random.key(2), (4, 3)), "b": jnp.array([0, 1, -2, 0.5])}
    extra = dict(val_data=VAL, metrics={"accuracy": accuracy}, **COMMON)
    s = sweep(logistic_loss, None, (X, y), learning_rates=lrs, keys=keys, init_params=init, **extra)
    assert s.val_metrics["accuracy"].shape == (4, 3)
    assert not np.allclose(s.losses[0, 1:], s.losses[1, 1:])  # different seeds, orders, inits
    for k in range(4):
        start = jax.tree.map(lambda a, k=k: a[k], init)
        r = jaxgd.fit(logistic_loss, start, (X, y), optimizer=float(lrs[k]), key=keys[k], **extra)
        assert_member_equals(s, k, r)


@pytest.mark.parametrize(
    "factory, lrs",
    [(momentum, [0.01, 0.5]), (optax.adam, [0.05])],  # inject_hyperparams(adam) changes bits
    ids=["momentum", "adam"],
)
def test_optimizer_factory_equals_unwrapped_optimizer(factory, lrs):
    X, y = make_data()
    s = sweep(logistic_loss, zeros(), (X, y), optimizer=factory, learning_rates=lrs, epochs=5)
    for k, lr in enumerate(lrs):
        r = jaxgd.fit(logistic_loss, zeros(), (X, y), optimizer=factory(lr), epochs=5)
        assert jax.tree.structure(s.member(k).opt_state) == jax.tree.structure(r.opt_state)
        assert_member_equals(s, k, r, atol=1e-6)


def test_diverged_and_early_stopped_members_do_not_disturb_the_others():
    """Under vmap the epoch's `lax.cond` runs both branches: each member must keep its own."""
    X = jnp.arange(1.0, 5.0)
    sq = lambda w, x, y: (w * x - y) ** 2
    data = (X, jnp.ones(4))
    early = jaxgd.EarlyStopping(monitor="train_loss", patience=2, min_delta=1e-4)
    lrs = [0.001, 0.02, 1e3]  # slow (runs through), fast (stops early), overflows (diverges)
    common = dict(epochs=12, batch_size=1, early_stopping=early)
    s = sweep(sq, 1.0, data, learning_rates=lrs, **common)
    np.testing.assert_array_equal(s.diverged, [False, False, True])
    assert int(s.epochs_run[0]) == 12 and 2 < int(s.epochs_run[1]) < 12
    assert np.isfinite(s.params).all()  # the diverged member keeps its last finite params
    losses = np.asarray(s.losses)
    assert np.isnan(losses[1, int(s.epochs_run[1]) :]).all() and np.isfinite(losses[0]).all()
    for k, lr in enumerate(lrs):
        assert_member_equals(s, k, jaxgd.fit(sq, 1.0, data, optimizer=lr, **common))


def test_no_recompile_for_new_values_of_the_same_shapes(traces):
    X, y = make_data()
    run = lambda lrs, **kw: sweep(logistic_loss, zeros(), (X, y), learning_rates=lrs, **kw)
    run([0.1, 0.2, 0.3, 0.4], **COMMON)
    run([0.1, 0.2], optimizer=momentum, epochs=5)
    before, before_run = traces("_run_members"), traces("run_epochs")
    run(np.array([1.0, 2.0, 3.0, 4.0]), **COMMON)
    run(jnp.array([0.5, 0.0, 7.0, 1]), **COMMON)
    run([0.3, 0.4], optimizer=momentum, epochs=5)  # the same factory: no recompile
    assert (traces("_run_members"), traces("run_epochs")) == (before, before_run)
    run([0.1, 0.2, 0.3], **COMMON)  # a new K compiles anew
    assert traces("_run_members") == before + 1


X_, Y_ = make_data()


def branching(lr):
    """A factory that reads the learning rate in Python: it cannot be vmapped over."""
    return optax.sgd(lr) if lr < 1 else optax.sgd(1.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(), ValueError, "at least one member axis"),
        (
            dict(learning_rates=[0.1, 0.2], keys=jax.random.split(jax.random.key(0), 3)),
            ValueError,
            "same length K",
        ),  # fmt: skip
        (dict(learning_rates=[[0.1, 0.2]]), ValueError, r"1-D array.*shape \(1, 2\)"),
        (dict(learning_rates=[0.1, -0.2]), ValueError, "member 1 is -0.2"),
        (dict(learning_rates=[0.1, np.nan]), ValueError, "finite"),
        (dict(learning_rates=[0.1], optimizer=optax.sgd(0.1)), TypeError, "learning rate fixed"),
        (
            dict(optimizer=lambda lr: optax.sgd(lr), keys=jax.random.split(jax.random.key(0), 2)),
            ValueError,
            "pass `learning_rates`",
        ),  # fmt: skip
        (dict(learning_rates=[0.1], optimizer=lambda lr: lr), TypeError, "returned float"),
        (dict(learning_rates=[0.1], optimizer=branching), TypeError, "as a JAX scalar"),
        (
            dict(
                learning_rates=[0.1],
                key=jax.random.key(0),
                keys=jax.random.split(jax.random.key(0), 1),
            ),
            ValueError,
            "not both",
        ),  # fmt: skip
        (dict(keys=jnp.zeros((2, 3), jnp.uint32)), TypeError, r"`keys`.*shape \(2, 3\)"),
        (
            dict(init_params={"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}),
            ValueError,
            "same leading axis K",
        ),  # fmt: skip
        (
            dict(init_params={"w": jnp.zeros((2, 4)), "b": jnp.zeros(2)}),
            ValueError,
            "leading axis K on every leaf",
        ),  # fmt: skip
        (dict(learning_rates=[0.1], batch_size=0), ValueError, "`batch_size` must be"),
        (dict(learning_rates=[0.1], epochs=-1), ValueError, "`epochs` must be"),
    ],
)
def test_bad_input_is_refused_before_compiling(kwargs, error, match, traces):
    kwargs = {"epochs": 2, **kwargs}
    before = traces("_run_members")
    with pytest.raises(error, match=match):
        sweep(logistic_loss, zeros(), (X_, Y_), **kwargs)
    assert traces("_run_members") == before


def test_raw_keys_and_a_shared_learning_rate_in_float64():
    with jax.enable_x64(True):
        X, y = (a.astype(np.float64) for a in make_data())
        params = {"w": jnp.zeros(3, jnp.float64), "b": jnp.zeros((), jnp.float64)}
        raw = jax.random.split(jax.random.PRNGKey(1), 2)  # raw uint32 keys (K, 2)
        s = sweep(logistic_loss, params, (X, y), optimizer=0.4, keys=raw, epochs=3)
        assert s.params["w"].dtype == jnp.float64 and s.losses.shape == (2, 3, 1)
        np.testing.assert_array_equal(s.learning_rates, [0.4, 0.4])
        for k in range(2):
            r = jaxgd.fit(logistic_loss, params, (X, y), optimizer=0.4, key=raw[k], epochs=3)
            np.testing.assert_allclose(s.losses[k], r.losses, rtol=1e-12)
            np.testing.assert_allclose(s.params["w"][k], r.params["w"], rtol=1e-12)
