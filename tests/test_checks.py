"""jaxgd._checks: the finiteness check behind `data` and `params`, and what it costs.

The check reads NumPy (and CPU jax) arrays in place with NumPy: no boolean array the size of the
data, no XLA compile. The messages themselves are tested in tests/test_bad_input.py.
"""

import functools
import os

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jaxgd
from jaxgd import _checks, _host
from jaxgd.loop import setup

FLOATS = [np.float16, np.float32, np.float64, ml_dtypes.bfloat16]


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 517, -1])
def test_all_finite_finds_every_non_finite_value(dtype, bad, where):
    a = np.linspace(-3, 3, 1000).astype(dtype).reshape(50, 20)
    assert _checks._all_finite(a)
    a.reshape(-1)[where] = bad
    assert not _checks._all_finite(a)
    assert _checks._count_non_finite(a) == 1


@pytest.mark.parametrize("where", [0, 1, 517, -1])
def test_all_finite_copying_checks_every_block_and_copies_them_all(monkeypatch, where):
    """Blocks of 3 rows (of 20 values): a NaN in any block is found, and the copy is whole even
    when an early block held it."""
    monkeypatch.setattr(_checks, "BLOCK_BYTES", 3 * 20 * 4)
    a = np.linspace(-3, 3, 1000, dtype=np.float32).reshape(50, 20)
    out = np.empty_like(a)
    assert _checks.all_finite_copying(a, out)
    np.testing.assert_array_equal(out, a)
    a.reshape(-1)[where] = np.nan
    out = np.empty_like(a)
    assert not _checks.all_finite_copying(a, out)
    np.testing.assert_array_equal(out, a)  # NaN compares equal here.
    assert not _checks.all_finite_copying(a)


def test_fit_checks_numpy_data_as_it_copies_them(monkeypatch):
    """`fit` reads NumPy data once for their aligned copy and their check: the values are not
    checked before (`check_data(numpy_values=False)`), and a NaN still stops it, named."""
    whole = []
    monkeypatch.setattr(_checks, "_all_finite", lambda a: whole.append(a) or True)
    X = _host.aligned_empty((401, 5), np.float32)[1:]  # Unaligned: 20 bytes past the start.
    X[...] = 1.0
    X[123, 4] = np.inf
    with pytest.raises(ValueError, match=r"`data` X holds 1 non-finite value\(s\)"):
        jaxgd.fit(lambda p, x, y: jnp.sum(p * x) - y, jnp.zeros(5), (X, np.zeros(400)),
                  epochs=1, optimizer=0.1)  # fmt: skip
    assert not any(a is X for a in whole)  # Params only: the data were checked on the copy.


def test_all_finite_strided_empty_scalar_and_large_finite_values():
    a = np.ones((6, 4), np.float32)
    a[3, 1] = np.nan
    assert _checks._all_finite(a[:, ::2]) and not _checks._all_finite(a[:, 1::2])
    assert _checks._all_finite(np.zeros((0, 3), np.float32))
    assert _checks._all_finite(0.0) and not _checks._all_finite(float("nan"))
    big = np.full(10_000, np.finfo(np.float32).max, np.float32)  # A sum would overflow to inf.
    assert _checks._all_finite(big) and _checks._all_finite(-big)


def test_all_finite_jax_arrays_agree_with_numpy():
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert _checks._all_finite(jnp.asarray(a))
    a[2, 2] = np.inf
    assert not _checks._all_finite(jnp.asarray(a))
    assert _checks._count_non_finite(jnp.asarray(a)) == 1
    assert not bool(jax.jit(lambda v: _checks._all_finite_on_device(v))(jnp.asarray(a)))


