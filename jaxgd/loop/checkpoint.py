"""Checkpoints on disk: `fit(..., checkpoint=PATH)` saves the run after every compiled chunk of
epochs, and the same call after a kill resumes from the last one and ends bit for bit as a run
that was never interrupted.

A checkpoint is one `.npz` file in the directory PATH (`ckpt-<epochs done>.npz`): the run's
whole `RunState` (params, optimizer state, early-stopping and divergence state, epochs run) and
its history so far as flat arrays, with a JSON manifest that names the run (its fingerprint) and
each array's dtype and shape, and a hash of every byte. Nothing is pickled: the tree structures
are the ones the resuming call builds for the same arguments, so only leaves are stored.

A file is written under a temporary name beside its final one, flushed to disk, renamed over,
and the directory flushed: a kill at any moment leaves the previous checkpoint or the new one,
never a torn one. The last `keep` checkpoints stay; a temporary file left by a kill is removed
by the next call on that directory. Reading checks each member's CRC-32 and the manifest's hash
of the arrays: a damaged file is an error that names it, never a wrong run.

What identifies a run (`fingerprint`), compared field by field on resuming: the data's and
val_data's shapes and dtypes and a hash of their contents (whole arrays up to 8 MiB; a larger
one through 1024 evenly spaced rows, so an edit confined to other rows goes unseen), the initial
params and optimizer state (tree structure, shapes, dtypes and values, so the values that
`optax.inject_hyperparams` keeps in the state count), the learning rate when it is a number,
`batch_size`, `drop_last`, the shuffle (none, key or orders), the key, the orders of the epochs
saved, `start_epoch`, the metric names, `eval_train`, early stopping, the mesh's shape, and
whether the run is streamed (with its chunk). Not seen: the code of `example_loss` and the
metrics, and the hyperparameters an optax optimizer keeps inside its functions (`optax.sgd(0.1)`
against `optax.sgd(0.2)`); a call that changes only those resumes the saved run with them.
`epochs` may grow: a finished run continues.
"""

import hashlib
import json
import math
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd.loop.stream as streaming
from jaxgd import _checks
from jaxgd.loop.result import nan_history

__all__ = ["Checkpoint", "Saver", "default_chunk", "CHECKPOINTS_PER_RUN"]

FORMAT, VERSION = "jaxgd-checkpoint", 1
CHECKPOINTS_PER_RUN = 10  # Default chunk: about this many checkpoints per run.
FULL_HASH_BYTES = 8 * 2**20  # Data arrays up to this size are hashed whole, larger ones sampled.
SAMPLED_ROWS = 1024  # Rows hashed of a larger array: evenly spaced, first and last included.
# What reading a damaged file raises: zipfile's errors for a damaged header (an unknown
# compression method, an "encrypted" flag), zlib's for a member that claims to be compressed.
UNREADABLE = (
    OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error,
    NotImplementedError, RuntimeError, struct.error, OverflowError,
)  # fmt: skip
_FILE = re.compile(r"^ckpt-(\d+)\.npz$")
_TEMP = re.compile(r"^\.ckpt-\d+\.npz\.tmp-\d+$")


class Checkpoint(NamedTuple):
    """Where and how `fit` keeps checkpoints: `fit(..., checkpoint=jaxgd.Checkpoint(path, keep=5))`
    (a plain path means `Checkpoint(path)`).

    Examples:
      >>> import os, tempfile, jax, jaxgd
      >>> sq = lambda w, x, y: (w * x - y) ** 2
      >>> X = jax.numpy.arange(1.0, 5.0); tmp = tempfile.TemporaryDirectory()
      >>> run = lambda epochs: jaxgd.fit(sq, 0.0, (X, 2 * X), epochs=epochs, optimizer=0.05,
      ...     batch_size=2, key=jax.random.key(0), checkpoint=Checkpoint(tmp.name, keep=2))
      >>> r = run(20)  # A checkpoint after every 2 epochs, the last 2 kept.
      >>> sorted(os.listdir(tmp.name))
      ['ckpt-00000018.npz', 'ckpt-00000020.npz']
      >>> bool(run(20).params == r.params)  # Finished: the saved run, nothing trained.
      True
      >>> run(30).losses.shape  # 10 more epochs.
      (30, 2)
      >>> tmp.cleanup()
    """

    path: str | os.PathLike  # A directory (created if missing), one run per directory.
    keep: int = 3  # The newest checkpoints kept; older ones are deleted after each save.


