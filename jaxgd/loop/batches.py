"""An epoch's batches: which rows each update reads, and how they are taken from the data.

The three schedules differ only here. Full batch: one batch of all n rows. Mini-batch GD with
batch size m: the epoch's order cut into floor(n/m) batches of m rows, then a smaller last batch
of the n mod m rows left (unless `drop_last`). Stochastic GD is m = 1.

How the rows are taken is a speed choice, never a change of numbers (measured in
docs/design.md#gathering-batches):

* data order: each batch is a slice of the data, no copy;
* batches of 2 to 511 rows (and single rows once the data outgrow the cache): one gather of the
  whole epoch in its order, then a slice per update;
* larger batches (and single rows from cached data): a gather of the batch's rows per update.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxgd import distributed

__all__ = ["Batch", "Batches", "epoch_batches", "take", "count"]

GATHER_PER_STEP_FROM = 512  # Batches this large are gathered update by update.
CACHED_BYTES = 2 * 2**20  # Data this small stay in cache: single rows are gathered one by one.
COPY_BYTES_MAX = 2**30  # Never copy more than this for an epoch's gathered batches.


class Batch(NamedTuple):
    """One batch, as `update_step` reads it."""

    X: Any  # shape=(m, ...) (a pytree of such arrays is fine).
    y: Any  # shape=(m, ...).
    mask: jax.Array | None  # shape=(m,), bool: the real rows of a padded batch; None: all rows.


class Batches(NamedTuple):
    """An epoch's batches: `xs` is what the epoch's `lax.scan` reads, one row per full batch."""

    xs: Any  # leading axis B: slice starts (B,), row indices (B, m) or gathered batches (B, m, ...).
    rest: Batch | None  # The smaller last batch, a step of its own after the scan; None if none.
    source: Any  # The data (X, y) that `xs` index; None when `xs` holds the batches themselves.
    how: str  # "all" (full batch), "slice", "rows" or "gathered": what a row of `xs` is.
    size: int  # m, the rows of a full batch.


def count(n: int, batch_size: int | None, drop_last: bool) -> int:
    """Updates per epoch: 1 for full batch, else ceil(n/m), or floor(n/m) with `drop_last`."""
    if batch_size is None:
        return 1
    return n // batch_size if drop_last else -(-n // batch_size)


def _nbytes(tree) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def _rows(data, rows):
    return jax.tree.map(lambda a: a[rows], data)


def epoch_batches(data, order=None, *, batch_size: int | None, drop_last: bool = False) -> Batches:
    """The batches of one epoch over `data` = (X, y), visited in `order` (n,), or data order.

    Inside `jit`: `batch_size` and `drop_last` are static.
    """
    n = jax.tree.leaves(data)[0].shape[0]
    if batch_size is None:  # A scan of one step keeps full batch on the same code path.
        return Batches(jnp.zeros(1), None, data, "all", n)
    m = batch_size
    full = n // m
    ragged = not drop_last and full * m < n
    if order is None:
        rest = Batch(*jax.tree.map(lambda a: a[full * m :], data), None) if ragged else None
        return Batches(jnp.arange(0, full * m, m, dtype=jnp.int32), rest, data, "slice", m)
    idx = order[: full * m].reshape(full, m)
    rest = Batch(*_rows(data, order[full * m :]), None) if ragged else None
    size = _nbytes(data)
    small = m < GATHER_PER_STEP_FROM and (m > 1 or size > CACHED_BYTES)
    if small and size <= COPY_BYTES_MAX:  # XLA:CPU gathers rows slowly one batch at a time.
        return Batches(_rows(data, idx), rest, None, "gathered", m)
    return Batches(idx, rest, data, "rows", m)


def take(batches: Batches, x, mesh=None) -> Batch:
    """The batch that the scan's row `x` of `batches.xs` stands for (split over `mesh`'s rows)."""
    if batches.how == "all":
        batch = Batch(*batches.source, None)
    elif batches.how == "gathered":
        batch = Batch(*x, None)
    elif batches.how == "slice":
        cut = lambda a: lax.dynamic_slice_in_dim(a, x, batches.size)
        batch = Batch(*jax.tree.map(cut, batches.source), None)
    else:
        batch = Batch(*_rows(batches.source, x), None)
    return batch if mesh is None else Batch(*distributed.shard_batch(batch, mesh))
