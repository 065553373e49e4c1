"""jaxgd.autograd: the notes' worked numbers, per-example gradients, against PyTorch."""

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxgd.autograd import (
    logistic_example,
    mean_double_example,
    mean_loss,
    per_example_grads,
    per_example_losses,
    square_example,
    sum_squares_example,
)
from jaxgd.models import linear, mlp, mlp_init

DTYPES = ["float32", "float64"]
TOL = {"float32": 1e-6, "float64": 1e-12}


def x64(dtype):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_tree_close(actual, desired, dtype):
    """Leaf by leaf, relative to each leaf's largest entry (sums reorder float32 roundoff)."""
    assert jax.tree.structure(actual) == jax.tree.structure(desired)
    for a, d in zip(jax.tree.leaves(actual), jax.tree.leaves(desired), strict=True):
        a, d = np.asarray(a), np.asarray(d)
        assert a.shape == d.shape and a.dtype == d.dtype == np.dtype(dtype)
        tol = TOL[dtype]
        np.testing.assert_allclose(a, d, rtol=tol, atol=tol * np.abs(d).max())


# --------------------------------------------------------------------------------------------
# The notes' numbers, to 4 decimals, and the same computation in PyTorch.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_example_numbers(dtype):
    with x64(dtype):
        r = logistic_example()
        assert r.loss.dtype == np.dtype(dtype)
        got = [round(float(v), 4) for v in r]
    assert got == [0.3829, 0.5946, 0.5199, 0.5199, -0.4987, -0.4054]


def test_logistic_example_matches_torch_backward():
    w = torch.tensor(0.23, requires_grad=True)
    b = torch.tensor(0.1, requires_grad=True)
    x, y = torch.tensor(1.23), torch.tensor(1.0)
    z = w * x + b
    a = torch.sigmoid(z)
    loss = torch.nn.functional.binary_cross_entropy(a, y)
    loss.backward()
    r = logistic_example()
    for ours, theirs in [
        (r.z, z),
        (r.a, a),
        (r.loss, loss),
        (r.dloss_dw, w.grad),
        (r.dloss_db, b.grad),
    ]:
        np.testing.assert_allclose(float(ours), theirs.item(), rtol=1e-6)
    with_logits = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    np.testing.assert_allclose(float(r.loss_from_logits), with_logits.item(), rtol=1e-6)
    # The chain rule by hand: dL/dw = (a - y) x, dL/db = a - y.
    np.testing.assert_allclose(float(r.dloss_dw), (float(r.a) - 1) * 1.23, rtol=1e-6)
    np.testing.assert_allclose(float(r.dloss_db), float(r.a) - 1, rtol=1e-6)


def test_logistic_example_with_label_zero_matches_torch():
    r = logistic_example(w=-0.5, b=0.3, x=2.0, y=0.0)
    w = torch.tensor(-0.5, requires_grad=True)
    b = torch.tensor(0.3, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy(torch.sigmoid(w * 2.0 + b), torch.tensor(0.0))
    loss.backward()
    np.testing.assert_allclose(
        [r.loss, r.dloss_dw, r.dloss_db], [loss.item(), w.grad, b.grad], rtol=1e-6
    )


def test_square_mean_and_sum_examples():
    value, grad = square_example()
    assert (float(value), float(grad)) == (9.0, 6.0)
    value, grad = mean_double_example()
    assert float(value) == 4.0 and [round(float(g), 4) for g in grad] == [0.6667] * 3
    value, grad = sum_squares_example()
    assert float(value) == 125.0 and grad.tolist() == [6.0, 8.0, 20.0]
    # Torch's requires_grad / backward on the same three.
    for jax_fn, torch_fn, x in [
        (square_example, lambda t: t**2, 3.0),
        (mean_double_example, lambda t: (2 * t).mean(), [1.0, 2.0, 3.0]),
        (sum_squares_example, lambda t: (t**2).sum(), [3.0, 4.0, 10.0]),
    ]:
        t = torch.tensor(x, requires_grad=True)
        torch_fn(t).backward()
        np.testing.assert_allclose(jax_fn(x=x)[1], t.grad.numpy(), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Per-example losses and gradients.
# --------------------------------------------------------------------------------------------


def squared_error(params, x, y):
    return (linear(params, x) - y) ** 2


def bce_with_logits_mlp(params, x, y):
    z = mlp(params, x)
    return jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))


def nested_loss(params, x, y):
    """Params as a tuple holding a dict and a list; x a dict of two arrays (a pytree X)."""
    (weights, (bias,)) = params
    pred = weights["w"] @ x["pixels"] + weights["scale"] * x["extra"] + bias
    return (pred - y) ** 2


def problem(name, dtype):
    n, d = 12, 5
    X, y = data((n, d), dtype), data((n,), dtype, seed=1)
    if name == "linear_dict":
        params = {"w": jnp.asarray(data((d,), dtype, 2)), "b": jnp.asarray(0.3, dtype)}
        return squared_error, params, X, y
    if name == "mlp_list":
        labels = (y > 0).astype(dtype)
        return (
            bce_with_logits_mlp,
            mlp_init(key=jax.random.key(0), sizes=(5, 4, 1), dtype=dtype),
            X,
            labels,
        )
    params = (
        {"w": jnp.asarray(data((d,), dtype, 2)), "scale": jnp.asarray(data((), dtype, 3))},
        [jnp.asarray(data((), dtype, 4))],
    )
    return nested_loss, params, {"pixels": X, "extra": data((n,), dtype, 5)}, y


