"""Argument checks shared by `fit`, `sweep` and `lr_find`.

Every check runs on the host before anything is traced, so a bad argument gives a `ValueError` or
`TypeError` that names the argument, what was seen and the fix, never an XLA trace or a crash:
data the device would not see as given (int64 beyond int32) are refused, a memmap's file size is
checked before any of its pages is read, and errors raised inside the user's functions, met when
they are traced once on one example (`check_example_fn`), are reported the same way.
"""

import functools
import inspect
import mmap
import numbers
import os
import re
import traceback
import weakref
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd._weak import WeakIds

INT32_MAX = 2**31 - 1  # Epochs and updates are counted in int32 on the device.


def check_callable(value, name: str, *, args: tuple[str, ...] = ()):
    """A function; with `args`, one that accepts them positionally (checked on its signature)."""
    if not callable(value):
        raise TypeError(f"`{name}` must be a function, got {type(value).__name__}: {value!r}.")
    if not args:
        return
    bound = _cached(_BINDS, value)
    if args in bound:  # `inspect.signature` cost a tenth of a small `fit` call.
        return
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # A builtin without a signature: the call itself will tell.
        return
    try:
        signature.bind(*args)
    except TypeError as err:
        wanted = ", ".join(args)
        raise TypeError(
            f"`{name}` is called as `{name}({wanted})`, but its signature is {signature} ({err}). "
            f"Fix: define it with {len(args)} positional parameters, `def f({wanted}): ...`."
        ) from None
    bound.add(args)


# fn -> the argument names it was found to accept (`check_callable`), kept while fn lives.
_BINDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _cached(cache: "weakref.WeakKeyDictionary", fn) -> set:
    """`cache`'s set for `fn`; a fresh unkept set when `fn` cannot be weakly referenced."""
    try:
        return cache.setdefault(fn, set())
    except TypeError:
        return set()


def _item(value):
    """The Python number in a 0-d NumPy or jax array (not a tracer); anything else unchanged."""
    if isinstance(value, (np.ndarray, jax.Array)) and not isinstance(value, jax.core.Tracer):
        if value.ndim == 0 and value.dtype != object:
            return value.item()
    return value


def check_int(value, name: str, *, minimum: int, maximum: int | None = None, fix: str = "") -> int:
    """An integer >= `minimum` (bools and floats such as 2.0 are refused; 0-d arrays are read)."""
    value = _item(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        shown = repr(value) if isinstance(value, str) else value  # 2.0, not np.float64(2.0)
        raise TypeError(
            f"`{name}` must be an integer >= {minimum}, got {type(value).__name__} {shown}.{fix}"
        )
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}.{fix}")
    if maximum is not None and value > maximum:
        raise ValueError(
            f"`{name}` must be an integer in [{minimum}, {maximum}], got {value}.{fix}"
        )
    return int(value)


