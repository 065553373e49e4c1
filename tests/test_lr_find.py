"""`lr_find` against a NumPy range test and transcriptions of fastai's rules, on problems whose
stable learning rates are known (`test_lr_find_fastai.py` runs fastai itself)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.lr_finder import RULES, LRFindResult, learning_rates, lr_find, suggest


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


def compiles(fn) -> int:
    """How many XLA programs `fn()` compiled."""
    seen = []

    def listen(name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            seen.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(seen)


def numpy_range_test(X, y, lrs, *, beta=0.98, factor=4.0):
    """fastai's range test, full batch, in float64: raw and smoothed losses up to and with the
    step that stops it (smoothed > factor x the smallest so far)."""
    X, y = X.astype(np.float64), y.astype(np.float64)
    w, avg, best, raw, smooth = np.zeros(X.shape[1]), 0.0, np.inf, [], []
    for i, lr in enumerate(lrs):
        r = X @ w - y
        loss = 0.5 * np.mean(r**2)
        avg = beta * avg + (1 - beta) * loss
        s = avg / (1 - beta ** (i + 1))
        raw.append(loss)
        smooth.append(s)
        best = min(best, s)
        if s > factor * best:
            break
        w = w - lr * X.T @ r / len(y)
    return np.array(raw), np.array(smooth)


def test_grid_is_fastais_and_never_reaches_max_lr():
    lrs = learning_rates(min_lr=1e-7, max_lr=10.0, num_steps=100)
    assert len(lrs) == 100 and lrs[0] == 1e-7 and lrs[-1] < 10.0
    np.testing.assert_allclose(lrs, 1e-7 * 1e8 ** (np.arange(100) / 100), rtol=1e-14)
    np.testing.assert_allclose(lrs[-1], 10 ** (-7 + 8 * 0.99), rtol=1e-14)  # 8.318
    assert len(learning_rates(min_lr=0.1, max_lr=1.0, num_steps=2)) == 6  # as fastai's LRFinder


def test_matches_a_numpy_range_test_in_float64():
    X, y = known_problem()
    lrs = learning_rates(min_lr=1e-7, max_lr=10.0, num_steps=100)
    raw, smooth = numpy_range_test(X, y, lrs)
    with jax.enable_x64(True):
        X64, y64 = X.astype(np.float64), y.astype(np.float64)
        r = lr_find(linear_loss, jnp.zeros(2, jnp.float64), (X64, y64), batch_size=None)
    assert isinstance(r, LRFindResult) and r.diverged
    assert len(r.learning_rates) == len(raw) < 100
    assert smooth[-1] > 4 * smooth.min()  # the stopping step is recorded
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
    # Every suggestion is below the divergence threshold.
    assert set(r.suggestions) == set(RULES)
    assert all(0 < v < 2 / L for v in r.suggestions.values())
    assert r.rule == "valley" and r.suggestion == r.suggestions["valley"]
    assert r.suggestions == suggest(r.learning_rates, r.losses, num_steps=100)
    steep = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None, rule="steep")
    assert steep.suggestion == r.suggestions["steep"]


def test_batches_are_fits_batches_for_the_same_key():
    """With learning rates near 0 the params stay put: each step's loss is the loss of its
    batch at the initial params, which `fit` with learning rate 0 records in its own order."""
    X, y = known_problem()
    w0, key = jnp.array([0.5, -0.5]), jax.random.key(3)
    r = lr_find(linear_loss, w0, (X, y), batch_size=16, key=key, num_steps=12,
                min_lr=1e-30, max_lr=1e-29)  # fmt: skip
    fit = jaxgd.fit(linear_loss, w0, (X, y), epochs=3, optimizer=0.0, batch_size=16, key=key)
    np.testing.assert_allclose(r.raw_losses, np.ravel(fit.losses), rtol=1e-6)
    in_order = lr_find(linear_loss, w0, (X, y), batch_size=16, num_steps=12,
                       min_lr=1e-30, max_lr=1e-29)  # fmt: skip
    first = [np.mean(0.5 * (X[i : i + 16] @ np.array([0.5, -0.5]) - y[i : i + 16]) ** 2)
             for i in range(0, 64, 16)]  # fmt: skip
    np.testing.assert_allclose(in_order.raw_losses, np.tile(first, 3), rtol=1e-5)


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
        assert 0 < r.suggestions["minimum"] < 2 / L
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


def test_params_are_untouched():
    X, y = known_problem()
    w = np.array([0.5, -0.5], np.float32)
    lr_find(linear_loss, w, (X, y), batch_size=16, key=jax.random.key(0))
    np.testing.assert_array_equal(w, [0.5, -0.5])


def test_no_recompile_for_new_learning_rates_smoothing_or_data():
    X, y = known_problem()
    lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None)
    again = lambda: (
        lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None, min_lr=1e-4, max_lr=1.0,
                smoothing=0.5, diverge_factor=10.0),
        lr_find(linear_loss, jnp.ones(2), (2 * X, y), batch_size=None),
    )  # fmt: skip
    assert compiles(again) == 0


def test_nan_trains_on_and_inf_stops_as_in_fastai():
    """A loss that turns NaN (or inf) once the weight passes 1: NaN neither lowers the minimum
    nor stops the test (fastai's comparisons are false), inf stops it and is recorded."""
    X, y = known_problem()

    def guarded(kind):
        def loss(w, x, t):
            big = jnp.max(jnp.abs(w)) - 1.0
            jump = jnp.log(-big) * 0.0 if kind == "nan" else jnp.where(big > 0, jnp.inf, 0.0)
            return linear_loss(w, x, t) + jump

        return loss

    nan = lr_find(guarded("nan"), jnp.zeros(2), (X, y), batch_size=16)
    first = int(np.argmax(np.isnan(nan.losses)))
    assert len(nan.losses) == 100 and nan.diverged and 10 < first < 95
    assert np.isnan(nan.losses[first:]).all() and np.isfinite(nan.losses[:first]).all()
    lrs, window = nan.learning_rates[10:first], nan.losses[10:first]  # cut at the first NaN
    assert nan.suggestions["minimum"] == float(lrs[np.argmin(window)]) / 10
    assert nan.suggestions["valley"] == float(lrs[fastai_valley(list(window))])
    inf = lr_find(guarded("inf"), jnp.zeros(2), (X, y), batch_size=16)
    assert len(inf.losses) == first + 1 and inf.diverged and np.isinf(inf.losses[-1])
    np.testing.assert_array_equal(inf.losses[:first], nan.losses[:first])


def test_a_loss_of_exactly_zero_does_not_stop_the_test():
    """Issue 16: a first batch that the params already fit (loss 0) gave fastai's rule a scale
    of 0, so the next positive loss read as divergence. The scale is the smallest positive loss:
    the test runs on and stops only where the loss grows 4x past that."""
    X, y = known_problem()
    X[:16], y[:16] = 0.0, 0.0  # The first batch: loss exactly 0 for any params.
    r = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=16)
    assert r.raw_losses[0] == r.losses[0] == 0 and r.losses[1] > 0
    assert len(r.losses) > 50 and r.diverged and r.losses[-1] > 4 * r.losses[r.losses > 0].min()
    assert r.suggestion > 10 * r.learning_rates[0]


