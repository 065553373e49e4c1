"""Host memory: NumPy data handed to XLA:CPU without an extra copy, and memory handed back.

XLA:CPU reads a NumPy array in place when it is C-contiguous and 64-byte aligned (`ALIGN`); NumPy's
large arrays usually start 16 bytes past a page, so `jax.device_put` copies them, slowly (41 ms
for 80 MB here, page faults included). `to_jax` copies such an array once into an aligned buffer
of its own (NumPy's allocator puts large ones on huge pages: 7 ms), which XLA then reads in place.

For `fit` (`to_jax(..., keep_numpy=True)`) that buffer is kept as the array's spare while the
array lives, and the next call on the same array copies into it again: fresh pages cost page
faults on every call, and now and then a stall of the kernel's huge-page compaction
(docs/design.md#the-aligned-copy-kept-between-calls). The values are copied and checked anew on
every call: a spare never serves an old copy. A streamed run's chunk buffers are spares of
the arrays it reads in the same way (`borrow`'s `slot`).
`release_free_memory` gives the memory a compiler freed back to the OS (`jaxgd.loop.fit`).
"""

import ctypes
import functools
import threading

import jax
import numpy as np

from jaxgd import _checks
from jaxgd._weak import WeakIds

ALIGN = 64  # Bytes: the alignment at which XLA:CPU uses a host buffer in place.
COPY_FROM_BYTES = 2**16  # Smaller arrays go as they are: the jitted call copies them faster.
SPARE_BYTES_MAX = 2**30  # Spares kept in all, at most (and at most 1/16 of the machine's memory).


def to_jax(data, shared: list, *, keep_numpy: bool = False, non_finite: list | None = None):
    """Numeric NumPy arrays of a pair `(X, y)` as JAX arrays; anything else unchanged.

    An unaligned or strided array is copied once into an aligned buffer (`aligned_empty`), which
    XLA reads in place (`jnp.asarray` would be slower still than `jax.device_put`'s own copy). An
    array of the caller's read in place is noted in `shared`: `fit` then waits for its run to
    finish, so that writing to it afterwards is safe. With `keep_numpy`, aligned arrays stay
    NumPy arrays, which a jitted call reads in place as well (`device_put` cost a small call
    more than the rest of it); every such array is noted in `shared`, and the copies are made
    into the arrays' spares (`borrow`: the caller gives them back when its run is done). With a
    list `non_finite`, the values of float NumPy arrays are checked on the way, in the same read
    as their copy (`_checks.all_finite_copying`), and the path and array of each holding NaN or
    inf appended.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return data
    pairs, tree = jax.tree_util.tree_flatten_with_path(tuple(data))
    host = []
    for path, a in pairs:
        check = non_finite is not None and _numeric(a) and a.dtype.kind == "f"
        b, finite = _aligned(a, check, keep_numpy) if _numeric(a) else (a, True)
        if not finite:
            non_finite.append((path, a))
        host.append(b)
    if non_finite:  # The caller raises: nothing to move, and no run reads the spares.
        give_back(host)
        return data
    leaves = [a for _, a in pairs]
    put = [_numeric(a) and not (keep_numpy and _canonical(a)) for a in host]
    moved = iter(
        jax.device_put([a for a, p in zip(host, put, strict=True) if p]) if any(put) else ()
    )
    out = [next(moved) if p else a for a, p in zip(host, put, strict=True)]
    for a, b in zip(leaves, out, strict=True):
        if isinstance(b, np.ndarray):  # Read in place by the run: kept alive until it is done.
            shared.append(b)
        elif _numeric(a) and a.size and b.unsafe_buffer_pointer() == a.ctypes.data:
            shared.append(a)
    return jax.tree.unflatten(tree, out)


def _numeric(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind in "biuf"


def _canonical(a: np.ndarray) -> bool:
    return a.dtype == jax.dtypes.canonicalize_dtype(a.dtype)


def _aligned(a: np.ndarray, check: bool = False, spare: bool = False) -> tuple[np.ndarray, bool]:
    """`a`, or an aligned copy where XLA would otherwise copy it itself, slowly (arrays of
    `COPY_FROM_BYTES` or more), into `a`'s spare buffer with `spare` (`borrow`); and, if
    `check`, whether its values are all finite (read once for both)."""
    unaligned = a.ctypes.data % ALIGN or not a.flags.c_contiguous
    if _canonical(a) and unaligned and a.nbytes >= COPY_FROM_BYTES:
        out = borrow(a) if spare else aligned_empty(a.shape, a.dtype)
        if not check:
            np.copyto(out, a)
            return out, True
        return out, _checks.all_finite_copying(a, out)
    return a, not check or _checks.all_finite_copying(a)


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array that starts at a multiple of `ALIGN` bytes."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = np.empty(nbytes + ALIGN, np.uint8)
    start = -buffer.ctypes.data % ALIGN
    return buffer[start : start + nbytes].view(dtype).reshape(shape)


_SPARES = WeakIds()  # (source, slot) -> aligned buffer, kept while the source lives.
_LENT: set = set()  # id(buffer) of the spares a running `fit` reads.
_LOCK = threading.RLock()  # Re-entered if a source's collection drops its spare under it.


def _spare_budget() -> int:
    memory = _checks._memory_bytes()
    return min(SPARE_BYTES_MAX, memory // 16) if memory else SPARE_BYTES_MAX


def borrow(source, shape=None, dtype=None, slot: int = 0) -> np.ndarray:
    """An aligned buffer of `shape` and `dtype` (default: `source`'s) for data copied from
    `source`: its spare for `slot` when it has one of that shape that no run is reading, else a
    new one, kept as that spare while `source` lives if the budget allows (the oldest spares
    not in use go first). `give_back` ends the loan. `fit` takes one per unaligned array, a
    streamed run one per chunk slot of each array."""
    shape = source.shape if shape is None else tuple(shape)
    dtype = np.dtype(source.dtype if dtype is None else dtype)
    with _LOCK:
        spare = _SPARES.get(source, slot)
        if spare is not None and id(spare) not in _LENT and spare.shape == shape:
            if spare.dtype == dtype:
                _LENT.add(id(spare))
                return spare
    out = aligned_empty(shape, dtype)
    budget = _spare_budget()
    if out.nbytes > budget:
        return out
    with _LOCK:
        if not _SPARES.put(source, out, slot):  # Not weakly referenceable: no spare.
            return out
        _LENT.add(id(out))
        kept = _SPARES.items()
        total = sum(b.nbytes for _, b in kept)
        for key, b in kept:
            if total <= budget:
                break
            if id(b) not in _LENT:
                _SPARES.pop(key)
                total -= b.nbytes
    return out


def give_back(arrays) -> None:
    """Ends the loans of those of `arrays` that `borrow` lent: a later call may write them."""
    with _LOCK:
        for a in arrays:
            _LENT.discard(id(a))


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Returns the memory the C allocator holds free to the OS (glibc's `malloc_trim`; nothing
    elsewhere). It changes no setting: later allocations work as before."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
