"""jaxgd.models against PyTorch modules given the same parameters, plus inits and bad input."""

import contextlib
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxgd.models import (
    double_relu,
    linear,
    linear_init,
    logistic_logit,
    logistic_regression,
    mk_quad,
    mlp,
    mlp_init,
    quad,
    rectified_linear,
    relu_sum,
    relu_sum_init,
)

DTYPES = ["float32", "float64"]
TOL = {"float32": 1e-6, "float64": 1e-12}
KEY = jax.random.key(0)


def x64(dtype):
    """Enable float64 in JAX for the float64 runs (the context manager of jax 0.10)."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def tensor(a, requires_grad=False):
    return torch.from_numpy(np.array(a)).requires_grad_(requires_grad)


def data(shape, dtype, uniform=None, seed=0):
    """Test data from NumPy (a jax.random draw would compile a kernel per shape)."""
    rng = np.random.default_rng(seed)
    values = (
        rng.standard_normal(shape) if uniform is None else rng.uniform(-uniform, uniform, shape)
    )
    return values.astype(dtype)


def assert_close(actual, desired, dtype):
    """Relative tolerance `TOL[dtype]`, measured against the largest entry of `desired`.

    Outputs near zero come from cancellation (a 784-term dot product), so an element-wise
    relative check would measure the cancellation, not the implementation.
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape
    assert actual.dtype == desired.dtype == np.dtype(dtype)
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * np.abs(desired).max())


# --------------------------------------------------------------------------------------------
# Every model against torch: outputs and gradients, float32 and float64, eager and jitted.
# A case builds jaxgd params, a batched jaxgd forward, and a torch forward whose parameter
# tensors come back in the order of `jax.tree.leaves(params)`.
# --------------------------------------------------------------------------------------------


def torch_linear(w, b):
    """An nn.Linear holding weight `w` (out, in) and bias `b` (out,)."""
    w, b = np.atleast_2d(np.array(w)), np.atleast_1d(np.array(b))
    layer = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.from_numpy(w).dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        layer.bias.copy_(torch.from_numpy(b))
    return layer


def case_linear(dtype, sigmoid=False):
    params = linear_init(key=KEY, in_features=5, dtype=dtype)
    X = data((8, 5), dtype)
    layer = torch_linear(params["w"], params["b"])
    if sigmoid:
        jax_fwd = jax.vmap(logistic_regression, in_axes=(None, 0))
        torch_fwd = lambda X: torch.sigmoid(layer(X))[:, 0]
    else:
        jax_fwd = jax.vmap(linear, in_axes=(None, 0))
        torch_fwd = lambda X: layer(X)[:, 0]
    return params, X, jax_fwd, torch_fwd, [layer.bias, layer.weight]


def case_logit(dtype):
    params, X, _, torch_fwd, leaves = case_linear(dtype)
    return params, X, jax.vmap(logistic_logit, in_axes=(None, 0)), torch_fwd, leaves


