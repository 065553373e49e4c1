"""Host memory: NumPy data handed to XLA:CPU without an extra copy, and memory handed back.

XLA:CPU reads a NumPy array in place when it is C-contiguous and 64-byte aligned (`ALIGN`); NumPy's
large arrays usually start 16 bytes past a page, so `jax.device_put` copies them, slowly (41 ms
for 80 MB here, page faults included). `to_jax` copies such an array once into an aligned buffer
of its own (NumPy's allocator puts large ones on huge pages: 7 ms), which XLA then reads in place.
`release_free_memory` gives the memory a compiler freed back to the OS (`jaxgd.loop.fit`).
"""

import ctypes
import functools

import jax
import numpy as np

ALIGN = 64  # Bytes: the alignment at which XLA:CPU uses a host buffer in place.


def to_jax(data, shared: list):
    """Numeric NumPy arrays of a pair `(X, y)` as JAX arrays; anything else unchanged.

    An unaligned or strided array is copied once into an aligned buffer (`aligned_copy`), which
    XLA reads in place (`jnp.asarray` would be slower still than `jax.device_put`'s own copy). An
    array of the caller's read in place is noted in `shared`: `fit` then waits for its run to
    finish, so that writing to it afterwards is safe.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return data

    def put(a):
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
            return a
        if a.dtype == jax.dtypes.canonicalize_dtype(a.dtype) and (
            a.ctypes.data % ALIGN or not a.flags.c_contiguous
        ):
            return jax.device_put(aligned_copy(a))
        out = jax.device_put(a)
        if a.size and out.unsafe_buffer_pointer() == a.ctypes.data:
            shared.append(a)
        return out

    return tuple(jax.tree.map(put, part) for part in data)


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array that starts at a multiple of `ALIGN` bytes."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = np.empty(nbytes + ALIGN, np.uint8)
    start = -buffer.ctypes.data % ALIGN
    return buffer[start : start + nbytes].view(dtype).reshape(shape)


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `a` that starts at a multiple of `ALIGN` bytes."""
    out = aligned_empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out


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