def default_chunk(epochs: int) -> int:
    """Epochs per compiled call when `fit` is given `checkpoint` without `epochs_per_call`.

    About `CHECKPOINTS_PER_RUN` checkpoints per run: each costs a device-to-host copy and a
    flushed file (milliseconds), so a run pays that at most about ten times whatever `epochs`
    is, and a kill loses at most a tenth of the run.

    Examples:
      >>> default_chunk(100), default_chunk(7), default_chunk(0)
      (10, 1, 0)
    """
    return min(epochs, max(1, math.ceil(epochs / CHECKPOINTS_PER_RUN)))


def _host(x) -> np.ndarray:
    """A leaf as a NumPy array; a replicated array through one of its local copies."""
    if isinstance(x, jax.Array) and x.is_fully_replicated and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return np.asarray(x)


def _bytes(a: np.ndarray) -> np.ndarray:
    """The bytes of `a` as a flat uint8 array (any dtype, bfloat16 included)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _digest(arrays) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        h.update(_bytes(a).data)
    return h.hexdigest()


def _layout(tree) -> str:
    """The tree structure with each leaf's dtype and shape."""
    leaves = [f"{jnp.dtype(a.dtype).name}{tuple(a.shape)}" for a in jax.tree.leaves(tree)]
    return f"{jax.tree.structure(tree)} [{', '.join(leaves)}]"


def _sample(a) -> np.ndarray:
    """All of `a` when small, else `SAMPLED_ROWS` evenly spaced rows (a gather; a memmap reads
    only those rows)."""
    n = a.shape[0] if a.ndim else 0
    if a.size * a.dtype.itemsize <= FULL_HASH_BYTES or n <= SAMPLED_ROWS:
        return _host(a)
    return _host(a[np.linspace(0, n - 1, SAMPLED_ROWS).astype(np.int64)])


def _contents(tree, sampled: bool = False) -> str:
    leaves = jax.tree.leaves(tree)
    return _digest(_sample(a) if sampled else _host(a) for a in leaves)


def _key(key):
    if key is None:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return f"{jax.random.key_impl(key)} {_host(jax.random.key_data(key)).tolist()}"
    return f"raw {_host(key).tolist()}"


def _nbytes(tree) -> int:
    return sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(tree))


def fingerprint(prep, *, streamed: bool, stream_chunk) -> dict:
    """What identifies a run, as JSON values: a resumed call must give the same (its `orders`
    are compared separately, up to the epochs the checkpoint holds)."""
    spec, inputs, state = prep.spec, prep.inputs, prep.state
    val = inputs.val_data
    lr = "an optax GradientTransformation"
    if spec.tx is None:
        lr = f"learning rate {_host(inputs.lr).item()!r}"
    stream = "in memory"
    if streamed:
        rows = streaming.check_chunk(
            stream_chunk,
            n=spec.n,
            batch_size=spec.batch_size,
            row_bytes=_nbytes(inputs.data) // max(spec.n, 1),
        )
        stream = f"streamed, {rows} examples a chunk"
    return {
        "data shapes and dtypes": _layout(inputs.data),
        "data contents": _contents(inputs.data, sampled=True),
        "val_data shapes and dtypes": None if val is None else _layout(val),
        "val_data contents": None if val is None else _contents(val, sampled=True),
        "params structure": _layout(state.params),
        "params values": _contents(state.params),
        "optimizer state structure": _layout(state.opt_state),
        "optimizer state values": _contents(state.opt_state),
        "optimizer": lr,
        "batch_size": "full batch" if spec.batch_size is None else spec.batch_size,
        "drop_last": spec.drop_last,
        "shuffle": spec.shuffle,
        "key": _key(inputs.key),
        "start_epoch": prep.start_epoch,
        "metrics": list(prep.metrics),
        "eval_train": spec.eval_train,
        "early_stopping": None if spec.early is None else list(spec.early),
        "mesh": None if spec.mesh is None else dict(spec.mesh.shape),
        "stream": stream,
    }


