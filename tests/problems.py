"""One-example losses and a small data set that several test modules share, written out
independently of `jaxgd.losses` (a test of the loop should not rest on the code it tests)."""

import jax.numpy as jnp
import numpy as np


def bce(p, x, y):
    """Binary cross-entropy on the logit of ONE example."""
    z = x @ p["w"] + p["b"]
    return jnp.logaddexp(0.0, z) - y * z


def sq(p, x, y):
    """Squared error of ONE example: diverges for a large learning rate."""
    return (x @ p["w"] + p["b"] - y) ** 2


def accuracy(p, x, y):
    return ((x @ p["w"] + p["b"] > 0) == (y > 0.5)).astype(jnp.float32)


def make(n, d=5, seed=0):
    """`(X, y)`: float32 standard normal features, labels from a random linear rule."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = (X @ rng.standard_normal(d).astype(np.float32) > 0).astype(np.float32)
    return X, y
