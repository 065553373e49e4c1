"""Property tests (hypothesis) of `fit`'s invariants on generated small problems.

Problems have n in 1..12 examples and d in 1..3 features, batch sizes 1..n+2, 1..3 epochs, with
and without `drop_last`. Each new shape or static setting compiles a new XLA program (0.5-2 s
here), so the generated problems keep few shapes: n is drawn from `NS`, X is padded with zero
columns to `D` features (the padding's weights get zero gradients, so a d-feature problem is
unchanged), and the runs shuffled by a key (the slowest program to compile) use the few
settings of `KEYED`. Values, d, learning rates, keys, orders and permutations are drawn freely.
Losses against PyTorch on generated shapes and values are in tests/test_losses.py (200 examples
per loss); here only fastbook's `mnist_loss`, which has no `torch.nn.functional` twin.
"""

from typing import NamedTuple

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from hypothesis import given, settings

import jaxgd
from jaxgd import losses

NS = (1, 2, 3, 7, 12)  # Numbers of examples: one, a pair, odd and ragged sizes, the largest.
KEYED = (
    (7, 2, False),
    (12, 5, True),
)  # (n, batch_size, drop_last): a ragged last batch, a dropped one.
D = 3  # Features, after padding.
FIT = settings(max_examples=20, deadline=None)
MOMENTUM = optax.sgd(0.1, momentum=0.9)  # One object: a second equal object would recompile.


def logistic_loss(p, x, y):
    """Binary cross-entropy on the logit of ONE example (independent of jaxgd.losses)."""
    z = x @ p["w"] + p["b"]
    return jnp.logaddexp(0.0, z) - y * z


example_grad = jax.jit(jax.grad(logistic_loss))  # x is always (D,): compiled once.


@jax.jit  # once per n
def gradients(params, X, y, mask):
    """Per-example gradients, and the gradients of the batch loss without and with `mask`."""
    batch_grad = jax.grad(jaxgd.batch_loss, argnums=1)
    return (
        jaxgd.per_example_grads(logistic_loss, params, X, y),
        batch_grad(logistic_loss, params, X, y),
        batch_grad(logistic_loss, params, X, y, mask),
    )


class Problem(NamedTuple):
    X: np.ndarray  # shape=(n, D), float32; columns d.. are zero.
    y: np.ndarray  # shape=(n,), float32 in {0, 1}.
    params: dict  # {"w": (D,), "b": ()}, float32.
    n: int
    d: int


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_subnormal=False, width=32)


@st.composite
def problems(draw, ns=NS):
    n, d = draw(st.sampled_from(ns)), draw(st.integers(1, 3))
    X = draw(hnp.arrays(np.float32, (n, d), elements=_floats(-2, 2)))
    X = np.pad(X, ((0, 0), (0, D - d)))
    y = draw(hnp.arrays(np.float32, (n,), elements=st.sampled_from([0.0, 1.0])))
    w = draw(hnp.arrays(np.float32, (D,), elements=_floats(-1, 1)))
    params = {"w": jnp.asarray(w), "b": jnp.asarray(draw(_floats(-1, 1)), jnp.float32)}
    return Problem(X, y, params, n, d)


@st.composite
def runs(draw):
    """A problem, epochs, a batch size in 1..n+2 and drop_last (never one that drops every batch)."""
    problem = draw(problems())
    batch_size = draw(st.integers(1, problem.n + 2))
    drop_last = draw(st.booleans()) and batch_size <= problem.n
    return problem, draw(st.integers(1, 3)), batch_size, drop_last


@st.composite
def keyed_runs(draw):
    """As `runs`, in one of the `KEYED` settings, with a key."""
    n, batch_size, drop_last = draw(st.sampled_from(KEYED))
    key = jax.random.key(draw(st.integers(0, 2**31 - 1)))
    return draw(problems(ns=(n,))), draw(st.integers(1, 3)), batch_size, drop_last, key


