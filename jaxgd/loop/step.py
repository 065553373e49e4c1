"""One update: predict, loss, gradient, step (steps 2-5 of fastbook's seven).

    loss = (1/|B|) sum_{i in B} loss(w, x_i, y_i)        w <- w - eta * grad_w loss

or, with an optax optimizer, `w <- w + optimizer.update(grad_w loss)`.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["Step", "batch_loss", "init_opt_state", "apply_update", "update_step"]


class Step(NamedTuple):
    """What `update_step` returns."""

    params: Any  # The params after the update.
    opt_state: Any  # The optimizer state after the update; () for plain gradient descent.
    loss: jax.Array  # shape=(): the batch's loss before the update.
    finite: jax.Array  # shape=(), bool: the loss, the gradient and the new params are all finite.


def batch_loss(example_loss: Callable, params, X, y, mask=None) -> jax.Array:
    """The mean of `example_loss` over a batch: `(1/|B|) sum_{i in B} loss(params, x_i, y_i)`.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: a pytree of float arrays.
      X: batch inputs, shape (m, ...) (a pytree of such arrays is fine).
      y: batch targets, shape (m, ...).
      mask: optional bool array, shape (m,): only True rows count (padding of a ragged batch).

    Returns:
      A scalar: the mean over the real examples, as a PyTorch `reduction="mean"` loop computes it.

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> X, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 1.0, 1.0])
      >>> print(batch_loss(sq, 1.0, X, y), batch_loss(sq, 1.0, X, y, jnp.array([True, True, False])))
      1.6666666 0.5
    """
    losses = jax.vmap(example_loss, in_axes=(None, 0, 0))(params, X, y)
    if mask is None:
        return jnp.mean(losses)
    return jnp.sum(jnp.where(mask, losses, 0)) / jnp.sum(mask)


def _mean_of_example_grads(example_loss: Callable, params, X, y):
    """The batch loss and gradient as means over per-example gradients (see `update_step`)."""
    losses, grads = jax.vmap(jax.value_and_grad(example_loss), (None, 0, 0))(params, X, y)
    return jnp.mean(losses), jax.tree.map(lambda g: jnp.mean(g, 0), grads)


def init_opt_state(params, *, optimizer):
    """The optimizer state a run starts from: `optimizer.init(params)`, or () for a learning rate."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer.init(params)
    return ()


def apply_update(params, grads, opt_state, *, optimizer):
    """The step itself: `params - lr * grads` for a learning rate, else optax's update.

    Returns:
      `(params, opt_state)` after the step.
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        step = lambda p, g: p - (optimizer * g).astype(jnp.result_type(p))
        return jax.tree.map(step, params, grads), opt_state
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def all_finite(tree) -> jax.Array:
    """Whether every value of every leaf is finite, as a bool scalar."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def update_step(
    example_loss: Callable,
    params,
    opt_state,
    X,
    y,
    *,
    optimizer,
    mask=None,
    per_example_grads: bool = False,
) -> Step:
    """One update on one batch: predict, loss, gradient, step.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: a pytree of float arrays.
      opt_state: from `init_opt_state(params, optimizer=optimizer)`.
      X: batch inputs, shape (m, ...).
      y: batch targets, shape (m, ...).
      optimizer: an optax `GradientTransformation`, or a learning rate for `w - lr * grad`.
      mask: optional bool array, shape (m,), marking the real rows of a padded batch.
      per_example_grads: compute the gradient as the mean of the per-example gradients rather
        than by differentiating the mean (the same value; faster on CPU for linear models on a
        full batch: docs/design.md#per-example-full-batch-gradient). Ignored with a `mask`.

    Returns:
      A `Step`: the new params and optimizer state, the batch loss before the update, and
      whether the loss, gradient and new params were all finite.

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> s = update_step(sq, 0.0, (), jnp.array([1.0]), jnp.array([2.0]), optimizer=0.25)
      >>> print(s.params, s.loss, s.finite)
      1.0 4.0 True
    """
    if per_example_grads and mask is None:
        loss, grads = _mean_of_example_grads(example_loss, params, X, y)
    else:
        loss, grads = jax.value_and_grad(batch_loss, argnums=1)(example_loss, params, X, y, mask)
    new_params, new_state = apply_update(params, grads, opt_state, optimizer=optimizer)
    finite = jnp.isfinite(loss) & all_finite(grads) & all_finite(new_params)
    return Step(new_params, new_state, loss, finite)
