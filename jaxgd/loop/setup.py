"""`fit`'s host side before training: the checks, the run's static spec and its first inputs.

Everything here runs on the host, before anything compiles: a bad argument is a clear error,
never an XLA trace. NumPy data are read where they are (no copy, no XLA program).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import _checks, _host, distributed
from jaxgd._monitor import count_compiles
from jaxgd.loop.result import EarlyStopping
from jaxgd.loop.run import RunInputs, RunSpec, RunState, run_epochs
from jaxgd.loop.step import init_opt_state

__all__ = ["Prepared", "prepare", "to_device", "compile_before_copy"]

COPY_FIRST_BYTES = 16 * 2**20  # NumPy data this large are copied after the compile, not before.


class Prepared(NamedTuple):
    """The checked arguments of a run, as `fit` (and `jaxgd.sweep`) build them."""

    spec: RunSpec  # The static part (its `epochs` is set per compiled call).
    state: RunState  # The initial epoch carry.
    inputs: RunInputs  # Data, learning rate, key, orders (start_epoch and active set per call).
    metrics: dict  # name -> per-example metric.
    epochs: int  # Epochs of the whole run.
    start_epoch: int  # The number of its first epoch.


def check_early_stopping(early, metrics, val_data, eval_train) -> EarlyStopping:
    """`early` checked against what the run computes, `min_delta` as a float."""
    if not isinstance(early, EarlyStopping):
        raise TypeError(
            f"`early_stopping` must be a jaxgd.EarlyStopping, got {type(early).__name__}."
        )
    allowed = [
        f"{part}_{name}"
        for part, on in (("train", eval_train), ("val", val_data is not None))
        if on
        for name in ("loss", *metrics)
    ]
    if early.monitor not in allowed:
        raise ValueError(
            f"`early_stopping.monitor` is {early.monitor!r}, which this run does not compute; "
            f"choose one of {allowed} (val_* needs `val_data`, metrics need `metrics`)."
        )
    patience = _checks.check_int(early.patience, "early_stopping.patience", minimum=1)
    if early.mode not in ("min", "max"):
        raise ValueError(f'`early_stopping.mode` must be "min" or "max", got {early.mode!r}.')
    min_delta = _checks.check_real(early.min_delta, "early_stopping.min_delta", minimum=0.0)
    return early._replace(patience=patience, min_delta=min_delta)


def _batch_size(batch_size, drop_last, n: int):
    """`batch_size` checked; None (full batch) when one batch holds all n examples."""
    if batch_size is None:
        return None
    batch_size = _checks.check_int(
        batch_size, "batch_size", minimum=1, fix=" Use None for full-batch gradient descent."
    )
    if batch_size > n and drop_last:
        raise ValueError(
            f"`batch_size`={batch_size} > n={n} with `drop_last=True` leaves no batch at all; "
            "use a smaller batch_size or drop_last=False."
        )
    return None if batch_size >= n and not drop_last else batch_size


def _check_functions(example_loss, metrics, params, X, y):
    _checks.check_example_fn(example_loss, params, X, y, "example_loss")
    for name, fn in metrics.items():
        _checks.check_example_fn(fn, params, X, y, f"metrics[{name!r}]", what="metric")


def _owned(leaf):
    """A copy of a NumPy leaf (a jitted call reads aligned NumPy memory in place, and the
    caller may change theirs); a jax array as it is; a Python float weakly typed, by
    `device_put` (`jnp.asarray` compiles a small program on a first fit)."""
    if isinstance(leaf, jax.Array):
        return leaf
    if isinstance(leaf, (np.ndarray, np.generic)):
        return np.array(leaf)  # The jitted run takes it in.
    return jax.device_put(leaf)


def scalar(value, dtype) -> jax.Array:
    """`value` as a device array of `dtype`, made once: jax arrays cannot change, and the jitted
    run takes a device array in faster than a NumPy value (docs/design.md#the-fixed-cost-of-a-call).
    Made once per 64-bit mode too, which decides the dtype the device holds."""
    return _device_scalar(value, dtype, jax.config.jax_enable_x64)


@functools.lru_cache(maxsize=1024)
def _device_scalar(value, dtype, x64: bool) -> jax.Array:
    return jax.device_put(np.asarray(value, dtype))  # As `_owned` does.


def _scalar(value, dtype) -> jax.Array:
    """`scalar(value, dtype)` for a Python number; an array value as a NumPy array of `dtype`."""
    if isinstance(value, (int, float)):
        return scalar(value, np.dtype(dtype))
    return np.asarray(value, dtype)


def _initial_state(params, opt_state, optimizer, early, lr, dtype) -> tuple[RunState, jax.Array]:
    """The first `RunState` and the learning rate in the params' dtype."""
    opt_state = init_opt_state(params, optimizer=optimizer) if opt_state is None else opt_state
    worst = np.inf if early is None or early.mode == "min" else -np.inf
    flags = (scalar(False, "bool"), scalar(False, "bool"), scalar((-1, -1), "int32"))
    counts = (scalar(worst, dtype), scalar(0, "int32"), scalar(0, "int32"))
    return RunState(params, opt_state, *flags, *counts), _scalar(lr, dtype)


_RESULT_TYPES: dict = {}  # (dtype, weak) of each leaf -> `jnp.result_type` of the leaves.


def _result_type(leaves) -> np.dtype:
    """`jnp.result_type(*leaves)`, which depends on their dtypes and weak types only (kept per
    combination: it cost a tenth of a small `fit` call)."""
    kinds = tuple((np.dtype(a.dtype), getattr(a, "weak_type", False)) for a in leaves)
    key = (jax.config.jax_enable_x64, kinds)  # 64-bit mode decides float64's result.
    if key not in _RESULT_TYPES:
        _RESULT_TYPES[key] = jnp.result_type(*leaves)
    return _RESULT_TYPES[key]


def _check_order(key, orders, epochs: int, n: int):
    """`(key, orders)` checked: at most one of them, `orders` of shape (epochs, n)."""
    key = _checks.check_key(key)
    if key is not None and orders is not None:
        raise ValueError(
            "Pass `key` (shuffle every epoch) or `orders` (explicit orders), not both."
        )
    if orders is not None:
        orders = _checks.check_orders(orders, epochs=epochs, n=n)
    return key, orders


def prepare(
    example_loss,
    params,
    data,
    *,
    epochs,
    optimizer,
    batch_size=None,
    key=None,
    orders=None,
    drop_last=False,
    val_data=None,
    metrics=None,
    early_stopping=None,
    opt_state=None,
    start_epoch=0,
    eval_train=True,
    mesh=None,
    host=False,
    values_later=False,
) -> Prepared:
    """Checks `fit`'s arguments and builds the run's spec, first state and inputs.

    With `host` the data stay the arrays they are (`fit` compiles first, or streams them);
    otherwise they are moved to the device (`to_device`). With `values_later`, NumPy data's
    values are checked by `to_device(..., keep_numpy=True)` in the same read as their copy.
    """
    _checks.check_callable(example_loss, "example_loss")
    mesh = distributed.check_mesh(mesh)
    epochs = _checks.check_int(epochs, "epochs", minimum=0, maximum=_checks.INT32_MAX)
    start_epoch = _checks.check_int(start_epoch, "start_epoch", minimum=0)
    X, y, n = _checks.check_data(data, "data", numpy_values=not values_later)
    _checks.check_params(params)
    tx, lr = _checks.check_learning_rate(optimizer)
    key, orders = _check_order(key, orders, epochs, n)
    drop_last = _checks.check_bool(drop_last, "drop_last")
    eval_train = _checks.check_bool(eval_train, "eval_train")
    batch_size = _batch_size(batch_size, drop_last, n)
    metrics = _checks.check_metrics(metrics)
    _check_functions(example_loss, metrics, params, X, y)
    if val_data is not None:
        val_data = _checks.check_val_data(val_data, X, y, numpy_values=not values_later)
    if early_stopping is not None:
        early_stopping = check_early_stopping(early_stopping, metrics, val_data, eval_train)
    params = jax.tree.map(_owned, params)
    dtype = _result_type(jax.tree.leaves(params))
    history = dict(n=n, batch_size=batch_size, drop_last=drop_last, series=2 * (1 + len(metrics)))
    _checks.check_history(
        epochs=epochs, start_epoch=start_epoch, itemsize=dtype.itemsize, **history
    )
    lr = 0.0 if lr is None else lr
    state, lr = _initial_state(params, opt_state, optimizer, early_stopping, lr, dtype)
    if mesh is not None:  # Params and optimizer state on every device of the mesh.
        state, lr = distributed.replicate((state, lr), mesh)
    shuffle = "orders" if orders is not None else "key" if key is not None else "none"
    schedule = (n, batch_size, drop_last, shuffle, eval_train, early_stopping, mesh)
    spec = RunSpec(example_loss, tx, tuple(metrics.items()), *schedule)
    count = (scalar(start_epoch, "int32"), scalar(epochs, "int32"))
    inputs = RunInputs((X, y), val_data, lr, key, orders, *count)
    prep = Prepared(spec, state, inputs, metrics, epochs, start_epoch)
    return prep if host else to_device(prep, [])


def _as_jax(a):
    return a if isinstance(a, (jax.Array, np.ndarray)) else jnp.asarray(a)


def _moved(data, name: str, shared: list, keep: bool, check: bool):
    """One data set as the run reads it; NaN or inf met on the way raise the checks' error."""
    if data is None:
        return None
    bad = [] if check else None
    data = _host.to_jax(data, shared, keep_numpy=keep, non_finite=bad)
    if bad:
        path, leaf = bad[0]
        part = "X" if path[0].idx == 0 else "y"
        raise _checks.non_finite_error(f"`{name}` {part}{jax.tree_util.keystr(path[1:])}", leaf)
    if all(isinstance(a, (jax.Array, np.ndarray)) for a in jax.tree.leaves(data)):
        return data  # Arrays already (a tree map cost more than the rest of this step).
    return jax.tree.map(_as_jax, data)


def to_device(prep: Prepared, shared: list, *, keep_numpy: bool = False) -> Prepared:
    """`prep` with its data and val_data as jax arrays (on every device of a mesh); `shared`
    collects the NumPy arrays that XLA reads in place. With `keep_numpy` (`fit`), aligned NumPy
    arrays stay as they are, as the jitted run reads them in place, and NumPy values are checked
    in the same read as their copy (`prepare(..., values_later=True)` left them)."""
    keep = keep_numpy and prep.spec.mesh is None
    data, val_data = (
        _moved(d, name, shared, keep, keep_numpy)
        for d, name in ((prep.inputs.data, "data"), (prep.inputs.val_data, "val_data"))
    )
    if prep.spec.mesh is not None:
        data, val_data = distributed.replicate((data, val_data), prep.spec.mesh)
    return prep._replace(inputs=prep.inputs._replace(data=data, val_data=val_data))


def compile_before_copy(prep: Prepared, state: RunState, inputs: RunInputs, spec: RunSpec) -> None:
    """Compiles the run while the data are still the caller's NumPy arrays, then gives the
    compiler's freed memory back, so that the copy for the device does not stack on top of it
    (docs/design.md#compile-before-copy). Nothing to do for device data, on a mesh, or for
    data under `COPY_FIRST_BYTES` (lowering again to ask whether it compiled costs a small call
    more than the rest of it)."""
    arrays = jax.tree.leaves((prep.inputs.data, prep.inputs.val_data))
    host = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    if spec.mesh is not None or host < COPY_FIRST_BYTES:
        return
    with count_compiles() as seen:
        run_epochs.lower(state, inputs, spec=spec).compile()
    if seen:  # A new program was compiled.
        _host.release_free_memory()