def test_checks_on_numpy_data_compile_nothing():
    """`check_data`, `check_params` and `check_example_fn` on NumPy inputs dispatch no XLA program
    (each eager op on the data compiled one and held memory the size of the data)."""
    X = np.random.default_rng(0).standard_normal((1000, 3), dtype=np.float32)
    y = np.zeros(1000, np.float32)
    params = {"w": np.zeros(3, np.float32), "b": np.float32(0)}
    loss = lambda p, x, y: (x @ p["w"] + p["b"] - y) ** 2
    compiled = []

    def listen(name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiled.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        for data in ((X, y), _host.to_jax((X, y), [])):  # NumPy arrays, then CPU jax arrays.
            _checks.check_data(data)
            _checks.check_params(params)
            _checks.check_example_fn(loss, params, *data, "example_loss")
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiled == []


def test_example_fn_sees_one_example_with_its_dtype_and_weak_type():
    seen = []

    def loss(p, x, y):
        seen.append((x.shape, x.dtype, x.weak_type, y.shape))
        return jnp.sum(x) * p

    X64 = np.ones((5, 2, 3))  # float64: canonicalized as `a[0]` would be
    _checks.check_example_fn(loss, 1.0, X64, np.zeros(5), "example_loss")
    _checks.check_example_fn(loss, 1.0, jnp.ones(4) * 2.0, jnp.zeros((4, 2)), "example_loss")
    weak = jnp.broadcast_to(2.0, (4, 3))  # A weak-typed array: its rows are weak too.
    _checks.check_example_fn(loss, 1.0, weak, jnp.zeros(4), "example_loss")
    assert seen == [
        ((2, 3), jnp.float32, False, ()),
        ((), jnp.float32, False, (2,)),
        ((3,), jnp.float32, True, ()),
    ]


def _compiles(fn) -> int:
    """How many XLA programs `fn()` compiled."""
    compiled = []

    def listen(name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiled.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(compiled)


def test_prepare_on_numpy_inputs_compiles_nothing_and_owns_its_params():
    """`fit`'s checks and inputs (`loop.setup.prepare`) dispatch no XLA program: a first `fit` compiles
    its run, not a dozen small eager ops. A NumPy params leaf is copied even when it is aligned,
    where `device_put` would read it in place: writing to it afterwards changes nothing."""
    X = np.random.default_rng(1).standard_normal((300, 4), dtype=np.float32)
    y = np.zeros(300, np.float32)
    w = _host.aligned_empty((4,), np.float32)  # Aligned: `device_put` could share it.
    w[:] = 1.0
    params = {"w": w, "b": np.float32(0.0)}
    loss = lambda p, x, y: (x @ p["w"] + p["b"] - y) ** 2
    key = jax.random.key(0)  # Compiles its own small programs: made before counting.
    prepared = []

    def prepare():
        prepared.append(
            setup.prepare(loss, params, (X, y), epochs=2, optimizer=0.1, batch_size=32, key=key)
        )

    assert _compiles(prepare) == 0
    state = prepared[0].state
    w[:] = 7.0
    np.testing.assert_array_equal(state.params["w"], np.ones(4, np.float32))
    assert prepared[0].inputs.lr.dtype == state.params["b"].dtype == jnp.float32
    python_float = setup.prepare(loss, {"w": w, "b": 0.0}, (X, y), epochs=1, optimizer=0.1)
    assert python_float.state.params["b"].weak_type  # As `jnp.asarray(0.0)` makes it.


def test_float64_data_beyond_float32_range_are_refused_as_the_device_would_see_them():
    """With x64 disabled jax runs float64 data in float32, where 1e39 is inf: refused before
    anything compiles, counted as the device sees them."""
    X = np.ones((4, 2))
    X[1, 0], X[2, 1] = 1e39, -1e300
    y = np.zeros(4, np.float32)
    params = jnp.zeros(2)

    def call():
        with pytest.raises(
            ValueError, match=r"`data` X holds 2 non-finite value\(s\) \(NaN or inf\)"
        ):
            jaxgd.fit(lambda p, x, y: jnp.sum(p * x) - y, params, (X, y), epochs=1, optimizer=0.1)

    assert _compiles(call) == 0
    with jax.enable_x64(True):  # In float64 they are finite numbers.
        assert _checks._all_finite(X)


# ---------------------------------------------------------------- memmaps, integer ranges, history


def _mapped(tmp_path, rows=10, offset=0):
    path = tmp_path / "m.f32"
    path.write_bytes(b"\0" * offset + np.arange(rows * 3, dtype=np.float32).tobytes())
    return path, np.memmap(path, np.float32, mode="r", offset=offset, shape=(rows, 3))


@pytest.mark.parametrize("offset", [0, 8, 4096 + 12])
def test_mapped_file_bytes_needed_for_views_of_a_memmap(tmp_path, offset):
    path, m = _mapped(tmp_path, offset=offset)
    row = 12  # bytes
    cases = [
        (m, offset + 10 * row),
        (m[2:5], offset + 5 * row),
        (m[:, 0], offset + 9 * row + 4),  # strided: the last element read is row 9's first
        (m.T, offset + 10 * row),
        (np.asarray(m)[::3], offset + 9 * row + row),  # a plain ndarray whose base is the memmap
    ]
    for view, needed in cases:
        assert _checks._mapped_file(view) == (str(path), needed)
    assert _checks._mapped_file(np.ones(3)) is None
    assert _checks._mapped_file(m[:0]) is None


def test_a_truncated_memmap_is_refused_before_a_value_is_read(tmp_path):
    """Reading past a mapped file's end is SIGBUS: the check reads sizes, never the values."""
    path, m = _mapped(tmp_path)
    y = np.zeros(10, np.float32)
    _checks.check_data((m, y))  # the whole file is there
    os.truncate(path, 5 * 12)
    _checks.check_data((m[:5], y[:5]))  # the rows that remain
    with pytest.raises(ValueError, match=r"reads 72 bytes of it, but the file holds 60"):
        _checks.check_data((m[:6], y[:6]))
    with pytest.raises(ValueError, match=r"`data` X is an np.memmap of .*reads 120 bytes"):
        jaxgd.fit(lambda p, x, y: jnp.sum(p * x) - y, jnp.zeros(3), (m, y), epochs=1, optimizer=0.1)


def test_integers_beyond_the_device_range_only_without_x64():
    big = np.array([[1], [2**31]], np.int64)
    with pytest.raises(ValueError, match=r"holds integers from 1 to 2147483648, outside int32's"):
        _checks.check_data((big, np.zeros(2, np.float32)))
    _checks.check_data((big - 1, np.zeros(2, np.float32)))  # 2**31 - 1 fits
    with pytest.raises(ValueError, match=r"outside uint32's range \[0, 4294967295\]"):
        _checks.check_data((np.array([2**32], np.uint64), np.zeros(1, np.float32)))
    with jax.enable_x64(True):
        _checks.check_data((big, np.zeros(2, np.float32)))


def test_history_estimate_counts_updates_evaluations_and_members(monkeypatch):
    monkeypatch.setattr(_checks, "_memory_bytes", lambda: 2 * 1000)  # refuse beyond 1000 bytes
    ok = dict(epochs=10, start_epoch=0, n=10, batch_size=3, series=2, itemsize=4)
    _checks.check_history(**ok, drop_last=True)  # 10 x (3 + 2) x 4 = 200 bytes
    _checks.check_history(**ok, drop_last=False, members=4)  # 4 x 10 x (4 + 2) x 4 = 960
    with pytest.raises(ValueError, match=r"\(5 run\(s\) x 10 epochs x \(4 loss\(es\) \+ 2"):
        _checks.check_history(**ok, drop_last=False, members=5)  # 1200 bytes
    with pytest.raises(ValueError, match=r"`start_epoch` \+ `epochs` = 2147483648 is beyond"):
        _checks.check_history(**dict(ok, start_epoch=2**31 - 10), drop_last=True)


def test_signature_checks_accept_what_binds_and_skip_what_has_none():
    _checks.check_callable(lambda *a: 0, "f", args=("params", "x", "y"))
    _checks.check_callable(functools.partial(lambda p, x, y, z: 0, z=1), "f", args=("p", "x", "y"))
    _checks.check_callable(np.add, "f", args=("params", "x", "y"))  # a ufunc: no signature
    with pytest.raises(TypeError, match=r"but its signature is \(p, x, y, z\) \(missing a "):
        _checks.check_callable(lambda p, x, y, z: 0, "f", args=("params", "x", "y"))


def test_errors_in_the_users_function_keep_their_kind_and_cause():
    params, X, y = jnp.zeros(2), np.ones((3, 2), np.float32), np.ones(3, np.float32)

    def raises(err):
        def fn(p, x, y):
            raise err

        return fn

    for err, kind in [(ValueError("v"), ValueError), (KeyError("k"), TypeError),
                      (ZeroDivisionError("z"), TypeError)]:  # fmt: skip
        with pytest.raises(kind, match=type(err).__name__) as info:
            _checks.check_example_fn(raises(err), params, X, y, "example_loss")
        assert info.value.__cause__ is err


# ---------------------------------------------------------------- what a call keeps between calls


def test_a_jax_array_found_finite_is_not_read_again_while_it_lives(monkeypatch):
    """jax arrays cannot change: a finite verdict is kept by identity, a non-finite one never,
    and the entry goes with the array (its id may then be reused by another)."""
    reads = []
    read = _checks.all_finite_copying
    monkeypatch.setattr(_checks, "all_finite_copying", lambda a, *o: reads.append(1) or read(a, *o))
    good, bad = jnp.ones(5), jnp.array([1.0, jnp.nan])
    assert _checks._all_finite(good) and _checks._all_finite(good)
    assert len(reads) == 1
    assert not _checks._all_finite(bad) and not _checks._all_finite(bad)
    assert len(reads) == 3
    assert _checks._all_finite(jnp.ones(5))  # An equal array is another array: read.
    assert len(reads) == 4
    key = id(good)
    del good
    assert key not in _checks._FINITE
    with pytest.raises(ValueError, match=r"`params`\[1\] holds NaN or inf"):
        jaxgd.fit(lambda p, x, y: p @ x - y, [jnp.ones(2), bad], (np.ones((3, 2)), np.ones(3)),
                  epochs=1, optimizer=0.1)  # fmt: skip


def test_numpy_arrays_are_read_every_call_even_unchanged(monkeypatch):
    """A NumPy array can change in place between calls: its values are checked every time."""
    X = np.ones((8, 2), np.float32)
    y = np.zeros(8, np.float32)
    loss = lambda p, x, y: (p @ x - y) ** 2
    jaxgd.fit(loss, jnp.zeros(2), (X, y), epochs=1, optimizer=0.1)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"`data` X holds 1 non-finite value\(s\)"):
        jaxgd.fit(loss, jnp.zeros(2), (X, y), epochs=1, optimizer=0.1)


def test_a_signature_is_checked_once_per_function_and_a_bad_one_every_time(monkeypatch):
    seen = []
    signature = _checks.inspect.signature
    monkeypatch.setattr(_checks.inspect, "signature", lambda f: seen.append(f) or signature(f))

    def good(params, x, y=None):
        return 0.0

    bad = lambda params: 0.0
    for _ in range(3):
        _checks.check_callable(good, "f", args=("params", "x", "y"))
    assert seen == [good]
    _checks.check_callable(good, "f", args=("params", "x"))  # Other arguments: checked anew.
    assert seen == [good, good]
    for _ in range(2):
        with pytest.raises(TypeError, match=r"`f` is called as `f\(params, x, y\)`"):
            _checks.check_callable(bad, "f", args=("params", "x", "y"))
    assert seen == [good, good, bad, bad]


def test_small_numpy_data_go_as_they_are_and_large_ones_as_an_aligned_copy():
    """Under `_host.COPY_FROM_BYTES` the jitted call copies an unaligned array itself; from
    there on `fit` copies it once into memory XLA:CPU reads in place."""
    small = _host.aligned_empty((101, 4), np.float32)[1:]  # 16 bytes past an aligned start.
    large = _host.aligned_empty((_host.COPY_FROM_BYTES // 16 + 1, 4), np.float32)[1:]
    small[...], large[...] = 1.0, 2.0
    shared = []
    out = _host.to_jax((small, large), shared, keep_numpy=True, non_finite=[])
    assert out[0] is small and small.ctypes.data % _host.ALIGN
    assert out[1] is not large and out[1].ctypes.data % _host.ALIGN == 0
    np.testing.assert_array_equal(out[1], large)
    assert any(a is out[1] for a in shared)


def test_the_runs_scalars_are_device_arrays_made_once_per_value_and_dtype():
    one = setup.scalar(0.1, "float32")
    assert one is setup.scalar(0.1, "float32") and isinstance(one, jax.Array)
    assert one.dtype == jnp.float32 and not one.weak_type and float(one) == np.float32(0.1)
    assert setup.scalar(0.1, "float16").dtype == jnp.float16
    assert setup.scalar((-1, -1), "int32").tolist() == [-1, -1]


@pytest.mark.parametrize("b", ["np.float32(0)", "0.0"], ids=["numpy", "python-float"])
def test_a_first_fit_in_a_fresh_process_compiles_its_run_alone(b):
    """The run's scalars and a Python-float param go to the device without an XLA program
    (`setup.scalar`, `setup._owned`): in a fresh process, where no small program was compiled
    before, `fit` compiles `run_epochs` and nothing else."""
    import subprocess
    import sys

    code = f"""
import jax, numpy as np, jaxgd
X = np.ones((64, 3), np.float32); y = np.zeros(64, np.float32)
params = {{"w": np.zeros(3, np.float32), "b": {b}}}
key = jax.random.key(0)
names = []
jax.monitoring.register_event_duration_secs_listener(lambda e, d, **kw: names.append(
    kw.get("fun_name")) if e == "/jax/core/compile/backend_compile_duration" else None)
loss = lambda p, x, y: (x @ p["w"] + p["b"] - y) ** 2
jaxgd.fit(loss, params, (X, y), epochs=2, optimizer=0.1, batch_size=8, key=key)
print(names)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['jit(run_epochs)']", out.stdout + out.stderr


def _unaligned(rows, cols=8, value=1.0):
    """A NumPy array 16 bytes past an aligned start, large enough to be copied (and spared)."""
    a = _host.aligned_empty((rows + 1, cols), np.float32).reshape(-1)[4 : 4 + rows * cols]
    a = a.reshape(rows, cols)
    a[...] = value
    assert a.ctypes.data % _host.ALIGN and a.nbytes >= _host.COPY_FROM_BYTES
    return a


def test_fit_copies_into_the_same_spare_every_call_and_never_serves_an_old_copy():
    """Large unaligned data are copied into one aligned buffer kept while the array lives: the
    values are copied and checked anew each call, so a change in place is seen (and a NaN
    refused), and the spare goes with the array."""
    X = _unaligned(4096)
    X[:, 0] = np.linspace(-1, 1, 4096)
    y = (X[:, 0] > 0).astype(np.float32)
    loss = lambda p, x, y: (x @ p - y) ** 2
    fit = lambda X: jaxgd.fit(loss, jnp.zeros(8), (X, y), epochs=2, optimizer=0.01, batch_size=64)
    first = fit(X)
    spare = _host._SPARES.get(X)
    assert id(spare) not in _host._LENT  # Given back once the run was done.
    X[:, 1] = 3.0  # In place: the next call must train on the new values.
    second = fit(X)
    assert _host._SPARES.get(X) is spare
    np.testing.assert_array_equal(spare, X)
    fresh = fit(np.ascontiguousarray(X.copy()))
    np.testing.assert_array_equal(second.params, fresh.params)
    assert not np.array_equal(second.params, first.params)
    X[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"`data` X holds 1 non-finite value\(s\)"):
        fit(X)
    assert id(spare) not in _host._LENT  # A refused call gives its spare back too.
    key = id(X)
    del X
    assert key not in _host._SPARES


def test_a_spare_in_use_is_not_lent_twice_and_the_budget_is_kept(monkeypatch):
    a, b = _unaligned(4096), _unaligned(4096)
    first = _host.borrow(a)
    second = _host.borrow(a)  # The first loan is not over: a buffer of its own.
    assert second is not first and first.ctypes.data % _host.ALIGN == 0
    _host.give_back([first, second])
    assert _host.borrow(a) is _host._SPARES.get(a)
    _host.give_back([_host._SPARES.get(a)])
    monkeypatch.setattr(_host, "SPARE_BYTES_MAX", a.nbytes)  # Room for one spare.
    _host.give_back([_host.borrow(b)])
    assert id(b) in _host._SPARES and id(a) not in _host._SPARES  # The oldest went.
    big = _unaligned(8192)
    _host.give_back([_host.borrow(big)])
    assert id(big) not in _host._SPARES  # Over the budget: never kept.


def test_kept_scalars_and_result_types_follow_64_bit_mode():
    """`setup.scalar` and the params' result type are kept per value and dtype, and per 64-bit
    mode: float64 params train in float64 with x64 on, in float32 with it off."""
    f64 = np.dtype("float64")
    leaves = [np.zeros(3, f64)]
    assert setup.scalar(np.inf, f64).dtype == jnp.float32  # Kept first with x64 off.
    assert setup._result_type(leaves) == jnp.float32
    with jax.enable_x64(True):
        assert setup.scalar(np.inf, f64).dtype == jnp.float64
        assert setup._result_type(leaves) == jnp.float64
        X, y = np.ones((8, 3)), np.zeros(8)
        on = jaxgd.fit(lambda p, x, y: (x @ p - y) ** 2, leaves[0], (X, y), epochs=1, optimizer=0.1)
        assert on.params.dtype == jnp.float64 and on.losses.dtype == np.float64
    assert setup.scalar(np.inf, f64).dtype == jnp.float32
