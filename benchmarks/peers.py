"""The loops jaxgd is compared with, on the benchmark's task: an idiomatic PyTorch eager loop, a
jitted JAX + optax step called from Python, and full-batch gradient descent in NumPy.

Each maker takes `(X, y, batch)` (batch None: full batch) and returns `run(epochs, orders=None,
seed=0, ...) -> (w, b)`. The slow loops also take `steps` (stop each epoch after that many
updates) and `clock` (a list that receives `(seconds, steps taken)` per epoch).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.task import LR, example_loss, zeros


def _epoch_steps(n, batch, perm, steps):
    """The index slices of an epoch's batches (None for full batch), at most `steps` of them."""
    m = n if batch is None else batch
    starts = range(0, n, m)[: steps if steps is not None else None]
    return [None if batch is None else perm[s : s + m] for s in starts]


def torch_runner(X, y, batch):
    """The idiomatic PyTorch eager loop: `torch.randperm` batches of `X[idx]`, `nn.Linear`,
    `BCEWithLogitsLoss`, `torch.optim.SGD` (default `torch.get_num_threads()`)."""
    import torch

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, d = X.shape

    def run(epochs, orders=None, seed=0, steps=None, clock=None):
        model = torch.nn.Linear(d, 1)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(epochs):
            start = time.perf_counter()
            given = orders is not None
            perm = torch.from_numpy(orders[epoch]) if given else torch.randperm(n, generator=gen)
            taken = _epoch_steps(n, batch, perm, steps)
            for idx in taken:
                xb, yb = (Xt, yt) if idx is None else (Xt[idx], yt[idx])
                opt.zero_grad()
                loss_fn(model(xb).squeeze(-1), yb).backward()
                opt.step()
            if clock is not None:
                clock.append((time.perf_counter() - start, len(taken)))
        return model.weight.detach().numpy()[0].copy(), float(model.bias.detach()[0])

    return run


def jax_loop_runner(X, y, batch):
    """A jitted step (value_and_grad + optax.sgd) called per batch from Python, on batches indexed
    from the NumPy arrays (a data loader's way); full batch stays on the device."""
    n, d = X.shape
    tx = optax.sgd(LR)

    @jax.jit
    def step(params, opt_state, xb, yb):
        batch_mean = lambda p: jnp.mean(jax.vmap(example_loss, (None, 0, 0))(p, xb, yb))
        loss, grads = jax.value_and_grad(batch_mean)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    whole = (jnp.asarray(X), jnp.asarray(y)) if batch is None else None  # On the device once.

    def run(epochs, orders=None, seed=0, steps=None, clock=None):
        params = zeros(d)
        opt_state = tx.init(params)
        rng = np.random.default_rng(seed)
        for epoch in range(epochs):
            start = time.perf_counter()
            perm = rng.permutation(n) if orders is None else orders[epoch]
            taken = _epoch_steps(n, batch, perm, steps)
            for idx in taken:
                xb, yb = whole if idx is None else (X[idx], y[idx])
                params, opt_state, _ = step(params, opt_state, xb, yb)
            jax.block_until_ready(params)
            if clock is not None:
                clock.append((time.perf_counter() - start, len(taken)))
        return np.asarray(params["w"]), float(params["b"])

    return run


def numpy_runner(X, y, batch):
    """Full-batch gradient descent in float32 NumPy: `z = X @ w + b`, then
    `X.T @ (sigmoid(z) - y) / n`."""
    n, d = X.shape

    def run(epochs, orders=None, seed=0):
        w, b = np.zeros(d, np.float32), np.float32(0.0)
        with np.errstate(over="ignore"):
            for _ in range(epochs):
                z = X @ w + b
                r = (1 / (1 + np.exp(-z)) - y) / np.float32(n)  # dL/dz of the mean loss
                w = w - np.float32(LR) * (X.T @ r)
                b = b - np.float32(LR) * r.sum()
        return w, float(b)

    return run


def sklearn_runner(X, y, batch):
    """scikit-learn's `SGDClassifier` (log loss, no penalty, constant learning rate `LR`), one
    `partial_fit` per epoch: its compiled loop over single examples, reshuffled every epoch
    (batch 1 only). Given `orders`, it trains on the rows in that order, unshuffled."""
    from sklearn.linear_model import SGDClassifier

    if batch != 1:
        raise ValueError(f"`batch` must be 1 for SGDClassifier, got {batch}")
    classes = np.array([0.0, 1.0], np.float32)

    def run(epochs, orders=None, seed=0):
        clf = SGDClassifier(
            loss="log_loss",
            penalty=None,
            learning_rate="constant",
            eta0=LR,
            shuffle=orders is None,
            random_state=np.random.RandomState(seed),
        )
        for epoch in range(epochs):
            rows = slice(None) if orders is None else orders[epoch]
            clf.partial_fit(X[rows], y[rows], classes=classes)
        return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])

    return run
