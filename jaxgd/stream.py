"""Training on data that stays on the host: NumPy arrays or an `np.memmap` larger than memory.

`jaxgd.fit(..., stream=True)` (the default for `np.memmap` data) never puts the whole data set
on the device. Each epoch is cut into chunks of `stream_chunk` examples (whole batches): the
host gathers a chunk's rows in the epoch's order into one of two reusable buffers, the device
trains on it with the same compiled program `fit` runs in memory (`loop._run`, one epoch over
the chunk in its order), and while it does, the host gathers the next chunk. Device memory is
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

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import _checks, _host, _shuffle, distributed, loop

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
        self.slots = [
            [_host.aligned_empty((rows, *a.shape[1:]), dtype(a)) for a in self.leaves]
            for _ in range(2)
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
            parts = [self._fill(buf, a, span, rows)
                     for buf, a in zip(self.slots[self.slot], self.leaves, strict=True)]  # fmt: skip
            yield span, self.put(jax.tree.unflatten(self.treedef, parts))

    def release_after(self, outputs):
        """The chunk just yielded is read by the computation that returns `outputs`."""
        self.busy[self.slot] = outputs

    @staticmethod
    def _fill(buf, a, span, rows):
        start, stop = span
        if rows is None:  # Data order: contiguous rows.
            part = buf[: stop - start]
            np.copyto(part, a[start:stop], casting="unsafe")
        elif a.dtype == buf.dtype:  # A gather straight into the buffer (no temporary).
            part = buf[: len(rows)]
            np.take(a, rows, axis=0, out=part)
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


@functools.partial(jax.jit, static_argnames=("tx", "n"))
def _full_batch_update(state, sums, lr, epoch, *, tx, n: int):
    """One full-batch update from the summed losses and gradients; refused if not finite."""
    loss = sums[0] / n
    grads = jax.tree.map(lambda g: g / n, sums[1])
    params, opt_state = loop._apply(state.params, grads, state.opt_state, tx, lr)
    finite = jnp.isfinite(loss) & loop._all_finite(grads) & loop._all_finite(params)
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


def run(prep, *, rows: int, callback: Callable | None, epochs_per_call: int):
    """`fit`'s run on host data (see the module docstring): `prep` is what `loop._prepare` made
    with `host=True` (its data and val_data are host arrays), `rows` the examples per chunk."""
    static, state, metrics = prep.static, prep.state, prep.metrics
    data, val_data = prep.data, prep.val_data
    plan = static["plan"]
    example_loss, tx, m, n = static["example_loss"], static["tx"], plan.batch_size, plan.n
    put = jax.device_put if plan.mesh is None else (lambda t: distributed.replicate(t, plan.mesh))
    train = _Reader(data, rows, put)
    val = None if val_data is None else _Reader(val_data, rows, put)
    orders = None if prep.orders is None else np.asarray(prep.orders)

    def rows_of(e: int, epoch: int):
        """The epoch's order, a span at a time: the in-memory run's orders."""
        if plan.shuffle == "orders":
            return lambda span: orders[e, span[0] : span[1]]
        key = jax.random.fold_in(prep.key, epoch)
        return lambda span: _shuffle.permutation_slice(
            key, np.int32(span[0]), n=n, size=span[1] - span[0]
        )

    def train_epoch(state, e: int, epoch: int):
        """One epoch of mini-batches, a chunk per compiled call: the new state and the losses."""
        total = n // m * m if plan.drop_last else n
        losses, marks = [], []
        order = None if plan.shuffle == "none" else rows_of(e, epoch)
        for (start, stop), chunk in train.chunks(_spans(total, rows), order):
            # Waits for the chunk before (the host gathered this one meanwhile): after a
            # divergence no update runs.
            if bool(state.stopped):
                break
            size = stop - start
            chunk_plan = plan._replace(n=size, batch_size=m if size >= m else None,
                                       shuffle="none", eval_train=False, early=None)  # fmt: skip
            state, chunk_losses, _ = loop._run(
                state, chunk, None, prep.lr, None, None, np.int32(epoch), np.int32(1),
                example_loss=example_loss, tx=tx, metrics=(), plan=chunk_plan, epochs=1,
            )  # fmt: skip
            train.release_after(state)
            losses.append(chunk_losses[0])
            marks.append((start // m, state.diverged))
        for offset, diverged in marks:  # The refused update, numbered within the epoch.
            if bool(diverged):
                state = state._replace(diverged_at=state.diverged_at.at[1].add(offset))
                break
        updates = total // m + (not plan.drop_last and n % m > 0)
        losses = np.concatenate([np.asarray(x) for x in losses])
        return state, np.pad(losses, (0, updates - len(losses)), constant_values=np.nan)

    def full_batch_epoch(state, epoch: int):
        sums = None
        for _, (X, y) in train.chunks(_spans(n, rows)):
            sums = _grad_sums(sums, state.params, X, y, example_loss=example_loss)
            train.release_after(sums)
        state, loss = _full_batch_update(state, sums, prep.lr, np.int32(epoch), tx=tx, n=n)
        return state, np.asarray(loss)

    def evaluate(params, reader: _Reader, count: int):
        sums = None
        for _, (X, y) in reader.chunks(_spans(count, rows)):
            sums = _eval_sums(sums, params, X, y, example_loss=example_loss,
                              metrics=static["metrics"])  # fmt: skip
            reader.release_after(sums)
        return {k: np.asarray(v / count) for k, v in sums.items()}

    dtype = np.dtype(jnp.result_type(*jax.tree.leaves(state.params)))
    early = plan.early
    best, wait = np.asarray(state.best), 0
    pieces, done, epochs_run = [], 0, int(state.epochs_run)
    for e in range(prep.epochs):
        epoch = prep.start_epoch + e
        if m is None:
            state, losses = full_batch_epoch(state, epoch)
        else:
            state, losses = train_epoch(state, e, epoch)
        evals = {}
        if plan.eval_train:
            evals |= {f"train_{k}": v for k, v in evaluate(state.params, train, n).items()}
        if val is not None:
            count = jax.tree.leaves(val_data)[0].shape[0]
            evals |= {f"val_{k}": v for k, v in evaluate(state.params, val, count).items()}
        stopped = bool(state.diverged)
        if early is not None:  # As `loop._run` decides it, in the params' dtype.
            value, sign = evals[early.monitor], dtype.type(1.0 if early.mode == "min" else -1.0)
            improved = sign * value < sign * best - dtype.type(early.min_delta)
            best, wait = (value, 0) if improved else (best, wait + 1)
            stopped |= wait >= early.patience
        epochs_run += 1  # (`loop._run` counted every chunk as an epoch.)
        state = state._replace(stopped=jnp.asarray(stopped), epochs_run=jnp.int32(epochs_run))
        pieces.append((losses[None], {k: np.asarray(v)[None] for k, v in evals.items()}))
        done += 1
        if stopped or done == prep.epochs or (callback is not None and done % epochs_per_call == 0):
            if stopped and done < prep.epochs:  # Nothing more runs: NaN for the other epochs.
                rest = prep.epochs - done
                nan_rows = lambda v, rest=rest: np.full((rest,) + v.shape[1:], np.nan, v.dtype)
                pieces.append((nan_rows(pieces[-1][0]),
                               {k: nan_rows(v) for k, v in pieces[-1][1].items()}))  # fmt: skip
                done = prep.epochs
            if callback is not None:
                callback(done, loop._result(state, pieces, metrics))
        if stopped:
            break
    if not pieces:  # epochs=0: empty histories of the shapes a run would have.
        updates = 1 if m is None else n // m + (not plan.drop_last and n % m > 0)
        names = [f"{part}_{k}" for part, on in (("train", plan.eval_train), ("val", val))
                 if on for k in ("loss", *metrics)]  # fmt: skip
        pieces = [(np.zeros((0, updates), dtype), {k: np.zeros(0, dtype) for k in names})]
    return loop._result(state, pieces, metrics)
