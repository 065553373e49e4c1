"""One epoch: a `lax.scan` of `update_step` over the epoch's batches, then the ragged last batch.

    for B in batches(order):  w <- w - eta * grad (1/|B|) sum_{i in B} loss(w, x_i, y_i)

`train_epoch(..., careful=True)` is the same epoch that stops before the first update whose
loss, gradient or new params are not finite: the run takes it only after an epoch that met one.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxgd import distributed
from jaxgd.loop.batches import Batch, Batches, epoch_batches, take
from jaxgd.loop.step import all_finite, update_step

__all__ = ["Epoch", "train_epoch", "scan_batches"]


class Epoch(NamedTuple):
    """What `train_epoch` returns."""

    params: Any  # The params after the epoch (before the first non-finite update if careful).
    opt_state: Any  # The optimizer state after the epoch.
    losses: jax.Array  # shape=(updates,): each batch's loss before its update (NaN after a stop).
    finite: jax.Array  # shape=(), bool: no update met a non-finite loss, gradient or result.
    diverged_update: jax.Array  # shape=(), int32: careful: the update it stopped before; else -1.


class _Careful(NamedTuple):
    """The carry of a careful epoch."""

    params: Any
    opt_state: Any
    diverged: jax.Array  # shape=(), bool: an update was refused; later ones do not run.
    diverged_update: jax.Array  # shape=(), int32: that update's index, -1 if none.
    j: jax.Array  # shape=(), int32: the index of the next update.


def scan_batches(step: Callable, carry, batches: Batches, mesh=None):
    """`carry, loss = step(carry, batch)` over the epoch's batches: the scan, then the rest."""
    carry, losses = lax.scan(lambda c, x: step(c, take(batches, x, mesh)), carry, batches.xs)
    if batches.rest is None:
        return carry, losses
    rest = batches.rest if mesh is None else Batch(*distributed.shard_batch(batches.rest, mesh))
    carry, last = step(carry, rest)
    return carry, jnp.concatenate([losses, last[None]])


def _fast_step(update: Callable, check: bool, carry, batch: Batch):
    """An update without a select: divergence is rare, the run checks the epoch afterwards."""
    params, opt_state, finite = carry
    s = update(params, opt_state, batch)
    return (s.params, s.opt_state, finite & s.finite if check else finite), s.loss


def _careful_step(update: Callable, carry: _Careful, batch: Batch):
    """An update that is refused, with all later ones, once it meets a non-finite value."""
    s = update(carry.params, carry.opt_state, batch)
    ok = ~carry.diverged & s.finite
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    first = ~carry.diverged & ~s.finite
    loss = jnp.where(carry.diverged, jnp.nan, s.loss)  # The refused update's own loss is kept.
    carry = _Careful(
        keep(s.params, carry.params),
        keep(s.opt_state, carry.opt_state),
        carry.diverged | ~s.finite,
        jnp.where(first, carry.j, carry.diverged_update),
        carry.j + 1,
    )
    return carry, loss


def _update(example_loss, optimizer, per_example_grads, params, opt_state, batch: Batch):
    return update_step(
        example_loss,
        params,
        opt_state,
        batch.X,
        batch.y,
        optimizer=optimizer,
        mask=batch.mask,
        per_example_grads=per_example_grads,
    )


def train_epoch(
    example_loss: Callable,
    params,
    opt_state,
    data,
    *,
    optimizer,
    batch_size: int | None = None,
    order=None,
    drop_last: bool = False,
    careful: bool = False,
    mesh=None,
) -> Epoch:
    """One epoch of gradient descent: `update_step` on each batch of `order`, in turn.

    This is the epoch `jaxgd.fit` runs (inside its compiled program), and a piece for your own
    loops: call it under `jax.jit` with `batch_size`, `drop_last`, `careful` and `mesh` static.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: a pytree of float arrays.
      opt_state: from `init_opt_state`.
      data: `(X, y)`, arrays sharing the leading axis n.
      optimizer: an optax `GradientTransformation`, or a learning rate.
      batch_size: None for full batch, else m.
      order: int array (n,), the order to visit the examples in; None for data order.
      drop_last: drop a smaller last batch instead of making it an update of its own.
      careful: stop before the first update whose loss, gradient or new params are not finite
        (its loss is kept, later losses are NaN, the params stay the last finite ones).
      mesh: a `jax.sharding.Mesh` with a "data" axis to split each batch over (`jaxgd.distributed`).

    Returns:
      An `Epoch`: params, opt_state, the losses (updates_per_epoch,), whether all were finite,
      and (careful) the index of the refused update.

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> data = (jnp.ones(5), 2 * jnp.ones(5))
      >>> e = train_epoch(sq, 0.0, (), data, optimizer=0.25, batch_size=2)
      >>> print(e.losses.shape, round(float(e.params), 4))
      (3,) 1.75
    """
    data = jax.tree.map(jnp.asarray, tuple(data))
    batches = epoch_batches(data, order, batch_size=batch_size, drop_last=drop_last)
    per_example = batch_size is None and all(jnp.ndim(p) <= 1 for p in jax.tree.leaves(params))
    update = functools.partial(_update, example_loss, optimizer, per_example)
    none = jnp.int32(-1)
    if careful:
        start = _Careful(params, opt_state, jnp.array(False), none, jnp.int32(0))
        end, losses = scan_batches(functools.partial(_careful_step, update), start, batches, mesh)
        return Epoch(end.params, end.opt_state, losses, ~end.diverged, end.diverged_update)
    plain = not isinstance(optimizer, optax.GradientTransformation)
    step = functools.partial(_fast_step, update, not plain)
    (params, opt_state, finite), losses = scan_batches(
        step, (params, opt_state, jnp.array(True)), batches, mesh
    )
    if plain:  # A NaN or inf in `w - lr * g` stays there: the losses and params tell.
        finite = jnp.all(jnp.isfinite(losses)) & all_finite(params)
    return Epoch(params, opt_state, losses, finite, none)
