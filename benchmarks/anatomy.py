"""Where a shuffled mini-batch epoch goes: the time behind the mini-batch 1024 row, in parts."""

import time

import jax
import jax.numpy as jnp

import jaxgd
from benchmarks.task import LR, example_loss, make_data, zeros
from benchmarks.timing import summary
from jaxgd import _shuffle  # fit's epoch order; no public name draws it alone


def _gatherer(steps: int, m: int):
    """A jitted bare `lax.scan` that only takes `steps` batches of `m` rows out of X in `order`
    (and sums them, so the gather is not optimised away)."""

    @jax.jit
    def gather(X, order):
        take = lambda total, rows: (total + jnp.sum(X[rows]), None)
        return jax.lax.scan(take, jnp.float32(0), order[: steps * m].reshape(steps, m))[0]

    return gather


def _calls(cfg: dict) -> dict:
    """`{name: (call, epochs per call)}` of the five measurements (see `anatomy`)."""
    n, m, epochs = cfg["n"], cfg["batch"], cfg["epochs"]
    X, y = make_data(n)
    data = jax.device_put((X, y))

    def fit(key):
        r = jaxgd.fit(
            example_loss,
            zeros(X.shape[1]),
            data,
            epochs=epochs,
            optimizer=LR,
            batch_size=m,
            eval_train=False,
            key=key,
        )
        return r.params

    gather = _gatherer(n // m, m)
    permutation = jax.jit(_shuffle.permutation, static_argnums=1)
    in_order = jnp.arange(n, dtype=jnp.int32)
    shuffled = permutation(jax.random.key(0), n)
    return {
        "fit_shuffled": (lambda: fit(jax.random.key(1)), epochs),
        "fit_in_order": (lambda: fit(None), epochs),
        "gather_shuffled": (lambda: gather(data[0], shuffled), 1),
        "gather_in_order": (lambda: gather(data[0], in_order), 1),
        "permutation": (lambda: permutation(jax.random.key(2), n), 1),
    }


def anatomy(cfg: dict, repeats: int, say=print) -> dict:
    """Epoch times behind the mini-batch 1024 row, medians in ms of interleaved repeats:

    * `fit_shuffled`, `fit_in_order`: `jaxgd.fit` on data already on the device (no copy; its
      checks of the data run there), reshuffled every epoch or in data order;
    * `gather_shuffled`, `gather_in_order`: a bare `lax.scan` that only takes the epoch's
      batches of rows out of X, in the epoch's shuffled order or in data order;
    * `permutation`: drawing the epoch's order (the keyed permutation `fit` uses).
    """
    runs = _calls(cfg)
    seconds = {name: [] for name in runs}
    for r in range(repeats + 1):  # The first round warms up.
        for name, (call, per) in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            if r:
                seconds[name].append((time.perf_counter() - start) / per)
    out = {name: summary(v) for name, v in seconds.items()}
    for name, t in out.items():
        say(f"  anatomy {name:16s} {t['median_ms']:8.2f} ms [{t['min_ms']:.2f}-{t['max_ms']:.2f}]")
    return dict(n=cfg["n"], batch=cfg["batch"], times=out)
