"""The descent loop against NumPy references and its transformation invariants."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import _host, _shuffle
from jaxgd.loop import setup


def logistic_loss(p, x, y):
    """Binary cross-entropy on the logit, for one example (written out, independent of losses)."""
    z = x @ p["w"] + p["b"]
    return jnp.logaddexp(0.0, z) - y * z


def logit(p, x):
    return x @ p["w"] + p["b"]


def sq_loss(p, x, y):
    return (x @ p["w"] + p["b"] - y) ** 2


def make_data(n=13, d=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = (X @ np.arange(1, d + 1) + 0.5 * rng.normal(size=n) > 0).astype(dtype)
    return X, y


def zeros(d=3, dtype=jnp.float32):
    return {"w": jnp.zeros(d, dtype), "b": jnp.zeros((), dtype)}


def numpy_run(X, y, *, epochs, lr, batch_size, orders, drop_last=False):
    """Mini-batch GD for logistic regression in NumPy: the reference the loop must match."""
    w, b = np.zeros(X.shape[1], np.float64), 0.0
    history = []
    for order in orders:
        row = []
        starts = range(0, len(order), batch_size)
        for s in starts:
            idx = order[s : s + batch_size]
            if drop_last and len(idx) < batch_size:
                continue
            xb, yb = X[idx].astype(np.float64), y[idx].astype(np.float64)
            z = xb @ w + b
            row.append(np.mean(np.logaddexp(0.0, z) - yb * z))
            r = 1 / (1 + np.exp(-z)) - yb  # dL/dz
            w, b = w - lr * xb.T @ r / len(idx), b - lr * r.mean()
        history.append(row)
    return np.array(history), w, b


@pytest.mark.parametrize(
    "batch_size, drop_last, updates",
    [(None, False, 1), (1, False, 13), (4, False, 4), (4, True, 3), (13, False, 1), (50, False, 1)],
)
def test_matches_numpy(batch_size, drop_last, updates):
    X, y = make_data()
    orders = np.stack([np.random.default_rng(e).permutation(13) for e in range(3)])
    r = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=3, optimizer=0.3,
                  batch_size=batch_size, orders=orders, drop_last=drop_last)  # fmt: skip
    ref_losses, w, b = numpy_run(X, y, epochs=3, lr=0.3, batch_size=batch_size or 13,
                                 orders=orders, drop_last=drop_last)  # fmt: skip
    assert r.losses.shape == (3, updates)
    np.testing.assert_allclose(r.losses, ref_losses, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(r.params["w"], w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.params["b"], b, rtol=1e-5, atol=1e-6)
    final = np.mean(np.logaddexp(0, X @ w + b) - y * (X @ w + b))
    np.testing.assert_allclose(r.train_loss[-1], final, rtol=1e-5)


def test_schedules_by_name_equal_fit():
    X, y = make_data()
    key = jax.random.key(3)
    common = dict(epochs=2, optimizer=0.1, key=key)
    pairs = [
        (jaxgd.full_batch_gd(logistic_loss, zeros(), (X, y), **common), None),
        (jaxgd.stochastic_gd(logistic_loss, zeros(), (X, y), **common), 1),
        (jaxgd.minibatch_gd(logistic_loss, zeros(), (X, y), batch_size=5, **common), 5),
    ]
    for named, batch_size in pairs:
        r = jaxgd.fit(logistic_loss, zeros(), (X, y), batch_size=batch_size, **common)
        np.testing.assert_array_equal(named.losses, r.losses)
    with pytest.raises(TypeError, match="sets `batch_size` itself"):
        jaxgd.stochastic_gd(logistic_loss, zeros(), (X, y), batch_size=3, **common)


def test_batch_size_n_is_full_batch_and_one_is_sgd():
    X, y = make_data()
    full = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=4, optimizer=0.5)
    n = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=4, optimizer=0.5, batch_size=13)
    np.testing.assert_allclose(full.losses, n.losses, rtol=1e-6)
    sgd = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=2, optimizer=0.5, batch_size=1)
    # SGD by hand: one update per example in data order.
    p = zeros()
    grad = jax.grad(logistic_loss)
    for _ in range(2):
        for i in range(13):
            p = jax.tree.map(lambda a, g: a - 0.5 * g, p, grad(p, X[i], y[i]))
    np.testing.assert_allclose(sgd.params["w"], p["w"], rtol=1e-5)


def test_identity_orders_equal_no_shuffle_and_permuted_data_with_inverse_orders():
    X, y = make_data()
    plain = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=3, optimizer=0.2, batch_size=4)
    ident = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=3, optimizer=0.2, batch_size=4,
                      orders=np.tile(np.arange(13), (3, 1)))  # fmt: skip
    np.testing.assert_array_equal(plain.losses, ident.losses)
    perm = np.random.default_rng(1).permutation(13)
    inverse = np.argsort(perm)  # X[perm][inverse] == X
    moved = jaxgd.fit(logistic_loss, zeros(), (X[perm], y[perm]), epochs=3, optimizer=0.2,
                      batch_size=4, orders=np.tile(inverse, (3, 1)))  # fmt: skip
    np.testing.assert_array_equal(plain.losses, moved.losses)


def test_key_shuffles_every_epoch_deterministically():
    X, y = make_data()
    run = lambda k: jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=3, optimizer=0.2,
                              batch_size=4, key=jax.random.key(k))  # fmt: skip
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.losses, b.losses)  # bitwise
    np.testing.assert_array_equal(a.params["w"], b.params["w"])
    assert not np.array_equal(a.losses, c.losses)
    assert not np.array_equal(a.losses[0], a.losses[1])  # a new order each epoch
    raw = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=3, optimizer=0.2, batch_size=4,
                    key=jax.random.PRNGKey(0))  # fmt: skip
    assert raw.losses.shape == (3, 4)


def test_resume_equals_one_long_run():
    X, y = make_data()
    tx = optax.sgd(0.1, momentum=0.9)
    common = dict(optimizer=tx, batch_size=4, key=jax.random.key(7))
    long = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=10, **common)
    first = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=5, **common)
    second = jaxgd.fit(logistic_loss, first.params, (X, y), epochs=5, opt_state=first.opt_state,
                       start_epoch=5, **common)  # fmt: skip
    np.testing.assert_array_equal(np.concatenate([first.losses, second.losses]), long.losses)
    chex.assert_trees_all_equal((second.params, second.opt_state), (long.params, long.opt_state))


def test_no_recompile_for_new_values(traces):
    X, y = make_data()
    run = lambda **kw: jaxgd.fit(logistic_loss, zeros(), kw.pop("data", (X, y)), epochs=2,
                                 batch_size=4, **kw)  # fmt: skip
    run(optimizer=0.1, key=jax.random.key(0))
    before = traces("run_epochs")
    run(optimizer=0.7, key=jax.random.key(1))
    run(optimizer=3, key=jax.random.key(2))  # an int learning rate too
    run(optimizer=0.2, key=jax.random.key(1), data=(X * 2, 1 - y))
    run(optimizer=np.float32(0.2), key=jax.random.key(5))
    assert traces("run_epochs") == before
    orders = np.stack([np.random.default_rng(e).permutation(13) for e in range(2)])
    run(optimizer=0.1, orders=orders)
    after_orders = traces("run_epochs")
    run(optimizer=0.3, orders=orders[::-1])
    assert traces("run_epochs") == after_orders
    tx = optax.adam(0.01)
    run(optimizer=tx, key=jax.random.key(0))
    with_tx = traces("run_epochs")
    run(optimizer=tx, key=jax.random.key(1))  # the same optax object: no recompile
    assert traces("run_epochs") == with_tx
    run(optimizer=optax.adam(0.01), key=jax.random.key(1))  # a new object: documented recompile
    assert traces("run_epochs") == with_tx + 1


def test_numpy_data_compile_once_before_their_copy(monkeypatch, traces):
    """On NumPy data `fit` compiles its program before it copies the data for the device, gives
    the compiler's freed memory back once, and the run then finds that program: one XLA compile
    of `_run`, however it is reached."""
    compiles, trims = [], []

    def listen(name, secs, fun_name="", **kw):
        if name.endswith("backend_compile_duration") and fun_name == "jit(run_epochs)":
            compiles.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        _compile_once_before_copy(compiles, trims, monkeypatch, traces)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def _compile_once_before_copy(compiles, trims, monkeypatch, traces):
    release = _host.release_free_memory
    monkeypatch.setattr(_host, "release_free_memory", lambda: trims.append(1) or release())
    monkeypatch.setattr(setup, "COPY_FIRST_BYTES", 0)  # As for data of many MB.
    X, y = make_data()
    X, y = np.asarray(X[:11], np.float64), y[:11]  # float64: converted to float32 when copied.
    # (11 rows, batches of 5, chunks of 2 epochs: a program no other test compiles first.)
    run = lambda data, **kw: jaxgd.fit(logistic_loss, zeros(), data, epochs=3, batch_size=5,
                                       optimizer=0.1, key=jax.random.key(0), **kw)  # fmt: skip
    run((X[:7], y[:7]))  # Warm up what every fit compiles (keys, constants); its trim is counted.
    before, n_compiles, n_trims = traces("run_epochs"), len(compiles), len(trims)
    first = run((X, y), epochs_per_call=2)
    assert (traces("run_epochs") - before, len(compiles) - n_compiles, len(trims) - n_trims) == (
        1,
        1,
        1,
    )
    again = run((X, y), epochs_per_call=2)  # Cached: nothing compiles, nothing to give back.
    assert (traces("run_epochs") - before, len(compiles) - n_compiles, len(trims) - n_trims) == (
        1,
        1,
        1,
    )
    np.testing.assert_array_equal(again.params["w"], first.params["w"])
    on_device = run(jax.device_put((X.astype(np.float32), y)), epochs_per_call=2)
    assert len(trims) - n_trims == 1  # Data already on the device: no compile ahead.
    np.testing.assert_array_equal(on_device.params["w"], first.params["w"])


def test_small_numpy_data_compile_once_when_called(monkeypatch, traces):
    """Under `COPY_FIRST_BYTES` of NumPy data there is no memory to save: `fit` does not lower its
    run ahead (that cost a small call more than the rest of it), the call compiles it once."""
    trims = []
    monkeypatch.setattr(_host, "release_free_memory", lambda: trims.append(1))
    X, y = make_data(n=9)
    run = lambda: jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=2, batch_size=4, optimizer=0.1,
                            key=jax.random.key(0))  # fmt: skip
    first = run()
    traced = traces("run_epochs")
    np.testing.assert_array_equal(run().params["w"], first.params["w"])
    assert (traced, traces("run_epochs"), trims) == (1, 1, [])


@pytest.mark.parametrize(
    "options, ran",
    [
        (dict(epochs=6, optimizer=0.5), 6),
        (dict(epochs=7, optimizer=0.5, callback=lambda done, r: None, epochs_per_call=3), 7),
        (dict(epochs=6, optimizer=optax.adam(0.1), start_epoch=4), 6),
        (dict(epochs=6, optimizer=1e37), 2),  # Diverges in epoch 1: the run stops there.
        (dict(epochs=30, optimizer=5.0, early_stopping=jaxgd.EarlyStopping(patience=1)), 2),
    ],
)
def test_full_batch_train_loss_read_off_the_next_epoch(options, ran):
    """Full batch: the training loss after epoch e is the loss epoch e + 1 computes before its
    update; only the last epoch that ran pays a pass of its own. Bit for bit what a separate pass
    after every epoch gives (a metric keeps that pass), in chunks, resumed, diverged, stopped."""
    X, y = make_data(n=40)
    data, val = (X[:30] * 10, y[:30]), (X[30:], y[30:])
    acc = {"acc": lambda p, x, y: (logit(p, x) > 0) == (y > 0.5)}
    with_pass = jaxgd.fit(logistic_loss, zeros(), data, val_data=val, metrics=acc, **options)
    read_off = jaxgd.fit(logistic_loss, zeros(), data, val_data=val, **options)
    assert jaxgd.loop.run.next_epoch_tells(jaxgd.loop.setup.prepare(
        logistic_loss, zeros(), data, epochs=1, optimizer=0.1).spec)  # fmt: skip
    np.testing.assert_array_equal(read_off.train_loss, with_pass.train_loss)
    np.testing.assert_array_equal(read_off.losses, with_pass.losses)
    assert int(read_off.epochs_run) == ran
    assert np.isnan(read_off.train_loss[ran:]).all()


def test_eager_train_epoch_equals_fit_and_jit():
    X, y = make_data()
    order = jnp.asarray(np.random.default_rng(0).permutation(13))
    e = jaxgd.train_epoch(logistic_loss, zeros(), (), (X, y), optimizer=0.2, batch_size=4,
                          order=order)  # fmt: skip
    jitted = jax.jit(jaxgd.train_epoch, static_argnames=("example_loss", "batch_size"))
    ej = jitted(logistic_loss, zeros(), (), (X, y), optimizer=0.2, batch_size=4, order=order)
    r = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=1, optimizer=0.2, batch_size=4,
                  orders=order[None])  # fmt: skip
    np.testing.assert_allclose(e.losses, r.losses[0], rtol=1e-6)
    np.testing.assert_array_equal(ej.losses, r.losses[0])  # Compiled, it is fit's epoch.
    np.testing.assert_allclose(e.params["w"], r.params["w"], rtol=1e-6)
    np.testing.assert_array_equal(ej.params["w"], r.params["w"])
    assert bool(ej.finite) and int(ej.diverged_update) == -1


def test_careful_epoch_stops_before_the_first_non_finite_update():
    X = jnp.array([1.0, 1.0, 1e20, 1.0])
    sq = lambda w, x, y: (w * x - y) ** 2  # (1e20 w)^2 overflows float32 at the third update
    fast = jaxgd.train_epoch(sq, 0.5, (), (X, jnp.ones(4)), optimizer=0.1, batch_size=1)
    careful = jaxgd.train_epoch(sq, 0.5, (), (X, jnp.ones(4)), optimizer=0.1, batch_size=1,
                                careful=True)  # fmt: skip
    assert not bool(fast.finite) and not bool(careful.finite)
    assert int(careful.diverged_update) == 2
    w1 = 0.5 - 0.1 * 2 * (0.5 - 1)  # two finite updates of plain GD on (w - 1)^2
    w2 = w1 - 0.1 * 2 * (w1 - 1)
    np.testing.assert_allclose(float(careful.params), w2, rtol=1e-6)
    assert np.isinf(careful.losses[2]) and np.isnan(careful.losses[3])  # its own loss is kept


def test_fit_sweep_and_stream_run_the_public_update_step_and_train_epoch(monkeypatch):
    """One implementation: the run's epochs are `jaxgd.train_epoch`, whose updates are
    `jaxgd.update_step` (counted while new programs trace); `lr_find`'s steps are too."""
    from jaxgd import lr_finder
    from jaxgd.loop import epoch, run

    assert run.train_epoch is jaxgd.train_epoch and epoch.update_step is jaxgd.update_step
    assert lr_finder.update_step is jaxgd.update_step
    calls = {"train_epoch": 0, "update_step": 0}

    def spy(name, fn):
        return lambda *a, **k: calls.__setitem__(name, calls[name] + 1) or fn(*a, **k)

    monkeypatch.setattr(run, "train_epoch", spy("train_epoch", jaxgd.train_epoch))
    monkeypatch.setattr(epoch, "update_step", spy("update_step", jaxgd.update_step))
    monkeypatch.setattr(lr_finder, "update_step", spy("update_step", jaxgd.update_step))
    X, y = make_data()
    for call in (
        lambda loss: jaxgd.fit(loss, zeros(), (X, y), epochs=2, optimizer=0.1, batch_size=5),
        lambda loss: jaxgd.sweep(loss, zeros(), (X, y), epochs=2, batch_size=5,
                                 learning_rates=jnp.array([0.1, 0.2])),
        lambda loss: jaxgd.fit(loss, zeros(), (np.asarray(X), np.asarray(y)), epochs=2,
                               optimizer=0.1, batch_size=5, stream=True),
    ):  # fmt: skip
        before = dict(calls)
        call(lambda p, x, y: logistic_loss(p, x, y))  # A new function: new programs trace.
        assert calls["train_epoch"] > before["train_epoch"]
        assert calls["update_step"] > before["update_step"]
    before = calls["update_step"]
    jaxgd.lr_find(lambda p, x, y: logistic_loss(p, x, y), zeros(), (X, y), batch_size=4)
    assert calls["update_step"] > before


