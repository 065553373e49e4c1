"""The three schedules by name: full-batch, stochastic and mini-batch gradient descent.

Each is `fit` with its batch size: they differ only in the batches of an epoch
(`jaxgd.loop.batches`).
"""

from jaxgd.loop.fit import fit
from jaxgd.loop.result import FitResult

__all__ = ["full_batch_gd", "stochastic_gd", "minibatch_gd"]


def _refuse_batch_size(name: str, options: dict):
    if "batch_size" in options:
        raise TypeError(f"`{name}` sets `batch_size` itself; call `jaxgd.fit` to choose it.")


def full_batch_gd(example_loss, params, data, *, epochs, optimizer, **options) -> FitResult:
    """Full-batch gradient descent: one update per epoch on the mean loss of all n examples.

    `w <- w - eta * grad (1/n) sum_i loss(w, x_i, y_i)`. Same arguments as `fit`
    (without `batch_size`).

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> r = full_batch_gd(sq, 0.0, (jnp.ones(4), 2 * jnp.ones(4)), epochs=3, optimizer=0.25)
      >>> print(r.losses.shape, r.losses[:, 0])
      (3, 1) [4.   1.   0.25]
    """
    _refuse_batch_size("full_batch_gd", options)
    return fit(
        example_loss, params, data, epochs=epochs, optimizer=optimizer, batch_size=None, **options
    )


def stochastic_gd(example_loss, params, data, *, epochs, optimizer, **options) -> FitResult:
    """Stochastic gradient descent: one update per example, n per epoch.

    `w <- w - eta * grad loss(w, x_i, y_i)` for each i in the epoch's order (pass `key` to
    reshuffle every epoch). Same arguments as `fit` (without `batch_size`).

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> r = stochastic_gd(sq, 0.0, (jnp.ones(4), 2 * jnp.ones(4)), epochs=1, optimizer=0.25)
      >>> print(r.losses)
      [[4.     1.     0.25   0.0625]]
    """
    _refuse_batch_size("stochastic_gd", options)
    return fit(
        example_loss, params, data, epochs=epochs, optimizer=optimizer, batch_size=1, **options
    )


def minibatch_gd(
    example_loss, params, data, *, epochs, optimizer, batch_size: int, **options
) -> FitResult:
    """Mini-batch gradient descent: one update per batch of `batch_size` examples.

    `w <- w - eta * grad (1/|B|) sum_{i in B} loss(w, x_i, y_i)`, ceil(n / m) batches per epoch,
    the last one smaller unless `drop_last=True`. Same arguments as `fit`.

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> r = minibatch_gd(sq, 0.0, (jnp.ones(5), 2 * jnp.ones(5)), epochs=1, optimizer=0.25,
      ...                  batch_size=2)
      >>> print(r.losses)
      [[4.     1.     0.25]]
    """
    if batch_size is None:
        raise TypeError(
            "`minibatch_gd` needs an integer `batch_size`; use `full_batch_gd` for None."
        )
    return fit(
        example_loss,
        params,
        data,
        epochs=epochs,
        optimizer=optimizer,
        batch_size=batch_size,
        **options,
    )
