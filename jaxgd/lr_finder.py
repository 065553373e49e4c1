"""The learning-rate range test (fastai's `Learner.lr_find`), compiled as one `lax.scan`.

fastbook chapter 5 ("The Learning Rate Finder", after Leslie Smith): train on `num_steps`
mini-batches while the learning rate grows exponentially from `min_lr` towards `max_lr`,

    lr_i = min_lr * (max_lr / min_lr) ** (i / num_steps),     i = 0, ..., num_steps - 1,

(fastai's grid: its last step is one step short of `max_lr`, 8.3 for 1e-7 to 10), record
each batch's loss before its update, and smooth it as fastai does with a bias-corrected
exponential moving average (beta = `smoothing`),

    avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,     smooth_i = avg_i / (1 - beta ** (i + 1)).

The test stops after the first step whose smoothed loss exceeds `diverge_factor` times the
smallest one so far; that step is recorded. As in fastai, a NaN loss does not stop it (every
comparison with NaN is false: the test trains on, its curve NaN from there), an infinite one does.
One difference, for losses that reach exactly 0: the smallest loss that sets the scale is the
smallest *positive* one, since `4 x 0` would call any later positive loss a divergence (fastai
stops there).

`suggest` computes fastai's four suggestion rules on the smoothed curve. jaxgd adds: the whole
test is one compiled program (steps after the stop are computed and cut off on the host), several
keys run at once under `jax.vmap`, and `params` are never changed. Epoch e visits the examples in
`fit`'s order for the same key, and each step is `jaxgd.loop.update_step`.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgd import _checks, _shuffle
from jaxgd.loop import update_step
from jaxgd.sweeps import _check_factory, _check_keys

__all__ = ["LRFindResult", "lr_find", "suggest"]

RULES = ("valley", "slide", "minimum", "steep")  # fastai's suggestion rules, its order.
MIN_STEPS = 6  # fastai's LRFinder raises fewer steps to 6.
_SKIP_END = 5  # Like fastai, suggestions ignore the last 5 steps (the diverging tail)...
_SKIP_START_FRACTION = 10  # ...and the first num_steps // 10 (the average is still warming up).
_SLIDE_DIFF, _SLIDE_THRESH = 15, 0.005  # fastai's `slide` defaults: lr_diff, thresh.
_NEEDS = {"valley": 1, "slide": _SLIDE_DIFF + 1, "minimum": 1, "steep": 2}  # Points a rule reads.


class LRFindResult(NamedTuple):
    """One range test, cut after its stop: T <= num_steps recorded steps."""

    learning_rates: np.ndarray  # shape=(T,), increasing: the learning rate of each step.
    losses: np.ndarray  # shape=(T,): the smoothed loss (bias-corrected moving average).
    raw_losses: np.ndarray  # shape=(T,): each batch's loss, before its update.
    suggestion: float  # suggestions[rule]: the learning rate to start from.
    suggestions: dict  # {"valley": lr, "slide": lr, "minimum": lr, "steep": lr}, see `suggest`.
    rule: str  # The rule that gave `suggestion`.
    diverged: bool  # The test stopped at diverge_factor x the smallest loss, or its loss was NaN.


def learning_rates(*, min_lr: float, max_lr: float, num_steps: int) -> np.ndarray:
    """fastai's grid `min_lr * (max_lr / min_lr) ** (i / num_steps)`, i < max(num_steps, 6),
    in float64, computed as fastai's `SchedExp` does (Python floats).

    Examples:
      >>> lrs = learning_rates(min_lr=1e-7, max_lr=10.0, num_steps=100)
      >>> print(len(lrs), lrs[0], f"{lrs[-1]:.4g}")  # 10 ** (-7 + 8 * 99 / 100)
      100 1e-07 8.318
    """
    steps = max(num_steps, MIN_STEPS)
    return np.array([min_lr * (max_lr / min_lr) ** (i / steps) for i in range(steps)])


def _window(losses: np.ndarray, num_steps: int) -> tuple[int, int]:
    """fastai's cut `[num_steps // 10 : -5]`, then cut again at its first NaN."""
    start, stop = num_steps // _SKIP_START_FRACTION, max(len(losses) - _SKIP_END, 0)
    nan = np.flatnonzero(np.isnan(losses[start:stop]))
    return start, (start + int(nan[0]) if len(nan) else stop)