def test_mean_of_per_example_gradients_is_batch_gradient():
    X, y = make_data()
    per_example = jax.vmap(jax.grad(logistic_loss), (None, 0, 0))(zeros(), X, y)
    batch = jax.grad(jaxgd.batch_loss, argnums=1)(logistic_loss, zeros(), X, y)
    np.testing.assert_allclose(per_example["w"].mean(0), batch["w"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["dict", "tuple", "nested"])
def test_params_as_pytrees(kind):
    X, y = make_data()
    if kind == "dict":
        params, f = zeros(), logistic_loss
    elif kind == "tuple":
        params = (jnp.zeros(3), jnp.zeros(()))
        f = lambda p, x, y: logistic_loss({"w": p[0], "b": p[1]}, x, y)
    else:
        params = {"layer": [{"w": jnp.zeros(3)}], "bias": (jnp.zeros(()),)}
        f = lambda p, x, y: logistic_loss({"w": p["layer"][0]["w"], "b": p["bias"][0]}, x, y)
    r = jaxgd.fit(f, params, (X, y), epochs=2, optimizer=0.3, batch_size=5)
    ref = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=2, optimizer=0.3, batch_size=5)
    np.testing.assert_allclose(r.losses, ref.losses, rtol=1e-6)
    assert jax.tree.structure(r.params) == jax.tree.structure(params)