def _orders_digest(row_digests: list | None, done: int) -> str | None:
    """A hash of the first `done` epochs' orders (None for a run without `orders`)."""
    if row_digests is None:
        return None
    return _digest([np.frombuffer("".join(row_digests[:done]).encode(), np.uint8)])


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _config(checkpoint) -> Checkpoint:
    config = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(checkpoint)
    if not isinstance(config.path, (str, os.PathLike)):
        raise TypeError(
            "`checkpoint` must be a directory path (str or os.PathLike) or a "
            f"jaxgd.Checkpoint(path, keep=...), got {type(config.path).__name__}: {config.path!r}."
        )
    _checks.check_int(config.keep, "checkpoint.keep", minimum=1)
    return config


def _open_dir(path: Path) -> None:
    """Creates `path`, proves a file can be written and flushed there, and removes the temporary
    files a killed run left."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".ckpt-0.npz.tmp-{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"jaxgd")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
        for stale in path.iterdir():
            if _TEMP.match(stale.name):
                stale.unlink(missing_ok=True)
    except OSError as err:
        raise ValueError(
            f"`checkpoint` directory {str(path)!r} cannot be written: {err}. Pass a directory "
            "this process can create and write to."
        ) from err


def _fsync_dir(path: Path) -> None:
    """Flushes a directory's entries (the rename) to disk; Windows cannot open a directory."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, arrays: dict) -> None:
    """`arrays` as an .npz at `path`, atomically: a temporary sibling, flushed, renamed over."""
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _encode(manifest: dict, named: dict) -> dict:
    """The .npz's arrays: each array as raw bytes (its dtype and shape go in the manifest, with
    a hash of all the bytes), and the manifest as JSON bytes."""
    manifest = dict(
        manifest, arrays={k: [jnp.dtype(a.dtype).name, list(a.shape)] for k, a in named.items()}
    )
    manifest["hash"] = _digest(named.values())
    arrays = {k: _bytes(a) for k, a in named.items()}
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    return arrays


def _decode(path: Path) -> tuple[dict, dict]:
    """`(manifest, arrays)` of a checkpoint file, each array with its dtype and shape."""
    with zipfile.ZipFile(path) as z:  # Every byte of every member against its CRC-32.
        bad = z.testzip()
        if bad is not None:
            raise ValueError(f"its member {bad!r} fails its CRC-32 check")
    with np.load(path, allow_pickle=False) as z:
        manifest = json.loads(z["manifest"].tobytes().decode())
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("it is not a jaxgd checkpoint")
        if manifest.get("version") != VERSION:
            raise ValueError(
                f"format version {manifest.get('version')}, this jaxgd reads {VERSION}"
            )
        raw = {k: z[k] for k in manifest["arrays"]}
    named = {}
    for k, (dtype, shape) in manifest["arrays"].items():
        named[k] = raw[k].view(jnp.dtype(dtype)).reshape(shape)
    if _digest(named.values()) != manifest["hash"]:
        raise ValueError("its bytes do not match the hash saved with them")
    return manifest, named


