"""A catalogue of bad input across jaxgd: one row per mistake a user makes.

Every row names the call, the exception it must raise and the words its message must hold: the
argument in backticks, what was seen (a shape, a dtype, a value) and the fix. API rows also check
that the error is raised by jaxgd's own checks (the last frame of the traceback is in the jaxgd
package, not deep inside JAX or XLA) and that nothing was compiled (`fit`, `sweep` and `lr_find`
count their traces). CLI rows run `jaxgd.cli.main` in-process: exit status 2, one line on stderr,
no traceback, and no result file written.

The modules' own tests hold more rows of their kind (tests/test_loop.py's BAD, test_losses.py's
BAD_INPUT, test_models.py, test_data.py's bad files, test_sweep.py, test_lr_find.py, test_cli.py);
this file is the cross-library table and does not repeat them row for row.
"""

import json
import os
import pathlib
import re
import tempfile
from typing import Any, NamedTuple

import chex
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jaxgd
from jaxgd import cli, losses, models
from jaxgd.lr_finder import lr_find
from jaxgd.sweeps import sweep

JAXGD_DIR = pathlib.Path(jaxgd.__file__).parent


def sq_loss(p, x, y):
    """Squared error of a linear model on ONE example (independent of jaxgd.losses)."""
    return (x @ p["w"] + p["b"] - y) ** 2


X = np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2)
Y = np.array([0.0, 1.0, 0.0, 1.0, 1.0], np.float32)
P = {"w": jnp.zeros(2), "b": jnp.zeros(())}
KEY = jax.random.key(0)
KEYS = jax.random.split(KEY, 3)
MLP = models.mlp_init(key=KEY, sizes=(3, 2, 1))


def fit(**overrides):
    """`jaxgd.fit` on a good 5-example problem, with `overrides` making it bad."""
    args = dict(example_loss=sq_loss, params=P, data=(X, Y), epochs=2, optimizer=0.1)
    args.update(overrides)
    return jaxgd.fit(args.pop("example_loss"), args.pop("params"), args.pop("data"), **args)


def run_sweep(**overrides):
    args = dict(example_loss=sq_loss, params=P, data=(X, Y), epochs=2, learning_rates=[0.1, 0.2])
    args.update(overrides)
    return sweep(args.pop("example_loss"), args.pop("params"), args.pop("data"), **args)


def run_lr_find(**overrides):
    args = dict(example_loss=sq_loss, params=P, data=(X, Y), batch_size=2)
    args.update(overrides)
    return lr_find(args.pop("example_loss"), args.pop("params"), args.pop("data"), **args)


class Bad(NamedTuple):
    """One row: `call()` must raise `error` whose message matches `match` (a regex)."""

    name: str
    call: Any
    error: type
    match: str


def esc(text: str) -> str:
    return re.escape(text)


ANY = r"[\s\S]*"  # Anything, newlines included: JAX's own explanations span several lines.


def truncated_memmap(rows=2000, keep_bytes=400):
    """A float32 memmap of (rows, 2) whose file was cut to `keep_bytes` after it was mapped:
    reading its missing pages (past the first) kills the process with SIGBUS."""
    path = os.path.join(tempfile.mkdtemp(), "X.f32")
    np.ones((rows, 2), np.float32).tofile(path)
    X = np.memmap(path, np.float32, mode="r", shape=(rows, 2))
    os.truncate(path, keep_bytes)
    return X


def loss_with_if(p, x, y):
    if y > 0:  # Python control flow on a traced value
        return sq_loss(p, x, y)
    return 0.0


def accuracy_with_numpy(p, x, y):
    return np.exp(-sq_loss(p, x, y))


N_LARGE = np.zeros((1000, 2), np.float32), np.zeros(1000, np.float32)
FINITE_STATE = optax.adam(0.1).init(P)
NAN_STATE = FINITE_STATE[:1] + (FINITE_STATE[1],)
NAN_STATE = (FINITE_STATE[0]._replace(mu={"w": np.array([0.0, np.nan], np.float32),
                                          "b": np.zeros((), np.float32)}),) + FINITE_STATE[1:]  # fmt: skip
TORCH_P = {"w": torch.zeros(2), "b": torch.zeros(())}


