"""The three descent schedules, compiled as one `lax.scan` per epoch.

With n examples, a batch size m and a learning rate eta, one update is

    w <- w - eta * grad_w (1/|B|) sum_{i in B} loss(w, x_i, y_i)

and the schedules differ only in the batches B of an epoch:

* full-batch GD (`batch_size=None`): B is the whole training set, 1 update per epoch;
* stochastic GD (`batch_size=1`): B is one example, n updates per epoch;
* mini-batch GD (`batch_size=m`): ceil(n / m) batches of m, the last one smaller
  (floor(n / m) with `drop_last=True`), as PyTorch's `DataLoader` makes them.

The examples are visited in a new random order every epoch (`key`), in an order you give
(`orders`, e.g. a PyTorch `DataLoader`'s, to replay a torch run), or in data order. The random
order of epoch e is `_shuffle.permutation(fold_in(key, e), n)`, a keyed permutation drawn without
sorting (XLA's CPU sort behind `jax.random.permutation` takes about half a second for n = 10^6).
It is a deterministic function of `(key, e, n)`, so a resumed run draws the orders of one long
run; it is not the order `jax.random.permutation` would draw.

The whole run is one compiled program: an outer `lax.scan` over epochs whose body is a
`lax.scan` over that epoch's batches, each gathered from the data by its row indices (sliced when
the data are visited in order). A ragged last batch is one more step after that scan, in the
same program, and its loss is the mean over its own examples (a mesh pads and masks batches
instead, see `jaxgd.distributed`). Divergence is checked once
per epoch; only an epoch that met a non-finite value runs again update by update, to stop before
the first one.

Recompiles happen only for a new `example_loss` or metric function, a new optax object, new
shapes or dtypes, or a new `batch_size` / `epochs` / `drop_last`; a new learning rate given as a
number, a new key, new orders and new data values of the same shapes reuse the compiled program.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgd import _checks, _host, _shuffle, distributed

__all__ = [
    "FitResult",
    "EarlyStopping",
    "DivergenceError",
    "fit",
    "full_batch_gd",
    "stochastic_gd",
    "minibatch_gd",
    "batch_loss",
    "update_step",
    "train_epoch",
    "init_opt_state",
]

_traces = 0  # How many times `_run` has been traced: the tests' recompilation counter.


class EarlyStopping(NamedTuple):
    """Stop when `monitor` has not improved for `patience` epochs (the seven-step recipe's "stop")."""

    monitor: str = "val_loss"  # "val_loss", "train_loss", or "val_<metric>" / "train_<metric>".
    patience: int = 5  # Epochs without improvement before stopping.
    mode: str = "min"  # "min" for losses, "max" for accuracies.
    min_delta: float = 0.0  # An improvement must beat the best value by more than this.


class FitResult(NamedTuple):
    """What `fit` returns. Epochs are counted from 0 (from `start_epoch` on a resumed run)."""

    params: Any  # Final params; the last finite ones if the run diverged.
    opt_state: Any  # Final optimizer state; () when `optimizer` was a learning rate.
    losses: jax.Array  # shape=(epochs, updates_per_epoch): each batch's loss, before its update.
    train_loss: (
        jax.Array
    )  # shape=(epochs,): mean example loss on all training data after each epoch.
    train_metrics: dict  # name -> shape=(epochs,): each metric's mean on the training data.
    val_loss: jax.Array  # shape=(epochs,): the same on `val_data` (NaN without it).
    val_metrics: dict  # name -> shape=(epochs,).
    diverged: jax.Array  # shape=(), bool: an update met a non-finite loss, gradient or result.
    diverged_epoch: jax.Array  # shape=(), int32: the epoch of that update, -1 if none.
    diverged_update: jax.Array  # shape=(), int32: its index within the epoch, -1 if none.
    epochs_run: jax.Array  # shape=(), int32: epochs that ran (fewer after early stop/divergence).


class DivergenceError(FloatingPointError):
    """Raised by `fit(..., on_divergence="raise")`; `.result` holds the run up to the divergence."""

    def __init__(self, message: str, result: FitResult):
        super().__init__(message)
        self.result = result


# ---------------------------------------------------------------------------------------------
# The pieces below `fit`, public for users who write their own loops.


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


def init_opt_state(params, *, optimizer):
    """The optimizer state a run starts from: `optimizer.init(params)`, or () for a learning rate."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer.init(params)
    return ()


def _apply(params, grads, opt_state, tx, lr):
    if tx is None:  # Plain gradient descent: w <- w - lr * grad.
        return jax.tree.map(
            lambda p, g: p - (lr * g).astype(jnp.result_type(p)), params, grads
        ), opt_state
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def update_step(example_loss: Callable, params, opt_state, X, y, *, optimizer, mask=None):
    """One update on one batch (steps 2-5 of fastbook's seven: predict, loss, gradient, step).

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: a pytree of float arrays.
      opt_state: from `init_opt_state(params, optimizer=optimizer)`.
      X: batch inputs, shape (m, ...).
      y: batch targets, shape (m, ...).
      optimizer: an optax `GradientTransformation`, or a learning rate for `w - lr * grad`.
      mask: optional bool array, shape (m,), marking the real rows of a padded batch.

    Returns:
      `(params, opt_state, loss)`: the updated params and state, and the batch loss before the update.

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> w, state, loss = update_step(sq, 0.0, (), jnp.array([1.0]), jnp.array([2.0]), optimizer=0.25)
      >>> print(w, loss)
      1.0 4.0
    """
    tx = optimizer if isinstance(optimizer, optax.GradientTransformation) else None
    loss, grads = jax.value_and_grad(batch_loss, argnums=1)(example_loss, params, X, y, mask)
    params, opt_state = _apply(params, grads, opt_state, tx, optimizer)
    return params, opt_state, loss


def _batches(order, *, n: int, batch_size: int, drop_last: bool):
    """Splits an epoch's order (n,) into index rows (B, m) and a mask (B, m), or None if no padding."""
    num = n // batch_size if drop_last else -(-n // batch_size)
    size = num * batch_size
    if size <= n:
        return order[:size].reshape(num, batch_size), None
    padded = jnp.concatenate([order, jnp.zeros(size - n, order.dtype)])
    mask = np.arange(size).reshape(num, batch_size) < n  # A constant: only the last row has False.
    return padded.reshape(num, batch_size), jnp.asarray(mask)


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
):
    """One epoch: a `lax.scan` of `update_step` over the batches of `order`.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar` for ONE example.
      params: a pytree of float arrays.
      opt_state: from `init_opt_state`.
      data: `(X, y)`, arrays sharing the leading axis n.
      optimizer: an optax `GradientTransformation`, or a learning rate.
      batch_size: None for full batch, else m (static: a new value compiles anew under jit).
      order: int array (n,), the order to visit the examples in; None for data order.
      drop_last: drop a smaller last batch instead of padding and masking it.

    Returns:
      `(params, opt_state, losses)` with `losses` of shape (updates_per_epoch,).

    Examples:
      >>> import jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> data = (jnp.ones(5), 2 * jnp.ones(5))
      >>> w, _, losses = train_epoch(sq, 0.0, (), data, optimizer=0.25, batch_size=2)
      >>> print(losses.shape, round(float(w), 4))
      (3,) 1.75
    """
    X, y = jax.tree.map(jnp.asarray, data)
    if batch_size is None:
        params, opt_state, loss = update_step(
            example_loss, params, opt_state, X, y, optimizer=optimizer
        )
        return params, opt_state, loss[None]
    n = jax.tree.leaves(X)[0].shape[0]
    order = jnp.arange(n) if order is None else order
    idx, mask = _batches(order, n=n, batch_size=batch_size, drop_last=drop_last)

    def body(carry, row):
        i, m = row
        xb, yb = jax.tree.map(lambda a: a[i], (X, y))
        p, s, loss = update_step(example_loss, *carry, xb, yb, optimizer=optimizer, mask=m)
        return (p, s), loss

    (params, opt_state), losses = lax.scan(body, (params, opt_state), (idx, mask))
    return params, opt_state, losses


# ---------------------------------------------------------------------------------------------
# `fit`: the whole run, compiled once.


class _Plan(NamedTuple):
    """Everything static about a run: a change here compiles a new program."""

    n: int
    batch_size: int | None  # None: full batch.
    drop_last: bool
    shuffle: str  # "none", "key" or "orders".
    eval_train: bool
    early: EarlyStopping | None
    mesh: jax.sharding.Mesh | None = None  # Each batch split over its "data" axis (distributed.py).


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _evaluate(example_loss, metrics, params, data):
    """Mean loss and metrics over a whole data set."""
    X, y = data
    out = {"loss": jnp.mean(jax.vmap(example_loss, (None, 0, 0))(params, X, y))}
    for name, fn in metrics:
        out[name] = jnp.mean(jax.vmap(fn, (None, 0, 0))(params, X, y))
    return out


# How an epoch's shuffled batches are taken from the data (measured on a 2-core x86 CPU, d = 20):
# batches of 2 to 511 rows are cut from one gathered copy of the data per epoch (2-3x faster than
# a gather per step for m = 32..256, n = 10^4..10^6); larger batches are gathered step by step
# (20% faster at m = 1024, n = 10^6, and no copy of the data); single examples too while the data
# stay in cache (a copy costs 25% more at n = 10^4, but saves 40% at n = 10^5). Never a copy
# beyond `_COPY_BYTES_MAX`.
_GATHER_PER_STEP_FROM = 512
_CACHED_BYTES = 2 * 2**20
_COPY_BYTES_MAX = 2**30


def _nbytes(tree) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


class _State(NamedTuple):
    """The carry of the scan over epochs."""

    params: Any
    opt_state: Any
    stopped: jax.Array  # shape=(), bool: no further epoch runs (diverged or stopped early).
    diverged: jax.Array  # shape=(), bool.
    diverged_at: jax.Array  # shape=(2,), int32: (epoch, update) of the divergence, or (-1, -1).
    best: jax.Array  # shape=(): best monitored value so far (early stopping).
    wait: jax.Array  # shape=(), int32: epochs since that best value.
    epochs_run: jax.Array  # shape=(), int32.


@functools.partial(jax.jit, static_argnames=("example_loss", "tx", "metrics", "plan", "epochs"))
def _run(
    state, data, val_data, lr, key, orders, start_epoch, active, *,
    example_loss, tx, metrics, plan: _Plan, epochs: int,
):  # fmt: skip
    """`epochs` epochs of the plan; epoch i runs only while i < `active` and nothing stopped it."""
    global _traces
    _traces += 1
    X, y = data
    one = jax.tree.map(lambda a: a[0], (X, y))
    nan = jnp.full((), jnp.nan, jax.eval_shape(example_loss, state.params, *one).dtype)

    # Full batch with vector and scalar params only (linear models): XLA:CPU computes the gradient
    # over all n rows faster as the mean of the per-example gradients, a fused multiply-and-sum,
    # than as the transposed matrix-vector product that differentiating the mean gives (7.2
    # against 9.4 ms per epoch at n = 10^6, d = 20; no gain measured for mini-batches). With
    # matrix params that product is a matrix product, better left to it.
    per_example = plan.batch_size is None and all(
        jnp.ndim(p) <= 1 for p in jax.tree.leaves(state.params)
    )

    def loss_and_grads(params, X, y, mask):
        if not per_example or mask is not None:
            return jax.value_and_grad(batch_loss, argnums=1)(example_loss, params, X, y, mask)
        losses, grads = jax.vmap(jax.value_and_grad(example_loss), (None, 0, 0))(params, X, y)
        return jnp.mean(losses), jax.tree.map(lambda g: jnp.mean(g, 0), grads)

    def update(params, opt_state, batch):
        """One update on `batch` = (xb, yb, mask); also whether it was all finite."""
        loss, grads = loss_and_grads(params, *batch)
        new_params, new_state = _apply(params, grads, opt_state, tx, lr)
        finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(new_params)
        return new_params, new_state, loss, finite

    def scan_epoch(step, carry, xs, get, rest):
        """`step` over the batches `get(x)` of `xs`, then over the smaller last batch `rest`."""
        carry, losses = lax.scan(lambda c, x: step(c, get(x)), carry, xs)
        if rest is None:
            return carry, losses
        carry, last = step(carry, rest)
        return carry, jnp.concatenate([losses, last[None]])

    def careful(params, opt_state, diverged_at, epoch, batches):
        """The epoch again, stopping before the first update whose loss, gradient or result is
        not finite: the last finite params stay, that update's loss is kept, later ones are NaN."""

        def step(carry, batch):
            params, opt_state, diverged, diverged_at, j = carry
            new_params, new_state, loss, finite = update(params, opt_state, batch)
            ok = ~diverged & finite
            pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
            here = jnp.stack([epoch, j]).astype(jnp.int32)
            diverged_at = jnp.where(~diverged & ~finite, here, diverged_at)
            loss = jnp.where(diverged, nan, loss)
            carry = (pick(new_params, params), pick(new_state, opt_state), diverged | ~finite)
            return carry + (diverged_at, j + 1), loss

        carry = (params, opt_state, jnp.array(False), diverged_at, jnp.int32(0))
        (params, opt_state, diverged, diverged_at, _), losses = scan_epoch(step, carry, *batches)
        return params, opt_state, diverged, diverged_at, losses

    def batches(epoch, i):
        """`(xs, get, rest)`: the scan inputs of the epoch's batches of m rows, `get(x)` -> one
        batch (xb, yb, mask), and the smaller last batch, or None. That last batch is a step of
        its own rather than a padded and masked row of the scan: the mask cost every step up to
        30% (m = 32 and 1024 here)."""
        m = plan.batch_size
        full = plan.n // m
        ragged = not plan.drop_last and full * m < plan.n
        if plan.shuffle == "none":  # Slices of the data, no copy.
            cut = lambda s: jax.tree.map(lambda a: lax.dynamic_slice_in_dim(a, s, m), (X, y))
            rest = (*jax.tree.map(lambda a: a[full * m :], (X, y)), None) if ragged else None
            return jnp.arange(0, full * m, m, dtype=jnp.int32), lambda s: (*cut(s), None), rest
        if plan.shuffle == "orders":
            order = orders[i]
        else:
            order = _shuffle.permutation(jax.random.fold_in(key, epoch), plan.n)
        idx = order[: full * m].reshape(full, m)
        take = lambda rows: jax.tree.map(lambda a: a[rows], (X, y))
        rest = (*take(order[full * m :]), None) if ragged else None
        size = _nbytes(data)
        small = m < _GATHER_PER_STEP_FROM and (m > 1 or size > _CACHED_BYTES)
        if small and size <= _COPY_BYTES_MAX:
            # XLA:CPU gathers row by row slowly: one gather of the epoch's batches, cut per step.
            return take(idx), lambda r: (*r, None), rest
        return idx, lambda r: (*take(r), None), rest

    def train(state: _State, epoch, i):
        """One epoch: `(params, opt_state, diverged, diverged_at)` and the updates' losses."""
        if plan.batch_size is None:
            xs, get, rest = jnp.zeros(1), lambda _: (X, y, None), None
        else:
            xs, get, rest = batches(epoch, i)
        if plan.mesh is not None:  # Each batch's rows spread over the mesh's "data" axis.
            get = lambda x, get=get: distributed.shard_batch(get(x), plan.mesh)
            rest = None if rest is None else distributed.shard_batch(rest, plan.mesh)

        def fast(carry, batch):  # No per-update select: divergence is rare, check the epoch.
            params, opt_state, finite = carry
            params, opt_state, loss, ok = update(params, opt_state, batch)
            return (params, opt_state, finite if tx is None else finite & ok), loss

        carry = (state.params, state.opt_state, jnp.array(True))
        (params, opt_state, finite), losses = scan_epoch(fast, carry, xs, get, rest)
        if tx is None:  # A NaN or inf in `w - lr * g` stays there: the losses and params tell.
            finite = jnp.all(jnp.isfinite(losses)) & _all_finite(params)
        result = (params, opt_state, jnp.array(False), state.diverged_at, losses)
        # Only if an update was not finite: redo the epoch update by update. A while loop rather
        # than a cond, so that under `jax.vmap` it runs only when some member diverged. The
        # epoch's start enters through the loop's carry and the body overwrites it (it runs at
        # most once, so nothing reads it again): a body that read the start from outside the loop
        # would be loop-invariant, and XLA hoisted it out of the loop under `jax.vmap`, running
        # the careful epoch every epoch (twice the time of `jaxgd.sweep`).
        again = (xs, get, rest)

        def redo(carry):
            out = careful(*carry[1], epoch, again)
            return True, (out[0], out[1], out[3]), out

        start = (state.params, state.opt_state, state.diverged_at)
        result = lax.while_loop(lambda c: ~c[0], redo, (finite, start, result))[2]
        return result[:4], result[4]

    def evaluate(params):
        out = {}
        if plan.eval_train:
            out.update(
                {f"train_{k}": v for k, v in _evaluate(example_loss, metrics, params, data).items()}
            )
        if val_data is not None:
            out.update(
                {
                    f"val_{k}": v
                    for k, v in _evaluate(example_loss, metrics, params, val_data).items()
                }
            )
        return out

    def run_epoch(state: _State, i):
        epoch = start_epoch + i
        carry, losses = train(state, epoch, i)
        params, opt_state, diverged, diverged_at = carry[:4]
        evals = evaluate(params)
        stopped, best, wait = diverged, state.best, state.wait
        if plan.early is not None:
            value = evals[plan.early.monitor]
            sign = 1.0 if plan.early.mode == "min" else -1.0
            improved = sign * value < sign * best - plan.early.min_delta
            best = jnp.where(improved, value, best)
            wait = jnp.where(improved, 0, wait + 1)
            stopped = stopped | (wait >= plan.early.patience)
        new = _State(
            params, opt_state, stopped, diverged, diverged_at, best, wait, state.epochs_run + 1
        )
        return new, (losses, evals)

    def skip_epoch(state: _State, i):
        shapes = jax.eval_shape(run_epoch, state, i)[1]
        return state, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

    def epoch_body(state: _State, i):
        # Run the epoch unless this run stopped: a while loop that runs once or never, rather
        # than a cond, because under `jax.vmap` (`jaxgd.sweep`) a cond on the per-member
        # `stopped` becomes a select that runs both branches on every operand broadcast to all
        # members (the training data included); the loop runs once for all and keeps, per
        # member, the state and the NaN history of a member that stopped.
        _, skipped = skip_epoch(state, i)

        def once(carry):
            _, state, _ = carry
            return (jnp.array(False), *run_epoch(state, i))

        pending = ~(state.stopped | (i >= active))
        _, state, out = lax.while_loop(lambda c: c[0], once, (pending, state, skipped))
        return state, out

    state, (losses, evals) = lax.scan(epoch_body, state, jnp.arange(epochs))
    return state, losses, evals


class _Prepared(NamedTuple):
    """The checked arguments of `_run`, as `fit` (and `jaxgd.sweep`) build them."""

    static: dict  # example_loss, tx, metrics, plan: `_run`'s static arguments.
    state: _State  # The initial epoch carry.
    data: Any  # (X, y) as jax arrays.
    val_data: Any  # (X_val, y_val) as jax arrays, or None.
    lr: jax.Array  # shape=(), the params' dtype: plain GD's learning rate (0 with optax).
    key: Any  # A PRNG key or None.
    orders: Any  # int32 (epochs, n) or None.
    metrics: dict  # name -> per-example metric.
    epochs: int
    start_epoch: int


def _prepare(
    example_loss, params, data, *, epochs, optimizer, batch_size=None, key=None, orders=None,
    drop_last=False, val_data=None, metrics=None, early_stopping=None, opt_state=None,
    start_epoch=0, eval_train=True, shared=None, mesh=None, host=False,
) -> _Prepared:  # fmt: skip
    """Checks `fit`'s arguments on the host, before anything compiles, and builds `_run`'s inputs.

    The checks read NumPy data where they are. With `host` the data and val_data stay the
    arrays they are (`fit` compiles first, or streams them: `jaxgd.stream`); otherwise they
    are moved to the device (`_to_device`; `shared` collects the NumPy arrays read in place).
    """
    _checks.check_callable(example_loss, "example_loss")
    mesh = distributed.check_mesh(mesh)
    epochs = _checks.check_int(epochs, "epochs", minimum=0, maximum=_checks.INT32_MAX)
    start_epoch = _checks.check_int(start_epoch, "start_epoch", minimum=0)
    X, y, n = _checks.check_data(data, "data")
    _checks.check_params(params)
    tx, lr = _checks.check_learning_rate(optimizer)
    key = _checks.check_key(key)
    if key is not None and orders is not None:
        raise ValueError(
            "Pass `key` (shuffle every epoch) or `orders` (explicit orders), not both."
        )
    if orders is not None:
        orders = _checks.check_orders(orders, epochs=epochs, n=n)
    if batch_size is not None:
        batch_size = _checks.check_int(
            batch_size, "batch_size", minimum=1, fix=" Use None for full-batch gradient descent."
        )
        if batch_size > n and drop_last:
            raise ValueError(
                f"`batch_size`={batch_size} > n={n} with `drop_last=True` leaves no batch at all; "
                "use a smaller batch_size or drop_last=False."
            )
        if batch_size >= n and not drop_last:
            batch_size = None  # One batch of all n examples: full batch.
    drop_last = _checks.check_bool(drop_last, "drop_last")
    eval_train = _checks.check_bool(eval_train, "eval_train")
    metrics = _checks.check_metrics(metrics)
    _checks.check_example_fn(example_loss, params, X, y, "example_loss")
    for name, fn in metrics.items():
        _checks.check_example_fn(fn, params, X, y, f"metrics[{name!r}]", what="metric")
    if val_data is not None:
        val_data = _checks.check_val_data(val_data, X, y)
    if early_stopping is not None:
        early_stopping = _check_early_stopping(early_stopping, metrics, val_data, eval_train)
    _checks.check_history(epochs=epochs, start_epoch=start_epoch, n=n, batch_size=batch_size,
                          drop_last=drop_last, series=2 * (1 + len(metrics)),
                          itemsize=jnp.result_type(*jax.tree.leaves(params)).itemsize)  # fmt: skip
    # Host values reach the device by `device_put`: `jnp.asarray` compiles a small XLA program per
    # new shape and dtype (jax 0.10), time and memory a first `fit` spent for nothing.
    put = lambda value, dtype=None: jax.device_put(np.asarray(value, dtype))

    def owned(leaf):  # A copy of a NumPy leaf: `device_put` reads aligned NumPy memory in place.
        if isinstance(leaf, (np.ndarray, np.generic)):
            return jax.device_put(np.array(leaf))
        return jnp.asarray(leaf)  # A jax array as it is; a Python float weakly typed.

    params = jax.tree.map(owned, params)
    dtype = jnp.result_type(*jax.tree.leaves(params))
    lr = put(0.0 if lr is None else lr, dtype)
    opt_state = init_opt_state(params, optimizer=optimizer) if opt_state is None else opt_state
    plan = _Plan(
        n=n,
        batch_size=batch_size,
        drop_last=drop_last,
        shuffle="orders" if orders is not None else "key" if key is not None else "none",
        eval_train=eval_train,
        early=early_stopping,
        mesh=mesh,
    )
    static = dict(example_loss=example_loss, tx=tx, metrics=tuple(metrics.items()), plan=plan)

    worst = np.inf if early_stopping is None or early_stopping.mode == "min" else -np.inf
    state = _State(
        params, opt_state, put(False), put(False), put([-1, -1], np.int32), put(worst, dtype),
        put(0, np.int32), put(0, np.int32),
    )  # fmt: skip
    if mesh is not None:  # Params and optimizer state on every device of the mesh.
        state, lr = distributed.replicate((state, lr), mesh)
    prep = _Prepared(static, state, (X, y), val_data, lr, key, orders, metrics, epochs, start_epoch)
    return prep if host else _to_device(prep, [] if shared is None else shared)


def _to_device(prep: _Prepared, shared: list) -> _Prepared:
    """`prep` with its data and val_data as jax arrays (on every device of a mesh)."""
    data, val_data = (None if d is None else jax.tree.map(jnp.asarray, _host.to_jax(d, shared))
                      for d in (prep.data, prep.val_data))  # fmt: skip
    mesh = prep.static["plan"].mesh
    if mesh is not None:
        data, val_data = distributed.replicate((data, val_data), mesh)
    return prep._replace(data=data, val_data=val_data)


def _compile_before_copy(prep: _Prepared, args: tuple, static: dict) -> None:
    """Compiles `_run` for the first call while the data are still the caller's NumPy arrays,
    then gives the compiler's freed memory back, so that the copy of the data for the device
    does not stack on top of it (peak memory 507 -> about 420 MiB for 80 MB of data here).

    XLA frees most of what it allocates while compiling, but the C allocator keeps it in the
    process (about 90 MiB for `_run`). Compiled from the same shapes and dtypes, the call that
    follows finds the program in jit's cache. Nothing happens for data already on the device,
    or on a mesh (its arrays carry shardings that NumPy arrays do not).
    """
    if prep.static["plan"].mesh is not None or not any(
        isinstance(a, np.ndarray) for a in jax.tree.leaves((prep.data, prep.val_data))
    ):
        return
    traces = _traces
    _run.lower(*args, **static).compile()
    if _traces != traces:  # A new program was compiled.
        _host.release_free_memory()


def fit(
    example_loss: Callable,
    params,
    data,
    *,
    epochs: int,
    optimizer,
    batch_size: int | None = None,
    key=None,
    orders=None,
    drop_last: bool = False,
    val_data=None,
    metrics: dict[str, Callable] | None = None,
    early_stopping: EarlyStopping | None = None,
    opt_state=None,
    start_epoch: int = 0,
    eval_train: bool = True,
    on_divergence: str = "stop",
    callback: Callable[[int, FitResult], None] | None = None,
    epochs_per_call: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    stream: bool | None = None,
    stream_chunk: int | None = None,
) -> FitResult:
    """Trains `params` by gradient descent: full batch, stochastic or mini-batch.

    Every epoch is one `lax.scan` over its batches and the run is one compiled program (or one
    per chunk of `epochs_per_call` epochs when you ask for a `callback`). Data larger than
    memory stays on the host and is streamed to the device a chunk at a time (`stream`).

    Args:
      example_loss: `example_loss(params, x, y) -> scalar`, the loss of ONE example. A batch's
        loss is the mean over its real examples.
      params: initial parameters, a pytree (dict, tuple, nested) of float arrays.
      data: `(X, y)`: arrays (X may be a pytree of arrays) sharing the leading axis n.
      epochs: number of passes over the data (0 only evaluates nothing and returns `params`).
      optimizer: an optax `GradientTransformation` (schedules work through it), or a number: the
        learning rate eta of plain gradient descent, `w <- w - eta * grad`. A number stays a traced
        value: a new one does not recompile.
      batch_size: None for full-batch GD, 1 for SGD, m for mini-batch GD. A `batch_size` >= n is
        full batch, as PyTorch's `DataLoader` makes one batch of all n examples.
      key: a PRNG key: the examples are reshuffled every epoch (epoch e uses
        `fold_in(key, e)` and a sort-free permutation, see the module docstring). None (and no
        `orders`): data order.
      orders: int array (epochs, n): each epoch's example order, e.g. a PyTorch `DataLoader`'s,
        to replay a torch run exactly. Exclusive with `key`.
      drop_last: drop the smaller last batch (floor(n/m) updates per epoch) as PyTorch's
        `DataLoader(drop_last=True)`; by default it is kept, padded and masked.
      val_data: optional `(X_val, y_val)` evaluated after every epoch.
      metrics: optional `{name: metric(params, x, y) -> scalar}`, per-example functions averaged
        over the training (and validation) data after every epoch, e.g.
        `{"accuracy": jaxgd.binary_accuracy(model)}`.
      early_stopping: stop when a monitored value stops improving (`EarlyStopping`).
      opt_state: the optimizer state to resume from (`result.opt_state`); default a fresh one.
      start_epoch: the epoch number to resume at, so that `key` draws the same orders as one long
        run: 5 epochs then 5 more with `start_epoch=5` equal 10 at once.
      eval_train: evaluate loss and metrics on all training data after every epoch (one extra
        forward pass); False fills `train_loss` with NaN and saves that pass.
      on_divergence: "stop" (default) stops before the first update whose loss, gradient or new
        params are not finite and reports it in the result; "raise" raises `DivergenceError`
        carrying that result.
      callback: `callback(epochs_done, result_so_far)` called between compiled chunks of
        `epochs_per_call` epochs, e.g. for a progress bar.
      epochs_per_call: chunk size for `callback` (default: all epochs in one call).
      mesh: a `jax.sharding.Mesh` with a "data" axis (e.g. `jax.make_mesh((8,), ("data",))`):
        each batch is split by rows over that axis, params and optimizer state are replicated,
        and XLA sums the gradients across devices (data parallelism, `jaxgd.distributed`). A
        batch that does not divide over the axis is padded and masked. Default: one device.
      stream: train on `data` where it lives, on the host (NumPy arrays, `np.memmap`): each
        epoch is cut into chunks of `stream_chunk` examples, gathered on the host in the
        epoch's order while the chunk before trains on the device (`jaxgd.stream`). Device
        memory is bounded by two chunks whatever n is; the result equals the in-memory run's
        up to float rounding. Default (None): stream when an array of `data` is an `np.memmap`.
      stream_chunk: examples per compiled call of a streamed run, rounded down to whole
        batches (default: about 32 MiB of examples).

    Returns:
      A `FitResult`: `.params`, `.opt_state`, `.losses` (epochs, updates_per_epoch), per-epoch
      `.train_loss` / `.val_loss` and metrics, `.diverged` with where, and `.epochs_run`.
      Epochs that did not run (after early stopping or divergence) hold NaN.

    Raises:
      ValueError, TypeError: for a bad argument, before anything is compiled.
      DivergenceError: with `on_divergence="raise"`, when the run diverged.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2          # least squares through the origin
      >>> X = jnp.array([1.0, 2.0, 3.0, 4.0]); y = 2 * X  # the best w is 2
      >>> r = fit(sq, 0.0, (X, y), epochs=20, optimizer=0.05, batch_size=2, key=jax.random.key(0))
      >>> print(r.losses.shape, round(float(r.params), 4), bool(r.diverged))
      (20, 2) 2.0 False
    """
    if on_divergence not in ("stop", "raise"):
        raise ValueError(f'`on_divergence` must be "stop" or "raise", got {on_divergence!r}.')
    if callback is not None:
        _checks.check_callable(callback, "callback", args=("epochs_done", "result"))
    if isinstance(optimizer, optax.GradientTransformation):
        _checks.check_params(params)
        _checks.check_opt_state(opt_state, optimizer, params)
    from jaxgd import stream as streaming  # Imported here: it builds on this module.

    streamed = streaming.wanted(data, stream)
    if streamed:
        streaming.check_host_data(data)
        if val_data is not None:  # Validation data may be small device arrays: to the host.
            val_data = jax.tree.map(np.asarray, val_data)
    elif stream_chunk is not None:
        raise ValueError(
            "`stream_chunk` sets the chunks of a streamed run; pass `stream=True` (NumPy or "
            "np.memmap data) to stream, or drop `stream_chunk`."
        )
    shared = []  # NumPy arrays that the run reads in place.
    prep = _prepare(
        example_loss, params, data, epochs=epochs, optimizer=optimizer, batch_size=batch_size,
        key=key, orders=orders, drop_last=drop_last, val_data=val_data, metrics=metrics,
        early_stopping=early_stopping, opt_state=opt_state, start_epoch=start_epoch,
        eval_train=eval_train, mesh=mesh, host=True,
    )  # fmt: skip
    epochs = prep.epochs
    chunk = (
        epochs
        if epochs_per_call is None
        else min(epochs, _checks.check_int(epochs_per_call, "epochs_per_call", minimum=1))
    )
    if streamed:
        plan = prep.static["plan"]
        rows = streaming.check_chunk(
            stream_chunk,
            n=plan.n,
            batch_size=plan.batch_size,
            row_bytes=_nbytes(prep.data) // plan.n,
        )
        result = streaming.run(prep, rows=rows, callback=callback, epochs_per_call=max(chunk, 1))
        return _raise_if_diverged(result, on_divergence)
    static = dict(prep.static, epochs=chunk)

    def args(state, data, val_data, done):
        """`_run`'s arguments for the chunk of epochs after `done`."""
        span = min(chunk, epochs - done)
        orders = None if prep.orders is None else _pad_rows(prep.orders[done : done + span], chunk)
        return (state, data, val_data, prep.lr, prep.key, orders,
                np.int32(prep.start_epoch + done), np.int32(span))  # fmt: skip

    _compile_before_copy(prep, args(prep.state, prep.data, prep.val_data, 0), static)
    shared = []  # NumPy arrays that the run reads in place.
    prep = _to_device(prep, shared)
    state, metrics = prep.state, prep.metrics
    pieces, done = [], 0
    while True:
        span = min(chunk, epochs - done)
        state, losses, evals = _run(*args(state, prep.data, prep.val_data, done), **static)
        pieces.append((losses[:span], {k: v[:span] for k, v in evals.items()}))
        done += span
        if callback is not None:
            callback(done, _result(state, pieces, metrics))
        if done >= epochs:
            break
        if bool(state.stopped):  # Nothing more will run: fill the rest of the history with NaN.
            losses, evals = pieces[-1]
            rest = epochs - done
            nan_rows = lambda v, rest=rest: np.full((rest,) + v.shape[1:], np.nan, v.dtype)
            pieces.append((nan_rows(losses), {k: nan_rows(v) for k, v in evals.items()}))
            break
    result = _result(state, pieces, metrics)
    if shared:
        jax.block_until_ready(result)
    return _raise_if_diverged(result, on_divergence)


def _raise_if_diverged(result: FitResult, on_divergence: str) -> FitResult:
    if on_divergence == "raise" and bool(result.diverged):
        raise DivergenceError(
            f"training diverged at epoch {int(result.diverged_epoch)}, update "
            f"{int(result.diverged_update)}: a non-finite loss, gradient or parameter. Lower the "
            "learning rate; `.result` holds the run up to there with the last finite params.",
            result,
        )
    return result


def _pad_rows(rows, size):
    """Pads (k, n) to (size, n) by repeating the last row (those epochs do not run)."""
    if rows.shape[0] == size:
        return rows
    return jnp.concatenate([rows, jnp.tile(rows[-1:], (size - rows.shape[0], 1))])


def _result(state: _State, pieces, metrics) -> FitResult:
    # Chunks are joined on the host: jnp.concatenate would compile anew for every chunk count.
    cat = lambda arrays: arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    losses = cat([p[0] for p in pieces])
    evals = {k: cat([p[1][k] for p in pieces]) for k in pieces[0][1]}
    nan = np.full(losses.shape[:1], np.nan, losses.dtype)
    return FitResult(
        params=state.params,
        opt_state=state.opt_state,
        losses=losses,
        train_loss=evals.get("train_loss", nan),
        train_metrics={m: evals.get(f"train_{m}", nan) for m in metrics},
        val_loss=evals.get("val_loss", nan),
        val_metrics={m: evals[f"val_{m}"] for m in metrics if f"val_{m}" in evals},
        diverged=state.diverged,
        diverged_epoch=state.diverged_at[0],
        diverged_update=state.diverged_at[1],
        epochs_run=state.epochs_run,
    )


def _check_early_stopping(early, metrics, val_data, eval_train) -> EarlyStopping:
    if not isinstance(early, EarlyStopping):
        raise TypeError(
            f"`early_stopping` must be a jaxgd.EarlyStopping, got {type(early).__name__}."
        )
    allowed = [f"{part}_{name}" for part, on in (("train", eval_train), ("val", val_data is not None))
               if on for name in ("loss", *metrics)]  # fmt: skip
    if early.monitor not in allowed:
        raise ValueError(
            f"`early_stopping.monitor` is {early.monitor!r}, which this run does not compute; "
            f"choose one of {allowed} (val_* needs `val_data`, metrics need `metrics`)."
        )
    patience = _checks.check_int(early.patience, "early_stopping.patience", minimum=1)
    if early.mode not in ("min", "max"):
        raise ValueError(f'`early_stopping.mode` must be "min" or "max", got {early.mode!r}.')
    min_delta = _checks.check_real(early.min_delta, "early_stopping.min_delta", minimum=0.0)
    return early._replace(patience=patience, min_delta=min_delta)


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
    return fit(example_loss, params, data, epochs=epochs, optimizer=optimizer, batch_size=None,
               **options)  # fmt: skip


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
    return fit(example_loss, params, data, epochs=epochs, optimizer=optimizer, batch_size=1,
               **options)  # fmt: skip


def minibatch_gd(example_loss, params, data, *, epochs, optimizer, batch_size: int,
                 **options) -> FitResult:  # fmt: skip
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
    return fit(example_loss, params, data, epochs=epochs, optimizer=optimizer,
               batch_size=batch_size, **options)  # fmt: skip
