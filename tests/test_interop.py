"""jaxgd.interop: torch modules and state_dicts to jaxgd params and back."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxgd.interop import from_torch, to_torch
from jaxgd.models import linear, logistic_regression, mlp, mlp_init


class LogisticRegression(torch.nn.Module):
    """Lecture 3.6's model: one nn.Linear, then a sigmoid in forward."""

    def __init__(self, num_features):
        super().__init__()
        self.linear = torch.nn.Linear(num_features, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


def simple_net():
    return torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.ReLU(), torch.nn.Linear(30, 1))


def small_net(dtype=torch.float32):
    layers = [torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)]
    layers += [torch.nn.ReLU(), torch.nn.Linear(3, 2)]
    return torch.nn.Sequential(*layers).to(dtype)


def inputs(n, d, dtype=np.float32):
    return np.random.default_rng(0).standard_normal((n, d)).astype(dtype)


def batched(model):
    return jax.vmap(model, in_axes=(None, 0))


def test_linear_module_to_params():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1)
    params = from_torch(layer)
    assert set(params) == {"w", "b"}
    assert params["w"].shape == (4,) and params["b"].shape == ()
    assert params["w"].dtype == jnp.float32
    np.testing.assert_array_equal(params["w"], layer.weight.detach().numpy()[0])
    assert float(params["b"]) == layer.bias.item()
    X = inputs(6, 4)
    np.testing.assert_allclose(
        batched(linear)(params, X), layer(torch.from_numpy(X)).detach().numpy()[:, 0], rtol=1e-6
    )


def test_linear_with_several_outputs_keeps_torch_layout():
    layer = torch.nn.Linear(4, 3)
    params = from_torch(layer)
    assert params["w"].shape == (3, 4) and params["b"].shape == (3,)
    X = inputs(6, 4)
    np.testing.assert_allclose(
        batched(linear)(params, X), layer(torch.from_numpy(X)).detach().numpy(), rtol=1e-6
    )


def test_state_dict_gives_the_same_params_as_the_module():
    torch.manual_seed(0)
    for module in (torch.nn.Linear(4, 1), LogisticRegression(2), small_net()):
        from_module, from_dict = from_torch(module), from_torch(module.state_dict())
        assert jax.tree.structure(from_module) == jax.tree.structure(from_dict)
        for a, b in zip(jax.tree.leaves(from_module), jax.tree.leaves(from_dict), strict=True):
            np.testing.assert_array_equal(a, b)


def test_lecture_3_6_logistic_regression_module():
    torch.manual_seed(1)
    model = LogisticRegression(2)
    params = from_torch(model)
    assert params["w"].shape == (2,) and params["b"].shape == ()
    X = inputs(20, 2)
    np.testing.assert_allclose(
        batched(logistic_regression)(params, X),
        model(torch.from_numpy(X)).detach().numpy()[:, 0],
        rtol=1e-6,
    )


def test_simple_net_sequential_to_mlp_params():
    torch.manual_seed(0)
    net = simple_net()
    params = from_torch(net)
    assert [(p["w"].shape, p["b"].shape) for p in params] == [((30, 784), (30,)), ((1, 30), (1,))]
    X = inputs(4, 784)
    ours, theirs = batched(mlp)(params, X), net(torch.from_numpy(X)).detach().numpy()[:, 0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())


@pytest.mark.parametrize(
    "make", [lambda: torch.nn.Linear(5, 1), lambda: LogisticRegression(5), small_net]
)
def test_round_trip_state_dict_params_module_is_exact(make):
    torch.manual_seed(0)
    source, target = make(), make()  # different random inits
    X = torch.from_numpy(inputs(6, 5))
    assert not torch.equal(source(X), target(X))
    returned = to_torch(from_torch(source.state_dict()), target)
    assert returned is target
    assert torch.equal(source(X), target(X))
    for (name, a), (_, b) in zip(
        source.state_dict().items(), target.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_round_trip_params_module_params_is_exact():
    params = mlp_init(key=jax.random.key(0), sizes=(5, 4, 3, 2))
    back = from_torch(to_torch(params, small_net()))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(back), strict=True):
        np.testing.assert_array_equal(a, b)
    X = inputs(6, 5)
    np.testing.assert_allclose(
        batched(mlp)(params, X), small_net_outputs(params, X), rtol=1e-6, atol=1e-7
    )


def small_net_outputs(params, X):
    return to_torch(params, small_net())(torch.from_numpy(X)).detach().numpy()


