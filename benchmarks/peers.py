"""The loops jaxgd is compared with, on the benchmark's task: an idiomatic PyTorch eager loop, a
jitted JAX + optax step called from Python, full-batch gradient descent in NumPy, scikit-learn's
`SGDClassifier`, and the bare XLA bound (one hand-written jitted `lax.scan`).

Each maker takes `(X, y, batch)` (batch None: full batch) and returns `run(epochs, orders=None,
seed=0, ...) -> (w, b)`. The slow loops also take `steps` (stop each epoch after that many
updates) and `clock` (a list that receives `(seconds, steps taken)` per epoch).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

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


def xla_floor_runner(X, y, batch):
    """The bare XLA bound: the epochs as one jitted `lax.scan` of `value_and_grad` updates, as
    written by hand for this task, with none of `fit`'s work around them. The data are on the
    device already (no copy, no checks), the orders are drawn once on the host and kept there
    (no shuffle in the timed call), no loss is evaluated after an epoch, no history is kept but
    the batch losses. The rows are taken as `fit` takes them: a gather of the epoch for batches
    of 2-511 rows, row by row otherwise. What a zero-overhead `lax.scan` costs on this machine:
    a goal that this bound misses, jaxgd cannot meet with a `lax.scan`."""
    n, d = X.shape
    Xd, yd = jax.device_put(X), jax.device_put(y)
    rest = 0 if batch is None else n % batch
    gather_epoch = batch is not None and 1 < batch < 512

    def batch_loss(params, xb, yb):
        return jnp.mean(jax.vmap(example_loss, (None, 0, 0))(params, xb, yb))

    def update(params, xb, yb):
        loss, grads = jax.value_and_grad(batch_loss)(params, xb, yb)
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), loss

    def full_batch(params):  # The mean of per-example gradients, as `fit` computes it.
        losses, grads = jax.vmap(jax.value_and_grad(example_loss), (None, 0, 0))(params, Xd, yd)
        mean = jax.tree.map(lambda g: jnp.mean(g, 0), grads)
        return jax.tree.map(lambda p, g: p - LR * g, params, mean), jnp.mean(losses)

    def epoch(params, order):
        if batch is None:
            return full_batch(params)
        full = n // batch
        idx = order[: full * batch].reshape(full, batch)
        if gather_epoch:
            step = lambda p, xy: update(p, *xy)
            params, losses = lax.scan(step, params, (Xd[idx], yd[idx]))
        else:
            params, losses = lax.scan(lambda p, i: update(p, Xd[i], yd[i]), params, idx)
        if rest:
            tail = order[full * batch :]
            params, _ = update(params, Xd[tail], yd[tail])
        return params, losses

    @jax.jit
    def run_epochs(params, orders):
        return lax.scan(epoch, params, orders)

    drawn = {}  # epochs -> orders on the device, drawn once (the call does not shuffle).

    def run(epochs, orders=None, seed=0):
        if orders is None:
            if epochs not in drawn:
                rng = np.random.default_rng(0)
                drawn[epochs] = jnp.asarray(np.stack([rng.permutation(n) for _ in range(epochs)]))
            orders = drawn[epochs]
        params, _ = run_epochs(zeros(d), jnp.asarray(orders, jnp.int32))
        jax.block_until_ready(params)
        return np.asarray(params["w"]), float(params["b"])

    return run