def test_pytree_inputs():
    X, y = make_data()
    f = lambda p, x, y: logistic_loss(p, x["a"] + x["b"], y)
    r = jaxgd.fit(f, zeros(), ({"a": X, "b": X}, y), epochs=2, optimizer=0.1, batch_size=3)
    ref = jaxgd.fit(logistic_loss, zeros(), (2 * X, y), epochs=2, optimizer=0.1, batch_size=3)
    np.testing.assert_allclose(r.losses, ref.losses, rtol=1e-6)


def test_float64():
    with jax.enable_x64(True):
        X, y = make_data(dtype=np.float64)
        r = jaxgd.fit(logistic_loss, zeros(dtype=jnp.float64), (X, y), epochs=3, optimizer=0.3,
                      batch_size=4)  # fmt: skip
        ref, w, _ = numpy_run(X, y, epochs=3, lr=0.3, batch_size=4, orders=[np.arange(13)] * 3)
        assert r.losses.dtype == jnp.float64 and r.params["w"].dtype == jnp.float64
        np.testing.assert_allclose(r.losses, ref, rtol=1e-12)
        np.testing.assert_allclose(r.params["w"], w, rtol=1e-12)


def test_optax_schedule_through_the_optimizer():
    X, y = make_data()
    schedule = optax.exponential_decay(0.5, transition_steps=1, decay_rate=0.5)
    r = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=3, optimizer=optax.sgd(schedule))
    p = zeros()
    for k in range(3):
        g = jax.grad(lambda p: jaxgd.batch_loss(logistic_loss, p, X, y))(p)
        lr = 0.5 * 0.5**k
        p = jax.tree.map(lambda a, b, lr=lr: a - lr * b, p, g)
    np.testing.assert_allclose(r.params["w"], p["w"], rtol=1e-6)


