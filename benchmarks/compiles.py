"""Counting XLA compilations with `jax.monitoring`, and the recompilations section: `fit` again
with only a new learning rate, key or data values must compile nothing."""

import jax
import jax.monitoring
import numpy as np

import jaxgd
from benchmarks.task import example_loss, make_data, zeros
from jaxgd._monitor import count_compiles


def _fit(lr, seed, data, batch):
    shuffle = {} if batch is None else dict(key=jax.random.key(seed))
    r = jaxgd.fit(
        example_loss, zeros(20), data, epochs=2, optimizer=lr, batch_size=batch, **shuffle
    )
    jax.block_until_ready(r.params)


def recompiles(n: int) -> dict:
    """For each schedule, `fit` once, then again with a new learning rate and key, new data values
    of the same shapes, and a NumPy scalar learning rate: `{schedule: {"xla_compiles": k}}`, the
    XLA programs those three later calls compiled."""
    X, y = make_data(n)
    X2, y2 = make_data(n, seed=1)
    out = {}
    for label, batch in (("full batch", None), ("SGD", 1), ("mini-batch 32", 32)):
        _fit(0.1, 0, (X, y), batch)
        with count_compiles() as compiled:
            _fit(0.05, 1, (X, y), batch)  # A new learning rate and key.
            _fit(0.3, 2, (X2, y2), batch)  # New data values.
            _fit(np.float32(0.2), 3, (X2, y2), batch)
        out[label] = dict(xla_compiles=len(compiled))
    return out