def test_fewer_than_six_steps_run_six():
    X, y = known_problem()
    r = lr_find(linear_loss, jnp.zeros(2), (X, y), batch_size=None, num_steps=1,
                min_lr=1e-3, max_lr=1e-2)  # fmt: skip
    assert len(r.learning_rates) == 6 and not r.diverged
    np.testing.assert_allclose(r.learning_rates, 1e-3 * 10 ** (np.arange(6) / 6), rtol=1e-6)


# ------------------------------------------------------------------ the suggestion rules


def fastai_valley(losses):
    """fastai 2.8's `valley` loop, transcribed: the index it suggests."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def fastai_slide(lrs, losses, lr_diff=15, thresh=0.005):
    """fastai 2.8's `slide` loop, transcribed."""
    grad = np.gradient(losses)
    r, lo = -1, -1 - lr_diff
    found = lrs[lo]
    while lo >= -len(losses) and abs(grad[r] - grad[lo]) > thresh:
        found = lrs[lo]
        r, lo = r - 1, lo - 1
    return float(found)


def random_curve(rng, n):
    """A range-test-like curve: flat, falling, then rising, with noise (float32)."""
    t = np.linspace(0, 1, n)
    curve = 1 - 0.6 / (1 + np.exp(-20 * (t - 0.5))) + 3 * np.maximum(t - 0.8, 0) ** 2
    return (curve + rng.normal(scale=0.02, size=n)).astype(np.float32)


