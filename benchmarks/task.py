"""The benchmark's task, logistic regression (float32, d = 20), and jaxgd's runner for it."""

import math

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd

LR = 0.1  # Learning rate of every implementation.


def example_loss(params, x, y):
    """Binary cross-entropy on the logit of ONE example (what `BCEWithLogitsLoss` computes)."""
    z = x @ params["w"] + params["b"]
    return jnp.logaddexp(0.0, z) - y * z


def make_data(n: int, d: int = 20, seed: int = 0):
    """`(X, y)`: float32 NumPy arrays, X (n, d) standard normal, y (n,) in {0, 1} from a noisy
    logistic model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    w = (rng.standard_normal(d) / math.sqrt(d)).astype(np.float32)
    y = (X @ w + 0.5 * rng.standard_normal(n, dtype=np.float32) > 0).astype(np.float32)
    return X, y


def mean_loss(w, b, X, y) -> float:
    """The mean training loss at `(w, b)`, in float64 NumPy: the referee of the agreement check."""
    z = X.astype(np.float64) @ np.asarray(w, np.float64) + float(b)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def zeros(d: int) -> dict:
    """Zero params `{"w": (d,), "b": ()}`, float32."""
    return {"w": jnp.zeros(d, jnp.float32), "b": jnp.zeros((), jnp.float32)}


def jaxgd_runner(X, y, batch, eval_train=False):
    """`run(epochs, orders=None, seed=0) -> (w, b)` with `jaxgd.fit`, blocked until done."""
    d = X.shape[1]

    def run(epochs, orders=None, seed=0):
        shuffle = dict(orders=orders) if orders is not None else dict(key=jax.random.key(seed))
        if batch is None:
            shuffle = {}
        r = jaxgd.fit(
            example_loss,
            zeros(d),
            (X, y),
            epochs=epochs,
            optimizer=LR,
            batch_size=batch,
            eval_train=eval_train,
            **shuffle,
        )
        jax.block_until_ready(r.params)
        return np.asarray(r.params["w"]), float(r.params["b"])

    return run


def jaxgd_defaults_runner(X, y, batch):
    """`run(epochs, orders=None, seed=0) -> (w, b)`: `jaxgd.fit` called the way a user does, with
    its defaults (the training loss evaluated every epoch), a key when mini-batched."""
    d = X.shape[1]

    def run(epochs, orders=None, seed=0):
        shuffle = {} if batch is None else dict(key=jax.random.key(seed))
        if orders is not None and batch is not None:
            shuffle = dict(orders=orders)
        r = jaxgd.fit(
            example_loss, zeros(d), (X, y), epochs=epochs, optimizer=LR, batch_size=batch, **shuffle
        )
        jax.block_until_ready(r.params)
        return np.asarray(r.params["w"]), float(r.params["b"])

    return run