def check_bool(value, name: str) -> bool:
    """True or False (NumPy's `np.True_` and 0-d bool arrays too), as a Python bool."""
    value = _item(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {type(value).__name__} {value!r}.")
    return bool(value)


def check_real(value, name: str, *, minimum: float | None = None, strict: bool = False) -> float:
    """A finite real number (0-d arrays too; bools refused), >= `minimum` (> with `strict`)."""
    value = _item(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        shown = repr(value) if isinstance(value, str) else value
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__} {shown}.")
    bound = "" if minimum is None else f" and {'>' if strict else '>='} {minimum:g}"
    below = minimum is not None and (value <= minimum if strict else value < minimum)
    if not np.isfinite(value) or below:
        raise ValueError(f"`{name}` must be finite{bound}, got {value}.")
    return float(value)


def as_array(values, name: str) -> np.ndarray:
    """`np.asarray(values)`, or an error naming `name` when the nesting is ragged."""
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as err:
        shown = repr(values)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValueError(
            f"`{name}` must be a rectangular array of numbers, got {shown}, which NumPy cannot "
            f"make one array of ({err}). Fix: give every row the same length."
        ) from None


def _torch_tensor(leaf) -> bool:
    """Whether `leaf` is a PyTorch tensor (read by its type's module: jaxgd never imports torch)."""
    return type(leaf).__module__.split(".")[0] == "torch" and hasattr(leaf, "detach")


def _from_torch(leaf, where: str) -> np.ndarray:
    try:
        return leaf.detach().cpu().numpy()
    except (TypeError, RuntimeError) as err:  # e.g. torch.bfloat16, which NumPy lacks
        raise TypeError(
            f"{where} is a torch tensor of dtype {leaf.dtype} that NumPy cannot hold ({err}); "
            "convert it first, e.g. `t.float()`."
        ) from None


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


_FINITE = WeakIds()  # jax arrays (immutable) found finite, forgotten when they go.


def _all_finite(a) -> bool:
    """Whether every value of the float array `a` is finite.

    On the host with NumPy, in place and without a compile (`all_finite_copying`). Elsewhere one
    fused XLA program. A jax array cannot change, so its verdict is kept while it lives (the same
    params or device data passed again are not read again).
    """
    if not isinstance(a, jax.Array) or isinstance(a, jax.core.Tracer):
        return all_finite_copying(np.asarray(a))
    if _FINITE.get(a):
        return True
    finite = all_finite_copying(np.asarray(a)) if _on_host(a) else bool(_all_finite_on_device(a))
    if finite:
        _FINITE.put(a, True)
    return finite


BLOCK_BYTES = 2**20  # A block this large stays in cache from its copy to its check.
SMALL_SIZE = 4096  # Arrays this small are checked with `np.isfinite` in one call.


def _ends_finite(a: np.ndarray) -> bool:
    """NaN propagates through `min` and `max`, and an infinity is the minimum or the maximum, so
    both are finite exactly when every value is (no boolean temporary of `a`'s size, no overflow
    as a sum would risk). Judged in the dtype jax converts `a` to: a float64 beyond float32's
    range is an inf when x64 is disabled."""
    dtype = jax.dtypes.canonicalize_dtype(a.dtype)
    if a.size <= SMALL_SIZE and a.dtype == dtype:  # One call: a small temporary is cheaper.
        return bool(np.isfinite(a).all())
    with np.errstate(invalid="ignore", over="ignore"):
        ends = np.array([a.min(), a.max()]).astype(dtype)
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


def _mapped_file(a):
    """`(path, bytes needed)` when `a` reads a file through an `np.memmap`, else None.

    The bytes needed run to the end of the last byte `a` can read: a file shorter than that
    (truncated after the memmap was made, or still being written) kills the process with SIGBUS
    when the missing pages are read, so it is checked before any value is.
    """
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not (isinstance(root, np.memmap) and isinstance(root.base, mmap.mmap)) or a.size == 0:
        return None
    if root.filename is None:
        return None
    last = _byte_bounds(a)[1]  # One past the last byte `a` reads.
    return os.fspath(root.filename), root.offset + (last - root.ctypes.data)


_byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds  # np.byte_bounds before NumPy 2


def _check_mapped_file(a, where: str):
    mapped = _mapped_file(a)
    if mapped is None:
        return
    path, needed = mapped
    try:
        size = os.stat(path).st_size
    except OSError:  # Removed since: the mapping keeps the file's pages.
        return
    if size < needed:
        raise ValueError(
            f"{where} is an np.memmap of {path!r} that reads {needed} bytes of it, but the file "
            f"holds {size}: it was truncated or is still being written, and reading past its end "
            "would kill the process (SIGBUS). Fix: finish writing the file, or map it again with "
            "the shape it holds."
        )


def _check_int_range(a, where: str):
    """NumPy integers that jax would wrap: int64 (uint64) beyond int32 (uint32) without x64."""
    dtype = np.dtype(a.dtype)
    device = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    if device == dtype or a.size == 0 or not _on_host(a):
        return
    lo, hi = np.min(a), np.max(a)
    info = np.iinfo(device)
    if lo < info.min or hi > info.max:
        raise ValueError(
            f"{where} holds integers from {lo} to {hi}, outside {device}'s range [{info.min}, "
            f"{info.max}]: jax runs {dtype} data as {device} (64-bit mode is off), where they "
            f"would wrap around. Fix: convert them to floats (`.astype(np.float32)`), rescale "
            "them, or enable 64-bit mode (`jax.config.update('jax_enable_x64', True)`)."
        )


@functools.cache
def _kinds(dtype: np.dtype) -> tuple[bool, bool, bool, bool]:
    """(complex, numeric or bool, integer, floating) for a dtype, as `jnp.issubdtype` says (kept
    per dtype: four calls cost a tenth of a small `fit` call's checks)."""
    number = jnp.issubdtype(dtype, jnp.number) or dtype == np.bool_
    return (
        bool(jnp.issubdtype(dtype, jnp.complexfloating)),
        bool(number),
        bool(jnp.issubdtype(dtype, jnp.integer)),
        bool(jnp.issubdtype(dtype, jnp.floating)),
    )


def _check_data_leaf(leaf, where: str, numpy_values: bool = True):
    """One array of `data`: an array of real numbers, all finite, that the device reads as is
    (`numpy_values=False`: a NumPy array's values are checked by the caller, see `check_data`)."""
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
        raise TypeError(
            f"{where} must be an array, got {type(leaf).__name__}; wrap it with `np.asarray(...)`."
        )
    if len(leaf.shape) == 0:
        raise ValueError(
            f"{where} is a scalar; data arrays need a leading axis of examples, shape (n, ...)."
        )
    if isinstance(leaf, np.ndarray):
        _check_mapped_file(leaf, where)
    dtype = np.dtype(leaf.dtype)
    complex_, numeric, integer, floating = _kinds(dtype)
    if complex_:
        raise TypeError(f"{where} has complex dtype {dtype}; jaxgd trains on real numbers.")
    if not numeric:
        raise TypeError(f"{where} has non-numeric dtype {dtype}.")
    if integer:
        _check_int_range(leaf, where)
    later = not numpy_values and isinstance(leaf, np.ndarray)
    if floating and not later and not _all_finite(leaf):
        raise non_finite_error(where, leaf)


def check_data(data, name: str = "data", *, numpy_values: bool = True):
    """`data` is `(X, y)`: pytrees of arrays sharing the leading axis n > 0. Returns (X, y, n).

    PyTorch tensors are converted to NumPy arrays (on the CPU, without their autograd graph).
    `numpy_values=False` leaves the values of NumPy arrays to the caller, who reads them anyway
    (`fit` checks them while it copies them: `jaxgd._host.to_jax`).
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"`{name}` must be a pair `(X, y)` of arrays sharing the leading axis, "
            f"got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
            + "."
        )
    parts, sizes = [], []
    for part, tree in zip(("X", "y"), data, strict=True):
        convert = lambda p, a, part=part: (
            _from_torch(a, f"`{name}` {part}{jax.tree_util.keystr(p)}") if _torch_tensor(a) else a
        )
        leaves = _leaves_with_paths(tree)
        if any(_torch_tensor(leaf) for _, leaf in leaves):
            tree = jax.tree_util.tree_map_with_path(convert, tree)
            leaves = _leaves_with_paths(tree)
        if not leaves:
            raise ValueError(f"`{name}`: {part} holds no arrays.")
        for path, leaf in leaves:
            _check_data_leaf(leaf, f"`{name}` {part}{jax.tree_util.keystr(path)}", numpy_values)
            sizes.append((f"{part}{jax.tree_util.keystr(path)}", leaf.shape[0]))
        parts.append(tree)
    n = sizes[0][1]
    if any(s != n for _, s in sizes):
        seen = ", ".join(f"{p}: {s}" for p, s in sizes)
        raise ValueError(
            f"`{name}`: X and y must have the same number of examples (leading axis), got {seen}."
        )
    if n == 0:
        raise ValueError(f"`{name}` has no examples (n = 0); pass at least one.")
    return parts[0], parts[1], n


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
        check_callable(fn, f"{name}[{key!r}]", args=("params", "x", "y"))
    if "loss" in metrics:
        raise ValueError(
            f"`{name}` has a metric named 'loss', which would replace the loss itself in the "
            "result (`train_loss`, `val_loss`). Fix: give it another name, e.g. 'my_loss' (the "
            "loss of `example_loss` is always reported)."
        )
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
    for path, leaf in _leaves_with_paths(opt_state):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating) and not _all_finite(leaf):
            raise ValueError(
                f"`{name}`{jax.tree_util.keystr(path)} holds NaN or inf (the state of a run that "
                "diverged?); resuming from it would spread them to the params. Fix: resume from "
                "a finite state, or pass `opt_state=None` for a fresh one."
            )


def check_params(params, name: str = "params"):
    """A non-empty pytree of finite floating-point arrays."""
    leaves = _leaves_with_paths(params)
    if not leaves:
        raise ValueError(f"`{name}` holds no arrays; pass e.g. `{{'w': jnp.zeros(d), 'b': 0.0}}`.")
    for path, leaf in leaves:
        where = f"`{name}`{jax.tree_util.keystr(path)}"
        if _torch_tensor(leaf):
            raise TypeError(
                f"{where} is a torch tensor; jaxgd trains jax arrays and returns new ones (it "
                "cannot update a torch tensor in place). Fix: `jaxgd.interop.from_torch(model)` "
                "for a torch model's params, or `t.detach().numpy()` for one tensor; "
                "`jaxgd.interop.to_torch` carries the result back."
            )
        dtype = getattr(leaf, "dtype", None)
        if dtype is None and isinstance(leaf, numbers.Number) and not isinstance(leaf, bool):
            dtype = jax.dtypes.canonicalize_dtype(np.asarray(leaf).dtype)  # as jax makes it
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


def _memory_bytes() -> int:
    """This machine's physical memory (0 where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def check_history(*, epochs: int, start_epoch: int, n: int, batch_size: int | None,
                  drop_last: bool, series: int, itemsize: int, members: int = 1):  # fmt: skip
    """The run's history must fit: epoch numbers in int32, and its arrays in half the memory.

    The history is `losses` (epochs, updates per epoch) and `series` per-epoch evaluations (the
    loss and each metric, on the training and validation data), for each of `members` runs,
    estimated before anything is allocated: a run of 3e9 epochs would otherwise grow without
    bound (or overflow int32) rather than fail at once.
    """
    if start_epoch + epochs > INT32_MAX:
        raise ValueError(
            f"`start_epoch` + `epochs` = {start_epoch + epochs} is beyond {INT32_MAX}: epochs are "
            "counted in int32. Fix: train fewer epochs."
        )
    updates = 1 if batch_size is None else n // batch_size if drop_last else -(-n // batch_size)
    need = members * epochs * (updates + series) * itemsize
    memory = _memory_bytes()
    if memory and need > memory // 2:
        raise ValueError(
            f"`epochs`={epochs} would record a history of {need / 2**30:.1f} GiB ({members} "
            f"run(s) x {epochs} epochs x ({updates} loss(es) + {series} evaluation(s)) x "
            f"{itemsize} bytes), more than half this machine's memory ({memory / 2**30:.1f} "
            "GiB). Fix: train fewer epochs per call and resume from the result (`params=r.params, "
            "opt_state=r.opt_state, start_epoch=...`), or use a larger `batch_size`."
        )