@pytest.mark.parametrize("chunk", [None, 3])
def test_the_careful_epoch_compiles_only_for_a_run_that_needs_it(traces, chunk):
    """`fit` runs a program without the careful epoch; the one with it is traced only when an
    epoch met a non-finite value, and the run then equals a sweep's, whose one program has it."""
    X = jnp.arange(1.0, 6.0)
    f = lambda w, x, y: (w * x - y) ** 2
    w = jnp.float32(1.0)  # Not a Python float: a weak type would trace again after a chunk.
    run = lambda lr: jaxgd.fit(f, w, (X, jnp.ones(5)), epochs=7, optimizer=lr, batch_size=2,
                               epochs_per_call=chunk, callback=chunk and (lambda d, r: None))  # fmt: skip
    fine = run(0.01)
    assert traces("run_epochs") == 1 and not bool(fine.diverged)
    diverged = run(1e3)  # Epoch 1 overflows: the careful program redoes it from its start.
    assert traces("run_epochs") == 2 and bool(diverged.diverged)
    s = jaxgd.sweep(f, w, (X, jnp.ones(5)), learning_rates=[1e3], epochs=7, batch_size=2)
    np.testing.assert_array_equal(diverged.losses, s.losses[0])
    np.testing.assert_array_equal(diverged.train_loss, s.train_loss[0])
    np.testing.assert_array_equal(diverged.params, s.params[0])
    assert (int(diverged.diverged_epoch), int(diverged.diverged_update)) == (
        int(s.diverged_epoch[0]),
        int(s.diverged_update[0]),
    )
    assert int(diverged.epochs_run) == int(s.epochs_run[0])