CATALOGUE = [
    # ---------------------------------------------------------------- shapes, broadcasting
    Bad("losses: targets (n, 1) against predictions (n,)",
        lambda: losses.binary_cross_entropy_with_logits(jnp.zeros(3), jnp.zeros((3, 1))),
        ValueError, esc("`targets` has shape (3, 1) but `logits` has shape (3,); they must be "
                        "equal") + ".*" + esc("Fix: pass `targets.reshape(logits.shape)`")),
    Bad("losses: a weight that would enlarge the loss",
        lambda: losses.binary_cross_entropy(np.full(3, 0.5), np.ones(3), weight=np.ones((2, 3))),
        ValueError, esc("`weight` has shape (2, 3), which does not broadcast to the predictions' "
                        "shape (3,)") + ".*" + esc("Fix: give `weight` shape (3,)")),
    Bad("losses: one label per class instead of one per example",
        lambda: losses.cross_entropy(jnp.zeros((4, 3)), jnp.zeros((4, 3), jnp.int32)),
        ValueError, esc("`labels` has shape (4, 3) but `logits` has shape (4, 3); labels must have "
                        "shape `logits.shape[:-1]` = (4,)")),
    Bad("models: a batch given to a one-example model",
        lambda: models.logistic_regression(P, jnp.ones((5, 2))),
        ValueError, esc("`x` must have shape (2,) for `linear`; got shape (5, 2).") + ".*"
        + esc("batch it with `jax.vmap(linear, in_axes=(None, 0))(params, X)`")),
    Bad("models: x with the wrong number of features",
        lambda: models.mlp(MLP, np.ones(4, np.float32)),
        ValueError, esc("`x` must have shape (3,) for `mlp`; got shape (4,)")),
    Bad("fit: X and y with different numbers of examples (a pytree X)",
        lambda: fit(data=({"a": X, "b": X[:4]}, Y)),
        ValueError, esc("`data`: X and y must have the same number of examples (leading axis), got "
                        "X['a']: 5, X['b']: 4, y: 5.")),
    Bad("fit: y of shape (n, 1) makes the loss of one example (1,)",
        lambda: fit(data=(X, Y[:, None])),
        ValueError, esc("`example_loss` must return a scalar loss for ONE example, got shape (1,) "
                        "(one example: x of shape (2,), y of shape (1,))") + ".*"
        + esc("pass y of shape (n,), e.g. `y.reshape(-1)`")),
    Bad("fit: X with more features than the params",
        lambda: fit(data=(np.ones((5, 3), np.float32), Y)),
        TypeError, esc("`example_loss(params, x, y)` failed on one example (x of shape (3,), y of "
                       "shape ())") + ".*contracting dimensions"),
    Bad("fit: data that is not a pair",
        lambda: fit(data=(X, Y, Y)),
        TypeError, esc("`data` must be a pair `(X, y)` of arrays sharing the leading axis, got "
                       "tuple of length 3.")),
    Bad("fit: a scalar where the data needs an axis of examples",
        lambda: fit(data=(X, np.float32(1.0))),
        ValueError, esc("`data` y is a scalar; data arrays need a leading axis of examples, shape "
                        "(n, ...).")),
    Bad("fit: validation examples with another number of features",
        lambda: fit(val_data=(np.ones((3, 3), np.float32), np.ones(3, np.float32))),
        ValueError, esc("`val_data` X has examples of shape (3,), but `data` X has examples of "
                        "shape (2,); validation examples must look like training examples")),
    Bad("sweep: validation targets of shape (n, 1)",
        lambda: run_sweep(val_data=(X, Y[:, None])),
        ValueError, esc("`val_data` y has examples of shape (1,), but `data` y has examples of "
                        "shape ()")),
    Bad("fit: an optimizer state from another optimizer",
        lambda: fit(optimizer=optax.sgd(0.1), opt_state=optax.adam(0.1).init(P)),
        ValueError, esc("`opt_state` does not match `optimizer`: got shapes (ScaleByAdamState(")
        + ".*" + esc("but `optimizer.init(params)` has (EmptyState(), EmptyState()). Pass the "
                     "`.opt_state` of a run with the same optimizer and params, or None")),
    Bad("fit: metrics as a list",
        lambda: fit(metrics=[jaxgd.binary_accuracy(models.linear)]),
        TypeError, esc("`metrics` must be a dict {name: metric(params, x, y) -> scalar}, e.g. "
                       "`{'accuracy': jaxgd.binary_accuracy(model)}`, got list.")),
    Bad("sweep: init_params whose leaves disagree on K",
        lambda: run_sweep(params=None, learning_rates=None,
                          init_params={"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}),
        ValueError, esc("`init_params` leaves must all have the same leading axis K (one row per "
                        "member)") + ".*" + esc("Stack members with `jax.tree.map(lambda *a: "
                                                "jnp.stack(a), ...)`")),
    # ---------------------------------------------------------------- dtypes: ints, bools, complex
    Bad("losses: integer predictions",
        lambda: losses.l1_loss(jnp.arange(3), jnp.zeros(3)),
        TypeError, esc("`predictions` must be a real floating-point array; got dtype int32. Fix: "
                       "cast it, e.g. `predictions.astype(jnp.float32)`.")),
    Bad("losses: bool logits",
        lambda: losses.mnist_loss(jnp.ones(3, bool), jnp.ones(3)),
        TypeError, esc("`predictions` must be a real floating-point array; got dtype bool.")),
    Bad("losses: complex targets",
        lambda: losses.binary_cross_entropy(jnp.full(2, 0.5), jnp.ones(2, jnp.complex64)),
        TypeError, esc("`targets` must be real (bool, integer or float); got dtype complex64. Fix: "
                       "pass `jnp.real(targets)`")),
    Bad("models: an integer dtype for the params",
        lambda: models.relu_sum_init(key=KEY, k=3, dtype=jnp.int32),
        TypeError, esc("`dtype` must be a floating dtype such as jnp.float32; got int32.")),
    Bad("fit: an int leaf in params",
        lambda: fit(params={"w": jnp.zeros(2), "b": 0}),
        TypeError, esc("`params`['b'] has dtype int32; gradients need floating-point params. Use "
                       "e.g. `jnp.asarray(value, dtype=jnp.float32)` or `1.0` instead of `1`.")),
    Bad("fit: a bool leaf in params",
        lambda: fit(params={"w": jnp.zeros(2), "b": True}),
        TypeError, esc("`params`['b'] must be a float array, got bool: True.")),
    Bad("fit: complex params",
        lambda: fit(params={"w": jnp.zeros(2, jnp.complex64), "b": jnp.zeros(())}),
        TypeError, esc("`params`['w'] has dtype complex64; gradients need floating-point params.")),
    Bad("fit: complex targets",
        lambda: fit(data=(X, Y.astype(np.complex64))),
        TypeError, esc("`data` y has complex dtype complex64; jaxgd trains on real numbers.")),
    Bad("fit: strings as features",
        lambda: fit(data=(np.full((5, 2), "1.0"), Y)),
        TypeError, esc("`data` X has non-numeric dtype <U3.")),
    Bad("fit: a loss that returns an integer",
        lambda: fit(example_loss=lambda p, x, y: jnp.int32(1)),
        TypeError, esc("`example_loss` must return a floating-point loss, got dtype int32.")),
    Bad("sweep: bool learning rates",
        lambda: run_sweep(learning_rates=[True, False]),
        TypeError, esc("`learning_rates` must hold real numbers, got dtype bool.")),
    # ---------------------------------------------------------------- NaN and inf
    Bad("fit: inf in the targets",
        lambda: fit(data=(X, np.where(Y > 0, np.inf, 0).astype(np.float32))),
        ValueError, esc("`data` y holds 3 non-finite value(s) (NaN or inf); clean or impute them "
                        "before training.")),
    Bad("fit: NaN in the validation data",
        lambda: fit(val_data=(np.where(X > 0, np.nan, X), Y)),
        ValueError, esc("`val_data` X holds 5 non-finite value(s) (NaN or inf)")),
    Bad("fit: NaN in the params",
        lambda: fit(params={"w": jnp.array([0.0, jnp.nan]), "b": jnp.zeros(())}),
        ValueError, esc("`params`['w'] holds NaN or inf; start from finite parameters.")),
    Bad("sweep: inf in one member's init_params",
        lambda: run_sweep(params=None, learning_rates=None,
                          init_params={"w": jnp.array([[0.0, 0.0], [0.0, jnp.inf]]),
                                       "b": jnp.zeros(2)}),
        ValueError, esc("`init_params`['w'] holds NaN or inf; start from finite parameters.")),
    Bad("lr_find: NaN in the features",
        lambda: run_lr_find(data=(np.full_like(X, np.nan), Y)),
        ValueError, esc("`data` X holds 10 non-finite value(s) (NaN or inf)")),
    # ---------------------------------------------------------------- empty data
    Bad("fit: no examples",
        lambda: fit(data=(X[:0], Y[:0])),
        ValueError, esc("`data` has no examples (n = 0); pass at least one.")),
    Bad("sweep: no examples",
        lambda: run_sweep(data=(X[:0], Y[:0])),
        ValueError, esc("`data` has no examples (n = 0); pass at least one.")),
    Bad("lr_find: no examples",
        lambda: run_lr_find(data=(X[:0], Y[:0])),
        ValueError, esc("`data` has no examples (n = 0); pass at least one.")),
    Bad("fit: an X that holds no arrays",
        lambda: fit(data=({}, Y)),
        ValueError, esc("`data`: X holds no arrays.")),
    # ---------------------------------------------------------------- batch sizes and epochs
    Bad("fit: a float batch size",
        lambda: fit(batch_size=2.5),
        TypeError, esc("`batch_size` must be an integer >= 1, got float 2.5. Use None for "
                       "full-batch gradient descent.")),
    Bad("fit: a bool batch size",
        lambda: fit(batch_size=True),
        TypeError, esc("`batch_size` must be an integer >= 1, got bool True.")),
    Bad("fit: a negative batch size",
        lambda: fit(batch_size=-3),
        ValueError, esc("`batch_size` must be an integer >= 1, got -3.")),
    Bad("fit: a batch size from a string",
        lambda: fit(batch_size="2"),
        TypeError, esc("`batch_size` must be an integer >= 1, got str '2'.")),
    Bad("fit: epochs as a float",
        lambda: fit(epochs=np.float64(2.0)),
        TypeError, esc("`epochs` must be an integer >= 0, got float64 2.0.")),
    Bad("fit: epochs None",
        lambda: fit(epochs=None),
        TypeError, esc("`epochs` must be an integer >= 0, got NoneType None.")),
    Bad("sweep: a negative batch size",
        lambda: run_sweep(batch_size=-1),
        ValueError, esc("`batch_size` must be an integer >= 1, got -1.")),
    Bad("lr_find: a float batch size",
        lambda: run_lr_find(batch_size=2.0),
        TypeError, esc("`batch_size` must be an integer >= 1, got float 2.0. Use None for the full "
                       "batch every step.")),
    Bad("lr_find: a float number of steps",
        lambda: run_lr_find(num_steps=10.5),
        TypeError, esc("`num_steps` must be an integer >= 1, got float 10.5.")),
    # ---------------------------------------------------------------- learning rates
    Bad("fit: an infinite learning rate",
        lambda: fit(optimizer=float("inf")),
        ValueError, esc("`optimizer` as a learning rate must be finite and >= 0, got inf.")),
    Bad("fit: a negative learning rate as a 0-d array",
        lambda: fit(optimizer=jnp.array(-0.5)),
        ValueError, esc("`optimizer` as a learning rate must be finite and >= 0, got -0.5.")),
    Bad("fit: one learning rate per member given to fit",
        lambda: fit(optimizer=jnp.array([0.1, 0.2])),
        TypeError, esc("`optimizer` must be an optax GradientTransformation (e.g. `optax.sgd(0.1)`) "
                       "or a learning rate (a number), got ArrayImpl")),
    Bad("fit: a complex learning rate",
        lambda: fit(optimizer=0.1j),
        TypeError, esc("`optimizer` must be an optax GradientTransformation") + ".*" + esc("got complex: 0.1j")),
    Bad("sweep: an infinite learning rate among the members",
        lambda: run_sweep(learning_rates=[0.1, 0.2, np.inf]),
        ValueError, esc("`learning_rates` must be finite and >= 0; member 2 is inf.")),
    Bad("lr_find: an infinite max_lr",
        lambda: run_lr_find(max_lr=np.inf),
        ValueError, esc("`max_lr` must be finite and > 0, got inf.")),
    Bad("lr_find: a negative min_lr",
        lambda: run_lr_find(min_lr=-1e-3),
        ValueError, esc("`min_lr` must be finite and > 0, got -0.001.")),
    # ---------------------------------------------------------------- orders
    Bad("fit: orders with an index past n",
        lambda: fit(orders=np.array([[0, 1, 2, 3, 5], [0, 1, 2, 3, 4]])),
        ValueError, esc("`orders`[0] is not a permutation of range(5): each epoch must visit every "
                        "example exactly once.")),
    Bad("fit: orders with a negative index in the second epoch",
        lambda: fit(orders=np.array([[4, 3, 2, 1, 0], [-1, 1, 2, 3, 4]])),
        ValueError, esc("`orders`[1] is not a permutation of range(5)")),
    Bad("fit: one order for every epoch given as a single row",
        lambda: fit(orders=np.arange(5)),
        ValueError, esc("`orders` must have shape (epochs, n) = (2, 5), got (5,): one permutation "
                        "of range(n) per epoch.")),
    Bad("fit: orders as booleans",
        lambda: fit(orders=np.ones((2, 5), bool)),
        TypeError, esc("`orders` must be an integer array, got dtype bool.")),
    # ---------------------------------------------------------------- non-scalar losses
    Bad("fit: a loss that returns one value per feature",
        lambda: fit(example_loss=lambda p, x, y: (x * p["w"] - y) ** 2),
        ValueError, esc("`example_loss` must return a scalar loss for ONE example, got shape (2,)")
        + ".*" + esc("jaxgd vmaps it over the batch itself")),
    Bad("fit: a loss that returns a tuple",
        lambda: fit(example_loss=lambda p, x, y: (sq_loss(p, x, y), 0.0)),
        ValueError, esc("`example_loss` must return a scalar loss for ONE example, got shape tuple")),
    Bad("fit: a metric that returns a vector",
        lambda: fit(metrics={"err": lambda p, x, y: x - y}),
        ValueError, esc("`metrics['err']` must return a scalar metric for ONE example, got shape "
                        "(2,)")),
    Bad("sweep: a batched loss (mean over the batch inside)",
        lambda: run_sweep(example_loss=lambda p, x, y: losses.mse_loss(x @ p["w"], y[None])),
        ValueError, esc("`example_loss(params, x, y)` failed on one example") + ".*"
        + esc("`targets` has shape (1,) but `predictions` has shape ()")),
    Bad("lr_find: a loss with reduction='none'",
        lambda: run_lr_find(example_loss=lambda p, x, y: losses.l1_loss(x, x, reduction="none")),
        ValueError, esc("`example_loss` must return a scalar loss for ONE example, got shape (2,)")),
    # ---------------------------------------------------------------- params that are not float pytrees
    Bad("fit: params None",
        lambda: fit(params=None),
        ValueError, esc("`params` holds no arrays; pass e.g. `{'w': jnp.zeros(d), 'b': 0.0}`.")),
    Bad("fit: a string leaf in params",
        lambda: fit(params={"w": jnp.zeros(2), "b": "0.0"}),
        TypeError, esc("`params`['b'] must be a float array, got str: '0.0'. Params are a pytree "
                       "(dict, list, tuple) of float arrays")),
    Bad("fit: params that are an arbitrary object",
        lambda: fit(params=object()),
        TypeError, esc("`params` must be a float array, got object")),
    Bad("lr_find: integer params",
        lambda: run_lr_find(params={"w": np.zeros(2, np.int64), "b": np.zeros((), np.int64)}),
        TypeError, esc("`params`['b'] has dtype int64; gradients need floating-point params.")),
    Bad("models: params without the model's keys",
        lambda: models.linear({"weight": jnp.ones(2), "bias": 0.0}, jnp.ones(2)),
        TypeError, esc("`params` must be a dict with keys ['w', 'b'] (as made by `linear_init`); "
                       "got ['bias', 'weight'].")),
    # ---------------------------------------------------------------- keys that are not keys
    Bad("fit: an int seed as the key",
        lambda: fit(key=42),
        TypeError, esc("`key` must be a PRNG key such as `jax.random.key(0)`, got int 42.")),
    Bad("fit: K split keys given as one key",
        lambda: fit(key=KEYS),
        TypeError, esc("`key` must be a PRNG key such as `jax.random.key(0)`, got key<fry> of "
                       "shape (3,).")),
    Bad("fit: a float array as the key",
        lambda: fit(key=np.zeros(2, np.float32)),
        TypeError, esc("`key` must be a PRNG key such as `jax.random.key(0)`, got float32 of "
                       "shape (2,).")),
    Bad("sweep: one key where K are needed",
        lambda: run_sweep(learning_rates=None, keys=KEY),
        TypeError, esc("`keys` must hold K PRNG keys, one per member, e.g. "
                       "`jax.random.split(jax.random.key(0), K)`, got key<fry> of shape ().")),
    Bad("sweep: seeds as a list of ints where keys are needed",
        lambda: run_sweep(learning_rates=None, keys=[1, 2]),
        TypeError, esc("`keys` must hold K PRNG keys, one per member, e.g. "
                       "`jax.random.split(jax.random.key(0), K)`, got list [1, 2].")),
    Bad("lr_find: a string as the key",
        lambda: run_lr_find(key="seed"),
        TypeError, esc("`key` must be a PRNG key such as `jax.random.key(0)`, got str 'seed'.")),
    Bad("models: an initialiser without a key",
        lambda: models.mlp_init(key=None, sizes=(2, 1)),
        TypeError, esc("`key` must be a PRNG key such as `key=jax.random.key(0)`, got None.")),
    # ---------------------------------------------------------------- errors inside the user's functions
    Bad("fit: a Python `if` on a traced value in the loss",
        lambda: fit(example_loss=loss_with_if),
        TypeError, esc("`example_loss(params, x, y)` failed on one example (x of shape (2,), y of "
                       "shape ()) at test_bad_input.py:") + r"\d+ `if y > 0:" + ANY
        + "TracerBoolConversionError: Attempted boolean conversion" + ANY
        + esc("Fix: a Python `if`, `while`, `and`, `or` or `not` cannot branch on a traced value: "
              "use `jnp.where(condition, a, b)`")),
    Bad("fit: np.exp on a traced value in a metric",
        lambda: fit(metrics={"acc": accuracy_with_numpy}),
        TypeError, esc("`metrics['acc'](params, x, y)` failed on one example (x of shape (2,), y "
                       "of shape ())") + ANY + "TracerArrayConversionError" + ANY
        + esc("Fix: NumPy functions cannot read traced values: use `jnp.exp` for `np.exp`")),
    Bad("sweep: y[0] of an example whose y is a scalar",
        lambda: run_sweep(example_loss=lambda p, x, y: sq_loss(p, x, y[0])),
        TypeError, esc("`example_loss(params, x, y)` failed on one example (x of shape (2,), y of "
                       "shape ())") + ANY + "IndexError: Too many indices" + ANY
        + esc("Fix: jaxgd calls the function on ONE example (shapes above), not on a batch")),
    Bad("lr_find: float() of a traced value",
        lambda: run_lr_find(example_loss=lambda p, x, y: sq_loss(p, x, y) * float(y)),
        TypeError, esc("`example_loss(params, x, y)` failed on one example") + ANY
        + "ConcretizationTypeError" + ANY + esc("Fix: `float(...)`, `.item()`")),
    Bad("fit: a boolean mask, whose shape depends on values",
        lambda: fit(example_loss=lambda p, x, y: jnp.sum(x[x > 0]) * p["b"]),
        TypeError, "NonConcreteBooleanIndexError" + ANY + esc("Fix: boolean masks (`a[a > 0]`)")),
    Bad("fit: params without the key the loss reads",
        lambda: fit(example_loss=lambda p, x, y: x @ p["weight"] - y),
        TypeError, esc("`example_loss(params, x, y)` failed on one example (x of shape (2,), y of "
                       "shape ())") + ".*" + esc("KeyError: 'weight'")),
    Bad("fit: a loss of two arguments",
        lambda: fit(example_loss=lambda p, xy: 0.0),
        TypeError, esc("`example_loss` is called as `example_loss(params, x, y)`, but its "
                       "signature is (p, xy) (too many positional arguments). Fix: define it "
                       "with 3 positional parameters")),
    Bad("fit: a callback of one argument, refused before training",
        lambda: fit(callback=lambda epoch: None, epochs_per_call=1),
        TypeError, esc("`callback` is called as `callback(epochs_done, result)`, but its "
                       "signature is (epoch)")),
    # ---------------------------------------------------------------- ranges and types
    Bad("fit: int64 features beyond int32, which jax would wrap",
        lambda: fit(data=(np.array([[1, 2]] * 4 + [[2**40, 0]], np.int64), Y)),
        ValueError, esc("`data` X holds integers from 0 to 1099511627776, outside int32's range "
                        "[-2147483648, 2147483647]: jax runs int64 data as int32 (64-bit mode is "
                        "off), where they would wrap around. Fix: convert them to floats")),
    Bad("fit: epochs beyond int32",
        lambda: fit(epochs=3_000_000_000),
        ValueError, esc("`epochs` must be an integer in [0, 2147483647], got 3000000000.")),
    Bad("fit: a start epoch that runs past int32",
        lambda: fit(epochs=10, start_epoch=2**31 - 5),
        ValueError, esc("`start_epoch` + `epochs` = 2147483653 is beyond 2147483647")),
    Bad("fit: a history too large for memory",
        lambda: fit(data=N_LARGE, epochs=2**31 - 1, batch_size=1),
        ValueError, esc("`epochs`=2147483647 would record a history of ") + r"[\d.]+ GiB"
        + esc(" (1 run(s) x 2147483647 epochs x (1000 loss(es) + 2 evaluation(s)) x 4 bytes), "
              "more than half this machine's memory")),
    Bad("sweep: a history too large for memory once per member",
        lambda: run_sweep(epochs=10**7, learning_rates=np.full(10**5, 0.1)),  # One run: 120 MB.
        ValueError, esc("(100000 run(s) x 10000000 epochs x (1 loss(es) + 2 evaluation(s))")),
    Bad("fit: a metric named 'loss' would replace the loss",
        lambda: fit(metrics={"loss": sq_loss}),
        ValueError, esc("`metrics` has a metric named 'loss', which would replace the loss itself "
                        "in the result (`train_loss`, `val_loss`). Fix: give it another name")),
    Bad("fit: a resumed optimizer state holding NaN",
        lambda: fit(optimizer=optax.adam(0.1), opt_state=NAN_STATE),
        ValueError, esc("`opt_state`[0].mu['w'] holds NaN or inf (the state of a run that "
                        "diverged?)") + ".*" + esc("pass `opt_state=None` for a fresh one.")),
    Bad("fit: EarlyStopping without a min_delta",
        lambda: fit(early_stopping=jaxgd.EarlyStopping("train_loss", min_delta=None)),
        TypeError, esc("`early_stopping.min_delta` must be a number, got NoneType None.")),
    Bad("fit: a negative min_delta",
        lambda: fit(early_stopping=jaxgd.EarlyStopping("train_loss", min_delta=-0.1)),
        ValueError, esc("`early_stopping.min_delta` must be finite and >= 0, got -0.1.")),
    Bad("sweep: ragged learning rates",
        lambda: run_sweep(learning_rates=[[0.1], [0.2, 0.3]]),
        ValueError, esc("`learning_rates` must be a rectangular array of numbers, got [[0.1], "
                        "[0.2, 0.3]], which NumPy cannot make one array of")),
    Bad("fit: ragged orders",
        lambda: fit(orders=[[0, 1, 2, 3, 4], [0, 1]]),
        ValueError, esc("`orders` must be a rectangular array of numbers")),
    Bad("fit: torch tensors as params",
        lambda: fit(params=TORCH_P),
        TypeError, esc("`params`['b'] is a torch tensor; jaxgd trains jax arrays and returns new "
                       "ones") + ".*" + esc("Fix: `jaxgd.interop.from_torch(model)`")),
    Bad("fit: a string for drop_last",
        lambda: fit(drop_last="no"),
        TypeError, esc("`drop_last` must be True or False, got str 'no'.")),
    Bad("lr_find: a 1-element array for min_lr",
        lambda: run_lr_find(min_lr=np.array([1e-5])),
        TypeError, esc("`min_lr` must be a number, got ndarray [1.e-05].")),
    # ---------------------------------------------------------------- nothing lost
    Bad("fit: an np.memmap whose file was truncated (streamed)",
        lambda: fit(data=(truncated_memmap(), np.zeros(2000, np.float32))),
        ValueError, esc("`data` X is an np.memmap of '") + ".*"
        + esc("X.f32' that reads 16000 bytes of it, but the file holds 400: it was truncated or is "
              "still being written, and reading past its end would kill the process (SIGBUS).")),
    Bad("lr_find: a truncated np.memmap's slice that reads past the end",
        lambda: run_lr_find(data=(truncated_memmap()[40:60], np.zeros(20, np.float32))),
        ValueError, esc("that reads 480 bytes of it, but the file holds 400")),
    # ---------------------------------------------------------------- PyTorch's loss options
    Bad("losses: torch's (N, C, d1) layout without naming the class axis",
        lambda: losses.cross_entropy(np.zeros((2, 3, 3), np.float32), np.zeros((2, 3), np.int32)),
        ValueError, esc("`logits` has shape (2, 3, 3): with 3 axes, say which one holds the "
                        "classes: `axis=1` for PyTorch's layout (N, C, d1, ...)")),
    Bad("losses: class indices stored as floats",
        lambda: losses.cross_entropy(np.zeros((4, 3), np.float32), np.zeros(4, np.float32)),
        ValueError, esc("Fix: for class indices stored as floats pass `labels.astype(jnp.int32)` "
                        "(shape (4,)).")),
    Bad("losses: one weight too many",
        lambda: losses.nll_loss(np.zeros((4, 3), np.float32), np.zeros(4, np.int32),
                                weight=np.ones(4, np.float32)),
        ValueError, esc("`weight` must have shape (C,) = (3,), one weight per class; got (4,).")),
    # Rows that lived in tests/test_loop.py until the catalogue became the one home for fit's.
    Bad("fit: X and y with different numbers of examples",
        lambda: fit(data=(np.ones((5, 2)), np.ones(4))),
        ValueError, r"same number of examples.*5.*4"),
    Bad("fit: NaN in the features",
        lambda: fit(data=(np.full((5, 2), np.nan), np.ones(5))),
        ValueError, "non-finite"),
    Bad("fit: complex features",
        lambda: fit(data=(np.ones((5, 2), np.complex64), np.ones(5))),
        TypeError, "complex"),
    Bad("fit: a batch size of 0",
        lambda: fit(batch_size=0),
        ValueError, esc("`batch_size` must be an integer >= 1, got 0")),
    Bad("fit: a batch larger than n with drop_last",
        lambda: fit(batch_size=9, drop_last=True),
        ValueError, "leaves no batch"),
    Bad("fit: negative epochs",
        lambda: fit(epochs=-1),
        ValueError, esc("`epochs` must be an integer >= 0, got -1")),
    Bad("fit: a negative learning rate",
        lambda: fit(optimizer=-0.1),
        ValueError, "finite and >= 0, got -0.1"),
    Bad("fit: a NaN learning rate",
        lambda: fit(optimizer=float("nan")),
        ValueError, "finite"),
    Bad("fit: an optimizer named by a string",
        lambda: fit(optimizer="adam"),
        TypeError, "GradientTransformation"),
    Bad("fit: both a key and orders",
        lambda: fit(key=KEY, orders=np.zeros((2, 5), int)),
        ValueError, "not both"),
    Bad("fit: orders that are not permutations",
        lambda: fit(orders=np.zeros((2, 5), int)),
        ValueError, r"`orders`\[0\] is not a permutation"),
    Bad("fit: orders for another number of epochs",
        lambda: fit(orders=np.zeros((3, 5), int)),
        ValueError, esc("shape (epochs, n) = (2, 5)")),
    Bad("fit: orders as floats",
        lambda: fit(orders=np.zeros((2, 5))),
        TypeError, "integer array"),
    Bad("fit: params that hold no arrays",
        lambda: fit(params={}),
        ValueError, "holds no arrays"),
    Bad("fit: a loss given by name",
        lambda: fit(example_loss="bce"),
        TypeError, "`example_loss` must be a function"),
    Bad("fit: an unknown on_divergence",
        lambda: fit(on_divergence="ignore"),
        ValueError, "on_divergence"),
    Bad("fit: early stopping on val_loss without val_data",
        lambda: fit(early_stopping=jaxgd.EarlyStopping()),
        ValueError, "needs `val_data`"),
]  # fmt: skip


# One primitive dispatched eagerly compiles a program named `jit(<primitive>)`: a row's own
# `jnp.zeros(3)`, say. Any other program is one that jaxgd traced: a run, a check on the device.
PRIMITIVES = {
    v.name for v in vars(jax.extend.core.primitives).values()
    if isinstance(v, jax.extend.core.Primitive)
} | {"stage"}  # `stage`: jax.core's primitive behind an eager `jnp.asarray`  # fmt: skip


def _compiled_programs(call) -> list:
    """The names of the XLA programs, other than single eager primitives, compiled while
    `call()` ran (it may raise)."""
    names = []

    def listen(event, secs, fun_name="", **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            if not (fun_name.startswith("jit(") and fun_name[4:-1] in PRIMITIVES):
                names.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        call()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return names


def _raised_by_jaxgd(excinfo) -> bool:
    """The exception was raised in jaxgd's own code (its checks), not deep inside JAX."""
    last = pathlib.Path(str(excinfo.traceback[-1].path)).resolve()
    return JAXGD_DIR in last.parents


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.name for case in CATALOGUE])
def test_bad_input_is_refused_with_a_clear_message(case):
    raised = []

    def call():
        with pytest.raises(case.error, match=case.match) as excinfo:
            case.call()
        raised.append(excinfo)

    assert _compiled_programs(call) == []  # refused before anything was compiled
    assert _raised_by_jaxgd(raised[0]), raised[0].traceback[-1]


def test_the_compile_listener_sees_a_run_and_not_a_rows_own_arrays():
    """The check above can fail: a run compiles a program it counts, `jnp.zeros` does not."""
    assert _compiled_programs(lambda: jnp.zeros(7) + jnp.ones(7)) == []
    assert _compiled_programs(lambda: fit(epochs=3, batch_size=3)) != []


# ------------------------------------------------------------------- valid input once refused


def test_numpy_bools_and_0d_arrays_are_taken_as_the_numbers_they_hold():
    plain = fit(batch_size=2, drop_last=False, eval_train=True, epochs=3,
                early_stopping=jaxgd.EarlyStopping("train_loss", min_delta=0.0))  # fmt: skip
    numpy = fit(batch_size=np.array(2), drop_last=np.False_, eval_train=np.array(True),
                epochs=np.int64(3), early_stopping=jaxgd.EarlyStopping(
                    "train_loss", patience=np.array(5), min_delta=np.float32(0.0)))  # fmt: skip
    chex.assert_trees_all_equal(numpy, plain)
    r0, r1 = (
        run_lr_find(min_lr=1e-5, max_lr=1.0),
        run_lr_find(min_lr=np.array(1e-5), max_lr=jnp.array(1.0), smoothing=np.float64(0.98)),
    )
    np.testing.assert_array_equal(r0.losses, r1.losses)


def test_a_list_of_keys_is_k_keys():
    keys = jax.random.split(KEY, 2)
    as_array = run_sweep(keys=keys, batch_size=2)
    as_list = run_sweep(keys=list(keys), batch_size=2)
    raw = run_sweep(keys=[jax.random.PRNGKey(0), jax.random.PRNGKey(1)], batch_size=2)
    np.testing.assert_array_equal(as_list.losses, as_array.losses)
    assert raw.losses.shape == as_array.losses.shape


def test_bfloat16_and_torch_data_train_as_the_numpy_arrays_they_hold():
    import ml_dtypes

    X16 = X.astype(ml_dtypes.bfloat16)
    r16 = fit(data=(X16, Y), batch_size=2)
    r32 = fit(data=(X16.astype(np.float32), Y), batch_size=2)
    chex.assert_trees_all_equal(r16.params, r32.params)
    rt = fit(data=(torch.tensor(X), torch.tensor(Y)), batch_size=2,
             val_data=(torch.tensor(X), torch.tensor(Y)))  # fmt: skip
    rn = fit(data=(X, Y), batch_size=2, val_data=(X, Y))
    chex.assert_trees_all_equal(rt, rn)
    grads = torch.tensor(X, requires_grad=True)  # a tensor in an autograd graph: its values
    jax.tree.map(
        np.testing.assert_array_equal, fit(data=(grads, Y), batch_size=2), fit(batch_size=2)
    )
    assert run_lr_find(data=(torch.tensor(X), torch.tensor(Y))).losses.size > 0


# -------------------------------------------------------------------------------------- CLI

TOY_HEADER = "x1\tx2\tlabel\n"
FILES = {
    "toy_columns.txt": TOY_HEADER + "0.77\t-1.14\t0\n3.88\t0.65\n",
    "toy_no_header.txt": "0.77\t-1.14\t0\n3.88\t0.65\t1\n",
    "toy_cell.txt": TOY_HEADER + "0.77\t-1.14\t0\n3.88\tabc\t1\n",
    "toy_empty.txt": "",
    "bank_header.csv": "variance,skewness,curtosis,entropy,class\n3.62,8.67,-2.81,-0.45,0\n",
    "bank_columns.csv": "3.62,8.67,-2.81,-0.45,0\n-1.40,3.32,-1.39,1\n",
    "bank_cell.csv": "3.62,8.67,-2.81,-0.45,0\n-1.40,3.32,n/a,-1.99,1\n",
    "bank_label.csv": "3.62,8.67,-2.81,-0.45,0\n-1.40,3.32,-1.39,-1.99,2\n",
}


class Cli(NamedTuple):
    """One row: `jaxgd ARGV` exits 2 with one line on stderr that matches `match`."""

    name: str
    argv: list
    match: str


CLI_CATALOGUE = [
    # numbers the run cannot hold (the memory figure depends on the machine)
    Cli("cli: epochs beyond int32", ["run", "quadratic", "--epochs", "3000000000"],
        esc("`epochs` must be an integer in [0, 2147483647], got 3000000000.")),
    Cli("cli: a history larger than memory", ["run", "quadratic", "--epochs", "2000000000"],
        esc("`epochs`=2000000000 would record a history of ") + ".*" + esc("GiB") + ".*"
        + esc("Fix: train fewer epochs per call and resume")),
    # unknown names and options
    Cli("cli: an unknown experiment", ["run", "logistc"],
        esc("jaxgd run: error: unknown experiment 'logistc'; choose one of: ") + ".*logistic"),
    Cli("cli: an unknown command", ["train", "logistic"],
        esc("jaxgd: error: argument COMMAND: invalid choice: 'train'")),
    Cli("cli: an option of another experiment", ["run", "logistic", "--train-size", "10"],
        esc("jaxgd run logistic: error: unknown option --train-size; this experiment's options: "
            "--data, --epochs, --batch-size, --lr, --seed")),
    Cli("cli: torch's name for the learning rate", ["run", "banknote", "--learning-rate", "0.1"],
        esc("unknown option --learning-rate; this experiment's options:") + ".*--lr"),
    Cli("cli: a flag given a value", ["run", "logistic", "--quick=yes"],
        esc("argument --quick: ignored explicit argument 'yes'")),
    Cli("cli: an option without a value", ["run", "banknote", "--data"],
        esc("jaxgd run banknote: error: option --data needs a value")),
    # integers and learning rates
    Cli("cli: a float number of epochs", ["run", "logistic", "--epochs", "2.5"],
        esc("jaxgd run logistic: error: --epochs expects an integer, got '2.5'")),
    Cli("cli: a zero batch size", ["run", "banknote", "--batch-size", "0"],
        esc("jaxgd: error: `batch_size` must be an integer >= 1, got 0. Use None for full-batch "
            "gradient descent.")),
    Cli("cli: a float train size", ["run", "banknote", "--train-size", "0.8"],
        esc("jaxgd run banknote: error: --train-size expects an integer, got '0.8'")),
    Cli("cli: a train size that leaves nothing to validate",
        ["run", "banknote", "--train-size", "1372"],
        esc("jaxgd: error: `train_size` must be between 1 and 1371 for 1372 examples, got 1372")),
    Cli("cli: zero epochs (an experiment reports its last epoch)", ["run", "logistic", "--epochs", "0"],
        esc("jaxgd: error: `epochs` must be >= 1 in an experiment, got 0: its tables and plots "
            "report the last epoch.")),
    Cli("cli: zero epochs of one model", ["run", "quadratic", "--epochs", "0"],
        esc("jaxgd: error: `epochs` must be >= 1 in an experiment, got 0")),
    Cli("cli: an empty list of learning rates", ["run", "learning_rate", "--lrs", ""],
        esc("jaxgd: error: `lrs` must hold at least one learning rate, e.g. --lrs 0.001,0.1,0.5.")),
    Cli("cli: an empty list of ReLU counts", ["run", "relu", "--ks", ","],
        esc("jaxgd: error: `ks` must hold at least one number of terms, e.g. --ks 1,2,4.")),
    Cli("cli: a negative learning rate", ["run", "logistic", "--lr", "-0.05"],
        esc("jaxgd: error: `optimizer` as a learning rate must be finite and >= 0, got -0.05.")),
    Cli("cli: a NaN learning rate", ["run", "banknote", "--lr", "nan"],
        esc("jaxgd run banknote: error: --lr expects finite numbers, got 'nan'")),
    Cli("cli: a NaN among the swept learning rates", ["run", "learning_rate", "--lrs", "0.1,nan"],
        esc("jaxgd run learning_rate: error: --lrs expects finite numbers, got 'nan'")),
    Cli("cli: a learning rate that is not a number", ["run", "logistic", "--lr", "fast"],
        esc("jaxgd run logistic: error: --lr expects a number, got 'fast'")),
    # data files
    Cli("cli: a toy file with a short row", ["run", "logistic", "--data", "{dir}/toy_columns.txt"],
        esc("toy file '") + ".*" + esc("toy_columns.txt', line 3 has 2 columns, expected 3 "
                                       "tab-separated columns (x1, x2, label).")),
    Cli("cli: a toy file without its header", ["run", "logistic", "--data", "{dir}/toy_no_header.txt"],
        esc("toy_no_header.txt', line 1: no header; expected the header line 'x1 x2 label' "
            "(tab-separated) before the numbers.")),
    Cli("cli: a toy file with a word for a number", ["run", "logistic", "--data", "{dir}/toy_cell.txt"],
        esc("toy_cell.txt', line 3, column 2 (x2): 'abc' is not a number.")),
    Cli("cli: an empty toy file", ["run", "logistic", "--data", "{dir}/toy_empty.txt"],
        esc("toy_empty.txt' is empty; expected 3 tab-separated columns (x1, x2, label).")),
    Cli("cli: a banknote file with a header", ["run", "banknote", "--data", "{dir}/bank_header.csv"],
        esc("bank_header.csv', line 1 looks like a header (variance, skewness, curtosis, entropy, "
            "class); this file has no header: delete that line.")),
    Cli("cli: a banknote row with 4 columns", ["run", "banknote", "--data", "{dir}/bank_columns.csv"],
        esc("bank_columns.csv', line 2 has 4 columns, expected 5 comma-separated columns "
            "(variance, skewness, curtosis, entropy, class).")),
    Cli("cli: a banknote cell that is not a number", ["run", "banknote", "--data", "{dir}/bank_cell.csv"],
        esc("bank_cell.csv', line 2, column 3 (curtosis): 'n/a' is not a number.")),
    Cli("cli: a banknote label that is not 0 or 1", ["run", "banknote", "--data", "{dir}/bank_label.csv"],
        esc("bank_label.csv', line 2: label '2' is not 0 or 1 (two classes).")),
    Cli("cli: a banknote file that does not exist", ["run", "banknote", "--data", "{dir}/missing.csv"],
        esc("jaxgd: error: banknote file not found: '") + ".*" + esc("missing.csv'; check the path.")),
    Cli("cli: a folder given as the data file", ["run", "logistic", "--data", "{dir}"],
        esc("jaxgd: error: cannot read toy file '") + ".*Is a directory"),
    Cli("cli: a binary file given as the data file", ["run", "banknote", "--data", "{dir}/binary.csv"],
        esc("jaxgd: error: cannot read banknote file '") + ".*binary.csv.*can't decode byte 0xff"),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-data")
    for name, text in FILES.items():
        (folder / name).write_text(text)
    (folder / "binary.csv").write_bytes(b"\xff\xfe\x00\x81 3.62,8.67\n")
    return folder


@pytest.mark.parametrize("case", CLI_CATALOGUE, ids=[case.name for case in CLI_CATALOGUE])
def test_bad_command_line_exits_2_with_one_line(case, bad_files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [arg.replace("{dir}", str(bad_files)) for arg in case.argv]
    if argv[0] == "run":
        argv += ["--out", str(out), "--quiet"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert re.search(case.match, lines[0]), lines[0]
    assert captured.out == ""
    assert not out.exists() or os.listdir(out) == []  # no result file, not even a partial one


# -------------------------------------------------------------------------------------- faults


def test_params_of_mixed_float_dtypes_keep_their_dtypes():
    """Was an XLA "scan carry types differ" trace: plain GD promoted bfloat16 leaves."""
    params = {"w": jnp.zeros(2, jnp.bfloat16), "b": jnp.zeros((), jnp.float32)}
    dtypes = {"w": jnp.bfloat16, "b": jnp.float32}
    r = fit(params=params, batch_size=2)
    s = run_sweep(params=params, batch_size=2)
    assert jax.tree.map(lambda a: a.dtype, r.params) == dtypes
    assert jax.tree.map(lambda a: a.dtype, s.params) == dtypes
    assert np.isfinite(run_lr_find(params=params).suggestion)


def test_cli_reports_divergence_as_a_result_not_a_crash(tmp_path, capsys):
    """A learning rate far too large: the run stops before the first non-finite update."""
    argv = ["run", "learning_rate", "--quick", "--json", "--quiet", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err == ""
    results = json.loads(captured.out)
    too_large = results["runs"]["too large"]
    assert too_large["diverged"] is True
    assert too_large["diverged_epoch"] >= 0 and too_large["diverged_update"] == 0  # full batch
    assert np.isfinite(too_large["params"]).all()  # the last finite params
    assert not any(run["diverged"] for name, run in results["runs"].items() if name != "too large")
    assert sorted(os.listdir(tmp_path)) == ["learning_rate.png", "results.json"]
