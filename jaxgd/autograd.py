"""Autograd, the functional way: gradients are functions of the parameters.

PyTorch records a graph while the forward pass runs and walks it back on `.backward()`; JAX
transforms the loss *function* instead. What each PyTorch idiom becomes:

- `w.requires_grad_()`: nothing to mark. Choose what to differentiate by argument position:
  `jax.grad(f)` differentiates `f`'s first argument (a pytree such as `{"w": w, "b": b}`),
  `jax.grad(f, argnums=(0, 1))` several. Everything else is a constant.
- `loss.backward()` then `w.grad`: `grads = jax.grad(loss_fn)(params, x, y)` returns the
  gradients as a value shaped like `params`; `jax.value_and_grad` returns the loss too.
  Nothing is stored on the arrays, so there is no `.grad` to read and no `zero_grad()` to call.
  Gradients only accumulate if you add them yourself (`g_total = g_total + g`), which is how
  to reproduce a torch loop that forgets to zero them.
- `retain_graph=True`: nothing to retain. There is no graph left over after a call; calling the
  gradient function again recomputes what it needs. (`jax.vjp` keeps one forward pass to pull
  back several cotangents, the closest analogue.)
- `torch.no_grad()` / `.detach()`: code outside `jax.grad` is never traced for gradients;
  inside, `jax.lax.stop_gradient(v)` treats `v` as a constant.

The notes' worked examples are the functions `logistic_example`, `square_example`,
`mean_double_example` and `sum_squares_example`. For data sets, write the loss for ONE example,
`example_loss(params, x, y) -> scalar`, and use `per_example_losses`, `per_example_grads` and
`mean_loss`: the mean of the per-example gradients is the gradient of the mean loss.

Examples:
    >>> import jax
    >>> df = jax.grad(lambda x: x**2)  # a function, not a graph: call it anywhere, any number of times
    >>> print(df(3.0), df(3.0))
    6.0 6.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "LogisticExample",
    "logistic_example",
    "mean_double_example",
    "mean_loss",
    "per_example_grads",
    "per_example_losses",
    "square_example",
    "sum_squares_example",
]

Array = jax.Array
PyTree = Any
ExampleLoss = Callable[[PyTree, PyTree, PyTree], Array]


# --------------------------------------------------------------------------------------------
# Per-example losses and gradients.
# --------------------------------------------------------------------------------------------


def _num_examples(X: PyTree, y: PyTree) -> int:
    """The common leading-axis size of every array in `X` and `y` (static, works under jit)."""
    sizes = {}
    for name, tree in (("X", X), ("y", y)):
        leaves = jax.tree.leaves(tree)
        if not leaves:
            raise ValueError(f"`{name}` holds no arrays; pass the data with examples on axis 0.")
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            shape = jnp.shape(leaf)
            where = name + jax.tree_util.keystr(path)
            if len(shape) == 0:
                raise ValueError(
                    f"`{where}` is a scalar, but the data needs examples along axis 0 (shape "
                    "(n, ...)); for one example call the loss directly, or add an axis with "
                    "`x[None]`."
                )
            sizes[where] = shape[0]
    if len(set(sizes.values())) != 1:
        seen = ", ".join(f"`{k}` has {v}" for k, v in sizes.items())
        raise ValueError(
            f"`X` and `y` must hold the same number of examples along axis 0; {seen}. "
            "Put the examples on the leading axis of every array."
        )
    return next(iter(sizes.values()))


def _check_example_loss(example_loss: ExampleLoss, params: PyTree, X: PyTree, y: PyTree) -> None:
    """Check (by shape only) that `example_loss` returns a scalar for one example."""
    one = lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a))
    out = jax.eval_shape(example_loss, params, jax.tree.map(one, X), jax.tree.map(one, y))
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != ():
        seen = out.shape if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__
        raise ValueError(
            f"`example_loss` must return a scalar for ONE example (x without the batch axis); "
            f"got {seen}. Write the loss for one example; jaxgd batches it with jax.vmap."
        )


def per_example_losses(example_loss: ExampleLoss, params: PyTree, X: PyTree, y: PyTree) -> Array:
    """The loss of every example: `jax.vmap(example_loss, in_axes=(None, 0, 0))(params, X, y)`.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: any pytree of arrays, shared by all examples.
      X: inputs with the examples on axis 0: an array `(n, ...)` or a pytree of such arrays.
      y: targets with the examples on axis 0: an array `(n, ...)` or a pytree of such arrays.

    Returns:
      The losses, shape `(n,)`.

    Raises:
      ValueError: the arrays in `X` and `y` disagree on n, one has no leading axis, or
        `example_loss` does not return a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss = lambda w, x, y: (w * x - y) ** 2
      >>> per_example_losses(loss, 2.0, jnp.array([1.0, 2.0]), jnp.array([1.0, 1.0])).tolist()
      [1.0, 9.0]
    """
    _num_examples(X, y)
    _check_example_loss(example_loss, params, X, y)
    return jax.vmap(example_loss, in_axes=(None, 0, 0))(params, X, y)


def per_example_grads(example_loss: ExampleLoss, params: PyTree, X: PyTree, y: PyTree) -> PyTree:
    """The gradient of every example's loss: `jax.vmap(jax.grad(example_loss), (None, 0, 0))`.

    Their mean over axis 0 is the gradient of `mean_loss` (the batch gradient that mini-batch
    gradient descent follows); their spread is the noise that stochastic gradient descent sees.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: any pytree of float arrays, shared by all examples.
      X: inputs with the examples on axis 0: an array `(n, ...)` or a pytree of such arrays.
      y: targets with the examples on axis 0: an array `(n, ...)` or a pytree of such arrays.

    Returns:
      A pytree shaped like `params` with a leading axis n on every leaf.

    Raises:
      ValueError: as `per_example_losses`.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss = lambda w, x, y: (w * x - y) ** 2  # gradient 2 (w x - y) x
      >>> per_example_grads(loss, 2.0, jnp.array([1.0, 2.0]), jnp.array([1.0, 1.0])).tolist()
      [2.0, 12.0]
    """
    _num_examples(X, y)
    _check_example_loss(example_loss, params, X, y)
    return jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, X, y)


def mean_loss(example_loss: ExampleLoss, params: PyTree, X: PyTree, y: PyTree) -> Array:
    """The mean loss over the examples, `mean_i example_loss(params, X[i], y[i])`.

    Differentiate it with `jax.grad(lambda p: mean_loss(example_loss, p, X, y))`.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: any pytree of arrays, shared by all examples.
      X: inputs with the examples on axis 0: an array `(n, ...)` or a pytree of such arrays.
      y: targets with the examples on axis 0: an array `(n, ...)` or a pytree of such arrays.

    Returns:
      A scalar.

    Raises:
      ValueError: there are no examples (the mean of nothing is NaN), or as
        `per_example_losses`.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss = lambda w, x, y: (w * x - y) ** 2
      >>> print(mean_loss(loss, 2.0, jnp.array([1.0, 2.0]), jnp.array([1.0, 1.0])))
      5.0
    """
    if _num_examples(X, y) == 0:
        raise ValueError("`X` and `y` hold 0 examples; the mean loss needs at least one.")
    return jnp.mean(per_example_losses(example_loss, params, X, y))


# --------------------------------------------------------------------------------------------
# The notes' worked examples.
# --------------------------------------------------------------------------------------------


class LogisticExample(NamedTuple):
    """One step of logistic regression on one example, forward and backward."""

    z: Array  # shape=(), the logit w * x + b.
    a: Array  # shape=(), the probability sigmoid(z).
    loss: Array  # shape=(), BCE on the probability a.
    loss_from_logits: Array  # shape=(), BCE-with-logits on z (the same number, computed stably).
    dloss_dw: Array  # shape=(), dL/dw = (a - y) * x.
    dloss_db: Array  # shape=(), dL/db = a - y.


def logistic_example(
    *, w: float = 0.23, b: float = 0.1, x: float = 1.23, y: float = 1.0
) -> LogisticExample:
    """The notes' one-example logistic regression, with gradients from `jax.value_and_grad`.

    `z = w x + b`, `a = sigmoid(z)`, `L = -(y log a + (1 - y) log(1 - a))`; the chain rule gives
    `dL/dw = (a - y) x` and `dL/db = a - y`. In PyTorch: `w = torch.tensor(0.23,
    requires_grad=True)`, ..., `loss.backward()`, then `w.grad`; here `jax.grad` of the loss as a
    function of `(w, b)`. BCE is written inline (models and autograd do not depend on losses).

    Args:
      w: the weight.
      b: the bias.
      x: the one input.
      y: the target, 0 or 1.

    Returns:
      A `LogisticExample` with z, a, the loss in both BCE forms, and dL/dw, dL/db.

    Examples:
      >>> r = logistic_example()
      >>> print(f"z={r.z:.4f} a={r.a:.4f} loss={r.loss:.4f} {r.loss_from_logits:.4f}")
      z=0.3829 a=0.5946 loss=0.5199 0.5199
      >>> print(f"dL/dw={r.dloss_dw:.4f} dL/db={r.dloss_db:.4f}")
      dL/dw=-0.4987 dL/db=-0.4054
    """
    x, y = jnp.asarray(x), jnp.asarray(y)

    def forward(w, b):
        z = w * x + b
        a = jax.nn.sigmoid(z)
        loss = -(y * jnp.log(a) + (1 - y) * jnp.log(1 - a))  # BCE on the probability
        return loss, (z, a)

    (loss, (z, a)), (dw, db) = jax.value_and_grad(forward, argnums=(0, 1), has_aux=True)(
        jnp.asarray(w), jnp.asarray(b)
    )
    # BCE with logits: max(z, 0) - z y + log(1 + exp(-|z|)), finite for any z.
    loss_from_logits = jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))
    return LogisticExample(z, a, loss, loss_from_logits, dw, db)


def square_example(*, x: float = 3.0) -> tuple[Array, Array]:
    """`f(x) = x**2` and its derivative `2 x`: the notes' first autograd example.

    Args:
      x: the point.

    Returns:
      `(f(x), df/dx)`, from `jax.value_and_grad`.

    Examples:
      >>> value, grad = square_example()
      >>> print(value, grad)
      9.0 6.0
    """
    return jax.value_and_grad(lambda t: t**2)(jnp.asarray(x, dtype=float))


def mean_double_example(*, x: Any = (1.0, 2.0, 3.0)) -> tuple[Array, Array]:
    """`f(x) = mean(2 x)` over a vector: each component's partial derivative is `2 / n`.

    Args:
      x: the vector, shape `(n,)`.

    Returns:
      `(f(x), grad)`, grad of shape `(n,)`.

    Examples:
      >>> value, grad = mean_double_example()
      >>> print(value, [round(float(g), 4) for g in grad])
      4.0 [0.6667, 0.6667, 0.6667]
    """
    return jax.value_and_grad(lambda t: jnp.mean(2 * t))(jnp.asarray(x, dtype=float))


def sum_squares_example(*, x: Any = (3.0, 4.0, 10.0)) -> tuple[Array, Array]:
    """`f(x) = sum(x**2)` (fastbook's `f(xt)` on `[3, 4, 10]`): gradient `2 x`.

    Args:
      x: the vector, shape `(n,)`.

    Returns:
      `(f(x), grad)`, grad of shape `(n,)`.

    Examples:
      >>> value, grad = sum_squares_example()
      >>> print(value, grad.tolist())
      125.0 [6.0, 8.0, 20.0]
    """
    return jax.value_and_grad(lambda t: jnp.sum(t**2))(jnp.asarray(x, dtype=float))
