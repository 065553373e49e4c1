"""The run: a `lax.scan` over epochs. Each epoch trains (`train_epoch`), evaluates the loss and
metrics, and checks early stopping and divergence; one call is one compiled program.

An epoch that met a non-finite value runs again with `train_epoch(..., careful=True)`, which
stops before the first such update; only that epoch pays for the per-update checks.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxgd import _shuffle
from jaxgd.loop.batches import count
from jaxgd.loop.epoch import Epoch, train_epoch
from jaxgd.loop.once import once_if
from jaxgd.loop.result import EarlyStopping
from jaxgd.loop.step import batch_loss

__all__ = [
    "RunSpec",
    "RunState",
    "RunInputs",
    "run_epochs",
    "train_checked",
    "early_stop",
    "next_epoch_tells",
]


class RunSpec(NamedTuple):
    """Everything static about a run: a change here compiles a new program."""

    example_loss: Callable  # The loss of ONE example.
    tx: Any  # An optax GradientTransformation, or None for plain `w - lr * grad`.
    metrics: tuple  # ((name, metric), ...): per-example metrics.
    n: int  # Training examples.
    batch_size: int | None  # None: full batch.
    drop_last: bool
    shuffle: str  # "none", "key" or "orders".
    eval_train: bool  # Evaluate the loss and metrics on the training data after each epoch.
    early: EarlyStopping | None
    mesh: Any = None  # A jax.sharding.Mesh: each batch split over its "data" axis.
    epochs: int = 1  # Epochs of one call (a chunk of the run).
    careful: bool = True  # False: an epoch that meets a non-finite value is undone, not redone.


class RunState(NamedTuple):
    """The carry of the scan over epochs."""

    params: Any
    opt_state: Any
    stopped: jax.Array  # shape=(), bool: no further epoch runs (diverged or stopped early).
    diverged: jax.Array  # shape=(), bool.
    diverged_at: jax.Array  # shape=(2,), int32: (epoch, update) of the divergence, or (-1, -1).
    best: jax.Array  # shape=(): best monitored value so far (early stopping).
    wait: jax.Array  # shape=(), int32: epochs since that best value.
    epochs_run: jax.Array  # shape=(), int32.


class RunInputs(NamedTuple):
    """The traced inputs of a run: new values of the same shapes reuse the compiled program."""

    data: Any  # (X, y), leading axis n.
    val_data: Any  # (X_val, y_val), or None.
    lr: jax.Array  # shape=(), the params' dtype: plain GD's learning rate (unused with optax).
    key: Any  # A PRNG key (shuffle "key"), or None.
    orders: Any  # shape=(epochs, n), int32 (shuffle "orders"), or None.
    start_epoch: jax.Array  # shape=(), int32: the number of this call's first epoch.
    active: jax.Array  # shape=(), int32: epochs of this call that run (the rest are NaN).


def _order(spec: RunSpec, inputs: RunInputs, epoch, i):
    """The epoch's example order, or None for data order (full batch needs none)."""
    if spec.batch_size is None or spec.shuffle == "none":
        return None
    if spec.shuffle == "orders":
        return inputs.orders[i]
    return _shuffle.permutation(_shuffle.fold_in(inputs.key, epoch), spec.n)


def _careful(spec: RunSpec, inputs: RunInputs, order, start):
    epoch = train_epoch(
        spec.example_loss,
        *start,
        inputs.data,
        optimizer=_optimizer(spec, inputs),
        batch_size=spec.batch_size,
        order=order,
        drop_last=spec.drop_last,
        careful=True,
        mesh=spec.mesh,
    )
    return (epoch.params, epoch.opt_state), epoch


def _optimizer(spec: RunSpec, inputs: RunInputs):
    return inputs.lr if spec.tx is None else spec.tx


def train_checked(spec: RunSpec, inputs: RunInputs, params, opt_state, order) -> Epoch:
    """One epoch; if it met a non-finite value, the same epoch again, careful (at most once).
    With `spec.careful` False, the fast epoch alone (`_epoch` undoes it if it met one)."""
    fast = train_epoch(
        spec.example_loss,
        params,
        opt_state,
        inputs.data,
        optimizer=_optimizer(spec, inputs),
        batch_size=spec.batch_size,
        order=order,
        drop_last=spec.drop_last,
        mesh=spec.mesh,
    )
    if not spec.careful:
        return fast
    redo = functools.partial(_careful, spec, inputs, order)
    return once_if(~fast.finite, redo, (params, opt_state), fast)[1]


def _evaluate(spec: RunSpec, params, data, prefix: str) -> dict:
    """`{prefix_loss: mean loss, prefix_<metric>: mean metric}` over a whole data set."""
    X, y = data
    fns = (("loss", spec.example_loss), *spec.metrics)
    return {f"{prefix}_{k}": jnp.mean(jax.vmap(fn, (None, 0, 0))(params, X, y)) for k, fn in fns}