def _is_one_key(k) -> bool:
    if not isinstance(k, (jax.Array, np.ndarray)) or isinstance(k, jax.core.Tracer):
        return False
    typed = jnp.issubdtype(k.dtype, jax.dtypes.prng_key) and k.shape == ()
    return typed or (k.dtype == np.uint32 and k.shape == (2,))


def stack_keys(keys):
    """A list or tuple of PRNG keys as one array of K keys; anything else unchanged.

    Keys of one kind only (all `jax.random.key(...)`, or all raw `PRNGKey(...)`) are stacked; a
    mix, or a list of seeds, is left for the caller's check to refuse.
    """
    if not isinstance(keys, (list, tuple)) or not keys or not all(map(_is_one_key, keys)):
        return keys
    if len({(k.dtype, k.shape) for k in keys}) != 1:
        return keys
    return jnp.stack(keys)


def check_orders(orders, *, epochs: int, n: int, name: str = "orders"):
    """An integer array (epochs, n) whose every row is a permutation of range(n)."""
    arr = as_array(orders, name)
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


# How to fix the errors that JAX raises inside a traced function (first match wins).
_FIXES = (
    (jax.errors.TracerBoolConversionError,
     "a Python `if`, `while`, `and`, `or` or `not` cannot branch on a traced value: use "
     "`jnp.where(condition, a, b)` (or `jax.lax.cond`), and `&`, `|`, `~` for `and`, `or`, `not`."),
    (jax.errors.TracerArrayConversionError,
     "NumPy functions cannot read traced values: use jax.numpy's (`jnp.exp` for `np.exp`, "
     "`jnp.asarray` for `np.asarray`, ...) inside the function."),
    (jax.errors.TracerIntegerConversionError,
     "`int(...)`, `range(...)` or a Python list index cannot take a traced value: index arrays "
     "with it (`a[i]`, `jnp.take`), or loop with `jax.lax.fori_loop`."),
    (jax.errors.NonConcreteBooleanIndexError,
     "boolean masks (`a[a > 0]`) give a shape that depends on values: use "
     "`jnp.where(mask, a, 0)` and sum, or `jnp.sum(a, where=mask)`."),
    (jax.errors.ConcretizationTypeError,
     "`float(...)`, `.item()`, `.tolist()` or a shape taken from values cannot read a traced "
     "value: keep it a jax array (`jnp.asarray`), or compute it outside the function."),
    (IndexError,
     "jaxgd calls the function on ONE example (shapes above), not on a batch: `x[0]` of a batch "
     "is `x` itself here, and a 0-d `y` has no axis to index."),
)  # fmt: skip


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep  # jaxgd: its losses raise too.