def test_divergence_stops_with_last_finite_params():
    X = jnp.arange(1.0, 5.0)
    f = lambda w, x, y: (w * x - y) ** 2
    r = jaxgd.fit(f, 1.0, (X, jnp.ones(4)), epochs=20, optimizer=1e3, batch_size=1)
    assert bool(r.diverged)
    epoch, update = int(r.diverged_epoch), int(r.diverged_update)
    assert (epoch, update) == (1, 2)
    assert np.isfinite(r.params)
    assert int(r.epochs_run) == 2
    losses = np.asarray(r.losses).ravel()
    flat = epoch * 4 + update
    assert np.isfinite(losses[:flat]).all()  # the history up to there is intact
    assert not np.isfinite(losses[flat])  # the update that was refused
    assert np.isnan(losses[flat + 1 :]).all()
    # Replaying the finite updates by hand gives the params the run returned.
    w = 1.0
    for i in range(flat):
        x = float(X[i % 4])
        w = np.float32(w - 1e3 * 2 * (w * x - 1) * x)
    np.testing.assert_allclose(r.params, w, rtol=1e-5)
    with pytest.raises(jaxgd.DivergenceError, match="epoch 1, update 2") as info:
        jaxgd.fit(f, 1.0, (X, jnp.ones(4)), epochs=20, optimizer=1e3, batch_size=1,
                  on_divergence="raise")  # fmt: skip
    np.testing.assert_array_equal(info.value.result.params, r.params)