def early_stop(early: EarlyStopping, value, best, wait):
    """`(best, wait, stop)` after an epoch whose monitored value is `value`."""
    sign = 1.0 if early.mode == "min" else -1.0
    improved = sign * value < sign * best - early.min_delta
    best = jnp.where(improved, value, best)
    wait = jnp.where(improved, 0, wait + 1)
    return best, wait, wait >= early.patience


def _epoch_evals(spec: RunSpec, inputs: RunInputs, params) -> dict:
    """What is evaluated after an epoch: `{train_loss, train_<metric>, val_...}` as asked."""
    evals = {}
    if spec.eval_train and not next_epoch_tells(spec):
        evals |= _evaluate(spec, params, inputs.data, "train")
    if inputs.val_data is not None:
        evals |= _evaluate(spec, params, inputs.val_data, "val")
    return evals


def _history_shapes(spec: RunSpec, inputs: RunInputs, params):
    """The shapes and dtypes of an epoch's history `(losses, evals)`, from the loss and the
    evaluations of one example: tracing the whole epoch for them cost a tenth of a first `fit`."""
    one = lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype)
    data, val = jax.tree.map(one, (inputs.data, inputs.val_data))
    loss = jax.eval_shape(functools.partial(batch_loss, spec.example_loss), params, *data)
    small = inputs._replace(data=data, val_data=val)
    evals = jax.eval_shape(functools.partial(_epoch_evals, spec, small), params)
    updates = count(spec.n, spec.batch_size, spec.drop_last)
    return jax.ShapeDtypeStruct((updates,), loss.dtype), evals


def _epoch(spec: RunSpec, inputs: RunInputs, i, state: RunState):
    """One epoch of the run: train, evaluate, decide whether to stop."""
    epoch = inputs.start_epoch + i
    trained = train_checked(
        spec, inputs, state.params, state.opt_state, _order(spec, inputs, epoch, i)
    )
    here = jnp.stack([epoch, trained.diverged_update]).astype(jnp.int32)
    diverged_at = jnp.where(trained.finite, state.diverged_at, here)
    evals = _epoch_evals(spec, inputs, trained.params)
    stopped, best, wait = ~trained.finite, state.best, state.wait
    if spec.early is not None:
        best, wait, stop = early_stop(spec.early, evals[spec.early.monitor], best, wait)
        stopped = stopped | stop
    new = RunState(
        trained.params,
        trained.opt_state,
        stopped,
        ~trained.finite,
        diverged_at,
        best,
        wait,
        state.epochs_run + 1,
    )
    if not spec.careful:
        new = undo_if_non_finite(trained.finite, new, state)
    return new, (trained.losses, evals)


def undo_if_non_finite(finite, new: RunState, old: RunState) -> RunState:
    """`new`, or if the epoch met a non-finite value `old` marked stopped and diverged: a run
    compiled without the careful epoch (`spec.careful` False) leaves that epoch to a program
    with it, which `fit` compiles only then (docs/design.md#divergence-compiled-when-met)."""
    undone = old._replace(stopped=jnp.array(True), diverged=jnp.array(True))
    return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, undone)


def _epoch_or_skip(spec: RunSpec, inputs: RunInputs, state: RunState, i):
    """The epoch unless the run stopped (or `i` >= `active`): then NaN history, state unchanged."""
    run = functools.partial(_epoch, spec, inputs, i)
    shapes = _history_shapes(spec, inputs, state.params)
    skipped = jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)
    return once_if(~(state.stopped | (i >= inputs.active)), run, state, skipped)


def next_epoch_tells(spec: RunSpec) -> bool:
    """Whether the full-batch training loss after an epoch is read off the next epoch, whose
    one update computes that very loss before it steps (no metrics, no early stopping on it, one
    device): docs/design.md#the-training-loss-of-a-full-batch-epoch."""
    early_on_train = spec.early is not None and spec.early.monitor.startswith("train_")
    plain = not spec.metrics and spec.mesh is None and not early_on_train
    return spec.eval_train and spec.batch_size is None and plain


def _train_loss(spec: RunSpec, inputs: RunInputs, state: RunState, ran, losses):
    """Per epoch of the call: the next epoch's loss before its update, or for the last epoch
    that ran one pass over the data at the final params; NaN for epochs that did not run."""
    last = _evaluate(spec, state.params, inputs.data, "train")["train_loss"]
    following = jnp.concatenate([losses[1:, 0], jnp.full((1,), jnp.nan, losses.dtype)])
    i = jnp.arange(losses.shape[0])
    return jnp.where(i + 1 < ran, following, jnp.where(i < ran, last, jnp.nan))


@functools.partial(jax.jit, static_argnames=("spec",))
def run_epochs(state: RunState, inputs: RunInputs, *, spec: RunSpec):
    """`spec.epochs` epochs from `state`: the final state, losses (epochs, updates) and evals."""
    body = functools.partial(_epoch_or_skip, spec, inputs)
    before = state.epochs_run
    state, (losses, evals) = lax.scan(body, state, jnp.arange(spec.epochs))
    if next_epoch_tells(spec):  # The epochs that ran are the first `ran` of the call.
        ran = state.epochs_run - before
        evals = {"train_loss": _train_loss(spec, inputs, state, ran, losses), **evals}
    return state, losses, evals
