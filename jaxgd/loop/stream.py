"""Training on data that stays on the host: NumPy arrays or an `np.memmap` larger than memory.

`jaxgd.fit(..., stream=True)` (the default for `np.memmap` data) never puts the whole data set
on the device. Each epoch is cut into chunks of `stream_chunk` examples (whole batches): the
host gathers a chunk's rows in the epoch's order into one of two reusable buffers, the device
trains on it with the epoch `fit` runs in memory (`train_epoch` with its divergence check,
over the chunk in its order), and while it does, the host gathers the next chunk. Device memory is
bounded by two chunks whatever n is; host memory by the two buffers.

The orders are the in-memory run's: the keyed permutation of epoch e is computed a chunk at a
time (`_shuffle.permutation_slice`), and `orders` rows are read a chunk at a time, so a streamed
run equals `fit` on the same data in memory up to float rounding (a ragged last batch inside a
chunk, the sums over chunks of the training loss and of a full-batch gradient).

Full-batch gradient descent sums the per-example gradients chunk by chunk and makes one update
per epoch. Losses and metrics after each epoch are sums over chunks read in data order.

A memmap's rows are read through its mapping: the pages the kernel maps in while gathering are
page cache (they count in the resident set, but the kernel can drop them at any time); the
process's own memory (anonymous pages) stays bounded.
"""

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import _checks, _host, _shuffle, distributed
from jaxgd.loop.result import FitResult, assemble, call_back, nan_history
from jaxgd.loop.run import RunInputs, RunSpec, RunState, early_stop, train_checked
from jaxgd.loop.step import all_finite, apply_update

__all__ = ["wanted", "check_host_data", "check_chunk", "run"]

CHUNK_BYTES = 32 * 2**20  # Default size of a chunk: this many bytes of examples (X and y).


def wanted(data, stream) -> bool:
    """Whether `fit` streams `data`: `stream` if given, else whether any array is an np.memmap."""
    if stream is not None:
        if not isinstance(stream, (bool, np.bool_)):
            raise TypeError(
                f"`stream` must be True, False or None (stream np.memmap data), got {stream!r}."
            )
        return bool(stream)
    return any(isinstance(leaf, np.memmap) for leaf in jax.tree.leaves(data))