def test_learning_rate_zero_only_evaluates():
    X, y = make_data()
    r = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=3, optimizer=0.0, batch_size=5)
    np.testing.assert_array_equal(r.params["w"], np.zeros(3))
    np.testing.assert_allclose(r.train_loss, np.log(2.0), rtol=1e-6)


def test_metrics_validation_and_early_stopping():
    X, y = make_data(n=40)
    Xv, yv = make_data(n=20, seed=1)
    yv = 1 - yv  # Validation labels the training data contradict: val_loss rises from epoch 0.
    acc = jaxgd.binary_accuracy(logit, threshold=0.0)
    r = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=30, optimizer=0.5, batch_size=8,
                  val_data=(Xv, yv), metrics={"accuracy": acc},
                  early_stopping=jaxgd.EarlyStopping(monitor="val_loss", patience=3))  # fmt: skip
    run = int(r.epochs_run)
    val = np.asarray(r.val_loss)
    z = Xv @ np.asarray(r.params["w"]) + float(r.params["b"])
    np.testing.assert_allclose(val[run - 1], np.mean(np.logaddexp(0, z) - yv * z), rtol=1e-5)
    np.testing.assert_allclose(r.val_metrics["accuracy"][run - 1], np.mean((z > 0) == (yv > 0.5)))
    assert run == 4  # the best val_loss at epoch 0, then 3 epochs without improvement
    assert val[0] <= val[1:run].min()
    assert np.isnan(val[run:]).all() and np.isnan(r.losses[run:]).all()
    assert r.train_metrics["accuracy"].shape == (30,)
    # A patience that cannot trigger runs every epoch.
    r = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=5, optimizer=0.5, val_data=(Xv, yv),
                  early_stopping=jaxgd.EarlyStopping(patience=10))  # fmt: skip
    assert int(r.epochs_run) == 5


def test_early_stopping_stops_on_a_plateau():
    f = lambda w, x, y: (w * x - y) ** 2
    X, y = jnp.ones(4), jnp.ones(4)
    r = jaxgd.fit(f, 1.0, (X, y), epochs=10, optimizer=0.1,
                  early_stopping=jaxgd.EarlyStopping(monitor="train_loss", patience=2))  # fmt: skip
    assert int(r.epochs_run) == 3  # best at epoch 0 (loss 0), then 2 epochs without improvement
    assert r.losses.shape == (10, 1) and np.isnan(r.losses[3:]).all()


def test_callback_chunks_equal_one_call():
    X, y = make_data()
    seen = []
    common = dict(epochs=7, optimizer=0.1, batch_size=4, key=jax.random.key(0))
    chunked = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs_per_call=3,
                        callback=lambda done, res: seen.append((done, res.losses.shape)), **common)  # fmt: skip
    whole = jaxgd.fit(logistic_loss, zeros(), (X, y), **common)
    assert seen == [(3, (3, 4)), (6, (6, 4)), (7, (7, 4))]
    np.testing.assert_array_equal(chunked.losses, whole.losses)
    np.testing.assert_array_equal(chunked.params["w"], whole.params["w"])


