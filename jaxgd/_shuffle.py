"""The random order of an epoch: a keyed permutation of range(n), drawn without sorting.

`jax.random.permutation` sorts random keys, and XLA's CPU sort takes about half a second for
n = 10^6, more than a whole shuffled epoch of mini-batches. `permutation(key, n)` is a Feistel
network with cycle walking, as format-preserving encryption builds one: a few elementwise passes
over n integers (a few ms for n = 10^6 here). It is a deterministic function of `(key, n)`,
and entry i depends on i alone, so `permutation_slice` computes any part of it by itself (how a
streamed run, `jaxgd.loop.stream`, draws its orders without an (n,) array). It is not the order
`jax.random.permutation` would draw.

Epoch e's key is `fold_in(key, e)` and the network's round keys `jax.random.bits(key, ...)`; for
threefry keys (jax's default) both are computed here by `_threefry2x32`, the same bits in a
straight line that XLA compiles faster than jax's looped version (docs/design.md#the-epochs-order).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _mix(x: jax.Array) -> jax.Array:
    """A 32-bit integer hash (MurmurHash3's finaliser), elementwise on uint32."""
    x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # Threefry-2x32's, by group of four rounds.


def _threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 block cipher (20 rounds) of the counter pairs `(x1, x2)` under the key
    `(k1, k2)`, uint32 arrays, as jax's `threefry2x32` primitive computes it."""
    u32 = lambda v: np.uint32(v)  # lax on NumPy constants: a tenth of jnp's tracing time.
    k1, k2, x1, x2 = jnp.broadcast_arrays(k1, k2, x1, x2)
    ks = (k1, k2, lax.bitwise_xor(lax.bitwise_xor(k1, k2), lax.full_like(k1, u32(0x1BD11BDA))))
    x1, x2 = lax.add(x1, ks[0]), lax.add(x2, ks[1])
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = lax.add(x1, x2)
            left = lax.shift_left(x2, lax.full_like(x2, u32(r)))
            right = lax.shift_right_logical(x2, lax.full_like(x2, u32(32 - r)))
            x2 = lax.bitwise_xor(lax.bitwise_or(left, right), x1)
        x1 = lax.add(x1, ks[(i + 1) % 3])
        x2 = lax.add(lax.add(x2, ks[(i + 2) % 3]), lax.full_like(x2, u32(i + 1)))
    return x1, x2


def _threefry_data(key):
    """The uint32 (2,) data of a threefry key (typed or raw), or None for another PRNG."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key) if jax.random.key_impl(key) == "threefry2x32" else None
    return key if jax.config.jax_default_prng_impl == "threefry2x32" else None


@jax.jit  # One dispatch when called eagerly (a streamed run's epochs), inlined in a trace.
def fold_in(key, data):
    """`jax.random.fold_in(key, data)`: the same key, bit for bit (tests/test_loop.py)."""
    raw = _threefry_data(key)
    if raw is None:
        return jax.random.fold_in(key, data)
    new = jnp.stack(_threefry2x32(raw[0], raw[1], jnp.uint32(0), jnp.asarray(data, jnp.uint32)))
    return jax.random.wrap_key_data(new, impl="threefry2x32") if raw is not key else new


def _bits(key, count: int) -> jax.Array:
    """`jax.random.bits(key, (count,), jnp.uint32)`, bit for bit (jax's partitionable threefry)."""
    raw = _threefry_data(key)
    if raw is None or not jax.config.jax_threefry_partitionable:
        return jax.random.bits(key, (count,), jnp.uint32)
    high, low = jnp.zeros(count, jnp.uint32), jnp.arange(count, dtype=jnp.uint32)
    b1, b2 = _threefry2x32(raw[0], raw[1], high, low)
    return b1 ^ b2


def _feistel(key, n: int):
    """`(a, b, F)`: the digit bases and the keyed bijection F of [0, a*b) behind `permutation`,
    acting on digit pairs `(hi, lo)` of `i = hi * b + lo` (uint32 arrays of any shape)."""
    a = math.isqrt(max(n - 1, 0)) + 1  # ceil(sqrt(n)) < 2**16: `below` stays within uint32.
    b = 2 * -(-n // (2 * a))  # Even: XLA:CPU is ~15x slower on elementwise loops of odd length.
    rounds = 24 if n <= 2**16 else 6  # Small domains need more rounds to look uniform.
    keys = _bits(key, rounds)

    def below(x, m):  # A hash x mapped to [0, m): its top 16 bits, scaled (Lemire's reduction).
        return ((x >> 16) * jnp.uint32(m)) >> 16

    def add_mod(u, v, m):  # (u + v) mod m for u, v < m.
        w = u + v
        return jnp.where(w >= m, w - jnp.uint32(m), w)

    def two_rounds(r, digits):
        hi, lo = digits
        hi = add_mod(hi, below(_mix(lo ^ keys[2 * r]), a), a)
        lo = add_mod(lo, below(_mix(hi ^ keys[2 * r + 1]), b), b)
        return hi, lo

    # The rounds as a loop, two per iteration, not unrolled: faster (docs/design.md#the-epochs-order).
    return a, b, lambda digits: lax.fori_loop(0, rounds // 2, two_rounds, digits)


def _cycle_walk(F, digits, start_ok, n: int, b: int):
    """F(start), walked on through F while it is >= n, for the starts where `start_ok`."""
    walk = lambda d: (d[0] * b + d[1] >= n) & start_ok
    return lax.while_loop(
        lambda d: jnp.any(walk(d)),
        lambda d: jax.tree.map(functools.partial(jnp.where, walk(d)), F(d), d),
        F(digits),
    )


def permutation(key, n: int) -> jax.Array:
    """A random permutation of range(n), shape (n,) int32, without sorting.

    `jax.random.permutation` sorts random keys, and XLA's CPU sort takes ~0.5 s for n = 10^6.
    Here i -> F(i) is a keyed bijection of [0, a*b), a = ceil(sqrt(n)), b >= n / a even: a
    Feistel network on the digits i = hi * b + lo whose rounds add a hash of one digit and the
    round's key to the other, mod a or b, as format-preserving encryption does. The values it
    sends past n walk on, F(F(i)), ..., until they land in range ("cycle walking"), which keeps it
    a bijection of range(n). Cost: a few elementwise passes over a*b < n + 2 sqrt(n) + 2 integers.
    Entry i depends on i alone, so `permutation_slice` computes any part of it by itself.
    """
    a, b, F = _feistel(key, n)
    start = lax.broadcasted_iota(jnp.uint32, (a, b), 0), lax.broadcasted_iota(jnp.uint32, (a, b), 1)
    # Walk on from F(i) >= n for every start i < n; each walk follows the cycle of F through i,
    # so it ends (starts i >= n are not ours: they may cycle beyond n for ever).
    if a * b > n:
        hi, lo = _cycle_walk(F, start, start[0] * b + start[1] < n, n, b)
    else:
        hi, lo = F(start)
    return (hi * b + lo).astype(jnp.int32).reshape(-1)[:n]


@functools.partial(jax.jit, static_argnames=("n", "size"))
def permutation_slice(key, start, *, n: int, size: int) -> jax.Array:
    """`permutation(key, n)[start : start + size]` (start + size <= n), computing only those
    entries: how a streamed run (`jaxgd.loop.stream`) draws its orders without an (n,) array."""
    a, b, F = _feistel(key, n)
    i = start.astype(jnp.uint32) + jnp.arange(size, dtype=jnp.uint32)
    hi, lo = _cycle_walk(F, (i // b, i % b), jnp.ones(size, bool), n, b)
    return (hi * b + lo).astype(jnp.int32)