class Saver:
    """One run's checkpoints in one directory: `resume` before the first chunk, `save` after each.

    After `resume`, `done` is the number of epochs the checkpoint holds and `history` its
    history as `fit`'s pieces (`[(losses, evals)]`, or `[]`): the run goes on from there.
    """

    def __init__(self, checkpoint):
        config = _config(checkpoint)
        self.dir, self.keep = Path(config.path), config.keep
        _open_dir(self.dir)  # Before anything trains: an unwritable path fails here.
        self.done, self.history, self._on_host = 0, [], []
        self._print, self._rows = None, None

    def _files(self) -> list[tuple[int, Path]]:
        found = ((_FILE.match(p.name), p) for p in self.dir.iterdir())
        return sorted((int(m.group(1)), p) for m, p in found if m)

    def _read(self, path: Path, files) -> tuple[dict, dict]:
        try:
            return _decode(path)
        except UNREADABLE as err:
            before = [str(p) for _, p in files if p != path]
            fix = (
                f"delete it to resume from the one before ({before[-1]})" if before else "delete it"
            )
            raise ValueError(
                f"checkpoint {str(path)!r} is corrupted or unreadable ({err}); {fix}, or delete "
                f"the directory {str(self.dir)!r} to start the run over."
            ) from err

    def resume(self, prep, *, streamed: bool, stream_chunk=None):
        """`prep` with the state of the directory's last checkpoint (unchanged if none).

        Raises:
          ValueError: the checkpoint is of another run (naming what differs), holds more epochs
            than `prep.epochs`, or is corrupted.
        """
        self._print = json.loads(
            json.dumps(fingerprint(prep, streamed=streamed, stream_chunk=stream_chunk))
        )
        orders = prep.inputs.orders
        self._rows = None if orders is None else [_digest([row]) for row in _host(orders)]
        files = self._files()
        if not files:
            return prep
        manifest, arrays = self._read(files[-1][1], files)
        self._check_same_run(manifest, prep.epochs)
        state = _restore_state(prep.state, arrays)
        done = manifest["done"]
        names = manifest["evals"]
        piece = (arrays["losses"], {k: arrays[f"eval_{k}"] for k in names})
        self._on_host, self.history, self.done = [piece], [piece], done
        if bool(state.stopped) and done < prep.epochs:  # Nothing more runs: NaN, as the run would.
            self.history = [piece, nan_history(piece, prep.epochs - done)]
            self.done = prep.epochs
        return prep._replace(state=state)

    def _check_same_run(self, manifest: dict, epochs: int) -> None:
        saved, now = manifest["fingerprint"], dict(self._print)
        done = manifest["done"]
        if self._rows is not None and len(self._rows) < done:
            now["orders"] = saved.get("orders")  # Fewer epochs than saved: the check below says so.
        else:
            now["orders"] = _orders_digest(self._rows, done)
        differ = [
            f"{name} was {_short(saved.get(name))}, now {_short(now.get(name))}"
            for name in dict.fromkeys([*now, *saved])
            if saved.get(name) != now.get(name)
        ]
        if differ:
            raise ValueError(
                f"`checkpoint` {str(self.dir)!r} holds another run, so this call cannot resume "
                f"it: {'; '.join(differ)}. Call `fit` with that run's arguments to resume it, or "
                "pass another `checkpoint` directory (or delete this one) to start a new run."
            )
        if done > epochs:
            raise ValueError(
                f"`checkpoint` {str(self.dir)!r} holds {done} epochs of this run, more than "
                f"`epochs`={epochs}: pass `epochs` >= {done} to continue it, or another "
                "`checkpoint` directory to start a new run."
            )

    def save(self, done: int, state, pieces) -> None:
        """Saves the run after `done` epochs: its `RunState` and history `pieces` (the pieces
        already saved are not copied from the device again)."""
        if done <= self.done:
            return
        for losses, evals in pieces[len(self._on_host) :]:
            self._on_host.append((_host(losses), {k: _host(v) for k, v in evals.items()}))
        named = {f"state_{i}": _host(a) for i, a in enumerate(jax.tree.leaves(state))}
        named["losses"] = np.concatenate([p[0] for p in self._on_host])
        names = list(self._on_host[0][1])
        for k in names:
            named[f"eval_{k}"] = np.concatenate([p[1][k] for p in self._on_host])
        fingerprint = dict(self._print, orders=_orders_digest(self._rows, done))
        manifest = dict(
            format=FORMAT, version=VERSION, done=done, evals=names, fingerprint=fingerprint
        )
        _write(self.dir / f"ckpt-{done:08d}.npz", _encode(manifest, named))
        self.done = done
        for _, old in self._files()[: -self.keep]:
            old.unlink(missing_ok=True)


def _restore_state(reference, arrays: dict):
    """The saved `RunState` leaves in `reference`'s tree structure, on its devices."""
    refs, treedef = jax.tree.flatten(reference)
    leaves = [arrays.get(f"state_{i}") for i in range(len(refs))]
    for i, (saved, ref) in enumerate(zip(leaves, refs, strict=True)):
        if saved is None or saved.shape != np.shape(ref) or saved.dtype != jnp.dtype(ref.dtype):
            raise ValueError(
                f"the checkpoint's state leaf {i} does not fit this run's state "
                f"({None if saved is None else (saved.dtype, saved.shape)} vs "
                f"{(jnp.dtype(ref.dtype), np.shape(ref))}); delete the checkpoint to start over."
            )
    put = lambda a, ref: jax.device_put(a, getattr(ref, "sharding", None))
    return jax.tree.unflatten(treedef, [put(a, r) for a, r in zip(leaves, refs, strict=True)])