def check_host_data(data, name: str = "data"):
    """Each array of `data` must be a NumPy array (np.memmap included) to be streamed."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return  # `check_data` explains the expected pair.
    for part, tree in zip("Xy", data, strict=True):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            if hasattr(leaf, "shape") and not isinstance(leaf, np.ndarray):
                kind = "jax.Array" if isinstance(leaf, jax.Array) else type(leaf).__name__
                raise TypeError(
                    f"`{name}` {part}{jax.tree_util.keystr(path)} is a {kind}, but `stream=True` "
                    "streams NumPy arrays (or np.memmap) from the host; pass `np.asarray(...)`, "
                    "or `stream=False` to train on arrays already on the device."
                )


def check_chunk(stream_chunk, *, n: int, batch_size: int | None, row_bytes: int) -> int:
    """Examples per compiled call: `stream_chunk` (default about `CHUNK_BYTES` of examples),
    rounded down to whole batches and at most n."""
    m = 1 if batch_size is None else batch_size
    if stream_chunk is None:
        rows = max(m, CHUNK_BYTES // max(row_bytes, 1) // m * m)
    else:
        rows = _checks.check_int(stream_chunk, "stream_chunk", minimum=1)
        if rows < m:
            raise ValueError(
                f"`stream_chunk`={rows} is smaller than `batch_size`={m}: a chunk holds whole "
                "batches; pass at least one batch's worth of examples."
            )
        rows = rows // m * m
    return min(rows, -(-n // m) * m)


SPLIT_ROWS = 4096  # Gathers of this many rows or more run on two threads.


@functools.cache
def _helper() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="jaxgd-gather")


def _take(a, rows, out) -> None:
    """`np.take(a, rows, axis=0, out=out)`, its second half on a helper thread: `np.take` lets
    go of the GIL, and the epoch's gather of shuffled rows is what a streamed epoch waits for
    (docs/design.md#the-streamed-gather-on-two-threads). The same rows in the same places."""
    if len(rows) < SPLIT_ROWS:
        np.take(a, rows, axis=0, out=out)
        return
    half = len(rows) // 2
    other = _helper().submit(np.take, a, rows[half:], 0, out[half:])
    np.take(a, rows[:half], axis=0, out=out[:half])
    other.result()


class _Reader:
    """Chunks of host data on the device, each gathered while the one before it trains.

    Two sets of 64-byte aligned host buffers take the chunks in turn (XLA:CPU reads an aligned
    buffer in place, other devices copy it). A set is refilled only after the computation
    that read it has finished: call `release_after(outputs)` with what a chunk's computation
    returned before asking for the next chunk.
    """

    def __init__(self, data, rows: int, put: Callable):
        self.leaves, self.treedef = jax.tree.flatten(tuple(data))
        dtype = lambda a: jax.dtypes.canonicalize_dtype(a.dtype)
        # Each array's spare per slot (`_host.borrow`): a new buffer costs a page fault per page.
        self.slots = [
            [_host.borrow(a, (rows, *a.shape[1:]), dtype(a), slot) for a in self.leaves]
            for slot in range(2)
        ]
        self.busy = [None, None]  # What the last computation that read each set returned.
        self.put = put
        self.slot = 0

    def chunks(self, spans, rows_of=None):
        """Yields `(start, stop), (X, y)` per span; `rows_of((start, stop))` gives the span's
        rows as an index array (the epoch's order; a device array is fine), or no `rows_of` for
        data order. The rows of the next span are asked for before a chunk is yielded, so that a
        device computes them before it trains on that chunk, not after."""
        upcoming = None if rows_of is None or not spans else rows_of(spans[0])
        for i, span in enumerate(spans):
            self.slot = i % 2
            jax.block_until_ready(self.busy[self.slot])
            self.busy[self.slot] = None
            rows = None if upcoming is None else np.asarray(upcoming)
            if rows_of is not None and i + 1 < len(spans):
                upcoming = rows_of(spans[i + 1])
            parts = [
                self._fill(buf, a, span, rows)
                for buf, a in zip(self.slots[self.slot], self.leaves, strict=True)
            ]
            yield span, self.put(jax.tree.unflatten(self.treedef, parts))

    def release_after(self, outputs):
        """The chunk just yielded is read by the computation that returns `outputs`."""
        self.busy[self.slot] = outputs

    def give_back(self):
        """Once the computations that read the buffers are done, ends their loans, for the next
        run (`_host.give_back`): not after an exception, when one may still be running."""
        jax.block_until_ready(self.busy)
        _host.give_back([buf for slot in self.slots for buf in slot])

    @staticmethod
    def _fill(buf, a, span, rows):
        start, stop = span
        if rows is None:  # Data order: contiguous rows.
            part = buf[: stop - start]
            np.copyto(part, a[start:stop], casting="unsafe")
        elif a.dtype == buf.dtype:  # A gather straight into the buffer (no temporary).
            part = buf[: len(rows)]
            _take(a, rows, part)
        else:
            part = buf[: len(rows)]
            np.copyto(part, np.take(a, rows, axis=0), casting="unsafe")
        return part


def _spans(total: int, rows: int):
    return [(s, min(s + rows, total)) for s in range(0, total, rows)]


@functools.partial(jax.jit, static_argnames=("example_loss", "metrics"))
def _eval_sums(sums, params, X, y, *, example_loss, metrics):
    """`sums` plus the sums over this chunk of the per-example loss and metrics."""
    fns = (("loss", example_loss), *metrics)
    out = {k: jnp.sum(jax.vmap(fn, (None, 0, 0))(params, X, y)) for k, fn in fns}
    return out if sums is None else jax.tree.map(jnp.add, sums, out)


@functools.partial(jax.jit, static_argnames=("example_loss",))
def _grad_sums(sums, params, X, y, *, example_loss):
    """`sums` plus this chunk's sum of per-example losses and of their gradients."""
    losses, grads = jax.vmap(jax.value_and_grad(example_loss), (None, 0, 0))(params, X, y)
    out = (jnp.sum(losses), jax.tree.map(lambda g: jnp.sum(g, 0), grads))
    return out if sums is None else jax.tree.map(jnp.add, sums, out)


@functools.partial(jax.jit, static_argnames=("spec",))
def _train_chunk(state: RunState, chunk, lr, epoch, first_update, *, spec: RunSpec):
    """One epoch's chunk, in data order: `state` after it and the chunk's batch losses."""
    inputs = RunInputs(chunk, None, lr, None, None, epoch, jnp.int32(1))
    trained = train_checked(spec, inputs, state.params, state.opt_state, None)
    here = jnp.stack([epoch, first_update + trained.diverged_update]).astype(jnp.int32)
    state = state._replace(
        params=trained.params,
        opt_state=trained.opt_state,
        diverged=~trained.finite,
        stopped=~trained.finite,
        diverged_at=jnp.where(trained.finite, state.diverged_at, here),
    )
    return state, trained.losses


@functools.partial(jax.jit, static_argnames=("tx", "n"))
def _full_batch_update(state: RunState, sums, lr, epoch, *, tx, n: int):
    """One full-batch update from the summed losses and gradients; refused if not finite."""
    loss = sums[0] / n
    grads = jax.tree.map(lambda g: g / n, sums[1])
    optimizer = lr if tx is None else tx
    params, opt_state = apply_update(state.params, grads, state.opt_state, optimizer=optimizer)
    finite = jnp.isfinite(loss) & all_finite(grads) & all_finite(params)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    here = jnp.stack([epoch, jnp.int32(0)]).astype(jnp.int32)
    state = state._replace(
        params=keep(params, state.params),
        opt_state=keep(opt_state, state.opt_state),
        diverged=~finite,
        stopped=~finite,
        diverged_at=jnp.where(finite, state.diverged_at, here),
    )
    return state, loss[None]


class _Stream(NamedTuple):
    """A streamed run's fixed parts."""

    prep: Any  # `loop.setup.Prepared` with host data.
    rows: int  # Examples per chunk.
    train: _Reader  # The training data's chunks.
    val: _Reader | None  # The validation data's chunks.
    orders: np.ndarray | None  # (epochs, n) int32, or None.


def _rows_of(s: _Stream, e: int, epoch: int):
    """The epoch's order, a span at a time: the in-memory run's orders."""
    if s.prep.spec.shuffle == "orders":
        return functools.partial(_order_rows, s.orders[e])
    key = _shuffle.fold_in(s.prep.inputs.key, epoch)
    return functools.partial(_permutation_rows, key, s.prep.spec.n)


def _order_rows(order, span):
    return order[span[0] : span[1]]


def _permutation_rows(key, n: int, span):
    return _shuffle.permutation_slice(key, np.int32(span[0]), n=n, size=span[1] - span[0])


def _chunk_spec(spec: RunSpec, size: int) -> RunSpec:
    m = spec.batch_size
    return spec._replace(
        n=size,
        batch_size=m if size >= m else None,
        shuffle="none",
        eval_train=False,
        early=None,
        epochs=1,
    )


def _minibatch_epoch(s: _Stream, state: RunState, e: int, epoch: int):
    """One epoch of mini-batches, a chunk per compiled call: the new state and the losses."""
    spec, n, m = s.prep.spec, s.prep.spec.n, s.prep.spec.batch_size
    total = n // m * m if spec.drop_last else n
    losses = []
    order = None if spec.shuffle == "none" else _rows_of(s, e, epoch)
    for (start, stop), chunk in s.train.chunks(_spans(total, s.rows), order):
        # Waits for the chunk before (the host gathered this one meanwhile): after a
        # divergence no update runs.
        if bool(state.stopped):
            break
        state, chunk_losses = _train_chunk(
            state,
            chunk,
            s.prep.inputs.lr,
            np.int32(epoch),
            np.int32(start // m),
            spec=_chunk_spec(spec, stop - start),
        )
        s.train.release_after(state)
        losses.append(chunk_losses)
    updates = total // m + (not spec.drop_last and n % m > 0)
    losses = np.concatenate([np.asarray(x) for x in losses])
    return state, np.pad(losses, (0, updates - len(losses)), constant_values=np.nan)


def _full_batch_epoch(s: _Stream, state: RunState, epoch: int):
    sums = None
    for _, (X, y) in s.train.chunks(_spans(s.prep.spec.n, s.rows)):
        sums = _grad_sums(sums, state.params, X, y, example_loss=s.prep.spec.example_loss)
        s.train.release_after(sums)
    return _full_batch_update(
        state, sums, s.prep.inputs.lr, np.int32(epoch), tx=s.prep.spec.tx, n=s.prep.spec.n
    )


def _evaluate(s: _Stream, params, reader: _Reader, count: int, prefix: str) -> dict:
    sums = None
    for _, (X, y) in reader.chunks(_spans(count, s.rows)):
        sums = _eval_sums(
            sums, params, X, y, example_loss=s.prep.spec.example_loss, metrics=s.prep.spec.metrics
        )
        reader.release_after(sums)
    return {f"{prefix}_{k}": np.asarray(v / count)[None] for k, v in sums.items()}


def _epoch(s: _Stream, state: RunState, e: int):
    """One streamed epoch: train, evaluate, decide whether to stop (as `run._epoch` does)."""
    epoch = s.prep.start_epoch + e
    if s.prep.spec.batch_size is None:
        state, losses = _full_batch_epoch(s, state, epoch)
    else:
        state, losses = _minibatch_epoch(s, state, e, epoch)
    evals = {}
    if s.prep.spec.eval_train:
        evals |= _evaluate(s, state.params, s.train, s.prep.spec.n, "train")
    if s.val is not None:
        count = jax.tree.leaves(s.prep.inputs.val_data)[0].shape[0]
        evals |= _evaluate(s, state.params, s.val, count, "val")
    stopped, best, wait = state.diverged, state.best, state.wait
    if s.prep.spec.early is not None:
        best, wait, stop = early_stop(
            s.prep.spec.early, evals[s.prep.spec.early.monitor][0], best, wait
        )
        stopped = stopped | stop
    state = state._replace(stopped=stopped, best=best, wait=wait, epochs_run=state.epochs_run + 1)
    return state, (np.asarray(losses)[None], evals)


def _empty_history(prep, dtype):
    """epochs=0: empty histories of the shapes a run would have."""
    spec, n, m = prep.spec, prep.spec.n, prep.spec.batch_size
    updates = 1 if m is None else n // m + (not spec.drop_last and n % m > 0)
    names = [
        f"{part}_{k}"
        for part, on in (("train", spec.eval_train), ("val", prep.inputs.val_data is not None))
        if on
        for k in ("loss", *prep.metrics)
    ]
    return [(np.zeros((0, updates), dtype), {k: np.zeros(0, dtype) for k in names})]


def run(
    prep, *, stream_chunk, callback: Callable | None, epochs_per_call: int, saver=None
) -> FitResult:
    """`fit`'s run on host data (see the module docstring): `prep` is what
    `loop.setup.prepare` made with `host=True` (its data and val_data are host arrays). A
    `saver` (`loop.checkpoint.Saver`) resumes from its checkpoint and saves as `callback` runs."""
    spec, inputs = prep.spec, prep.inputs
    rows = check_chunk(
        stream_chunk, n=spec.n, batch_size=spec.batch_size, row_bytes=_nbytes(inputs.data) // spec.n
    )
    put = (
        jax.device_put
        if spec.mesh is None
        else functools.partial(distributed.replicate, mesh=spec.mesh)
    )
    val = None if inputs.val_data is None else _Reader(inputs.val_data, rows, put)
    orders = None if inputs.orders is None else np.asarray(inputs.orders)
    s = _Stream(prep, rows, _Reader(inputs.data, rows, put), val, orders)
    state, pieces, start = prep.state, [], 0
    if saver is not None:
        pieces, start = list(saver.history), saver.done
    for e in range(start, prep.epochs):
        state, piece = _epoch(s, state, e)
        pieces.append(piece)
        done, stopped = e + 1, bool(state.stopped)
        if stopped and done < prep.epochs:  # Nothing more runs: NaN for the other epochs.
            pieces.append(nan_history(piece, prep.epochs - done))
            done = prep.epochs
        if stopped or done == prep.epochs or done % epochs_per_call == 0:
            if saver is not None:
                saver.save(done, state, pieces)
            if callback is not None:
                call_back(callback, done, state, pieces, prep.metrics)
        if stopped:
            break
    if not pieces:
        dtype = np.dtype(jnp.result_type(*jax.tree.leaves(state.params)))
        pieces = _empty_history(prep, dtype)
    for reader in (s.train, s.val):
        if reader is not None:
            reader.give_back()
    return assemble(state, pieces, prep.metrics)


def _nbytes(tree) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))