def _valley(losses: np.ndarray) -> int:
    """fastai's `valley`: with L the length of the longest decreasing subsequence and e where
    the first such ends, the index `(e - L) + int(L / 3) + int(L / 6)`, about halfway along the
    L steps before e (0 if no two points decrease; -1, the last point, as fastai indexes it)."""
    n = len(losses)
    lds = np.ones(n, int)  # lds[i]: the longest decreasing subsequence ending at i.
    for i in range(1, n):
        lds[i] = max(1, 1 + np.max(np.where(losses[:i] > losses[i], lds[:i], 0)))
    end = int(np.argmax(lds))
    start = end - int(lds[end]) if lds[end] > 1 else 0  # fastai moves its start only past 1.
    sections = (end - start) / 3
    return start + int(sections) + int(sections / 2)


def _slide(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's `slide`: walking left from the end, the first lr where the loss gradients 15
    points apart differ by at most 0.005 (gradients per step, `np.gradient`)."""
    grad = np.gradient(losses)
    right, left = -1, -1 - _SLIDE_DIFF
    found = lrs[left]
    while left >= -len(losses) and abs(grad[right] - grad[left]) > _SLIDE_THRESH:
        found = lrs[left]
        right, left = right - 1, left - 1
    return float(found)


def _rule(rule: str, lrs: np.ndarray, losses: np.ndarray) -> float:
    if rule == "minimum":
        return float(lrs[np.argmin(losses)]) / 10
    if rule == "steep":
        slopes = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
        return float(lrs[np.argmin(slopes)])
    if rule == "valley":
        return float(lrs[_valley(losses)])
    return _slide(lrs, losses)


def suggest(learning_rates, losses, *, num_steps: int | None = None) -> dict:
    """fastai's four suggestions from a range-test curve, as `Learner.lr_find` computes them.

    Like fastai, the rules read the curve without its first `num_steps // 10` and last 5 points,
    cut again before its first NaN. Where that leaves fewer points than a rule reads (fastai then
    raises), the rule reads the whole curve up to its first NaN or inf instead, and gives NaN if
    that is still too short.

    * "valley" (fastai's default): with L the length of the longest decreasing subsequence of
      the losses and e the index where the first one ends, the lr at index
      `e - L + int(L/3) + int(L/6)`, about halfway along the L steps before e;
    * "slide": from the right, the first lr at which the loss gradients (per step) 15 points
      apart differ by at most 0.005 (needs 16 points);
    * "minimum": the lr of the smallest loss, divided by 10 (one decade below where the loss
      stops improving);
    * "steep": the lr where the loss falls fastest against log(lr), the left end of the most
      negative slope `(s_{i+1} - s_i) / (log lr_{i+1} - log lr_i)`.

    Args:
      learning_rates: shape (T,), increasing.
      losses: shape (T,), the smoothed losses at those learning rates.
      num_steps: the test's planned number of steps (default T), for the first cut.

    Returns:
      `{"valley": lr, "slide": lr, "minimum": lr, "steep": lr}` as floats, computed in the
      curve's dtype (fastai: float32).

    Examples:
      >>> import numpy as np
      >>> lrs = np.geomspace(1e-4, 1, 13)  # 3 steps per decade
      >>> losses = np.array([1.0, 1.0, 1.01, 0.99, 1.0, 0.9, 0.6, 0.4, 0.35, 0.5, 1.0, 3.0, 9.0])
      >>> {k: float(f"{v:.3g}") for k, v in suggest(lrs, losses).items()}  # points 1 to 7
      {'valley': 0.001, 'slide': nan, 'minimum': 0.00215, 'steep': 0.00464}

      "slide" reads 16 points: NaN on this curve of 13.
    """
    lrs, losses = np.asarray(learning_rates), np.asarray(losses)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(
            f"`learning_rates` and `losses` must be 1-D of the same length, got shapes "
            f"{lrs.shape} and {losses.shape}."
        )
    start, stop = _window(losses, len(losses) if num_steps is None else num_steps)
    bad = np.flatnonzero(~np.isfinite(losses))
    finite = int(bad[0]) if len(bad) else len(losses)  # The fallback: up to the first NaN or inf.
    out = {}
    for rule in RULES:
        lo, hi = (start, stop) if stop - start >= _NEEDS[rule] else (0, finite)
        enough = hi - lo >= _NEEDS[rule]
        out[rule] = _rule(rule, lrs[lo:hi], losses[lo:hi]) if enough else float("nan")
    return out


class _Carry(NamedTuple):
    """What one step of the test hands the next."""

    params: Any  # pytree like `params`: the params trained so far.
    opt_state: Any  # the optax state, () for plain gradient descent.
    avg: jax.Array  # shape=(): the moving average of the losses, before bias correction.
    best: jax.Array  # shape=(): the smallest positive smoothed loss so far (inf before one).
    stopped: jax.Array  # shape=(), bool: an earlier step stopped the test.


class _Inputs(NamedTuple):
    """What the test reads at step i, stacked over the steps."""

    lr: jax.Array  # shape=(S,): the learning rate of each step.
    debias: jax.Array  # shape=(S,): 1 - beta ** (i + 1), the bias correction.
    rows: jax.Array  # shape=(S, m), int32: the examples of each step's batch.


class _Settings(NamedTuple):
    """The test's traced hyperparameters and data."""

    data: Any  # (X, y): arrays sharing the leading axis n.
    beta: jax.Array  # shape=(): the smoothing.
    factor: jax.Array  # shape=(): the divergence factor.


def _lerp(start, end, weight):
    """`torch.lerp` as torch computes it (fastai's average): after an inf it gives NaN as fastai's
    does, where `weight * end + (1 - weight) * start` would stay inf."""
    return jnp.where(
        weight < 0.5, start + weight * (end - start), end - (end - start) * (1 - weight)
    )


def _step(carry: _Carry, inputs: _Inputs, settings: _Settings, *, example_loss, factory):
    """One step: the loss before `update_step`, its smoothed value, fastai's stop rule."""
    X, y = jax.tree.map(lambda a: a[inputs.rows], settings.data)
    optimizer = inputs.lr if factory is None else factory(inputs.lr)
    out = update_step(example_loss, carry.params, carry.opt_state, X, y, optimizer=optimizer)
    loss = out[2]
    avg = _lerp(loss.astype(carry.avg.dtype), carry.avg, settings.beta)
    smooth = avg / inputs.debias
    record = ~carry.stopped
    # NaN compares false: it neither lowers `best` nor stops the test. 0 never sets the scale.
    best = jnp.where(record & (smooth > 0) & (smooth < carry.best), smooth, carry.best)
    trip = record & (smooth > settings.factor * best)
    carry = _Carry(out[0], out[1], avg, best, carry.stopped | trip)
    return carry, (record, loss, smooth, trip)


def _rows(key, *, n: int, batch_size: int, num_steps: int, shuffle: bool):
    """The (num_steps, m) example indices: full batches of `fit`'s epoch orders, in turn."""
    per_epoch = n // batch_size
    epochs = -(-num_steps // per_epoch)
    if shuffle:  # `fit`'s order of epoch e.
        orders = [_shuffle.permutation(_shuffle.fold_in(key, e), n) for e in range(epochs)]
    else:
        orders = [jnp.arange(n, dtype=jnp.int32)] * epochs
    full = [order[: per_epoch * batch_size].reshape(per_epoch, batch_size) for order in orders]
    return jnp.concatenate(full)[:num_steps]


def _one_test(key, params, settings: _Settings, lrs, debias, *, example_loss, factory,
              batch_size: int, shuffle: bool):  # fmt: skip
    """One range test: per step (recorded, raw loss, smoothed loss, stopped here)."""
    n = jax.tree.leaves(settings.data[0])[0].shape[0]
    rows = _rows(key, n=n, batch_size=batch_size, num_steps=lrs.shape[0], shuffle=shuffle)
    opt_state = () if factory is None else factory(lrs[0]).init(params)
    dtype = lrs.dtype
    init = _Carry(params, opt_state, jnp.zeros((), dtype), jnp.array(jnp.inf, dtype),
                  jnp.array(False))  # fmt: skip
    step = functools.partial(_step, settings=settings, example_loss=example_loss, factory=factory)
    _, outputs = lax.scan(step, init, _Inputs(lrs, debias, rows))
    return outputs


@functools.partial(
    jax.jit, static_argnames=("example_loss", "factory", "batch_size", "shuffle", "batched")
)
def _range_test(params, settings: _Settings, lrs, debias, key, *, example_loss, factory,
                batch_size: int, shuffle: bool, batched: bool):  # fmt: skip
    """The compiled test, vmapped over keys when `batched`."""
    test = functools.partial(
        _one_test, params=params, settings=settings, lrs=lrs, debias=debias,
        example_loss=example_loss, factory=factory, batch_size=batch_size, shuffle=shuffle,
    )  # fmt: skip
    return jax.vmap(test)(key) if batched else test(key)


def _check_positive(value, name: str) -> float:
    return _checks.check_real(value, name, minimum=0, strict=True)


def _check_settings(*, min_lr, max_lr, smoothing, diverge_factor, optimizer, rule):
    """The numeric and rule arguments; returns (min_lr, max_lr, smoothing) as floats."""
    min_lr, max_lr = _check_positive(min_lr, "min_lr"), _check_positive(max_lr, "max_lr")
    if min_lr >= max_lr:
        raise ValueError(f"`min_lr` must be below `max_lr`, got {min_lr} and {max_lr}.")
    smoothing = _checks.check_real(smoothing, "smoothing")
    if not 0 <= smoothing < 1:
        raise ValueError(f"`smoothing` must be in [0, 1) (fastai uses 0.98), got {smoothing}.")
    if _check_positive(diverge_factor, "diverge_factor") <= 1:
        raise ValueError(f"`diverge_factor` must be > 1 (fastai uses 4), got {diverge_factor}.")
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
    return min_lr, max_lr, smoothing


def _result(lrs, outputs, *, num_steps: int, rule: str) -> LRFindResult:
    """One test's recorded prefix and its suggestions."""
    record, raw, smooth, trip = map(np.asarray, outputs)
    T = int(record.sum())  # Recorded steps are a prefix: up to and with the stop.
    suggestions = suggest(lrs[:T], smooth[:T], num_steps=num_steps)
    return LRFindResult(
        learning_rates=lrs[:T],
        losses=smooth[:T],
        raw_losses=raw[:T],
        suggestion=suggestions[rule],
        suggestions=suggestions,
        rule=rule,
        diverged=bool(trip[:T].any() or np.isnan(smooth[:T]).any()),
    )


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
    rule: str = "valley",
) -> LRFindResult | tuple[LRFindResult, ...]:
    """The learning-rate range test: train while the learning rate grows, and suggest one.

    fastai's `Learner.lr_find` (see the module docstring for its equations): `num_steps`
    mini-batches (at least 6, as fastai) with learning rates growing exponentially from `min_lr`
    towards `max_lr`, the losses smoothed, a stop at `diverge_factor` times the smallest one, and
    fastai's four suggestion rules (`suggest`). `suggestion` is `suggestions[rule]`, by default
    fastai's "valley". `params` are not changed: the test is a throwaway run, as fastai restores
    the model after it. Compare several `keys` to see how much a suggestion moves from one
    shuffle to the next.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar`, the loss of ONE example.
      params: initial parameters, a pytree of float arrays.
      data: `(X, y)`: arrays sharing the leading axis n.
      batch_size: m examples per step (None or >= n: the full batch every step). Steps use full
        batches only (fastai's `drop_last`): an epoch gives floor(n / m) steps and the test runs
        as many epochs as it needs, in `fit`'s order of each epoch for `key`.
      min_lr: the first learning rate, > 0.
      max_lr: the end of the grid, > `min_lr` (not reached: see the module docstring).
      num_steps: the number of steps, >= 1 (fewer than 6 run 6, as in fastai).
      smoothing: beta of the moving average, in [0, 1) (0: no smoothing).
      diverge_factor: stop when the smoothed loss exceeds this times its minimum (> 1).
      key: a PRNG key that shuffles the examples (None: data order; shuffle data sorted by class).
      keys: K PRNG keys instead of `key`: K tests at once under `jax.vmap`, one per key.
      optimizer: None for plain GD (`w <- w - lr * grad`), or a function `lr -> optax
        GradientTransformation` (e.g. `lambda lr: optax.sgd(lr, momentum=0.9)`), called every
        step with that step's learning rate as a traced scalar.
      rule: which suggestion is `.suggestion`: "valley", "slide", "minimum" or "steep".

    Returns:
      An `LRFindResult` (`.learning_rates`, `.losses`, `.raw_losses` of one length T, NumPy
      arrays up to and with the stop; `.suggestion`, `.suggestions`, `.rule`, `.diverged`), or
      with `keys` a tuple of K of them.

    Raises:
      ValueError, TypeError: for a bad argument, before anything is compiled.

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: 0.5 * (w * x - y) ** 2  # curvature L = x**2 = 4: diverges above 2/L
      >>> x = jnp.full(8, 2.0)
      >>> r = lr_find(sq, 0.0, (x, 3 * x), batch_size=4)
      >>> print(len(r.learning_rates), r.diverged, r.rule, f"{r.suggestion:.2g}")
      97 True valley 0.00083
      >>> print(f"{r.suggestions['minimum']:.3g}")  # the smallest loss at lr 1.91, over 10
      0.191
    """
    _checks.check_callable(example_loss, "example_loss")
    X, y, n = _checks.check_data(data, "data")
    _checks.check_params(params)
    if batch_size is not None:
        batch_size = _checks.check_int(
            batch_size, "batch_size", minimum=1, fix=" Use None for the full batch every step."
        )
    batch_size = n if batch_size is None else min(batch_size, n)
    num_steps = _checks.check_int(num_steps, "num_steps", minimum=1)
    min_lr, max_lr, smoothing = _check_settings(
        min_lr=min_lr, max_lr=max_lr, smoothing=smoothing, diverge_factor=diverge_factor,
        optimizer=optimizer, rule=rule,
    )  # fmt: skip
    if key is not None and keys is not None:
        raise ValueError("Pass `key` (one test) or `keys` (one test per key), not both.")
    key = _checks.check_key(key)
    if keys is not None:
        keys = _check_keys(keys)
    _checks.check_example_fn(example_loss, params, X, y, "example_loss")

    params = jax.tree.map(jnp.asarray, params)
    dtype = jnp.result_type(*jax.tree.leaves(params))
    if optimizer is not None:
        _check_factory(optimizer, jnp.asarray(min_lr, dtype), params)
    grid = learning_rates(min_lr=min_lr, max_lr=max_lr, num_steps=num_steps)
    debias = 1 - smoothing ** np.arange(1, len(grid) + 1)  # In float64, as fastai's Python.
    settings = _Settings(jax.tree.map(jnp.asarray, (X, y)), jnp.asarray(smoothing, dtype),
                         jnp.asarray(diverge_factor, dtype))  # fmt: skip
    outputs = _range_test(
        params, settings, jnp.asarray(grid, dtype), jnp.asarray(debias, dtype),
        keys if keys is not None else key, example_loss=example_loss, factory=optimizer,
        batch_size=batch_size, shuffle=key is not None or keys is not None,
        batched=keys is not None,
    )  # fmt: skip
    lrs = grid.astype(dtype)  # The learning rates as the steps used them.
    if keys is None:
        return _result(lrs, outputs, num_steps=num_steps, rule=rule)
    per_key = zip(*map(np.asarray, outputs), strict=True)
    return tuple(_result(lrs, member, num_steps=num_steps, rule=rule) for member in per_key)