def test_zero_epochs_returns_the_initial_params():
    X, y = make_data()
    r = jaxgd.fit(logistic_loss, zeros(), (X, y), epochs=0, optimizer=0.1, batch_size=4)
    assert r.losses.shape == (0, 4)
    np.testing.assert_array_equal(r.params["w"], np.zeros(3))


# ---------------------------------------------------------------------------------------------
# The fast paths of issue 5: the sort-free shuffle, the epoch-level divergence check, NumPy input.


@pytest.mark.parametrize("n", [1, 2, 3, 13, 100, 1000, 1001, 65537])
def test_shuffle_is_a_permutation(n):
    order = np.asarray(_shuffle.permutation(jax.random.key(n), n))
    assert order.dtype == np.int32 and order.shape == (n,)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_shuffle_differs_between_epochs_and_looks_uniform():
    key = jax.random.key(0)
    first, second = (
        np.asarray(_shuffle.permutation(jax.random.fold_in(key, e), 1000)) for e in (0, 1)
    )
    assert not np.array_equal(first, second)
    # n = 5: all 120 orders about equally often (chi-square, 119 degrees of freedom).
    keys = jax.random.split(jax.random.key(1), 12_000)
    orders = np.asarray(jax.jit(jax.vmap(lambda k: _shuffle.permutation(k, 5)))(keys))
    codes = orders @ 5 ** np.arange(5)
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 120
    expected = len(keys) / 120
    assert ((counts - expected) ** 2 / expected).sum() < 180  # P(chi2_119 > 180) ~ 2e-4
    # n = 1000: where example 0 lands is spread over the epoch.
    keys = jax.random.split(jax.random.key(2), 500)
    where = np.argmax(
        np.asarray(jax.jit(jax.vmap(lambda k: _shuffle.permutation(k, 1000)))(keys)) == 0, 1
    )
    assert abs(where.mean() - 499.5) < 50 and where.std() > 250


def test_key_visits_every_example_once_per_epoch_in_the_documented_order():
    X, y = make_data(n=40)
    key = jax.random.key(3)
    w = {"w": jnp.ones(3), "b": jnp.zeros(())}
    # With a learning rate of 0 each update's loss is the loss of the example it visits.
    r = jaxgd.fit(sq_loss, w, (X, y), epochs=3, optimizer=0.0, batch_size=1, key=key)
    per_example = (X @ np.ones(3) - y) ** 2
    orders = np.stack([_shuffle.permutation(jax.random.fold_in(key, e), 40) for e in range(3)])
    for e in range(3):
        np.testing.assert_allclose(r.losses[e], per_example[orders[e]], rtol=1e-5)
    assert len({tuple(o) for o in orders}) == 3
    common = dict(epochs=3, optimizer=0.2, batch_size=7)
    keyed = jaxgd.fit(logistic_loss, zeros(), (X, y), key=key, **common)
    replay = jaxgd.fit(logistic_loss, zeros(), (X, y), orders=orders, **common)
    np.testing.assert_allclose(keyed.losses, replay.losses, rtol=1e-6)


def test_divergence_with_an_optax_optimizer_matches_plain_gd():
    X = jnp.arange(1.0, 5.0)
    f = lambda w, x, y: (w * x - y) ** 2
    plain = jaxgd.fit(f, 1.0, (X, jnp.ones(4)), epochs=20, optimizer=1e3, batch_size=1)
    tx = jaxgd.fit(f, 1.0, (X, jnp.ones(4)), epochs=20, optimizer=optax.sgd(1e3), batch_size=1)
    assert bool(tx.diverged) and int(tx.diverged_epoch) == 1 and int(tx.diverged_update) == 2
    np.testing.assert_allclose(tx.params, plain.params, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(tx.losses), np.isnan(plain.losses))


def test_numpy_data_used_in_place_is_safe_to_overwrite_after_fit():
    X, y = make_data(n=64)
    buffer = np.empty(X.size + 16, np.float32)  # 64-byte aligned: XLA reads it in place
    start = (-buffer.ctypes.data % 64) // 4
    aligned = buffer[start : start + X.size].reshape(X.shape)
    aligned[...] = X
    common = dict(epochs=2, optimizer=0.3, batch_size=8, key=jax.random.key(0))
    r = jaxgd.fit(logistic_loss, zeros(), (aligned, y), **common)
    aligned[...] = np.nan
    ref = jaxgd.fit(logistic_loss, zeros(), (jnp.asarray(X), y), **common)
    np.testing.assert_array_equal(r.losses, ref.losses)
    np.testing.assert_array_equal(r.params["w"], ref.params["w"])


