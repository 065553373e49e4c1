"""Argument checks shared by `fit`, `sweep` and `lr_find`.

Every check runs on the host before anything is traced, so a bad argument gives a `ValueError` or
`TypeError` that names the argument, what was seen and the fix, never an XLA trace.
"""

import numbers
import weakref
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax


def check_callable(value, name: str):
    if not callable(value):
        raise TypeError(f"`{name}` must be a function, got {type(value).__name__}: {value!r}.")


def check_int(value, name: str, *, minimum: int, fix: str = "") -> int:
    """An integer >= `minimum` (bools and floats such as 2.0 are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        shown = repr(value) if isinstance(value, str) else value  # 2.0, not np.float64(2.0)
        raise TypeError(
            f"`{name}` must be an integer >= {minimum}, got {type(value).__name__} {shown}.{fix}"
        )
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}.{fix}")
    return int(value)


def _leaves_with_paths(tree):
    return jax.tree_util.tree_leaves_with_path(tree)


def _describe(path) -> str:
    return jax.tree_util.keystr(path) or "(the array itself)"


def _on_host(a) -> bool:
    """Whether NumPy can read `a` in place: a NumPy array or a jax array on one CPU device."""
    if isinstance(a, jax.core.Tracer):
        return False
    if isinstance(a, jax.Array):
        devices = a.devices()
        return len(devices) == 1 and next(iter(devices)).platform == "cpu"
    return True


@jax.jit
def _all_finite_on_device(a):
    return jnp.isfinite(a).all()  # One fused program: no boolean array of a's size.


def _all_finite(a) -> bool:
    """Whether every value of the float array `a` is finite.

    On the host with NumPy, in place and without a compile (`all_finite_copying`). Elsewhere one
    fused XLA program.
    """
    if not _on_host(a):
        return bool(_all_finite_on_device(a))
    return all_finite_copying(np.asarray(a))


BLOCK_BYTES = 2**20  # A block this large stays in cache from its copy to its check.


def _ends_finite(a: np.ndarray) -> bool:
    """NaN propagates through `min` and `max`, and an infinity is the minimum or the maximum, so
    both are finite exactly when every value is (no boolean temporary of `a`'s size, no overflow
    as a sum would risk). Judged in the dtype jax converts `a` to: a float64 beyond float32's
    range is an inf when x64 is disabled."""
    with np.errstate(invalid="ignore", over="ignore"):
        ends = np.array([a.min(), a.max()]).astype(jax.dtypes.canonicalize_dtype(a.dtype))
        return bool(np.isfinite(ends).all())


def all_finite_copying(a: np.ndarray, out: np.ndarray | None = None) -> bool:
    """Whether every value of the NumPy float array `a` is finite, read block by block of rows;
    with `out` (same shape), each block is copied there first, so that the copy and the check
    read the data from memory once (docs/design.md#the-fixed-cost-of-a-call)."""
    if a.ndim == 0 or a.size == 0:
        if out is not None:
            np.copyto(out, a)
        return a.size == 0 or _ends_finite(a)
    rows = max(1, BLOCK_BYTES // max(1, a[0].nbytes))
    finite = True
    for start in range(0, a.shape[0], rows):
        block = a[start : start + rows]
        if out is not None:
            np.copyto(out[start : start + rows], block)
        finite = _ends_finite(block) and finite
    return finite


def non_finite_error(where: str, leaf) -> ValueError:
    """The error for data `leaf` (named `where`) that holds NaN or inf."""
    return ValueError(
        f"{where} holds {_count_non_finite(leaf)} non-finite value(s) (NaN or inf); "
        "clean or impute them before training."
    )


def _count_non_finite(a) -> int:
    """How many values of `a` are NaN or inf on the device (for the error message only)."""
    if not _on_host(a):
        return int(a.size - int(jnp.isfinite(a).sum()))
    with np.errstate(over="ignore"):
        a = np.asarray(a).astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False)
    return int(a.size - np.count_nonzero(np.isfinite(a)))


def check_data(data, name: str = "data", *, numpy_values: bool = True):
    """`data` is `(X, y)`: pytrees of arrays sharing the leading axis n > 0. Returns (X, y, n).

    `numpy_values=False` leaves the values of NumPy arrays to the caller, who reads them anyway
    (`fit` checks them while it copies them: `jaxgd._host.to_jax`)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"`{name}` must be a pair `(X, y)` of arrays sharing the leading axis, "
            f"got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
            + "."
        )
    X, y = data
    sizes = []
    for part, tree in (("X", X), ("y", y)):
        leaves = _leaves_with_paths(tree)
        if not leaves:
            raise ValueError(f"`{name}`: {part} holds no arrays.")
        for path, leaf in leaves:
            where = f"`{name}` {part}{jax.tree_util.keystr(path)}"
            if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
                raise TypeError(
                    f"{where} must be an array, got {type(leaf).__name__}; "
                    "wrap it with `np.asarray(...)`."
                )
            if len(leaf.shape) == 0:
                raise ValueError(
                    f"{where} is a scalar; data arrays need a leading axis of examples, "
                    "shape (n, ...)."
                )
            dtype = np.dtype(leaf.dtype)
            if np.issubdtype(dtype, np.complexfloating):
                raise TypeError(f"{where} has complex dtype {dtype}; jaxgd trains on real numbers.")
            if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
                raise TypeError(f"{where} has non-numeric dtype {dtype}.")
            later = not numpy_values and isinstance(leaf, np.ndarray)
            if np.issubdtype(dtype, np.floating) and not later and not _all_finite(leaf):
                raise non_finite_error(where, leaf)
            sizes.append((f"{part}{jax.tree_util.keystr(path)}", leaf.shape[0]))
    n = sizes[0][1]
    if any(s != n for _, s in sizes):
        seen = ", ".join(f"{p}: {s}" for p, s in sizes)
        raise ValueError(
            f"`{name}`: X and y must have the same number of examples (leading axis), got {seen}."
        )
    if n == 0:
        raise ValueError(f"`{name}` has no examples (n = 0); pass at least one.")
    return X, y, n


def check_val_data(val_data, X, y, name: str = "val_data", *, numpy_values: bool = True):
    """`val_data` as `check_data`, with examples shaped like the training data's. Returns (X, y)."""
    X_val, y_val, _ = check_data(val_data, name, numpy_values=numpy_values)
    for part, train, val in (("X", X, X_val), ("y", y, y_val)):
        want = jax.tree.map(lambda a: tuple(jnp.shape(a)[1:]), train)
        seen = jax.tree.map(lambda a: tuple(jnp.shape(a)[1:]), val)
        same = jax.tree.structure(want) == jax.tree.structure(seen) and all(
            a == b for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(seen), strict=True)
        )
        if not same:
            raise ValueError(
                f"`{name}` {part} has examples of shape {seen}, but `data` {part} has examples of "
                f"shape {want}; validation examples must look like training examples (same "
                "features, same preprocessing)."
            )
    return X_val, y_val


