"""The lectures' models as pure functions of `(params, x)` for ONE example.

Every model here is an `apply(params, x)` that maps one example to one prediction; batch it with
`jax.vmap(apply, in_axes=(None, 0))(params, X)`. Initialisers take an explicit PRNG `key` keyword
and return params as dicts (or a list of dicts) of arrays, so they are pytrees that `jax.grad`,
optax and `jax.tree.map` understand without any wrapper class.

Three initialisers, chosen by `init=`:

- `"torch"`: PyTorch's `nn.Linear` default, weight AND bias uniform in
  `[-1/sqrt(fan_in), 1/sqrt(fan_in))` (the same distribution, not the same numbers: to start from a
  torch model's exact numbers use `jaxgd.interop.from_torch`);
- `"normal"`: every array from `N(0, std**2)`, fastbook's `init_params(size, std)`;
- `"zeros"`: every array zero.

Weights use torch's layout, `(out_features, in_features)`, so a `state_dict` maps over directly.
Models never import `jaxgd.losses`: a loss receives the model's prediction.

Examples:
    >>> import jax
    >>> params = linear_init(key=jax.random.key(0), in_features=3)
    >>> X = jax.numpy.ones((5, 3))
    >>> jax.vmap(linear, in_axes=(None, 0))(params, X).shape
    (5,)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxgd import _checks

__all__ = [
    "INITS",
    "double_relu",
    "linear",
    "linear_init",
    "logistic_logit",
    "logistic_regression",
    "mk_quad",
    "mlp",
    "mlp_init",
    "quad",
    "rectified_linear",
    "relu_sum",
    "relu_sum_init",
]

Array = jax.Array
Params = dict[str, Array]

INITS = ("torch", "normal", "zeros")
"""The initialiser names that every `*_init` function accepts."""


# --------------------------------------------------------------------------------------------
# Argument checks (static: they read shapes and dtypes only, so they work under jit and vmap).
# --------------------------------------------------------------------------------------------


def _check_key(key: Any) -> None:
    """Raise TypeError unless `key` is ONE PRNG key (typed, or a raw uint32 key)."""
    if key is None:
        raise TypeError(
            "`key` must be a PRNG key such as `key=jax.random.key(0)`, got None. jaxgd never "
            "draws hidden random numbers: make a key and pass it explicitly."
        )
    _checks.check_key(key)


def _check_size(value: Any, name: str) -> int:
    """Return `value` as a positive int or raise TypeError/ValueError naming `name`."""
    return _checks.check_int(value, name, minimum=1)


def _check_init(init: Any, std: Any) -> None:
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"`init` must be one of {INITS}; got {init!r}.")
    try:
        value = float(std)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        raise TypeError(f"`std` must be a non-negative number; got {std!r}.") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"`std` must be a finite non-negative number; got {value}.")


def _check_dtype(dtype: Any) -> Any:
    dtype = jnp.dtype(float if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype such as jnp.float32; got {dtype}.")
    return jax.dtypes.canonicalize_dtype(dtype)  # float64 -> float32 unless x64 is enabled


def _check_shape(x: Any, expected: tuple[int, ...], *, model: str, name: str = "x") -> Array:
    """Return `x` as an array after checking its (static) shape is `expected`."""
    x = jnp.asarray(x)
    if x.shape != tuple(expected):
        hint = ""
        if x.ndim == len(expected) + 1 and x.shape[1:] == tuple(expected):
            hint = (
                f" It looks like a batch of {x.shape[0]} examples: `{model}` takes ONE example; "
                f"batch it with `jax.vmap({model}, in_axes=(None, 0))(params, X)`."
            )
        raise ValueError(
            f"`{name}` must have shape {tuple(expected)} for `{model}`; got shape {x.shape}.{hint}"
        )
    return x


def _check_scalar(value: Any, name: str, model: str) -> Array:
    value = jnp.asarray(value)
    if value.shape != ():
        raise ValueError(
            f"`{name}` must be a scalar in `{model}`; got shape {value.shape}. "
            f"Pass one number per coefficient (vmap over `{name}` to try several)."
        )
    return value


def _get(params: Any, names: Sequence[str], where: str, maker: str) -> list[Array]:
    """Fetch `names` from the dict `params`, with an error that says where params come from."""
    if not isinstance(params, Mapping) or not all(n in params for n in names):
        seen = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise TypeError(
            f"`{where}` must be a dict with keys {list(names)} (as made by `{maker}`); got {seen}."
        )
    return [jnp.asarray(params[n]) for n in names]


def _draw(key: Array, shape: tuple[int, ...], init: str, std: float, fan_in: int, dtype) -> Array:
    """One parameter array from the named initialiser."""
    if init == "zeros":
        return jnp.zeros(shape, dtype)
    if init == "normal":
        return std * jax.random.normal(key, shape, dtype)
    bound = 1.0 / math.sqrt(fan_in)  # torch: kaiming_uniform_(a=sqrt(5)) gives this same bound
    return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)


# --------------------------------------------------------------------------------------------
# Linear and logistic regression.
# --------------------------------------------------------------------------------------------


def linear_init(
    *,
    key: Array,
    in_features: int,
    out_features: int | None = None,
    init: str = "torch",
    std: float = 0.01,
    dtype: Any = None,
) -> Params:
    """Parameters of a linear model `y = w @ x + b`, shaped like `nn.Linear(in_features, 1)`.

    Args:
      key: a PRNG key, e.g. `jax.random.key(0)`; split internally for `w` and `b`.
      in_features: d, the number of input features (positive int).
      out_features: None (default) for one output: `w` has shape `(d,)` and `b` shape `()`, so
        the model returns a scalar. An int k gives `w` of shape `(k, d)` and `b` of shape `(k,)`.
      init: `"torch"` (uniform in ±1/sqrt(d) for weight and bias, nn.Linear's default),
        `"normal"` (`N(0, std**2)` for both) or `"zeros"`.
      std: standard deviation for `init="normal"`.
      dtype: floating dtype; None means JAX's default (float32, float64 under `jax.enable_x64`).

    Returns:
      `{"w": (d,) or (k, d), "b": () or (k,)}`.

    Raises:
      TypeError: `key` is not a PRNG key, a size is not an int, or `dtype` is not floating.
      ValueError: a size is not positive, `init` is unknown or `std` is negative.

    Examples:
      >>> import jax
      >>> params = linear_init(key=jax.random.key(0), in_features=3)
      >>> params["w"].shape, params["b"].shape, params["w"].dtype
      ((3,), (), dtype('float32'))
      >>> bool(abs(params["w"]).max() <= 3**-0.5)
      True
      >>> linear_init(key=jax.random.key(0), in_features=3, init="zeros")["w"].tolist()
      [0.0, 0.0, 0.0]
    """
    _check_key(key)
    d = _check_size(in_features, "in_features")
    k = None if out_features is None else _check_size(out_features, "out_features")
    _check_init(init, std)
    dtype = _check_dtype(dtype)
    wkey, bkey = jax.random.split(key)
    w_shape, b_shape = ((d,), ()) if k is None else ((k, d), (k,))
    return {
        "w": _draw(wkey, w_shape, init, std, d, dtype),
        "b": _draw(bkey, b_shape, init, std, d, dtype),
    }


def linear(params: Params, x: Array) -> Array:
    """Linear regression on one example: `y = w @ x + b` (torch's `nn.Linear`).

    Args:
      params: `{"w": (d,), "b": ()}` from `linear_init` (or `{"w": (k, d), "b": (k,)}`).
      x: one example, shape `(d,)`.

    Returns:
      The prediction: a scalar, or shape `(k,)` for a `(k, d)` weight.

    Raises:
      TypeError: `params` is not a dict with keys "w" and "b".
      ValueError: `x` is not of shape `(d,)` (a batch included: use `jax.vmap`), or `b`'s shape
        does not match `w`'s.

    Examples:
      >>> import jax.numpy as jnp
      >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(0.5)}
      >>> print(linear(params, jnp.array([3.0, 4.0])))
      11.5
    """
    w, b = _get(params, ("w", "b"), "params", "linear_init")
    if w.ndim not in (1, 2) or b.shape != w.shape[:-1]:
        raise ValueError(
            f"`params` must hold `w` of shape (d,) with `b` of shape (), or `w` of shape (k, d) "
            f"with `b` of shape (k,); got w {w.shape} and b {b.shape}."
        )
    x = _check_shape(x, w.shape[-1:], model="linear")
    return w @ x + b


def logistic_logit(params: Params, x: Array) -> Array:
    """Logistic regression's logit on one example: `z = w @ x + b` (same params as `linear`).

    Pair it with a BCE-with-logits loss: that form is stable for large `|z|`.

    Args:
      params: `{"w": (d,), "b": ()}` from `linear_init`.
      x: one example, shape `(d,)`.

    Returns:
      The logit, a scalar.

    Raises:
      TypeError, ValueError: as `linear`.

    Examples:
      >>> import jax.numpy as jnp
      >>> params = {"w": jnp.array([0.23]), "b": jnp.array(0.1)}
      >>> print(f"{logistic_logit(params, jnp.array([1.23])):.4f}")
      0.3829
    """
    return linear(params, x)


def logistic_regression(params: Params, x: Array) -> Array:
    """Logistic regression on one example: the probability `sigmoid(w @ x + b)` of class 1.

    Lecture 3.6's `nn.Linear(d, 1)` followed by `torch.sigmoid`. Pair it with BCE on
    probabilities, or use `logistic_logit` with BCE-with-logits.

    Args:
      params: `{"w": (d,), "b": ()}` from `linear_init`.
      x: one example, shape `(d,)`.

    Returns:
      The probability in [0, 1], a scalar.

    Raises:
      TypeError, ValueError: as `linear`.

    Examples:
      >>> import jax.numpy as jnp
      >>> params = {"w": jnp.array([0.23]), "b": jnp.array(0.1)}
      >>> print(f"{logistic_regression(params, jnp.array([1.23])):.4f}")
      0.5946
    """
    return jax.nn.sigmoid(linear(params, x))


# --------------------------------------------------------------------------------------------
# fast.ai's "How does a neural net really work?": quadratics and rectified linear functions.
# --------------------------------------------------------------------------------------------


def quad(a: Array, b: Array, c: Array, x: Array) -> Array:
    """The quadratic `a * x**2 + b * x + c` (fast.ai course22, "How does a neural net work").

    Args:
      a, b, c: scalar coefficients.
      x: one input (a scalar), or an array of any shape, taken elementwise as the notes do.

    Returns:
      An array of `x`'s shape.

    Raises:
      ValueError: a coefficient is not a scalar.

    Examples:
      >>> print(quad(3.0, 2.0, 1.0, 1.5))
      10.75
    """
    a = _check_scalar(a, "a", "quad")
    b = _check_scalar(b, "b", "quad")
    c = _check_scalar(c, "c", "quad")
    x = jnp.asarray(x)
    return a * x**2 + b * x + c


def mk_quad(a: Array, b: Array, c: Array) -> Callable[[Array], Array]:
    """Fix the coefficients of `quad`: `functools.partial(quad, a, b, c)`, as in the notes.

    Args:
      a, b, c: scalar coefficients.

    Returns:
      `f(x) = a * x**2 + b * x + c`.

    Examples:
      >>> f = mk_quad(3.0, 2.0, 1.0)
      >>> print(f(1.5))
      10.75
    """
    return functools.partial(quad, a, b, c)


def rectified_linear(m: Array, b: Array, x: Array) -> Array:
    """The rectified linear function `max(m * x + b, 0)` (the notes' `torch.clip(m*x+b, 0.)`).

    The derivative at the kink (`m * x + b == 0` exactly) is taken as 0, as `nn.ReLU` and
    `jax.nn.relu` do (the notes' `torch.clip` would give 1 there; elsewhere they agree).

    Args:
      m: scalar slope.
      b: scalar intercept.
      x: one input (a scalar), or an array of any shape, taken elementwise.

    Returns:
      An array of `x`'s shape.

    Raises:
      ValueError: `m` or `b` is not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> rectified_linear(2.0, 1.0, jnp.array([-1.0, 0.0, 1.0])).tolist()
      [0.0, 1.0, 3.0]
    """
    m = _check_scalar(m, "m", "rectified_linear")
    b = _check_scalar(b, "b", "rectified_linear")
    return jax.nn.relu(m * jnp.asarray(x) + b)


def double_relu(m1: Array, b1: Array, m2: Array, b2: Array, x: Array) -> Array:
    """The sum of two rectified linear functions, as in the notes.

    `double_relu(m1, b1, m2, b2, x) = max(m1*x + b1, 0) + max(m2*x + b2, 0)`.

    Args:
      m1, b1: slope and intercept of the first (scalars).
      m2, b2: slope and intercept of the second (scalars).
      x: one input (a scalar), or an array of any shape, taken elementwise.

    Returns:
      An array of `x`'s shape.

    Raises:
      ValueError: a coefficient is not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> double_relu(1.0, 0.0, -1.0, 0.0, jnp.array([-2.0, 0.0, 3.0])).tolist()
      [2.0, 0.0, 3.0]
    """
    return rectified_linear(m1, b1, x) + rectified_linear(m2, b2, x)


def relu_sum_init(
    *,
    key: Array,
    k: int,
    init: str = "torch",
    std: float = 0.01,
    bias: bool = True,
    dtype: Any = None,
) -> Params:
    """Parameters of a sum of `k` rectified linear functions (see `relu_sum`).

    The slopes and intercepts are the weight and bias of an `nn.Linear(1, k)`, so `"torch"`
    draws both uniformly in [-1, 1) (fan_in is 1). The output bias `c` always starts at zero.

    Args:
      key: a PRNG key, e.g. `jax.random.key(0)`.
      k: the number of rectified linear functions (positive int).
      init: `"torch"`, `"normal"` or `"zeros"` (zeros is a dead start: every unit is at its
        kink, where the gradient is 0).
      std: standard deviation for `init="normal"`.
      bias: include the output bias `c` (a scalar added to the sum).
      dtype: floating dtype; None means JAX's default.

    Returns:
      `{"m": (k,), "b": (k,)}`, plus `"c": ()` when `bias` is True.

    Raises:
      TypeError: `key` is not a PRNG key, `k` is not an int, or `dtype` is not floating.
      ValueError: `k` is not positive, `init` is unknown or `std` is negative.

    Examples:
      >>> import jax
      >>> params = relu_sum_init(key=jax.random.key(0), k=4)
      >>> {name: p.shape for name, p in params.items()}
      {'m': (4,), 'b': (4,), 'c': ()}
    """
    _check_key(key)
    k = _check_size(k, "k")
    _check_init(init, std)
    dtype = _check_dtype(dtype)
    mkey, bkey = jax.random.split(key)
    params = {
        "m": _draw(mkey, (k,), init, std, 1, dtype),
        "b": _draw(bkey, (k,), init, std, 1, dtype),
    }
    if bias:
        params["c"] = jnp.zeros((), dtype)
    return params


def relu_sum(params: Params, x: Array) -> Array:
    """A sum of k rectified linear functions of one scalar input.

    `f(x) = sum_i max(m_i * x + b_i, 0) + c`: the notes' "add as many as we like" (a one-hidden-layer
    network of width k whose output weights are all 1). With enough terms it fits any continuous
    function of one variable on an interval.

    Args:
      params: `{"m": (k,), "b": (k,)}` and optionally `"c": ()`, from `relu_sum_init`.
      x: one input, a scalar (shape `()`).

    Returns:
      A scalar.

    Raises:
      TypeError: `params` lacks "m" or "b".
      ValueError: `x` is not a scalar (batch with `jax.vmap`), or the params' shapes disagree.

    Examples:
      >>> import jax.numpy as jnp
      >>> params = {"m": jnp.array([1.0, -1.0]), "b": jnp.array([0.0, 0.0]), "c": jnp.array(0.5)}
      >>> print(relu_sum(params, -2.0))
      2.5
    """
    m, b = _get(params, ("m", "b"), "params", "relu_sum_init")
    c = jnp.asarray(params.get("c", 0.0))
    if m.ndim != 1 or b.shape != m.shape or c.shape != ():
        raise ValueError(
            f"`params` must hold `m` and `b` of one shape (k,) and an optional scalar `c`; "
            f"got m {m.shape}, b {b.shape}, c {c.shape}."
        )
    x = _check_shape(x, (), model="relu_sum")
    return jnp.sum(jax.nn.relu(m * x + b)) + c


# --------------------------------------------------------------------------------------------
# Multi-layer perceptron.
# --------------------------------------------------------------------------------------------


def mlp_init(
    *,
    key: Array,
    sizes: Sequence[int] = (784, 30, 1),
    init: str = "torch",
    std: float = 0.01,
    dtype: Any = None,
) -> list[Params]:
    """Parameters of a multi-layer perceptron, one `nn.Linear` per pair of widths in `sizes`.

    The default `(784, 30, 1)` is fastbook's `simple_net`:
    `nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1))`.

    Args:
      key: a PRNG key, e.g. `jax.random.key(0)`; split once per layer.
      sizes: layer widths, input first: at least two positive ints.
      init: `"torch"` (each layer uniform in ±1/sqrt(fan_in), nn.Linear's default), `"normal"`
        or `"zeros"` (a dead start for a ReLU network: every gradient but the last bias is 0).
      std: standard deviation for `init="normal"`.
      dtype: floating dtype; None means JAX's default.

    Returns:
      A list with one `{"w": (out, in), "b": (out,)}` per layer (torch's weight layout).

    Raises:
      TypeError: `key` is not a PRNG key, `sizes` is not a sequence of ints, or `dtype` is not
        floating.
      ValueError: `sizes` has fewer than two entries or a non-positive one, `init` is unknown or
        `std` is negative.

    Examples:
      >>> import jax
      >>> params = mlp_init(key=jax.random.key(0))
      >>> [(layer["w"].shape, layer["b"].shape) for layer in params]
      [((30, 784), (30,)), ((1, 30), (1,))]
    """
    _check_key(key)
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(
            f"`sizes` must be a sequence of layer widths such as (784, 30, 1); got {sizes!r}."
        )
    if len(sizes) < 2:
        raise ValueError(
            f"`sizes` must hold at least two widths (input and output), e.g. (784, 30, 1); "
            f"got {tuple(sizes)}."
        )
    widths = [_check_size(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
    _check_init(init, std)
    dtype = _check_dtype(dtype)
    params = []
    for layer_key, fan_in, fan_out in zip(
        jax.random.split(key, len(widths) - 1), widths[:-1], widths[1:], strict=True
    ):
        wkey, bkey = jax.random.split(layer_key)
        params.append(
            {
                "w": _draw(wkey, (fan_out, fan_in), init, std, fan_in, dtype),
                "b": _draw(bkey, (fan_out,), init, std, fan_in, dtype),
            }
        )
    return params


def _mlp_layers(params: Any) -> list[tuple[Array, Array]]:
    if not isinstance(params, (list, tuple)) or not params:
        raise TypeError(
            "`params` must be a non-empty list of {'w': (out, in), 'b': (out,)} layers "
            f"(as made by `mlp_init`); got {type(params).__name__}."
        )
    layers = []
    for i, layer in enumerate(params):
        w, b = _get(layer, ("w", "b"), f"params[{i}]", "mlp_init")
        if w.ndim != 2 or b.shape != w.shape[:1]:
            raise ValueError(
                f"`params[{i}]` must hold `w` of shape (out, in) and `b` of shape (out,); "
                f"got w {w.shape} and b {b.shape}."
            )
        if layers and w.shape[1] != layers[-1][0].shape[0]:
            raise ValueError(
                f"`params[{i}]['w']` has shape {w.shape}, but the layer before outputs "
                f"{layers[-1][0].shape[0]} features: expected ({w.shape[0]}, "
                f"{layers[-1][0].shape[0]})."
            )
        layers.append((w, b))
    return layers


def mlp(params: Sequence[Params], x: Array) -> Array:
    """A multi-layer perceptron on one example: linear layers with ReLU between them.

    `h = relu(W_1 x + b_1)`, ..., `y = W_L h + b_L` (no activation after the last layer, as in
    fastbook's `simple_net`). A last layer with one output returns a scalar, not shape `(1,)`:
    per-example losses then take scalars, and `jax.vmap` gives predictions of shape `(n,)`
    (torch's module gives `(n, 1)`; squeeze it when comparing).

    Args:
      params: a list of `{"w": (out, in), "b": (out,)}` layers from `mlp_init`.
      x: one example, shape `(in,)` of the first layer (784 for `simple_net`).

    Returns:
      A scalar when the last layer has one output, else shape `(out,)`.

    Raises:
      TypeError: `params` is not a list of dicts with "w" and "b".
      ValueError: `x` has the wrong shape (a batch included: use `jax.vmap`), or the layers'
        shapes do not chain.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> params = mlp_init(key=jax.random.key(0), sizes=(4, 3, 1))
      >>> mlp(params, jnp.ones(4)).shape
      ()
      >>> jax.vmap(mlp, in_axes=(None, 0))(params, jnp.ones((8, 4))).shape
      (8,)
    """
    layers = _mlp_layers(params)
    h = _check_shape(x, layers[0][0].shape[1:], model="mlp")
    for w, b in layers[:-1]:
        h = jax.nn.relu(w @ h + b)
    w, b = layers[-1]
    out = w @ h + b
    return out[0] if out.shape == (1,) else out
