"""`fit`: the whole run. Host checks, device placement, compiled chunks of epochs, callbacks."""

import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd.loop.checkpoint as checkpoints
import jaxgd.loop.stream as streaming
from jaxgd import _checks, _host
from jaxgd.loop.result import (
    DivergenceError,
    EarlyStopping,
    FitResult,
    assemble,
    call_back,
    nan_history,
)
from jaxgd.loop.run import RunInputs, RunSpec, RunState, run_epochs
from jaxgd.loop.setup import Prepared, compile_before_copy, prepare, scalar, to_device

__all__ = ["fit"]


def _chunk_inputs(prep: Prepared, inputs: RunInputs, chunk: int, done: int) -> RunInputs:
    """The inputs of the compiled call that runs the epochs after `done`."""
    span = min(chunk, prep.epochs - done)
    orders = None if inputs.orders is None else _pad_rows(inputs.orders[done : done + span], chunk)
    start = scalar(prep.start_epoch + done, "int32")
    return inputs._replace(orders=orders, start_epoch=start, active=scalar(span, "int32"))


def _pad_rows(rows, size):
    """Pads (k, n) to (size, n) by repeating the last row (those epochs do not run)."""
    if rows.shape[0] == size:
        return rows
    return jnp.concatenate([rows, jnp.tile(rows[-1:], (size - rows.shape[0], 1))])


def _run_chunk(prep: Prepared, state: RunState, chunk: int, done: int, spec: RunSpec):
    """The compiled call of the epochs after `done`, by the program without the careful epoch;
    if an epoch met a non-finite value, that program undid it (`run.undo_if_non_finite`) and
    the program with the careful epoch runs from there (compiled only then)."""
    inputs = _chunk_inputs(prep, prep.inputs, chunk, done)
    new, losses, evals = run_epochs(state, inputs, spec=spec)
    if not bool(new.diverged):
        return new, losses, evals
    ran = int(new.epochs_run) - int(state.epochs_run)
    no = scalar(False, "bool")
    again = new._replace(stopped=no, diverged=no, diverged_at=state.diverged_at)
    inputs = _chunk_inputs(prep, prep.inputs, chunk, done + ran)
    new, redone, reevals = run_epochs(again, inputs, spec=spec._replace(careful=True))
    join = lambda a, b: jnp.concatenate([a[:ran], b[: chunk - ran]])
    return new, join(losses, redone), {k: join(v, reevals[k]) for k, v in evals.items()}


def _run_chunks(prep: Prepared, chunk: int, callback, saver=None) -> tuple:
    """The run as compiled calls of `chunk` epochs: the final state and the history pieces.
    A `saver` resumes from its checkpoint (`prep.state`, its history and epochs done) and saves
    after every chunk."""
    spec = prep.spec._replace(epochs=chunk, careful=False)
    compile_before_copy(prep, prep.state, _chunk_inputs(prep, prep.inputs, chunk, 0), spec)
    shared = []  # NumPy arrays that the run reads in place.
    prep = to_device(prep, shared, keep_numpy=True)
    state, pieces, done = prep.state, [], 0
    if saver is not None:
        pieces, done = list(saver.history), saver.done
    while not pieces or (done < prep.epochs and not bool(state.stopped)):
        span = min(chunk, prep.epochs - done)
        state, losses, evals = _run_chunk(prep, state, chunk, done, spec)
        if span < chunk:  # A short last chunk: its padding epochs go (a dispatch per array).
            losses, evals = losses[:span], {k: v[:span] for k, v in evals.items()}
        pieces.append((losses, evals))
        done += span
        if saver is not None:
            saver.save(done, state, pieces)
        if callback is not None:
            call_back(callback, done, state, pieces, prep.metrics)
    if done < prep.epochs:  # Stopped: nothing more will run, NaN for the rest of the history.
        pieces.append(nan_history(pieces[-1], prep.epochs - done))
    if shared:  # The last run's outputs are ready together, once it no longer reads them.
        if isinstance(state.epochs_run, jax.Array):
            state.epochs_run.block_until_ready()
        _host.give_back(shared)  # Not after an exception: a run may still read them.
    return state, pieces


