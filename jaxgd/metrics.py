"""Per-example metrics for `jaxgd.fit`.

A metric has the signature of an example loss, `metric(params, x, y) -> scalar`, for ONE example;
`fit` averages it over a data set after every epoch. Accuracy is the lectures' example of a metric
that is not a loss: it is flat almost everywhere, so its gradient tells the parameters nothing
(fastbook chapter 4, "Stochastic Gradient Descent"), and we optimise a smooth loss instead.
"""

from collections.abc import Callable

import jax.numpy as jnp

__all__ = ["binary_accuracy", "accuracy"]


def binary_accuracy(predict: Callable, *, threshold: float = 0.5) -> Callable:
    """Makes the metric `1.0 if (predict(params, x) > threshold) == (y > 0.5) else 0.0`.

    Args:
      predict: `predict(params, x) -> scalar` for one example: a probability (use the default
        `threshold=0.5`) or a logit (use `threshold=0.0`).
      threshold: the decision threshold on `predict`'s output.

    Returns:
      A per-example metric `metric(params, x, y) -> scalar` in {0.0, 1.0}.

    Examples:
      >>> import jax.numpy as jnp
      >>> acc = binary_accuracy(lambda p, x: p * x, threshold=0.0)
      >>> print(acc(1.0, jnp.array(2.0), jnp.array(1.0)), acc(1.0, jnp.array(-2.0), jnp.array(1.0)))
      1.0 0.0
    """

    def metric(params, x, y):
        predicted = jnp.asarray(predict(params, x)) > threshold
        return (predicted == (jnp.asarray(y) > 0.5)).astype(jnp.float32)

    return metric


def accuracy(predict: Callable) -> Callable:
    """Makes the multi-class metric `1.0 if argmax(predict(params, x)) == y else 0.0`.

    Args:
      predict: `predict(params, x) -> (C,)` scores (logits or probabilities) for one example.

    Returns:
      A per-example metric `metric(params, x, y) -> scalar` in {0.0, 1.0}, `y` an integer label.

    Examples:
      >>> import jax.numpy as jnp
      >>> acc = accuracy(lambda p, x: x)
      >>> print(acc(None, jnp.array([0.1, 2.0, -1.0]), jnp.array(1)))
      1.0
    """

    def metric(params, x, y):
        return (jnp.argmax(predict(params, x), axis=-1) == y).astype(jnp.float32)

    return metric
