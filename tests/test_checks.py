"""jaxgd._checks: the finiteness check behind `data` and `params`, and what it costs.

The check reads NumPy (and CPU jax) arrays in place with NumPy: no boolean array the size of the
data, no XLA compile. The messages themselves are tested in tests/test_bad_input.py.
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from jaxgd import _checks, loop

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
        for data in ((X, y), loop._to_jax((X, y), [])):  # NumPy arrays, then CPU jax arrays.
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