def check_metrics(metrics, name: str = "metrics") -> dict:
    """None or a mapping `{name: metric(params, x, y) -> scalar}`; returns a dict."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"`{name}` must be a dict {{name: metric(params, x, y) -> scalar}}, e.g. "
            f"`{{'accuracy': jaxgd.binary_accuracy(model)}}`, got {type(metrics).__name__}."
        )
    for key, fn in metrics.items():
        check_callable(fn, f"{name}[{key!r}]")
    return dict(metrics)


def check_opt_state(opt_state, tx, params, name: str = "opt_state"):
    """A resumed `opt_state` must have the structure and shapes of `tx.init(params)`."""
    if opt_state is None or tx is None:
        return
    want = jax.tree.map(jnp.shape, jax.eval_shape(tx.init, params))
    try:
        seen = jax.tree.map(jnp.shape, opt_state)
        ok = jax.tree.structure(want) == jax.tree.structure(seen) and all(
            a == b for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(seen), strict=True)
        )
    except (TypeError, ValueError):
        seen, ok = type(opt_state).__name__, False
    if not ok:
        raise ValueError(
            f"`{name}` does not match `optimizer`: got shapes {seen}, but `optimizer.init(params)` "
            f"has {want}. Pass the `.opt_state` of a run with the same optimizer and params, or "
            "None for a fresh state."
        )


def check_params(params, name: str = "params"):
    """A non-empty pytree of finite floating-point arrays."""
    leaves = _leaves_with_paths(params)
    if not leaves:
        raise ValueError(f"`{name}` holds no arrays; pass e.g. `{{'w': jnp.zeros(d), 'b': 0.0}}`.")
    for path, leaf in leaves:
        where = f"`{name}`{jax.tree_util.keystr(path)}"
        dtype = getattr(leaf, "dtype", None)
        if dtype is None and isinstance(leaf, numbers.Number) and not isinstance(leaf, bool):
            dtype = jnp.asarray(leaf).dtype  # a Python number: the dtype JAX gives it
        if isinstance(leaf, bool) or dtype is None:
            raise TypeError(
                f"{where} must be a float array, got {type(leaf).__name__}: {leaf!r}. Params are "
                "a pytree (dict, list, tuple) of float arrays, e.g. `{'w': jnp.zeros(d), 'b': 0.0}`."
            )
        dtype = np.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{where} has dtype {dtype}; gradients need floating-point params. "
                "Use e.g. `jnp.asarray(value, dtype=jnp.float32)` or `1.0` instead of `1`."
            )
        if not _all_finite(leaf):
            raise ValueError(f"{where} holds NaN or inf; start from finite parameters.")


def check_learning_rate(value, name: str = "optimizer"):
    """Returns (tx, lr): an optax transformation and None, or None and a finite lr >= 0."""
    if isinstance(value, optax.GradientTransformation):
        return value, None
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Real) or (hasattr(value, "shape") and np.ndim(value) == 0)
    ):
        raise TypeError(
            f"`{name}` must be an optax GradientTransformation (e.g. `optax.sgd(0.1)`) or a "
            f"learning rate (a number), got {type(value).__name__}: {value!r}."
        )
    if hasattr(value, "dtype") and not jnp.issubdtype(value.dtype, jnp.floating):
        value = float(value)
    lr = float(value)
    if not np.isfinite(lr) or lr < 0:
        raise ValueError(
            f"`{name}` as a learning rate must be finite and >= 0, got {lr}. "
            "A learning rate of 0 is allowed (a run that only evaluates)."
        )
    return None, value


def check_key(key, name: str = "key"):
    """None, a typed key (`jax.random.key`) or a raw uint32 key (`jax.random.PRNGKey`)."""
    if key is None:
        return None
    if isinstance(key, jax.Array) or isinstance(key, np.ndarray):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return jnp.asarray(key)
    shape = getattr(key, "shape", None)
    dtype = getattr(key, "dtype", type(key).__name__)
    raise TypeError(
        f"`{name}` must be a PRNG key such as `jax.random.key(0)`, got {dtype}"
        + (f" of shape {shape}" if shape is not None else f" {key!r}")
        + "."
    )


def check_orders(orders, *, epochs: int, n: int, name: str = "orders"):
    """An integer array (epochs, n) whose every row is a permutation of range(n)."""
    arr = np.asarray(orders)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`{name}` must be an integer array, got dtype {arr.dtype}.")
    if arr.shape != (epochs, n):
        raise ValueError(
            f"`{name}` must have shape (epochs, n) = ({epochs}, {n}), got {arr.shape}: "
            "one permutation of range(n) per epoch."
        )
    expected = np.arange(n)
    for e, row in enumerate(arr):
        if not np.array_equal(np.sort(row), expected):
            raise ValueError(
                f"`{name}`[{e}] is not a permutation of range({n}): each epoch must visit every "
                "example exactly once."
            )
    return jnp.asarray(arr, dtype=jnp.int32)


def _one_example(a) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(a.shape[1:], a.dtype, weak_type=getattr(a, "weak_type", False))


# fn -> the signatures (`_signature`) it passed `check_example_fn` with: shapes, never values.
_PASSED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _signature(tree, what: str):
    """What `check_example_fn`'s verdict depends on besides the function: structure, shapes,
    dtypes and types of the leaves (a Python float is weakly typed, an array is not)."""
    leaves, treedef = jax.tree.flatten(tree)
    kinds = tuple(
        (type(a), np.shape(a), getattr(a, "dtype", None), getattr(a, "weak_type", None))
        for a in leaves
    )
    return what, treedef, kinds


def _passed(fn) -> set:
    try:
        return _PASSED.setdefault(fn, set())
    except TypeError:  # Not weakly referenceable (or unhashable): checked every time.
        return set()


def check_example_fn(fn, params, X, y, name: str, what: str = "loss"):
    """`fn(params, x, y)` must return a float scalar for ONE example (checked with eval_shape).

    A function that passed with the same shapes and dtypes is not traced again (the trace cost
    more than the rest of a small `fit` call); its verdict depends on nothing else.
    """
    # One example's shape and dtype: `a[0]` of a jax array would dispatch (and compile) a slice.
    x0, y0 = jax.tree.map(_one_example, (X, y))
    passed, signature = _passed(fn), _signature((params, x0, y0), what)
    if signature in passed:
        return
    try:
        out = jax.eval_shape(fn, params, x0, y0)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"`{name}(params, x, y)` failed on one example (x of shape "
            f"{jax.tree.map(jnp.shape, x0)}, y of shape {jax.tree.map(jnp.shape, y0)}): {err}"
        ) from err
    if not hasattr(out, "shape") or out.shape != ():
        column = any(jnp.shape(leaf) == (1,) for leaf in jax.tree.leaves(y0))
        raise ValueError(
            f"`{name}` must return a scalar {what} for ONE example, got shape "
            f"{getattr(out, 'shape', type(out).__name__)} (one example: x of shape "
            f"{jax.tree.map(jnp.shape, x0)}, y of shape {jax.tree.map(jnp.shape, y0)}). "
            "jaxgd vmaps it over the batch itself: write it for a single example (or reduce "
            "with `reduction='none'` and index)."
            + (
                " A y of shape (n, 1) makes every target shape (1,): pass y of shape (n,), "
                "e.g. `y.reshape(-1)`."
                if column
                else ""
            )
        )
    if not jnp.issubdtype(out.dtype, jnp.floating) and what == "loss":
        raise TypeError(f"`{name}` must return a floating-point {what}, got dtype {out.dtype}.")
    passed.add(signature)
