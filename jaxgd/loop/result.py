"""What a run returns (`FitResult`), how it is told to stop early, and the error of a diverged run."""

from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["EarlyStopping", "FitResult", "DivergenceError", "assemble", "nan_history", "call_back"]


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
    train_loss: jax.Array  # shape=(epochs,): mean example loss on all training data per epoch.
    train_metrics: dict  # name -> shape=(epochs,): each metric's mean on the training data.
    val_loss: jax.Array  # shape=(epochs,): the same on `val_data` (NaN without it).
    val_metrics: dict  # name -> shape=(epochs,).
    diverged: jax.Array  # shape=(), bool: an update met a non-finite loss, gradient or result.
    diverged_epoch: np.int32  # shape=(): the epoch of that update, -1 if none.
    diverged_update: np.int32  # shape=(): its index within the epoch, -1 if none.
    epochs_run: jax.Array  # shape=(), int32: epochs that ran (fewer after early stop/divergence).


class DivergenceError(FloatingPointError):
    """Raised by `fit(..., on_divergence="raise")`; `.result` holds the run up to the divergence."""

    def __init__(self, message: str, result: FitResult):
        super().__init__(message)
        self.result = result


def nan_history(piece, epochs: int):
    """A history piece `(losses, evals)` of `epochs` rows of NaN shaped like `piece`'s rows."""
    rows = lambda v: np.full((epochs,) + np.shape(v)[1:], np.nan, np.asarray(v).dtype)
    losses, evals = piece
    return rows(losses), {k: rows(v) for k, v in evals.items()}


def _cat(arrays):
    # Joined on the host: jnp.concatenate would compile anew for every count of chunks.
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def assemble(state, pieces, metrics) -> FitResult:
    """The `FitResult` of a run's final `RunState` and its history, a list of `(losses, evals)`
    pieces (one per compiled call) joined along the epochs; `metrics` names the metrics."""
    losses = _cat([p[0] for p in pieces])
    evals = {k: _cat([p[1][k] for p in pieces]) for k in pieces[0][1]}
    nan = np.full(losses.shape[:1], np.nan, losses.dtype)
    at = state.diverged_at  # (2,), or traced (`jaxgd.sweep` assembles under `vmap`).
    if not isinstance(at, jax.core.Tracer):  # Indexing dispatched (and compiled) a program each.
        at = np.asarray(at)
    return FitResult(
        params=state.params,
        opt_state=state.opt_state,
        losses=losses,
        train_loss=evals.get("train_loss", nan),
        train_metrics={m: evals.get(f"train_{m}", nan) for m in metrics},
        val_loss=evals.get("val_loss", nan),
        val_metrics={m: evals[f"val_{m}"] for m in metrics if f"val_{m}" in evals},
        diverged=state.diverged,
        diverged_epoch=at[0],
        diverged_update=at[1],
        epochs_run=state.epochs_run,
    )


def call_back(callback, done: int, state, pieces, metrics) -> None:
    """`callback(done, result so far)`; an exception it raises (Ctrl-C included) carries the
    epochs trained so far as `.fit_result`, so that they are not lost."""
    result = assemble(state, pieces, metrics)
    try:
        callback(done, result)
    except BaseException as err:
        err.fit_result = result
        err.add_note("jaxgd: the epochs trained so far are in this exception's `.fit_result`.")
        raise