def case_mlp(dtype, sizes=(784, 30, 1)):
    params = mlp_init(key=KEY, sizes=sizes, dtype=dtype)
    X = data((8, sizes[0]), dtype)
    layers = []
    for layer in params:
        layers += [torch_linear(layer["w"], layer["b"]), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    torch_fwd = (lambda X: net(X)[:, 0]) if sizes[-1] == 1 else net
    leaves = [t for lin in net[::2] for t in (lin.bias, lin.weight)]
    return params, X, jax.vmap(mlp, in_axes=(None, 0)), torch_fwd, leaves


def case_relu_sum(dtype):
    params = relu_sum_init(key=KEY, k=6, dtype=dtype)
    params["c"] = params["c"] + 0.3
    X = data((20,), dtype, uniform=2.0)
    hidden = torch_linear(params["m"][:, None], params["b"])  # nn.Linear(1, k)
    c = tensor(params["c"], requires_grad=True)
    torch_fwd = lambda X: torch.relu(hidden(X[:, None])).sum(dim=1) + c
    return (
        params,
        X,
        jax.vmap(relu_sum, in_axes=(None, 0)),
        torch_fwd,
        [hidden.bias, c, hidden.weight],
    )


def case_scalar_fn(dtype, jax_fn, torch_fn, names):
    """A fast.ai function of scalar coefficients, e.g. quad(a, b, c, x), on 20 inputs."""
    params = {n: jnp.asarray(v) for n, v in zip(names, data((len(names),), dtype), strict=True)}
    X = data((20,), dtype, uniform=2.0)
    leaves = {n: tensor(params[n], requires_grad=True) for n in names}
    jax_fwd = jax.vmap(lambda p, x: jax_fn(*(p[n] for n in names), x), in_axes=(None, 0))
    torch_fwd = lambda X: torch_fn(*(leaves[n] for n in names), X)
    return params, X, jax_fwd, torch_fwd, [leaves[n] for n in sorted(names)]


def torch_rectified_linear(m, b, x):
    return torch.clip(m * x + b, 0.0)  # the notes' definition


CASES = {
    "linear": case_linear,
    "logistic_regression": functools.partial(case_linear, sigmoid=True),
    "logistic_logit": case_logit,
    "mlp_simple_net": case_mlp,
    "mlp_5_4_3_2": functools.partial(case_mlp, sizes=(5, 4, 3, 2)),
    "relu_sum": case_relu_sum,
    "quad": functools.partial(
        case_scalar_fn,
        jax_fn=quad,
        torch_fn=lambda a, b, c, x: a * x**2 + b * x + c,
        names=("a", "b", "c"),
    ),
    "rectified_linear": functools.partial(
        case_scalar_fn, jax_fn=rectified_linear, torch_fn=torch_rectified_linear, names=("m", "b")
    ),
    "double_relu": functools.partial(
        case_scalar_fn,
        jax_fn=double_relu,
        torch_fn=lambda m1, b1, m2, b2, x: (
            torch_rectified_linear(m1, b1, x) + torch_rectified_linear(m2, b2, x)
        ),
        names=("m1", "b1", "m2", "b2"),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_model_matches_torch_output_and_gradient(name, dtype):
    with x64(dtype):
        params, X, jax_fwd, torch_fwd, torch_leaves = CASES[name](dtype)
        Xt = tensor(X)
        preds = jax_fwd(params, X)
        assert_close(preds, torch_fwd(Xt).detach().numpy(), dtype)

        # Gradient of a squared error against random targets, in both frameworks.
        y = data(preds.shape, dtype, seed=1)
        loss = lambda p: jnp.mean((jax_fwd(p, X) - y) ** 2)
        grads = jax.jit(jax.grad(loss))(params)  # jitted: eager autodiff compiles op by op
        torch.mean((torch_fwd(Xt) - tensor(y)) ** 2).backward()
        leaves = jax.tree.leaves(grads)
        assert len(leaves) == len(torch_leaves)
        for g, t in zip(leaves, torch_leaves, strict=True):
            assert_close(g, t.grad.numpy().reshape(g.shape), dtype)

        # The eager forward above and a jitted one agree; new values do not retrace.
        traces = []

        @jax.jit
        def jitted(p, X):
            traces.append(None)
            return jax_fwd(p, X)

        assert_close(jitted(params, X), preds, dtype)
        jitted(jax.tree.map(lambda a: np.asarray(a) + 1, params), X + 1)
        assert len(traces) == 1


# --------------------------------------------------------------------------------------------
# The fast.ai functions as in the notes.
# --------------------------------------------------------------------------------------------


def test_mk_quad_is_a_partial_of_quad():
    f = mk_quad(3.0, 2.0, 1.0)
    assert isinstance(f, functools.partial) and f.func is quad and f.args == (3.0, 2.0, 1.0)
    x = jnp.linspace(-2, 2, 20)
    np.testing.assert_allclose(f(x), 3 * x**2 + 2 * x + 1, rtol=1e-6)  # the notes' f, on a vector
    assert float(f(2.0)) == 17.0


def test_relu_functions_have_zero_gradient_at_the_kink_like_nn_relu():
    assert float(jax.grad(rectified_linear, argnums=2)(1.0, 0.0, 0.0)) == 0.0
    x = torch.tensor(0.0, requires_grad=True)
    torch.relu(x).backward()
    assert float(x.grad) == 0.0


def test_relu_sum_without_bias_and_double_relu_special_case():
    params = relu_sum_init(key=KEY, k=6, bias=False)
    assert set(params) == {"m", "b"}
    m, b, x = np.asarray(params["m"]), np.asarray(params["b"]), jnp.array(0.7)
    expected = sum(double_relu(m[i], b[i], m[i + 1], b[i + 1], x) for i in (0, 2, 4))
    np.testing.assert_allclose(relu_sum(params, x), expected, rtol=1e-6)


def test_mlp_one_output_is_a_scalar_and_several_outputs_a_vector():
    shape = lambda f: jax.eval_shape(f).shape  # shapes only: nothing to compile
    assert shape(lambda: mlp(mlp_init(key=KEY, sizes=(5, 1)), jnp.ones(5))) == ()
    assert shape(lambda: mlp(mlp_init(key=KEY, sizes=(5, 4, 3, 2)), jnp.ones(5))) == (2,)
    params = linear_init(key=KEY, in_features=5, out_features=2)
    assert params["w"].shape == (2, 5) and params["b"].shape == (2,)
    assert shape(lambda: linear(params, jnp.ones(5))) == (2,)


def test_params_as_tuple_of_layers_work():
    params = mlp_init(key=KEY, sizes=(5, 4, 3, 2))
    x = jnp.arange(5.0)
    assert mlp(tuple(params), x).tolist() == mlp(params, x).tolist()


# --------------------------------------------------------------------------------------------
# Initialisers.
# --------------------------------------------------------------------------------------------


def ks_same_distribution(a, b, alpha_coefficient=1.95):
    """Two-sample Kolmogorov-Smirnov test at level 0.001 (c(alpha) = 1.95), in NumPy."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    grid = np.concatenate([a, b])
    d = np.abs(
        np.searchsorted(a, grid, "right") / a.size - np.searchsorted(b, grid, "right") / b.size
    )
    return d.max() < alpha_coefficient * np.sqrt((a.size + b.size) / (a.size * b.size))


def test_torch_init_bounds_and_statistics_match_nn_linear():
    params = mlp_init(key=KEY)  # simple_net: 784 -> 30 -> 1
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.ReLU(), torch.nn.Linear(30, 1))
    for layer, lin, fan_in in zip(params, net[::2], (784, 30), strict=True):
        bound = 1 / np.sqrt(fan_in)
        for name, torch_value in (("w", lin.weight), ("b", lin.bias)):
            value = np.asarray(layer[name])
            assert value.shape == tuple(torch_value.shape)
            assert np.abs(value).max() <= bound
        # torch's own init obeys the same bound: it is the distribution we claim to copy.
        assert lin.weight.abs().max().item() <= bound and lin.bias.abs().max().item() <= bound
    w = np.asarray(params[0]["w"], np.float64)
    bound = 1 / np.sqrt(784)
    n = w.size  # 23520 draws of U(-bound, bound): mean 0, variance bound**2 / 3
    assert abs(w.mean()) < 5 * bound / np.sqrt(3 * n)
    assert abs(w.var() / (bound**2 / 3) - 1) < 0.03  # the variance's relative s.e. is 0.6 %
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound
    assert ks_same_distribution(w, net[0].weight.detach().numpy())


def test_normal_init_has_the_requested_std():
    params = linear_init(key=KEY, in_features=20_000, init="normal", std=0.5)
    w = np.asarray(params["w"], np.float64)
    assert abs(w.mean()) < 5 * 0.5 / np.sqrt(w.size)
    assert abs(w.std() / 0.5 - 1) < 0.02
    layers = mlp_init(key=KEY, sizes=(5, 4, 3, 2), init="normal", std=0.1)
    assert all(np.all(leaf != 0) for leaf in jax.tree.leaves(layers))  # biases drawn too, as
    assert all(np.abs(leaf).max() < 0.5 for leaf in jax.tree.leaves(layers))  # in init_params


@pytest.mark.parametrize(
    "make",
    [
        lambda init: linear_init(key=KEY, in_features=5, init=init),
        lambda init: relu_sum_init(key=KEY, k=6, init=init),
        lambda init: mlp_init(key=KEY, sizes=(5, 4, 3, 2), init=init),
    ],
    ids=["linear", "relu_sum", "mlp"],
)
def test_zeros_init_and_determinism(make):
    assert all(not np.any(leaf) for leaf in jax.tree.leaves(make("zeros")))
    first, again = make("torch"), make("torch")
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), first, again))
    assert jax.tree.structure(first) == jax.tree.structure(make("normal"))


def test_relu_sum_torch_init_is_nn_linear_1_k():
    params = relu_sum_init(key=KEY, k=1000)
    for name in ("m", "b"):
        assert np.abs(params[name]).max() <= 1.0 and np.abs(params[name]).max() > 0.99
    assert float(params["c"]) == 0.0


def test_init_dtype_and_key_kinds():
    assert linear_init(key=KEY, in_features=5)["w"].dtype == jnp.float32
    with jax.enable_x64(True):
        assert linear_init(key=KEY, in_features=5)["w"].dtype == jnp.float64
        assert linear_init(key=KEY, in_features=5, dtype=jnp.float32)["w"].dtype == jnp.float32
    raw = linear_init(key=jax.random.PRNGKey(0), in_features=5)  # a raw uint32 key is a key too
    assert raw["w"].shape == (5,)
    keys = jax.random.split(KEY, 4)
    batched = jax.vmap(lambda k: linear_init(key=k, in_features=5))(keys)  # one model per key
    assert batched["w"].shape == (4, 5) and batched["b"].shape == (4,)


# --------------------------------------------------------------------------------------------
# Bad input: the exception type and the words of the message.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: linear_init(key=0, in_features=3),
            TypeError,
            r"`key` must be a PRNG key.*int 0",
        ),
        (
            lambda: linear_init(key=None, in_features=3),
            TypeError,
            r"`key` must be a PRNG key.*got None",
        ),
        (lambda: linear_init(key=jnp.ones(2), in_features=3), TypeError, r"`key`.*float32"),
        (
            lambda: mlp_init(key=jax.random.split(KEY, 3)),
            TypeError,
            r"`key` must be a PRNG key.*shape \(3,\)",
        ),
        (lambda: linear_init(key=KEY, in_features=0), ValueError, r"`in_features`.*got 0"),
        (lambda: linear_init(key=KEY, in_features=-3), ValueError, r"`in_features`.*got -3"),
        (lambda: linear_init(key=KEY, in_features=2.5), TypeError, r"`in_features`.*float 2.5"),
        (lambda: linear_init(key=KEY, in_features=True), TypeError, r"`in_features`.*bool"),
        (
            lambda: linear_init(key=KEY, in_features=3, out_features=0),
            ValueError,
            r"`out_features`",
        ),
        (lambda: linear_init(key=KEY, in_features=3, init="he"), ValueError, r"`init`.*'he'"),
        (
            lambda: linear_init(key=KEY, in_features=3, init="normal", std=-1.0),
            ValueError,
            r"`std`.*-1.0",
        ),
        (lambda: linear_init(key=KEY, in_features=3, std="big"), TypeError, r"`std`"),
        (
            lambda: linear_init(key=KEY, in_features=3, dtype=jnp.int32),
            TypeError,
            r"`dtype`.*int32",
        ),
        (lambda: relu_sum_init(key=KEY, k=0), ValueError, r"`k`"),
        (lambda: mlp_init(key=KEY, sizes=(784,)), ValueError, r"`sizes`.*at least two.*\(784,\)"),
        (lambda: mlp_init(key=KEY, sizes=(784, 0, 1)), ValueError, r"`sizes\[1\]`.*got 0"),
        (lambda: mlp_init(key=KEY, sizes=784), TypeError, r"`sizes`.*784"),
        (lambda: mlp_init(key=KEY, sizes="784"), TypeError, r"`sizes`"),
        (lambda: mlp_init(key=KEY, init="kaiming"), ValueError, r"`init`"),
        (lambda: quad(jnp.ones(3), 1.0, 1.0, 2.0), ValueError, r"`a` must be a scalar.*\(3,\)"),
        (lambda: rectified_linear(1.0, jnp.ones(2), 2.0), ValueError, r"`b` must be a scalar"),
        (lambda: linear({"weight": jnp.ones(3)}, jnp.ones(3)), TypeError, r"`params`.*'w', 'b'"),
        (
            lambda: linear({"w": jnp.ones(3), "b": jnp.ones(3)}, jnp.ones(3)),
            ValueError,
            r"`params`.*w \(3,\) and b \(3,\)",
        ),
        (lambda: mlp({"w": jnp.ones((1, 3))}, jnp.ones(3)), TypeError, r"`params`.*list"),
        (
            lambda: mlp(
                [
                    {"w": jnp.ones((4, 3)), "b": jnp.ones(4)},
                    {"w": jnp.ones((1, 5)), "b": jnp.ones(1)},
                ],
                jnp.ones(3),
            ),
            ValueError,
            r"`params\[1\]\['w'\]` has shape \(1, 5\).*outputs 4.*expected \(1, 4\)",
        ),
        (
            lambda: relu_sum({"m": jnp.ones(3), "b": jnp.ones(2)}, 1.0),
            ValueError,
            r"`params`.*m \(3,\), b \(2,\)",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


LIN = linear_init(key=KEY, in_features=5)
NET = mlp_init(key=KEY, sizes=(5, 4, 3, 2))
RELU = relu_sum_init(key=KEY, k=6)


@pytest.mark.parametrize(
    "model, params, expected",
    [
        (linear, LIN, "(5,)"),
        (logistic_regression, LIN, "(5,)"),
        (mlp, NET, "(5,)"),
        (relu_sum, RELU, "()"),
    ],
    ids=["linear", "logistic_regression", "mlp", "relu_sum"],
)
@pytest.mark.parametrize("transform", ["eager", "jit", "vmap"])
def test_wrong_x_shape_names_expected_and_seen_shapes(model, params, expected, transform):
    x = jnp.ones(7)  # wrong for every model above
    if transform == "jit":
        call = lambda: jax.jit(model)(params, x)
    elif transform == "vmap":  # a batch whose examples have the wrong shape
        call = lambda: jax.vmap(model, in_axes=(None, 0))(params, jnp.ones((2, 7)))
    else:
        call = lambda: model(params, x)
    with pytest.raises(
        ValueError, match=rf"`x` must have shape {re.escape(expected)}.*got shape \(7,\)"
    ):
        call()


def test_a_batch_given_to_a_one_example_model_suggests_vmap():
    with pytest.raises(
        ValueError, match=r"got shape \(8, 5\).*batch of 8 examples.*jax.vmap\(linear"
    ):
        linear(LIN, jnp.ones((8, 5)))