@pytest.mark.parametrize("optimizer", [30.0, optax.sgd(30.0)])
def test_divergence_in_the_ragged_last_batch(optimizer):
    X, y = jnp.arange(1.0, 6.0), jnp.ones(5)  # batches of 2, 2 and the last 1
    f = lambda w, x, y: (w * x - y) ** 2
    r = jaxgd.fit(f, 0.1, (X, y), epochs=10, optimizer=optimizer, batch_size=2)
    # Replay in float32: the first update whose loss, gradient or result is not finite stops.
    w, flat, losses = np.float32(0.1), None, []
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(30):
            xb = np.asarray(X[2 * (k % 3) : 2 * (k % 3) + 2])
            loss = np.mean((w * xb - 1) ** 2)
            grad = np.mean(2 * (w * xb - 1) * xb)
            new = np.float32(w - np.float32(30.0) * grad)
            losses.append(loss)
            if not (np.isfinite(loss) and np.isfinite(grad) and np.isfinite(new)):
                flat = k
                break
            w = new
    assert flat is not None and flat % 3 == 2 and bool(r.diverged)  # in a ragged batch
    assert (int(r.diverged_epoch), int(r.diverged_update)) == divmod(flat, 3)
    np.testing.assert_allclose(r.params, w, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(r.losses).ravel()[:flat], losses[:flat], rtol=1e-5)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_in_the_callback_keeps_the_epochs_trained_so_far(stream, error):
    X, y = make_data()
    data = (np.asarray(X), np.asarray(y))

    def callback(done, result):
        if done == 4:
            raise error("stop here")

    with pytest.raises(error) as excinfo:
        jaxgd.fit(logistic_loss, zeros(), data, epochs=6, optimizer=0.1, batch_size=4,
                  callback=callback, epochs_per_call=2, stream=stream)  # fmt: skip
    kept = excinfo.value.fit_result
    four = jaxgd.fit(logistic_loss, zeros(), data, epochs=4, optimizer=0.1, batch_size=4)
    assert kept.losses.shape == (4, 4) and int(kept.epochs_run) == 4
    np.testing.assert_allclose(kept.losses, four.losses, rtol=1e-6)
    np.testing.assert_allclose(kept.params["w"], four.params["w"], rtol=1e-6)


@pytest.mark.parametrize("make", [jax.random.key, jax.random.PRNGKey], ids=["typed", "raw"])
def test_epoch_keys_and_round_keys_are_jax_randoms_bit_for_bit(make):
    """`_shuffle.fold_in` and `_shuffle._bits` compute threefry keys' `fold_in` and `bits`
    themselves (a shorter compile): the very bits of jax.random, eagerly, jitted and vmapped."""
    epochs = jnp.array([0, 1, 7, 123_456, 2**31 - 1], jnp.int32)
    for seed in (0, 1, 2**31 - 1):
        key = make(seed)
        ours = jax.jit(jax.vmap(lambda e, key=key: _shuffle.fold_in(key, e)))(epochs)
        theirs = jax.vmap(lambda e, key=key: jax.random.fold_in(key, e))(epochs)
        data = jax.random.key_data if ours.dtype != jnp.uint32 else lambda k: k
        np.testing.assert_array_equal(data(ours), data(theirs))
        for count in (6, 24, 25):
            np.testing.assert_array_equal(
                _shuffle._bits(key, count), jax.random.bits(key, (count,), jnp.uint32)
            )
    keys = jax.random.split(jax.random.key(3), 4)
    np.testing.assert_array_equal(
        jax.vmap(lambda k: _shuffle._bits(_shuffle.fold_in(k, 5), 24))(keys),
        jax.vmap(lambda k: jax.random.bits(jax.random.fold_in(k, 5), (24,), jnp.uint32))(keys),
    )


def test_other_prng_implementations_go_through_jax_random():
    key = jax.random.key(0, impl="rbg")
    np.testing.assert_array_equal(
        jax.random.key_data(_shuffle.fold_in(key, 3)),
        jax.random.key_data(jax.random.fold_in(key, 3)),
    )
    order = np.asarray(_shuffle.permutation(key, 50))
    np.testing.assert_array_equal(np.sort(order), np.arange(50))