def orders_for(draw, n, epochs):
    return np.array([draw(st.permutations(range(n))) for _ in range(epochs)], np.int32)


learning_rates = st.sampled_from([0.05, 0.3, 1.0])  # a traced value: no recompiles


def assert_same_run(a, b, **tol):
    """Equal losses and params: bitwise without `tol`, else within it."""
    check = np.testing.assert_allclose if tol else np.testing.assert_array_equal
    check(np.asarray(a.losses), np.asarray(b.losses), **tol)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        check(np.asarray(leaf_a), np.asarray(leaf_b), **tol)


# ---------------------------------------------------------------------------------- schedules


@FIT
@given(problem=problems(), epochs=st.integers(1, 3), extra=st.integers(0, 2),
       drop_last=st.booleans(), lr=learning_rates)  # fmt: skip
def test_batch_size_n_or_more_is_full_batch(problem, epochs, extra, drop_last, lr):
    X, y, params, n, _ = problem
    batch_size = n if drop_last else n + extra  # drop_last with m > n would leave no batch
    full = jaxgd.fit(logistic_loss, params, (X, y), epochs=epochs, optimizer=lr, eval_train=False)
    batched = jaxgd.fit(logistic_loss, params, (X, y), epochs=epochs, optimizer=lr,
                        batch_size=batch_size, drop_last=drop_last, eval_train=False)  # fmt: skip
    assert full.losses.shape == batched.losses.shape == (epochs, 1)
    assert_same_run(full, batched, rtol=1e-6, atol=1e-6)


@FIT
@given(data=st.data(), problem=problems(), epochs=st.integers(1, 3), drop_last=st.booleans(),
       lr=learning_rates)  # fmt: skip