def _user_line(err: BaseException) -> str:
    """`file:line` and source of the last frame outside JAX, NumPy and jaxgd, or ''."""
    skip = tuple(os.path.dirname(m.__file__) + os.sep for m in (jax, np)) + (_PACKAGE,)
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(skip)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {os.path.basename(frame.filename)}:{frame.lineno} `{(frame.line or '').strip()}`"


def _call_failed(err: Exception, fn_name: str, shapes: str) -> Exception:
    """The error that `fn_name(params, x, y)` raised on one example, as a jaxgd error."""
    where = _user_line(err)
    fix = next((text for kind, text in _FIXES if isinstance(err, kind)), "")
    calls = re.findall(r"\b(?:np|numpy)\.(\w+)\(", where)
    if isinstance(err, jax.errors.TracerArrayConversionError) and calls:
        fix = (f"NumPy functions cannot read traced values: use `jnp.{calls[0]}` for "
               f"`np.{calls[0]}` (jax.numpy) inside the function.")  # fmt: skip
    message = (
        f"`{fn_name}(params, x, y)` failed on one example ({shapes}){where}: "
        f"{type(err).__name__}: {err}" + (f"\nFix: {fix}" if fix else "")
    )
    return ValueError(message) if isinstance(err, ValueError) else TypeError(message)


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
    return _cached(_PASSED, fn)  # Not weakly referenceable (or unhashable): checked every time.