@pytest.mark.parametrize("seed", range(40))
def test_rules_equal_fastais_on_random_curves(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(31, 101))  # windows of >= 16 points, as `slide` reads
    lrs = np.geomspace(1e-7, 10, 100)[:n].astype(np.float32)
    losses = random_curve(rng, n)
    got = suggest(lrs, losses, num_steps=100)
    w_lrs, w_losses = lrs[10 : n - 5], losses[10 : n - 5]
    slopes = np.diff(w_losses) / np.diff(np.log(w_lrs))
    assert got["minimum"] == float(w_lrs[np.argmin(w_losses)]) / 10
    assert got["steep"] == float(w_lrs[np.argmin(slopes)])
    assert got["valley"] == float(w_lrs[fastai_valley(list(w_losses))])
    assert got["slide"] == fastai_slide(w_lrs, w_losses)


def test_valley_edge_cases_follow_fastai():
    lrs = np.arange(1.0, 9.0)
    rising = np.arange(8.0)  # no two points fall: fastai's start stays at 0
    assert suggest(lrs, rising)["valley"] == 1.0 == lrs[fastai_valley(list(rising))]
    falling_two = np.array([2.0, 1.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])  # L = 2 ending at 1: index -1
    assert fastai_valley(list(falling_two)) == -1
    # The window drops the last 5 points: [2, 1, 3], where fastai's -1 is the last one, lr 3.
    assert suggest(lrs, falling_two)["valley"] == 3.0


def test_short_curves_fall_back_to_the_whole_curve_and_nan_cuts_the_window():
    lrs = np.geomspace(1e-3, 1.0, 12)
    losses = np.array([2.0, 1.9, 1.8, 1.0, 0.9, 0.85, 0.8, 0.78, 0.7, 0.6, 0.5, 0.4])
    got = suggest(lrs, losses, num_steps=12)  # fastai's window: [1:7]
    assert got["minimum"] == lrs[6] / 10 and got["steep"] == lrs[2]
    assert np.isnan(got["slide"])  # it reads 16 points: too few even on the whole curve
    short = suggest(lrs[:4], losses[:4], num_steps=100)  # window [10:-1] is empty: whole curve
    assert short["minimum"] == lrs[3] / 10 and short["steep"] == lrs[2]
    with_nan = losses.copy()
    with_nan[4:] = np.nan  # the window [1:7] is cut to [1:4]
    cut = suggest(lrs, with_nan, num_steps=12)
    assert cut["minimum"] == lrs[3] / 10 and cut["steep"] == lrs[2] and cut["valley"] == lrs[1]
    assert np.isnan(suggest(lrs[:1], losses[:1])["steep"])  # no slope in one point


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(min_lr=1.0, max_lr=0.1), ValueError, "`min_lr` must be below `max_lr`"),
        (dict(min_lr=0.0), ValueError, r"`min_lr` must be finite and > 0, got 0.0"),
        (dict(num_steps=0), ValueError, "`num_steps` must be an integer >= 1"),
        (dict(smoothing=1.0), ValueError, r"`smoothing` must be in \[0, 1\)"),
        (dict(diverge_factor=1.0), ValueError, "`diverge_factor` must be > 1"),
        (dict(optimizer=optax.sgd(0.1)), TypeError, "sets the learning rate itself"),
        (dict(optimizer=lambda lr: "sgd"), TypeError, "returned str"),
        (
            dict(key=jax.random.key(0), keys=jax.random.split(jax.random.key(0), 2)),
            ValueError,
            "not both",
        ),  # fmt: skip
        (dict(rule="minimum/10"), ValueError, "`rule` must be one of"),
        (dict(batch_size=0), ValueError, "`batch_size` must be an integer >= 1"),
    ],
)
def test_bad_input_is_refused_before_compiling(kwargs, error, match):
    X, y = known_problem(n=8)
    kwargs = {"batch_size": 4, **kwargs}

    def call():
        with pytest.raises(error, match=match):
            lr_find(linear_loss, jnp.zeros(2), (X, y), **kwargs)

    assert compiles(call) == 0
