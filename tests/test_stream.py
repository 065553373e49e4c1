"""Streamed runs (`fit(..., stream=True)`, `jaxgd.loop.stream`) against the same runs in memory.

A streamed run must equal the in-memory run on the same orders: bit for bit where the updates
see the same batches (mini-batches cut from chunks, params compared with `assert_array_equal`),
within float rounding where sums are split over chunks (full batch, the training loss).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import _host, _shuffle, _weak
from jaxgd.loop import stream
from tests.problems import accuracy, bce, make, sq

X, Y = make(1000)
XV, YV = make(200, seed=1)
P = {"w": jnp.zeros(5), "b": jnp.zeros(())}


def both(loss=bce, data=(X, Y), chunk=96, **options):
    """The run in memory and streamed in chunks of `chunk` examples."""
    a = jaxgd.fit(loss, P, data, **options)
    b = jaxgd.fit(loss, P, data, stream=True, stream_chunk=chunk, **options)
    return a, b


def assert_same_history(a, b, rtol=1e-6):
    np.testing.assert_allclose(b.losses, a.losses, rtol=rtol, atol=1e-7)
    for field in ("train_loss", "val_loss"):
        np.testing.assert_allclose(getattr(b, field), getattr(a, field), rtol=1e-5, atol=1e-7)
    for name in a.val_metrics:
        np.testing.assert_allclose(b.val_metrics[name], a.val_metrics[name], rtol=1e-6)
        np.testing.assert_allclose(b.train_metrics[name], a.train_metrics[name], rtol=1e-6)
    for field in ("diverged", "diverged_epoch", "diverged_update", "epochs_run"):
        assert int(getattr(b, field)) == int(getattr(a, field)), field


@pytest.mark.parametrize(
    "options",
    [
        dict(batch_size=1, key=jax.random.key(0)),
        dict(batch_size=32, key=jax.random.key(1)),  # 1000 = 31 * 32 + 8: a ragged last batch
        dict(batch_size=32, key=jax.random.key(1), drop_last=True),
        dict(batch_size=100, chunk=300),  # data order
        dict(
            batch_size=7,
            orders=np.stack([np.random.default_rng(e).permutation(1000) for e in range(3)]),
        ),  # fmt: skip
    ],
    ids=["sgd", "mb32-ragged", "mb32-drop-last", "data-order", "orders"],
)
def test_minibatch_schedules_equal_the_in_memory_run_bit_for_bit(options):
    a, b = both(epochs=3, optimizer=0.1, **options)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(leaf_b, leaf_a)
    np.testing.assert_array_equal(b.losses, a.losses)
    assert_same_history(a, b)


def test_full_batch_sums_the_gradient_over_chunks():
    a, b = both(epochs=5, optimizer=0.5, batch_size=None, chunk=300)  # chunks 300, 300, 300, 100
    assert b.losses.shape == (5, 1)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_allclose(leaf_b, leaf_a, rtol=1e-5, atol=1e-7)
    assert_same_history(a, b, rtol=1e-5)


def test_optax_state_validation_metrics_and_early_stopping_as_in_memory():
    a, b = both(
        epochs=8, optimizer=optax.adam(0.05), batch_size=50, key=jax.random.key(3),
        val_data=(XV, YV), metrics={"acc": accuracy},
        early_stopping=jaxgd.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e-3),
    )  # fmt: skip
    assert int(a.epochs_run) < 8  # Early stopping did stop, at the same epoch.
    assert np.isnan(b.losses[-1]).all() and np.isnan(b.val_loss[-1])
    assert_same_history(a, b)
    np.testing.assert_array_equal(b.params["w"], a.params["w"])
    chex.assert_trees_all_equal(b.opt_state, a.opt_state)


def test_divergence_is_found_in_a_later_chunk_and_numbered_within_the_epoch():
    X2 = X.copy()
    X2[500:] *= 1e4  # The updates on these rows blow up.
    a, b = both(loss=sq, data=(X2, Y), epochs=3, optimizer=0.5, batch_size=8, chunk=80)
    assert bool(a.diverged) and int(a.diverged_epoch) == 0
    assert int(a.diverged_update) >= 80 // 8  # Past the first chunk: the offset matters.
    assert_same_history(a, b)
    np.testing.assert_array_equal(b.params["w"], a.params["w"])
    with pytest.raises(jaxgd.DivergenceError, match="diverged at epoch 0, update"):
        jaxgd.fit(sq, P, (X2, Y), epochs=1, optimizer=0.5, batch_size=8, stream=True,
                  stream_chunk=80, on_divergence="raise")  # fmt: skip


def test_full_batch_divergence_keeps_the_last_finite_params():
    a, b = both(loss=sq, data=(X * 1e3, Y), epochs=4, optimizer=1e3, batch_size=None, chunk=300)
    assert bool(a.diverged)
    assert_same_history(a, b, rtol=1e-5)
    np.testing.assert_allclose(b.params["w"], a.params["w"], rtol=1e-5)


def test_resuming_a_streamed_run_equals_one_long_run():
    options = dict(optimizer=optax.sgd(0.1, momentum=0.9), batch_size=16, key=jax.random.key(4),
                   stream=True, stream_chunk=160)  # fmt: skip
    whole = jaxgd.fit(bce, P, (X, Y), epochs=4, **options)
    first = jaxgd.fit(bce, P, (X, Y), epochs=2, **options)
    second = jaxgd.fit(bce, first.params, (X, Y), epochs=2, opt_state=first.opt_state,
                       start_epoch=2, **options)  # fmt: skip
    np.testing.assert_array_equal(second.params["w"], whole.params["w"])
    np.testing.assert_array_equal(np.concatenate([first.losses, second.losses]), whole.losses)


def test_a_memmap_is_streamed_by_default(tmp_path, monkeypatch):
    path = tmp_path / "X.f32"
    X.tofile(path)
    Xm = np.memmap(path, np.float32, "r", shape=X.shape)
    calls = []
    check_chunk = stream.check_chunk
    monkeypatch.setattr(
        stream, "check_chunk", lambda *a, **k: calls.append(check_chunk(*a, **k)) or calls[-1]
    )
    options = dict(epochs=2, optimizer=0.1, batch_size=10, key=jax.random.key(0))
    b = jaxgd.fit(bce, P, (Xm, Y), **options)
    assert calls == [1000]  # The default chunk holds all 1000 examples (they are few).
    a = jaxgd.fit(bce, P, (X, Y), **options)
    np.testing.assert_array_equal(b.params["w"], a.params["w"])
    jaxgd.fit(bce, P, (Xm, Y), stream=False, **options)  # Read into memory: not streamed.
    assert len(calls) == 1


def test_the_device_only_ever_sees_chunks(monkeypatch):
    """Device memory is bounded by the chunk, not by n: every array a chunk's training and the evaluation
    get has at most `stream_chunk` rows, and the orders are drawn a chunk at a time."""
    seen = []
    for module, name in (
        (stream, "_train_chunk"),
        (stream, "_eval_sums"),
        (_shuffle, "permutation_slice"),
    ):
        original = getattr(module, name)

        def spy(*args, original=original, **kwargs):
            seen.extend(a.shape[0] for a in jax.tree.leaves(args) if getattr(a, "ndim", 0) >= 1)
            seen.extend([kwargs["size"]] if "size" in kwargs else [])
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    jaxgd.fit(bce, P, (X, Y), epochs=2, optimizer=0.1, batch_size=20, key=jax.random.key(0),
              val_data=(XV, YV), stream=True, stream_chunk=120)  # fmt: skip
    assert seen and max(seen) <= 120


def test_pytree_inputs_and_float64_host_data_stream():
    data = ({"a": X[:, :3], "b": X[:, 3:].astype(np.float64)}, Y)
    loss = lambda p, x, y: bce(p, jnp.concatenate([x["a"], x["b"].astype(jnp.float32)]), y)
    a, b = both(loss=loss, data=data, epochs=2, optimizer=0.1, batch_size=25,
                key=jax.random.key(5))  # fmt: skip
    np.testing.assert_array_equal(b.params["w"], a.params["w"])


def test_callback_every_epochs_per_call_and_zero_epochs():
    calls = []
    jaxgd.fit(bce, P, (X, Y), epochs=5, optimizer=0.1, batch_size=100, stream=True,
              callback=lambda done, r: calls.append((done, r.losses.shape)), epochs_per_call=2)  # fmt: skip
    assert calls == [(2, (2, 10)), (4, (4, 10)), (5, (5, 10))]
    a, b = both(epochs=0, optimizer=0.1, batch_size=30, val_data=(XV, YV))
    assert b.losses.shape == a.losses.shape == (0, 34)
    assert b.val_loss.shape == a.val_loss.shape == (0,)


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(stream="yes"), TypeError, "`stream` must be True, False or None"),
        (dict(stream=True, data=(jnp.asarray(X), Y)), TypeError,
         "`data` X is a jax.Array, but `stream=True` streams NumPy arrays"),
        (dict(stream_chunk=100), ValueError, "`stream_chunk` sets the chunks of a streamed run"),
        (dict(stream=True, stream_chunk=10, batch_size=32), ValueError,
         "`stream_chunk`=10 is smaller than `batch_size`=32"),
        (dict(stream=True, stream_chunk=0), ValueError, "`stream_chunk`"),
    ],
    ids=["stream-not-bool", "device-array", "chunk-without-stream", "chunk-below-batch", "zero"],
)  # fmt: skip
def test_bad_stream_arguments_are_refused_before_anything_compiles(options, error, match, traces):
    args = dict(data=(X, Y), epochs=1, optimizer=0.1)
    args.update(options)
    before = traces("run_epochs")
    with pytest.raises(error, match=match):
        jaxgd.fit(bce, P, args.pop("data"), **args)
    assert traces("run_epochs") == before


@pytest.mark.parametrize("rows", [1, 9, 10, 4097])
def test_the_two_thread_gather_puts_every_row_where_np_take_does(rows, monkeypatch):
    monkeypatch.setattr(stream, "SPLIT_ROWS", 2)
    src = np.arange(5000 * 3, dtype=np.float32).reshape(5000, 3)
    idx = np.random.default_rng(rows).permutation(5000)[:rows]
    out = np.full((rows, 3), -1.0, np.float32)
    stream._take(src, idx, out)
    np.testing.assert_array_equal(out, np.take(src, idx, axis=0))


def test_a_streamed_run_gathering_on_two_threads_equals_the_in_memory_run(monkeypatch):
    monkeypatch.setattr(stream, "SPLIT_ROWS", 16)  # The test's chunks of 96 rows are split.
    a, b = both(epochs=2, optimizer=0.1, batch_size=32, key=jax.random.key(4))
    np.testing.assert_array_equal(b.losses, a.losses)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(leaf_b, leaf_a)


def test_a_finished_run_leaves_its_chunk_buffers_to_the_next_within_the_budget(monkeypatch):
    monkeypatch.setattr(_host, "_SPARES", _weak.WeakIds())
    options = dict(epochs=2, optimizer=0.1, batch_size=32, key=jax.random.key(2))
    first = jaxgd.fit(bce, P, (X, Y), stream=True, stream_chunk=96, **options)
    kept = [b for _, b in _host._SPARES.items()]
    assert len(kept) == 4 and all(b.ctypes.data % 64 == 0 for b in kept)  # 2 slots of X and y.
    second = jaxgd.fit(bce, P, (X, Y), stream=True, stream_chunk=96, **options)
    again = [b for _, b in _host._SPARES.items()]
    assert {id(b) for b in again} == {id(b) for b in kept}  # The same four, taken and returned.
    np.testing.assert_array_equal(second.losses, first.losses)
    monkeypatch.setattr(_host, "_SPARES", _weak.WeakIds())
    monkeypatch.setattr(_host, "SPARE_BYTES_MAX", 0)
    jaxgd.fit(bce, P, (X, Y), stream=True, stream_chunk=96, **options)
    assert not _host._SPARES.items()