def test_round_trip_float64():
    with jax.enable_x64(True):
        torch.manual_seed(0)
        net = small_net(torch.float64)
        params = from_torch(net)
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
        X = inputs(6, 5, np.float64)
        theirs = net(torch.from_numpy(X)).detach().numpy()
        np.testing.assert_allclose(batched(mlp)(params, X), theirs, rtol=1e-12, atol=1e-14)
        copy = to_torch(params, small_net(torch.float64))
        assert torch.equal(copy(torch.from_numpy(X)), net(torch.from_numpy(X)))


def test_to_torch_casts_to_the_module_dtype():
    params = mlp_init(key=jax.random.key(0), sizes=(5, 4, 3, 2))  # float32
    net = to_torch(params, small_net(torch.float64))
    assert net[0].weight.dtype == torch.float64
    np.testing.assert_array_equal(net[0].weight.detach().numpy(), np.asarray(params[0]["w"]))


def test_to_torch_accepts_a_one_layer_dict_for_a_wrapper_module():
    params = {"w": jnp.arange(3.0), "b": jnp.array(0.5)}
    model = to_torch(params, LogisticRegression(3))
    assert model.linear.weight.tolist() == [[0.0, 1.0, 2.0]] and model.linear.bias.tolist() == [0.5]


# --------------------------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------------------------


class TwoLinears(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)


@pytest.mark.parametrize(
    "value, error, match",
    [
        (torch.nn.Conv2d(1, 1, 3), TypeError, r"`state_dict_or_module` is a Conv2d.*nn.Linear"),
        (TwoLinears(), TypeError, r"is a TwoLinears"),
        (
            torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Sigmoid()),
            TypeError,
            r"layer 1 is Sigmoid; expected nn.ReLU.*from_torch\(model\[0\]\)",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()),
            TypeError,
            r"Sequential of 2 layers.*ending with a Linear",
        ),
        ([1.0, 2.0], TypeError, r"`state_dict_or_module` must be a torch.nn.Module.*list"),
        (
            torch.nn.BatchNorm1d(3).state_dict(),
            TypeError,
            r"has key 'running_mean'",
        ),
        ({}, TypeError, r"empty state_dict"),
        (TwoLinears().state_dict(), TypeError, r"holds layers \['a', 'b'\]"),
        (torch.nn.Linear(3, 1, bias=False), ValueError, r"has no bias.*bias=True"),
        (
            {"weight": torch.ones(3, 2), "bias": torch.ones(2)},
            ValueError,
            r"shapes \(out, in\) and \(out,\); got \(3, 2\) and \(2,\)",
        ),
        (
            {"weight": torch.ones(1, 2, dtype=torch.int64), "bias": torch.ones(1)},
            TypeError,
            r"`weight` must be a floating torch.Tensor; got torch.int64",
        ),
    ],
)
def test_from_torch_rejects_what_it_cannot_convert(value, error, match):
    with pytest.raises(error, match=match):
        from_torch(value)


def test_to_torch_shape_mismatch_leaves_the_module_untouched():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    params = mlp_init(key=jax.random.key(0), sizes=(5, 4, 3, 2))
    params[2] = {"w": jnp.zeros((3, 3)), "b": jnp.zeros(3)}
    with pytest.raises(
        ValueError, match=r"`params\[2\]\['w'\]` has shape \(3, 3\).*expects \(2, 3\)"
    ):
        to_torch(params, net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize(
    "params, module, error, match",
    [
        ({"w": jnp.ones(3), "b": jnp.array(0.0)}, "net", TypeError, r"`module` must be a torch"),
        (
            {"w": jnp.ones(5), "b": jnp.array(0.0)},
            small_net(),
            ValueError,
            r"1 layer\(s\).*3 nn.Linear",
        ),
        (
            [{"w": jnp.ones((1, 3))}],
            torch.nn.Linear(3, 1),
            TypeError,
            r"`params\[0\]` must have keys",
        ),
        ("weights", torch.nn.Linear(3, 1), TypeError, r"`params` must be a dict"),
        (
            {"w": jnp.ones(4), "b": jnp.array(0.0)},
            torch.nn.Linear(3, 1),
            ValueError,
            r"\(4,\).*expects \(1, 3\)",
        ),
        ({"w": jnp.ones(3), "b": jnp.array(0.0)}, torch.nn.Conv2d(1, 1, 3), TypeError, r"Conv2d"),
    ],
)
def test_to_torch_rejects_mismatched_params_and_modules(params, module, error, match):
    with pytest.raises(error, match=match):
        to_torch(params, module)


def test_importing_jaxgd_modules_does_not_import_torch():
    code = (
        "import sys, jaxgd, jaxgd.models, jaxgd.autograd, jaxgd.interop; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