PROBLEMS = ["linear_dict", "mlp_list", "nested_pytree_params_and_X"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", PROBLEMS)
def test_mean_of_per_example_grads_is_grad_of_mean_loss(name, dtype):
    with x64(dtype):
        loss, params, X, y = problem(name, dtype)
        # jitted (eager autodiff compiles op by op); eager == jit is tested below.
        grads = jax.jit(functools.partial(per_example_grads, loss))(params, X, y)
        n = len(y)
        assert all(
            g.shape == (n, *p.shape)
            for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params), strict=True)
        )
        batch_grad = jax.jit(jax.grad(lambda p: mean_loss(loss, p, X, y)))(params)
        assert_tree_close(jax.tree.map(lambda g: g.mean(axis=0), grads), batch_grad, dtype)


@pytest.mark.parametrize("name", PROBLEMS)
def test_per_example_losses_and_grads_match_a_python_loop(name):
    loss, params, X, y = problem(name, "float32")
    losses = per_example_losses(loss, params, X, y)
    grads = jax.jit(functools.partial(per_example_grads, loss))(params, X, y)
    assert losses.shape == (len(y),)
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    for i in (0, 5, len(y) - 1):
        take_i = functools.partial(lambda i, a: np.asarray(a)[i], i)
        loss_i, grad_i = value_and_grad(params, jax.tree.map(take_i, X), y[i])
        np.testing.assert_allclose(losses[i], loss_i, rtol=1e-6)
        assert_tree_close(jax.tree.map(take_i, grads), grad_i, "float32")
    np.testing.assert_allclose(mean_loss(loss, params, X, y), losses.mean(), rtol=1e-6)


def test_per_example_grads_match_torch_backward_per_example():
    loss, params, X, y = problem("linear_dict", "float32")
    grads = per_example_grads(loss, params, X, y)
    layer = torch.nn.Linear(5, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.array(params["w"]))[None])
        layer.bias.fill_(float(params["b"]))
    for i in range(len(y)):
        layer.zero_grad()
        ((layer(torch.from_numpy(X[i])) - float(y[i])) ** 2).sum().backward()
        np.testing.assert_allclose(
            grads["w"][i], layer.weight.grad[0].numpy(), rtol=1e-6, atol=1e-7
        )
        np.testing.assert_allclose(grads["b"][i], layer.bias.grad[0].item(), rtol=1e-6, atol=1e-7)


def test_eager_equals_jit():
    loss, params, X, y = problem("nested_pytree_params_and_X", "float32")
    jitted = jax.jit(functools.partial(per_example_grads, loss))
    assert_tree_close(jitted(params, X, y), per_example_grads(loss, params, X, y), "float32")
    jit_mean = jax.jit(functools.partial(mean_loss, loss))
    np.testing.assert_allclose(jit_mean(params, X, y), mean_loss(loss, params, X, y), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------------------------

P = {"w": jnp.ones(3), "b": jnp.array(0.0)}


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda f: f(squared_error, P, jnp.ones((5, 3)), jnp.ones(4)),
            r"same number of examples.*`X` has 5.*`y` has 4",
        ),
        (
            lambda f: f(
                squared_error, P, {"a": jnp.ones((5, 3)), "b": jnp.ones((6,))}, jnp.ones(5)
            ),
            r"`X\['a'\]` has 5, `X\['b'\]` has 6",
        ),
        (
            lambda f: f(squared_error, P, jnp.ones((5, 3)), jnp.array(1.0)),
            r"`y` is a scalar.*axis 0",
        ),
        (lambda f: f(squared_error, P, {}, jnp.ones(5)), r"`X` holds no arrays"),
        (
            lambda f: f(lambda p, x, y: p["w"] * x - y, P, jnp.ones((5, 3)), jnp.ones(5)),
            r"`example_loss` must return a scalar.*\(3,\)",
        ),
    ],
)
@pytest.mark.parametrize("fn", [per_example_losses, per_example_grads, mean_loss])
def test_bad_data_raises_clear_errors(fn, call, match):
    with pytest.raises(ValueError, match=match):
        call(fn)


def test_model_shape_errors_surface_through_vmap():
    with pytest.raises(ValueError, match=r"`x` must have shape \(3,\).*got shape \(4,\)"):
        per_example_grads(squared_error, P, jnp.ones((5, 4)), jnp.ones(5))


def test_mean_loss_of_no_examples_is_an_error():
    with pytest.raises(ValueError, match=r"0 examples"):
        mean_loss(squared_error, P, jnp.ones((0, 3)), jnp.ones(0))
    assert per_example_losses(squared_error, P, jnp.ones((0, 3)), jnp.ones(0)).shape == (0,)