def test_batch_size_one_is_sgd_by_hand(data, problem, epochs, drop_last, lr):
    X, y, params, n, _ = problem
    orders = orders_for(data.draw, n, epochs)
    r = jaxgd.fit(logistic_loss, params, (X, y), epochs=epochs, optimizer=lr, batch_size=1,
                  orders=orders, drop_last=drop_last, eval_train=False)  # fmt: skip
    p, seen = params, []
    for order in orders:  # w <- w - lr * grad loss(w, x_i, y_i), one example at a time
        for i in order:
            seen.append(logistic_loss(p, X[i], y[i]))
            p = jax.tree.map(lambda a, g: a - lr * g, p, example_grad(p, X[i], y[i]))
    assert r.losses.shape == (epochs, n)
    np.testing.assert_allclose(np.ravel(r.losses), seen, rtol=1e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(r.params), jax.tree.leaves(p), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------- orders


@settings(max_examples=15, deadline=None)
@given(data=st.data(), run=runs(), lr=learning_rates)
def test_identity_orders_and_permuted_data_with_inverse_orders(data, run, lr):
    """Orders only say which example comes when: the same batches, so the same run, bit for bit.

    One batch of all n (m >= n without drop_last) ignores orders: its mean then adds the permuted
    examples in another order, equal to rounding.
    """
    (X, y, params, n, _), epochs, batch_size, drop_last = run
    common = dict(epochs=epochs, optimizer=lr, batch_size=batch_size, drop_last=drop_last,
                  eval_train=False)  # fmt: skip
    plain = jaxgd.fit(logistic_loss, params, (X, y), **common)
    identity = np.tile(np.arange(n, dtype=np.int32), (epochs, 1))
    assert_same_run(plain, jaxgd.fit(logistic_loss, params, (X, y), orders=identity, **common))

    orders = orders_for(data.draw, n, epochs)  # a run in these orders ...
    perm = np.asarray(data.draw(st.permutations(range(n))))
    inverse = np.argsort(perm)  # X[perm][inverse[i]] == X[i]
    moved = jaxgd.fit(logistic_loss, params, (X[perm], y[perm]), orders=inverse[orders], **common)
    tol = dict(rtol=1e-6, atol=1e-7) if batch_size >= n and not drop_last else {}
    assert_same_run(jaxgd.fit(logistic_loss, params, (X, y), orders=orders, **common), moved, **tol)


# ---------------------------------------------------------------------------------- gradients


@settings(max_examples=25, deadline=None)
@given(data=st.data(), problem=problems())
def test_mean_of_per_example_gradients_is_the_batch_gradient(data, problem):
    X, y, params, n, d = problem
    mask = np.asarray(data.draw(hnp.arrays(bool, (n,))))
    mask[data.draw(st.integers(0, n - 1))] = True  # a padded batch has at least one real row
    per_example, whole, masked = gradients(params, X, y, mask)
    for rows, batch in ((np.ones(n, bool), whole), (mask, masked)):
        for g, want in zip(jax.tree.leaves(per_example), jax.tree.leaves(batch), strict=True):
            np.testing.assert_allclose(np.mean(g[rows], axis=0), want, rtol=1e-5, atol=1e-6)
    assert not np.any(per_example["w"][:, d:])  # the padding's weights get no gradient


# ---------------------------------------------------------------------------------- keys, resume


@settings(max_examples=10, deadline=None)
@given(run=keyed_runs(), first=st.integers(1, 2))
def test_resuming_equals_one_long_run(run, first):
    (X, y, params, n, _), epochs, batch_size, drop_last, key = run
    epochs = max(epochs, first + 1)  # first epochs, then the rest (at most 3 in all)
    common = dict(optimizer=MOMENTUM, batch_size=batch_size, drop_last=drop_last, key=key)
    long = jaxgd.fit(logistic_loss, params, (X, y), epochs=epochs, **common)
    head = jaxgd.fit(logistic_loss, params, (X, y), epochs=first, **common)
    tail = jaxgd.fit(logistic_loss, head.params, (X, y), epochs=epochs - first,
                     opt_state=head.opt_state, start_epoch=first, **common)  # fmt: skip
    np.testing.assert_array_equal(np.concatenate([head.losses, tail.losses]), long.losses)
    np.testing.assert_array_equal(np.concatenate([head.train_loss, tail.train_loss]),
                                  long.train_loss)  # fmt: skip
    for a, b in zip(jax.tree.leaves(tail.params), jax.tree.leaves(long.params), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(tail.opt_state), jax.tree.leaves(long.opt_state), strict=True):
        np.testing.assert_array_equal(a, b)


@FIT
@given(run=keyed_runs())
def test_the_same_key_gives_bitwise_identical_results(run):
    (X, y, params, _, _), epochs, batch_size, drop_last, key = run
    go = lambda key: jaxgd.fit(logistic_loss, params, (X, y), epochs=epochs, optimizer=MOMENTUM,
                               batch_size=batch_size, drop_last=drop_last, key=key)  # fmt: skip
    a, b = go(key), go(jax.random.wrap_key_data(jax.random.key_data(key)))  # an equal, new key
    assert_same_run(a, b)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)


# ---------------------------------------------------------------------------------- mnist_loss


def torch_mnist_loss(predictions, targets):
    """fastbook chapter 4, verbatim."""
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


@settings(max_examples=200, deadline=None)
@given(data=st.data(), shape=st.sampled_from([(), (5,), (4, 3)]))
def test_mnist_loss_against_fastbooks_torch_code(data, shape):
    extremes = st.sampled_from([0.0, 20.0, -20.0, 100.0, -100.0, 1e4, -1e4])
    x = data.draw(hnp.arrays(np.float32, shape, elements=st.one_of(extremes, _floats(-1e4, 1e4))))
    t = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)))
    loss, grad = jax.value_and_grad(losses.mnist_loss)(jnp.asarray(x), jnp.asarray(t))
    xt = torch.tensor(x, requires_grad=True)
    want = torch_mnist_loss(xt, torch.tensor(t))
    want.backward()
    np.testing.assert_allclose(loss, want.item(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5, atol=1e-8)
