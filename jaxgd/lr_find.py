"""The learning-rate range test (fastai's `lr_find`), compiled as one `lax.scan`.

fastbook chapter 5 ("The Learning Rate Finder", after Leslie Smith): train on at most `num_steps`
mini-batches while the learning rate grows exponentially from `min_lr` to `max_lr`,

    lr_i = min_lr * (max_lr / min_lr) ** (i / (num_steps - 1)),     i = 0, ..., num_steps - 1,

record each batch's loss before its update, smooth it as fastai does with a bias-corrected
exponential moving average (beta = `smoothing`),

    avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,     smooth_i = avg_i / (1 - beta ** (i + 1)),

and stop at the first step whose smoothed loss exceeds `diverge_factor` times the smallest one so
far (or is not finite). The whole test is one compiled `lax.scan`: steps after the stop are marked
and cut off on the host. Several keys run at once under `jax.vmap`, which shows how much the curve
and its suggestion move from one shuffle to the next.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgd import _checks
from jaxgd.loop import batch_loss
from jaxgd.sweeps import _check_factory, _check_keys

__all__ = ["LRFindResult", "lr_find", "suggest"]

_traces = 0  # How many times the range test has been traced: the tests' recompilation counter.

RULES = ("steepest", "minimum/10", "valley")  # The suggestion rules, in `suggest`'s order.
_SKIP_END = 5  # Like fastai, suggestions ignore the last 5 steps (the diverging tail)...
_SKIP_START_FRACTION = 10  # ...and the first num_steps // 10 (the EMA is still warming up).


class LRFindResult(NamedTuple):
    """One range test, cut at its stop: T <= num_steps recorded steps."""

    learning_rates: np.ndarray  # shape=(T,), increasing: the learning rate of each step.
    losses: np.ndarray  # shape=(T,): the smoothed loss (bias-corrected moving average).
    raw_losses: np.ndarray  # shape=(T,): each batch's loss, before its update.
    suggestion: float  # suggestions[rule]: the learning rate to start from.
    suggestions: dict  # {"steepest": lr, "minimum/10": lr, "valley": lr}, see `suggest`.
    rule: str  # The rule that gave `suggestion`.
    diverged: bool  # The test stopped: smoothed loss > diverge_factor x its minimum, or not finite.


def suggest(learning_rates, losses, *, num_steps: int | None = None) -> dict:
    """The three suggestions of fastai's `lr_find`, from a (smoothed) range-test curve.

    On the curve without its first `num_steps // 10` and last 5 points (as fastai; the whole
    curve if fewer than 2 points would remain):

    * "steepest": the learning rate where the loss falls fastest against log(lr), the left end of
      the most negative slope `(s_{i+1} - s_i) / (log lr_{i+1} - log lr_i)` (fastai's `steep`);
    * "minimum/10": the learning rate of the smallest loss, divided by 10 (fastai's `minimum`):
      one decade below where the loss stops improving;
    * "valley": the learning rate halfway along the longest valley, the longest run of steps
      along which the loss keeps falling (a longest decreasing subsequence; fastai's `valley`).

    Args:
      learning_rates: shape (T,), increasing.
      losses: shape (T,), the smoothed losses at those learning rates.
      num_steps: the test's planned number of steps (default T), for the first cut.

    Returns:
      `{"steepest": lr, "minimum/10": lr, "valley": lr}` as floats (NaN for a curve of fewer
      than 2 points, where no slope exists).

    Examples:
      >>> import numpy as np
      >>> lrs = np.geomspace(1e-4, 1, 13)  # 3 steps per decade
      >>> losses = np.array([1.0, 1.0, 1.01, 0.99, 1.0, 0.9, 0.6, 0.4, 0.35, 0.5, 1.0, 3.0, 9.0])
      >>> {k: float(f"{v:.3g}") for k, v in suggest(lrs, losses).items()}  # on steps 1 to 7
      {'steepest': 0.00464, 'minimum/10': 0.00215, 'valley': 0.00215}
    """
    lrs, losses = np.asarray(learning_rates, np.float64), np.asarray(losses, np.float64)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(
            f"`learning_rates` and `losses` must be 1-D of the same length, got shapes "
            f"{lrs.shape} and {losses.shape}."
        )
    start = (len(lrs) if num_steps is None else num_steps) // _SKIP_START_FRACTION
    stop = len(lrs) - _SKIP_END
    if stop - start >= 2:
        lrs, losses = lrs[start:stop], losses[start:stop]
    if len(lrs) < 2:
        return dict.fromkeys(RULES, float("nan"))
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return {
        "steepest": float(lrs[np.argmin(slopes)]),
        "minimum/10": float(lrs[np.argmin(losses)] / 10),
        "valley": float(lrs[_valley(losses)]),
    }


def _valley(losses: np.ndarray) -> int:
    """The index halfway along the longest strictly decreasing subsequence of `losses`."""
    n = len(losses)
    length, first = np.ones(n, int), np.arange(n)  # Longest run ending at i, and where it starts.
    for i in range(1, n):
        earlier = np.where(losses[:i] > losses[i], length[:i], 0)  # Runs that i can extend.
        j = int(np.argmax(earlier))  # The first longest one.
        if earlier[j]:
            length[i], first[i] = earlier[j] + 1, first[j]
    end = int(np.argmax(length))
    return int(first[end] + (end - first[end]) // 2)


@functools.partial(
    jax.jit, static_argnames=("example_loss", "factory", "batch_size", "shuffle", "batched")
)
def _range_test(
    params, data, lrs, key, smoothing, diverge_factor, *,
    example_loss, factory, batch_size: int, shuffle: bool, batched: bool,
):  # fmt: skip
    """The compiled test: per step (recorded, raw loss, smoothed loss), and whether it stopped."""
    global _traces
    _traces += 1
    X, y = data
    n = jax.tree.leaves(X)[0].shape[0]
    num_steps = lrs.shape[0]
    per_epoch = n // batch_size  # Full batches only: every step has the same shape.
    epochs = -(-num_steps // per_epoch)

    def one_test(key):
        if shuffle:  # Epoch e visits the examples in the order permutation(fold_in(key, e)).
            orders = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), n))(
                jnp.arange(epochs)
            )
        else:
            orders = jnp.broadcast_to(jnp.arange(n), (epochs, n))
        rows = orders[:, : per_epoch * batch_size].reshape(-1, batch_size)[:num_steps]
        opt_state = () if factory is None else factory(lrs[0]).init(params)

        def step(carry, inputs):
            params, opt_state, avg, best, stopped = carry
            i, lr, idx = inputs
            xb, yb = jax.tree.map(lambda a: a[idx], (X, y))
            loss, grads = jax.value_and_grad(batch_loss, argnums=1)(example_loss, params, xb, yb)
            if factory is None:  # Plain gradient descent: w <- w - lr * grad.
                new_params = jax.tree.map(
                    lambda p, g: p - (lr * g).astype(jnp.result_type(p)), params, grads
                )
                new_state = opt_state
            else:
                updates, new_state = factory(lr).update(grads, opt_state, params)
                new_params = optax.apply_updates(params, updates)
            new_avg = smoothing * avg + (1 - smoothing) * loss
            smooth = new_avg / (1 - smoothing ** (i + 1))  # Bias correction.
            record = ~stopped & jnp.isfinite(smooth)
            new_best = jnp.where(record, jnp.minimum(best, smooth), best)
            stop = stopped | ~record | (smooth > diverge_factor * new_best)
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(stop, b, a), new, old)
            carry = (
                keep(new_params, params),
                keep(new_state, opt_state),
                jnp.where(record, new_avg, avg),
                new_best,
                stop,
            )
            return carry, (record, loss, smooth)

        dtype = lrs.dtype
        init = (
            params,
            opt_state,
            jnp.zeros((), dtype),
            jnp.array(jnp.inf, dtype),
            jnp.array(False),
        )
        carry, (record, raw, smooth) = lax.scan(step, init, (jnp.arange(num_steps), lrs, rows))
        return record, raw, smooth, carry[-1]

    return jax.vmap(one_test)(key) if batched else one_test(key)


def _check_positive(value, name: str) -> float:
    return _checks.check_real(value, name, minimum=0, strict=True)


def lr_find(
    example_loss: Callable,
    params,
    data,
    *,
    batch_size: int | None,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    key=None,
    keys=None,
    optimizer: Callable | None = None,
    rule: str = "minimum/10",
) -> LRFindResult | tuple[LRFindResult, ...]:
    """The learning-rate range test: train while the learning rate grows, and suggest one.

    Trains from `params` on `num_steps` mini-batches with learning rates growing exponentially
    from `min_lr` to `max_lr` (see the module docstring for the equations), smooths the losses
    as fastai does and stops once the smoothed loss passes `diverge_factor` times its minimum.
    `params` are not changed: the test is a throwaway run, as fastai restores the model after it.
    `suggestion` is `suggestions[rule]`, by default "minimum/10": the learning rate of the
    smallest smoothed loss, divided by 10 (the lr where the loss stops improving is already too
    large to train with; one decade below it is safe). `suggest` states all three rules. On our
    tests it is the steadiest: "steepest" reads the noise of the first mini-batches as slope,
    and "valley" (fastai's default) the long flat start of a run from small learning rates.
    Compare several `keys` to see how much a suggestion moves from one shuffle to the next.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar`, the loss of ONE example.
      params: initial parameters, a pytree of float arrays.
      data: `(X, y)`: arrays sharing the leading axis n.
      batch_size: m examples per step (None or >= n: the full batch every step). Steps use full
        batches only: an epoch gives floor(n / m) steps and the test runs as many epochs as it
        needs, reshuffled every epoch when a key is given.
      min_lr: the first learning rate, > 0.
      max_lr: the last one, > `min_lr`.
      num_steps: the most steps (>= 2); fastai's default is 100.
      smoothing: beta of the moving average, in [0, 1) (0: no smoothing).
      diverge_factor: stop when the smoothed loss exceeds this times its minimum (> 1).
      key: a PRNG key that shuffles the examples (None: data order; shuffle data sorted by class).
      keys: K PRNG keys instead of `key`: K tests at once under `jax.vmap`, one per key.
      optimizer: None for plain GD (`w <- w - lr * grad`), or a function `lr -> optax
        GradientTransformation` (e.g. `lambda lr: optax.sgd(lr, momentum=0.9)`), called every
        step with that step's learning rate as a traced scalar.
      rule: which suggestion is `.suggestion`: "minimum/10", "steepest" or "valley".

    Returns:
      An `LRFindResult` (`.learning_rates`, `.losses`, `.raw_losses` of one length T, NumPy
      arrays cut at the stop; `.suggestion`, `.suggestions`, `.rule`, `.diverged`), or with `keys`
      a tuple of K of them.

    Raises:
      ValueError, TypeError: for a bad argument, before anything is compiled.

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: 0.5 * (w * x - y) ** 2  # curvature L = x**2 = 4: diverges above 2/L
      >>> x = jnp.full(8, 2.0)
      >>> r = lr_find(sq, 0.0, (x, 3 * x), batch_size=4)
      >>> print(len(r.learning_rates), r.diverged, r.rule, round(r.suggestion, 4))
      96 True minimum/10 0.1874
    """
    _checks.check_callable(example_loss, "example_loss")
    X, y, n = _checks.check_data(data, "data")
    _checks.check_params(params)
    if batch_size is not None:
        batch_size = _checks.check_int(
            batch_size, "batch_size", minimum=1, fix=" Use None for the full batch every step."
        )
    batch_size = n if batch_size is None else min(batch_size, n)
    min_lr, max_lr = _check_positive(min_lr, "min_lr"), _check_positive(max_lr, "max_lr")
    if min_lr >= max_lr:
        raise ValueError(f"`min_lr` must be below `max_lr`, got {min_lr} and {max_lr}.")
    num_steps = _checks.check_int(num_steps, "num_steps", minimum=2)
    smoothing = _checks.check_real(smoothing, "smoothing")
    if not 0 <= smoothing < 1:
        raise ValueError(f"`smoothing` must be in [0, 1) (fastai uses 0.98), got {smoothing}.")
    if _check_positive(diverge_factor, "diverge_factor") <= 1:
        raise ValueError(f"`diverge_factor` must be > 1 (fastai uses 4), got {diverge_factor}.")
    if key is not None and keys is not None:
        raise ValueError("Pass `key` (one test) or `keys` (one test per key), not both.")
    key = _checks.check_key(key)
    if keys is not None:
        keys = _check_keys(keys)
    if optimizer is not None and (
        isinstance(optimizer, optax.GradientTransformation) or not callable(optimizer)
    ):
        raise TypeError(
            "`optimizer` must be None (plain GD) or a function lr -> optax transformation, e.g. "
            f"`lambda lr: optax.sgd(lr, momentum=0.9)`, got {type(optimizer).__name__}: the "
            "range test sets the learning rate itself every step."
        )
    if rule not in RULES:
        raise ValueError(f"`rule` must be one of {RULES}, got {rule!r}.")
    _checks.check_example_fn(example_loss, params, X, y, "example_loss")

    params = jax.tree.map(jnp.asarray, params)
    dtype = jnp.result_type(*jax.tree.leaves(params))
    if optimizer is not None:
        _check_factory(optimizer, jnp.asarray(min_lr, dtype), params)
    lrs = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))
    record, raw, smooth, stopped = _range_test(
        params, jax.tree.map(jnp.asarray, (X, y)), jnp.asarray(lrs, dtype),
        keys if keys is not None else key, jnp.asarray(smoothing, dtype),
        jnp.asarray(diverge_factor, dtype), example_loss=example_loss, factory=optimizer,
        batch_size=batch_size, shuffle=key is not None or keys is not None,
        batched=keys is not None,
    )  # fmt: skip
    record, raw, smooth, stopped = map(np.asarray, (record, raw, smooth, stopped))

    def result(record, raw, smooth, stopped) -> LRFindResult:
        T = int(np.argmin(record)) if not record.all() else num_steps  # Recorded: a prefix.
        used = lrs[:T].astype(dtype)  # The learning rates as the steps used them.
        suggestions = suggest(used, smooth[:T], num_steps=num_steps)
        return LRFindResult(
            learning_rates=used,
            losses=smooth[:T],
            raw_losses=raw[:T],
            suggestion=suggestions[rule],
            suggestions=suggestions,
            rule=rule,
            diverged=bool(stopped),
        )

    if keys is None:
        return result(record, raw, smooth, stopped)
    return tuple(result(*member) for member in zip(record, raw, smooth, stopped, strict=True))