def check_example_fn(fn, params, X, y, name: str, what: str = "loss"):
    """`fn(params, x, y)` must return a float scalar for ONE example (checked with eval_shape).

    An error inside `fn` (a Python `if` on a traced value, `np.exp` of one, `x[0]` of a 0-d
    example, ...) comes out as a `TypeError` (a `ValueError` for one) naming `name`, the
    example's shapes and the line, with JAX's own words and the usual fix. A function that
    passed with the same shapes and dtypes is not traced again (the trace cost more than the
    rest of a small `fit` call).
    """
    check_callable(fn, name, args=("params", "x", "y"))
    # One example's shape and dtype: `a[0]` of a jax array would dispatch (and compile) a slice.
    x0, y0 = jax.tree.map(_one_example, (X, y))
    passed, signature = _passed(fn), _signature((params, x0, y0), what)
    if signature in passed:  # Its verdict depends on shapes and dtypes only: traced once.
        return
    shapes = f"x of shape {jax.tree.map(jnp.shape, x0)}, y of shape {jax.tree.map(jnp.shape, y0)}"
    try:
        out = jax.eval_shape(fn, params, x0, y0)
    except Exception as err:  # Whatever `fn` raised: JAX's tracer errors, IndexError, KeyError...
        raise _call_failed(err, name, shapes) from err
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
