"""`once_if`: run a computation at most once, in a form that stays cheap under `jax.vmap`.

Under `jax.vmap` (`jaxgd.sweep`) a `lax.cond` on a per-member predicate becomes a select that
runs both branches for every member, on operands broadcast to all members (the training data
included). A `lax.while_loop` that runs its body once or never keeps the shared operands
unbatched and runs the body only if some member needs it (docs/design.md#run-once-loops).
"""

import functools
from collections.abc import Callable

import jax.numpy as jnp
from jax import lax

__all__ = ["once_if"]


def _body(fn: Callable, carry):
    _, operand, _ = carry
    return (jnp.array(False), *fn(operand))


def once_if(pred, fn: Callable, operand, otherwise):
    """`fn(operand)` if `pred`, else `(operand, otherwise)`; `fn` returns `(new_operand, result)`.

    The operand travels in the loop's carry and `fn` replaces it: a body that read it from
    outside the loop, or passed it through unchanged, would be loop-invariant, and XLA hoists
    such a body out of the loop (it then runs every time).

    Examples:
      >>> import jax.numpy as jnp
      >>> double = lambda x: (x + 1, 2 * x)
      >>> for pred in (True, False):
      ...     print([float(v) for v in once_if(jnp.array(pred), double, 3.0, 0.0)])
      [4.0, 6.0]
      [3.0, 0.0]
    """
    body = functools.partial(_body, fn)
    _, operand, result = lax.while_loop(lambda c: c[0], body, (pred, operand, otherwise))
    return operand, result