def raise_if_diverged(result: FitResult, on_divergence: str) -> FitResult:
    if on_divergence == "raise" and bool(result.diverged):
        raise DivergenceError(
            f"training diverged at epoch {int(result.diverged_epoch)}, update "
            f"{int(result.diverged_update)}: a non-finite loss, gradient or parameter. Lower the "
            "learning rate; `.result` holds the run up to there with the last finite params.",
            result,
        )
    return result


def _check_call_options(on_divergence, callback, optimizer, params, opt_state):
    if on_divergence not in ("stop", "raise"):
        raise ValueError(f'`on_divergence` must be "stop" or "raise", got {on_divergence!r}.')
    if callback is not None:
        _checks.check_callable(callback, "callback", args=("epochs_done", "result"))
    if isinstance(optimizer, optax.GradientTransformation):
        _checks.check_params(params)
        _checks.check_opt_state(opt_state, optimizer, params)


def _streaming(data, val_data, stream, stream_chunk):
    """`(whether the run streams, val_data)`; streamed validation data move to the host."""
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
    return streamed, val_data


def _chunks_and_saver(prep: Prepared, epochs_per_call, checkpoint, streamed, stream_chunk):
    """`(prep, epochs per compiled call, checkpoint saver or None)`; a saver resumes `prep`."""
    chunk = prep.epochs
    if epochs_per_call is not None:
        chunk = min(prep.epochs, _checks.check_int(epochs_per_call, "epochs_per_call", minimum=1))
    if checkpoint is None:
        return prep, chunk, None
    saver = checkpoints.Saver(checkpoint)
    prep = saver.resume(prep, streamed=streamed, stream_chunk=stream_chunk)
    chunk = chunk if epochs_per_call is not None else checkpoints.default_chunk(prep.epochs)
    return prep, chunk, saver


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
    checkpoint: "str | os.PathLike | checkpoints.Checkpoint | None" = None,
) -> FitResult:
    """Trains `params` by gradient descent: full batch, stochastic or mini-batch.

    Every epoch is `train_epoch`, one `lax.scan` of `update_step` over its batches, and the run
    is one compiled program (or one per chunk of `epochs_per_call` epochs when you ask for a
    `callback`). Data larger than memory stays on the host and is streamed to the device a
    chunk at a time (`stream`).

    Args:
      example_loss: `example_loss(params, x, y) -> scalar`, the loss of ONE example. A batch's
        loss is the mean over its real examples.
      params: initial parameters, a pytree (dict, tuple, nested) of float arrays.
      data: `(X, y)`: arrays (X may be a pytree of arrays) sharing the leading axis n. A NumPy
        array that XLA cannot read in place (not 64-byte aligned) is copied every call into an
        aligned buffer kept while the array lives (`jaxgd._host.borrow`, at most 1 GiB in all).
      epochs: number of passes over the data (0 only evaluates nothing and returns `params`).
      optimizer: an optax `GradientTransformation` (schedules work through it), or a number: the
        learning rate eta of plain gradient descent, `w <- w - eta * grad`. A number stays a traced
        value: a new one does not recompile.
      batch_size: None for full-batch GD, 1 for SGD, m for mini-batch GD. A `batch_size` >= n is
        full batch, as PyTorch's `DataLoader` makes one batch of all n examples.
      key: a PRNG key: the examples are reshuffled every epoch (epoch e uses
        `fold_in(key, e)` and a sort-free permutation, `jaxgd._shuffle`). None (and no
        `orders`): data order.
      orders: int array (epochs, n): each epoch's example order, e.g. a PyTorch `DataLoader`'s,
        to replay a torch run exactly. Exclusive with `key`.
      drop_last: drop the smaller last batch (floor(n/m) updates per epoch) as PyTorch's
        `DataLoader(drop_last=True)`; by default it is an update of its own.
      val_data: optional `(X_val, y_val)` evaluated after every epoch.
      metrics: optional `{name: metric(params, x, y) -> scalar}`, per-example functions averaged
        over the training (and validation) data after every epoch, e.g.
        `{"accuracy": jaxgd.binary_accuracy(model)}`.
      early_stopping: stop when a monitored value stops improving (`EarlyStopping`).
      opt_state: the optimizer state to resume from (`result.opt_state`); default a fresh one.
      start_epoch: the epoch number to resume at, so that `key` draws the same orders as one long
        run: 5 epochs then 5 more with `start_epoch=5` equal 10 at once.
      eval_train: evaluate loss and metrics on all training data after every epoch (one extra
        forward pass; full batch without metrics reads the loss off the next epoch's update and
        pays one pass a call); False fills `train_loss` with NaN and saves that pass. What Keras
        and fastai print as training loss comes from the batch losses, in `.losses`.
      on_divergence: "stop" (default) stops before the first update whose loss, gradient or new
        params are not finite and reports it in the result; "raise" raises `DivergenceError`
        carrying that result.
      callback: `callback(epochs_done, result_so_far)` called between compiled chunks of
        `epochs_per_call` epochs, e.g. for a progress bar. If it raises (Ctrl-C included), the
        exception carries the epochs trained so far as `.fit_result`.
      epochs_per_call: chunk size for `callback` (default: all epochs in one call).
      mesh: a `jax.sharding.Mesh` with a "data" axis (e.g. `jax.make_mesh((8,), ("data",))`):
        each batch is split by rows over that axis, params and optimizer state are replicated,
        and XLA sums the gradients across devices (data parallelism, `jaxgd.distributed`). A
        batch that does not divide over the axis is padded and masked. Default: one device.
      stream: train on `data` where it lives, on the host (NumPy arrays, `np.memmap`): each
        epoch is cut into chunks of `stream_chunk` examples, gathered on the host in the
        epoch's order while the chunk before trains on the device (`jaxgd.loop.stream`). Device
        memory is bounded by two chunks whatever n is; the result equals the in-memory run's
        up to float rounding. Default (None): stream when an array of `data` is an `np.memmap`.
      stream_chunk: examples per compiled call of a streamed run, rounded down to whole
        batches (default: about 32 MiB of examples).
      checkpoint: a directory (or `jaxgd.Checkpoint(path, keep=3)`): the run is saved there
        after every chunk of `epochs_per_call` epochs (default: about 10 checkpoints a run),
        and the same call after a kill resumes from the last checkpoint, ending bit for bit
        as an uninterrupted run; a larger `epochs` continues a finished run. A checkpoint of
        another run is refused (`jaxgd.loop.checkpoint`).

    Returns:
      A `FitResult`: `.params`, `.opt_state`, `.losses` (epochs, updates_per_epoch), per-epoch
      `.train_loss` / `.val_loss` and metrics, `.diverged` with where, and `.epochs_run`.
      Epochs that did not run (after early stopping or divergence) hold NaN.

    Raises:
      ValueError, TypeError: for a bad argument (an unwritable `checkpoint` included), or a
        checkpoint of another run or corrupted, before anything is compiled.
      DivergenceError: with `on_divergence="raise"`, when the run diverged.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2          # least squares through the origin
      >>> X = jnp.array([1.0, 2.0, 3.0, 4.0]); y = 2 * X  # the best w is 2
      >>> r = fit(sq, 0.0, (X, y), epochs=20, optimizer=0.05, batch_size=2, key=jax.random.key(0))
      >>> print(r.losses.shape, round(float(r.params), 4), bool(r.diverged))
      (20, 2) 2.0 False
    """
    _check_call_options(on_divergence, callback, optimizer, params, opt_state)
    streamed, val_data = _streaming(data, val_data, stream, stream_chunk)
    prep = prepare(
        example_loss,
        params,
        data,
        epochs=epochs,
        optimizer=optimizer,
        batch_size=batch_size,
        key=key,
        orders=orders,
        drop_last=drop_last,
        val_data=val_data,
        metrics=metrics,
        early_stopping=early_stopping,
        opt_state=opt_state,
        start_epoch=start_epoch,
        eval_train=eval_train,
        mesh=mesh,
        host=True,
        values_later=not streamed,  # Checked as they are copied (`to_device`).
    )
    prep, chunk, saver = _chunks_and_saver(
        prep, epochs_per_call, checkpoint, streamed, stream_chunk
    )
    if streamed:
        options = dict(callback=callback, epochs_per_call=max(chunk, 1), saver=saver)
        result = streaming.run(prep, stream_chunk=stream_chunk, **options)
    else:
        state, pieces = _run_chunks(prep, chunk, callback, saver)
        result = assemble(state, pieces, prep.metrics)
    return raise_if_diverged(result, on_divergence)
