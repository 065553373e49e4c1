r"""jaxgd against an ordinary PyTorch loop, update for update (needs the `torch` extra).

`compare` runs one problem twice from the same initial parameters and the same per-epoch example
orders: once as the loop the lectures write (`DataLoader`, `reduction="mean"` loss,
`zero_grad`/`backward`/`step`), once with `jaxgd.fit(..., orders=...)`. It reports the largest
per-update loss difference, the largest final-parameter difference and both wall times.
`compare_models` does the same for your own torch module and loss and jaxgd apply and loss.

The update rules, as torch.optim and optax write them (checked in tests/test_compare.py):

* SGD: torch `p -= lr * g`; jaxgd's plain gradient descent (`optimizer=lr`) is the same.
* Momentum: torch `buf = m * buf + (1 - dampening) * g` (but `buf = g` on the first step),
  `p -= lr * buf`; optax.sgd(lr, momentum=m) keeps `t = g + m * t` from `t = 0`, `p -= lr * t`.
  Equal for torch's default `dampening=0`; optax has no dampening. Nesterov: both step along
  `g + m * buf`. fast.ai's loop that never zeroes gradients is momentum 1.0.
* Adam: torch divides by `sqrt(v) / sqrt(1 - b2^t) + eps`, optax by `sqrt(v / (1 - b2^t)) + eps`
  (default `eps_root=0`): eps is added outside the root in both, and the defaults (b1=0.9,
  b2=0.999, eps=1e-8) agree. One precision difference remains: optax computes the bias
  correction `1 - b2^t` in float32 from b2 rounded to float32 (0.0009999871 for t=1, a relative
  error of 1.3e-5 that persists while t << 1000), torch in Python floats. In float32 this makes
  Adam's differences 10-60x larger than SGD's (about 1e-5 in the params after 200 updates at
  lr=0.05 on the toy set); with an accurate `1 - b2^t` they fall to SGD's level.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd import _checks, losses, models
from jaxgd import data as _data
from jaxgd.loop import fit

__all__ = ["CompareReport", "PROBLEMS", "OPTIMIZERS", "compare", "compare_models", "format_report"]

PROBLEMS = ("logistic", "linear", "quadratic", "mlp")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
_MAX_SEED = 2**64 - 1  # torch.manual_seed's largest seed


class CompareReport(NamedTuple):
    """What `compare` returns: everything a results table needs."""

    problem: str  # e.g. "logistic", or the `name` given to `compare_models`.
    optimizer: str  # "sgd", "momentum", "nesterov" or "adam".
    lr: float  # The learning rate both runs used.
    batch_size: int | None  # None: full batch.
    epochs: int
    dtype: str  # "float32" or "float64".
    max_loss_diff: float  # max |jaxgd - torch| over all per-update batch losses.
    max_param_diff: float  # max |jaxgd - torch| over all final parameters.
    tolerance: float  # The bound both differences must stay within.
    ok: bool  # max_loss_diff <= tolerance and max_param_diff <= tolerance.
    torch_losses: (
        np.ndarray
    )  # shape=(epochs, updates_per_epoch): each batch loss before its update.
    jax_losses: np.ndarray  # shape=(epochs, updates_per_epoch): the same from `jaxgd.fit`.
    init_params: Any  # The initial params both runs start from, in jaxgd's layout (NumPy).
    torch_params: Any  # Final torch params in jaxgd's layout (a pytree of NumPy arrays).
    jax_params: Any  # Final jaxgd params (a pytree of NumPy arrays).
    orders: np.ndarray  # shape=(epochs, n), int: the torch sampler's order of every epoch.
    torch_seconds: float  # Wall time of the torch training loop.
    jax_seconds: float  # Wall time of a compiled `jaxgd.fit` call (the second of two).
    jax_first_seconds: float  # Wall time of the first `jaxgd.fit` call, compilation included.
    speed_ratio: float  # torch_seconds / jax_seconds: above 1, jaxgd is faster.


def _import_torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            'jaxgd.compare needs PyTorch: pip install "jaxgd[torch]" (README: CPU builds).'
        ) from err
    return torch


@functools.lru_cache(maxsize=64)
def _jax_optimizer(name: str, lr: float, momentum: float):
    """jaxgd's side of `name`; cached, so that a repeated comparison reuses the compiled `fit`."""
    if name == "sgd":
        return lr  # jaxgd's plain gradient descent, w <- w - lr * grad
    if name in ("momentum", "nesterov"):
        return optax.sgd(lr, momentum=momentum, nesterov=name == "nesterov")
    return optax.adam(lr)


def _torch_optimizer(name: str, lr: float, momentum: float, params):
    torch = _import_torch()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "nesterov")
    return torch.optim.Adam(params, lr=lr)


@functools.lru_cache(maxsize=64)
def _example_loss(jax_apply: Callable, jax_loss: Callable) -> Callable:
    """`example_loss(params, x, y) = jax_loss(jax_apply(params, x), y)`, one object per pair."""
    return lambda params, x, target: jax_loss(jax_apply(params, x), target)


class _Recorder:
    """A torch sampler that remembers the order it gave in every epoch."""

    def __init__(self, sampler):
        self.sampler, self.orders = sampler, []

    def __iter__(self):
        order = [int(i) for i in self.sampler]
        self.orders.append(order)
        return iter(order)

    def __len__(self):
        return len(self.sampler)


def _max_abs_diff(a, b) -> float:
    diffs = jax.tree.map(lambda u, v: float(np.max(np.abs(np.asarray(u) - np.asarray(v)))), a, b)
    return max(jax.tree.leaves(diffs))


def _check_arguments(*, optimizer, dtype, epochs, batch_size, lr, momentum, seed, tolerance):
    """Refuses what torch or the report would get wrong; returns `(epochs, batch_size)`."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}, got {optimizer!r}.")
    if dtype not in ("float32", "float64"):
        raise ValueError(f'`dtype` must be "float32" or "float64", got {dtype!r}.')
    epochs = _checks.check_int(epochs, "epochs", minimum=1)
    if batch_size is not None:
        batch_size = _checks.check_int(
            batch_size, "batch_size", minimum=1, fix=" None: full batch."
        )
    for name, value in (("lr", lr), ("momentum", momentum), ("tolerance", tolerance)):
        _check_non_negative(value, name)
    seed = _checks.check_int(seed, "seed", minimum=0)
    if seed > _MAX_SEED:
        raise ValueError(f"`seed` must be at most 2**64 - 1 (torch.manual_seed's range), got "
                         f"{seed}.")  # fmt: skip
    return epochs, batch_size


def _check_non_negative(value, name: str) -> None:
    """A finite number >= 0 (torch.optim refuses a negative lr or momentum in its own words)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number >= 0, got {type(value).__name__} {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value}.")


class _TorchRun(NamedTuple):
    """What the torch loop gives."""

    losses: np.ndarray  # shape=(epochs, updates_per_epoch): each batch loss before its update.
    orders: np.ndarray  # shape=(epochs, n), int32: the sampler's order of every epoch.
    seconds: float  # Wall time of the loop.


def _torch_run(model, torch_loss, X, y, *, epochs, batch_size, optimizer, lr, momentum, seed,
               shuffle, drop_last) -> _TorchRun:  # fmt: skip
    """The ordinary PyTorch loop: DataLoader, zero_grad, backward, step; trains `model` in place."""
    torch = _import_torch()
    torch_opt = _torch_optimizer(optimizer, lr, momentum, model.parameters())
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    generator = torch.Generator().manual_seed(seed)
    sampler = _Recorder(
        torch.utils.data.RandomSampler(dataset, generator=generator)
        if shuffle
        else torch.utils.data.SequentialSampler(dataset)
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size or len(X), sampler=sampler, drop_last=drop_last
    )
    losses_ = []
    tic = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = torch_loss(model(xb), yb)
            torch_opt.zero_grad()
            loss.backward()
            torch_opt.step()
            losses_.append(loss.item())
    seconds = time.perf_counter() - tic
    orders = np.array(sampler.orders, dtype=np.int32).reshape(epochs, len(X))
    return _TorchRun(np.array(losses_).reshape(epochs, -1), orders, seconds)


class _JaxRun(NamedTuple):
    """What the `jaxgd.fit` replay gives, with both runs' params in jaxgd's layout."""

    losses: np.ndarray  # shape=(epochs, updates_per_epoch): the batch losses from `jaxgd.fit`.
    params: Any  # Final jaxgd params (a pytree of NumPy arrays).
    init_params: Any  # The initial params both runs start from (NumPy).
    torch_params: Any  # Final torch params, converted (NumPy).
    first_seconds: float  # Wall time of the first `fit` call, compilation included.
    seconds: float  # Wall time of the second, compiled call.


def _jax_run(example_loss, start, model, X, y, orders, *, to_params, dtype, **fit_options):
    """`jaxgd.fit` from torch's initial params on torch's orders, timed on its second call."""
    with jax.enable_x64(dtype == "float64"):  # from_torch's arrays keep float64 only under x64
        torch_params = jax.tree.map(np.asarray, to_params(model))
        init_params = jax.tree.map(np.asarray, to_params(start))
        params = jax.tree.map(jnp.asarray, init_params)
        seconds = []
        for _ in range(2):
            tic = time.perf_counter()
            result = jax.block_until_ready(
                fit(example_loss, params, (X, y), orders=orders, eval_train=False, **fit_options)
            )
            seconds.append(time.perf_counter() - tic)
        return _JaxRun(np.asarray(result.losses), jax.tree.map(np.asarray, result.params),
                       init_params, torch_params, seconds[0], seconds[1])  # fmt: skip


def compare_models(
    torch_model,
    torch_loss: Callable,
    jax_apply: Callable,
    jax_loss: Callable,
    data,
    *,
    epochs: int,
    lr: float,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    batch_size: int | None = None,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
    dtype: str = "float32",
    tolerance: float = 1e-5,
    to_params: Callable | None = None,
    name: str = "custom",
) -> CompareReport:
    """Trains `torch_model` with torch.optim and its converted params with `jaxgd.fit`; compares.

    Args:
      torch_model: a `torch.nn.Module`; its current parameters are both runs' start. It is
        trained in place.
      torch_loss: `torch_loss(output, target) -> scalar`, mean over the batch, e.g.
        `lambda out, y: F.mse_loss(out, y.view(out.shape))`.
      jax_apply: `jax_apply(params, x)`: the same model on ONE example (e.g. `models.linear`).
      jax_loss: `jax_loss(prediction, y) -> scalar` for one example (e.g. `losses.mse_loss`).
      data: `(X, y)` arrays of n examples; float arrays are cast to `dtype`.
      epochs: passes over the data.
      lr: learning rate of both optimizers.
      optimizer: "sgd" (jaxgd: `optimizer=lr`), "momentum" / "nesterov" (`optax.sgd`) or
        "adam" (`optax.adam`), against the torch.optim equivalents (see the module docstring).
      momentum: the momentum of "momentum" and "nesterov".
      batch_size: None for full batch, else the `DataLoader` batch size.
      seed: seeds the torch sampler's `Generator` (the example orders).
      shuffle: a `RandomSampler` (new order every epoch) or data order.
      drop_last: as `DataLoader(drop_last=...)` and `jaxgd.fit(drop_last=...)`.
      dtype: "float32" or "float64" (jaxgd runs under `jax.enable_x64` for float64).
      tolerance: bound on both largest absolute differences for `ok`.
      to_params: `to_params(module) -> jaxgd params`; default `jaxgd.interop.from_torch`.
      name: the problem's name in the report.

    Returns:
      A `CompareReport`.

    Raises:
      ValueError, TypeError: an unknown `optimizer` or `dtype`, `epochs` < 1, or a `batch_size`
        that is not a positive integer or leaves no batch.
      ImportError: torch is not installed.

    Examples:
      >>> import torch
      >>> from jaxgd.data import standardize, toy_2d
      >>> from jaxgd.interop import from_torch
      >>> X, y = toy_2d()
      >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Sigmoid())
      >>> bce = lambda out, t: torch.nn.functional.binary_cross_entropy(out, t.view(out.shape))
      >>> r = compare_models(net, bce, models.logistic_regression, losses.binary_cross_entropy,
      ...                    (standardize(X)[0], y), epochs=10, lr=0.05, batch_size=10,
      ...                    to_params=lambda m: from_torch(m[0]))
      >>> r.ok, r.jax_losses.shape
      (True, (10, 2))
    """
    torch = _import_torch()
    from jaxgd.interop import from_torch

    epochs, batch_size = _check_arguments(
        optimizer=optimizer, dtype=dtype, epochs=epochs, batch_size=batch_size, lr=lr,
        momentum=momentum, seed=seed, tolerance=tolerance,
    )  # fmt: skip
    X, y = (np.asarray(a) for a in data)
    X, y = (a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a for a in (X, y))
    n = X.shape[0]
    if batch_size is not None and drop_last and batch_size > n:
        raise ValueError(
            f"`batch_size`={batch_size} > n={n} with `drop_last=True` leaves no batch."
        )
    model = torch_model.to(getattr(torch, dtype))
    start = copy.deepcopy(model)
    t = _torch_run(model, torch_loss, X, y, epochs=epochs, batch_size=batch_size,
                   optimizer=optimizer, lr=lr, momentum=momentum, seed=seed, shuffle=shuffle,
                   drop_last=drop_last)  # fmt: skip
    j = _jax_run(_example_loss(jax_apply, jax_loss), start, model, X, y, t.orders,
                 to_params=from_torch if to_params is None else to_params, dtype=dtype,
                 epochs=epochs, optimizer=_jax_optimizer(optimizer, float(lr), float(momentum)),
                 batch_size=batch_size, drop_last=drop_last)  # fmt: skip
    max_loss_diff = float(np.max(np.abs(j.losses - t.losses)))
    max_param_diff = _max_abs_diff(j.params, j.torch_params)
    return CompareReport(
        problem=name, optimizer=optimizer, lr=float(lr), batch_size=batch_size, epochs=epochs,
        dtype=dtype, max_loss_diff=max_loss_diff, max_param_diff=max_param_diff,
        tolerance=tolerance, ok=max(max_loss_diff, max_param_diff) <= tolerance,
        torch_losses=t.losses, jax_losses=j.losses, init_params=j.init_params,
        torch_params=j.torch_params, jax_params=j.params, orders=t.orders,
        torch_seconds=t.seconds, jax_seconds=j.seconds, jax_first_seconds=j.first_seconds,
        speed_ratio=t.seconds / max(j.seconds, 1e-9),
    )  # fmt: skip


def _quad(abc, x):
    """course22's quadratic with its coefficients in one array `abc` of shape (3,)."""
    return models.quad(abc[0], abc[1], abc[2], x)


class _Problem(NamedTuple):
    """A named problem, both sides of it."""

    torch_model: Any  # The torch.nn.Module, initialised after torch.manual_seed(seed).
    torch_loss: Callable  # torch_loss(output, target), mean over the batch.
    jax_apply: Callable  # jaxgd's model on ONE example.
    jax_loss: Callable  # jaxgd's loss of ONE example.
    data: tuple  # (X, y) NumPy arrays.
    lr: float  # The problem's default learning rate.
    to_params: Callable | None  # module -> jaxgd params; None: interop.from_torch.


def _logistic(torch, path, rng, seed) -> _Problem:
    """Lecture 3.6: Linear(2, 1) + sigmoid, BCE on probabilities, the standardized toy set."""
    from jaxgd._torch_models import LogisticRegression

    X, y = _data.toy_2d() if path is None else _data.load_toy(path)
    bce = lambda out, t: torch.nn.functional.binary_cross_entropy(out, t.view(out.shape))
    return _Problem(LogisticRegression(2), bce, models.logistic_regression,
                    losses.binary_cross_entropy, (_data.standardize(X)[0], y), 0.05, None)  # fmt: skip


def _linear(torch, path, rng, seed) -> _Problem:
    """Linear regression with mean squared error on 40 synthetic examples."""
    X = rng.standard_normal((40, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * rng.standard_normal(40)
    mse = lambda out, t: torch.nn.functional.mse_loss(out, t.view(out.shape))
    return _Problem(torch.nn.Linear(3, 1), mse, models.linear, losses.mse_loss, (X, y), 0.05, None)


def _quadratic(torch, path, rng, seed) -> _Problem:
    """course22: a x^2 + b x + c from 1.1, 1.1, 1.1, l1 loss, on its noisy quadratic."""
    from jaxgd._torch_models import Quadratic

    return _Problem(Quadratic(), torch.nn.functional.l1_loss, _quad, losses.l1_loss,
                    _data.quadratic_data(), 0.01, _quadratic_params)  # fmt: skip


def _quadratic_params(module) -> np.ndarray:
    return module.abc.detach().numpy().copy()


def _mlp(torch, path, rng, seed) -> _Problem:
    """A 4-8-1 ReLU MLP, BCE on logits, on a synthetic logistic set of 48 examples."""
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    bce = lambda out, t: torch.nn.functional.binary_cross_entropy_with_logits(
        out, t.view(out.shape)
    )
    data = _data.synthetic_logistic(n=48, d=4, seed=seed)
    return _Problem(net, bce, models.mlp, losses.binary_cross_entropy_with_logits, data, 0.05,
                    None)  # fmt: skip


_PROBLEMS = {"logistic": _logistic, "linear": _linear, "quadratic": _quadratic, "mlp": _mlp}


def _problem(problem: str, path, seed: int) -> _Problem:
    """The torch and jaxgd sides of a named problem, its data and default lr."""
    if problem not in _PROBLEMS:
        raise ValueError(f"`problem` must be one of {PROBLEMS}, got {problem!r}.")
    torch = _import_torch()
    with torch.random.fork_rng():  # the init draws from a seeded global RNG, restored afterwards
        torch.manual_seed(seed)
        return _PROBLEMS[problem](torch, path, np.random.default_rng(seed), seed)


def compare(
    problem: str = "logistic",
    *,
    epochs: int = 20,
    batch_size: int | None = 10,
    optimizer: str = "sgd",
    lr: float | None = None,
    momentum: float = 0.9,
    seed: int = 1,
    shuffle: bool = True,
    drop_last: bool = False,
    dtype: str = "float32",
    tolerance: float = 1e-5,
    path=None,
) -> CompareReport:
    """Runs a named problem as a PyTorch loop and with `jaxgd.fit`, and compares them.

    Problems: "logistic" (lecture 3.6: `nn.Linear(2, 1)` + sigmoid, `F.binary_cross_entropy`, on
    the standardized toy set: built-in `toy_2d`, or the lecture's file at `path`); "linear"
    (`nn.Linear(3, 1)`, `F.mse_loss`, 40 synthetic examples); "quadratic" (course22's
    `a x^2 + b x + c` from 1.1, 1.1, 1.1, `F.l1_loss`, on `quadratic_data()`); "mlp"
    (Linear(4, 8), ReLU, Linear(8, 1), BCE on logits, 48 synthetic examples). The torch model
    is initialised after `torch.manual_seed(seed)` (the global RNG is restored afterwards), so
    `seed=1` gives lecture 3.6's initial weights.

    Args:
      problem: one of `PROBLEMS`.
      epochs, batch_size, optimizer, momentum, seed, shuffle, drop_last, dtype, tolerance:
        as `compare_models` (`seed` also seeds the init and the synthetic data).
      lr: learning rate; None: 0.01 for "adam", else the problem's (0.05; 0.01 for "quadratic",
        as course22).
      path: the lecture's toy file for "logistic" (default: the built-in `toy_2d`).

    Returns:
      A `CompareReport`; print it with `format_report`.

    Raises:
      ValueError: an unknown `problem`, `optimizer` or `dtype`.
      ImportError: torch is not installed.

    Examples:
      >>> report = compare("logistic", epochs=10, batch_size=10)
      >>> report.ok, report.torch_losses.shape
      (True, (10, 2))
    """
    _check_arguments(optimizer=optimizer, dtype=dtype, epochs=epochs, batch_size=batch_size,
                     lr=0.0 if lr is None else lr, momentum=momentum, seed=seed,
                     tolerance=tolerance)  # before the problem's data draws from `seed`  # fmt: skip
    p = _problem(problem, path, seed)
    if lr is None:
        lr = 0.01 if optimizer == "adam" else p.lr
    return compare_models(
        p.torch_model, p.torch_loss, p.jax_apply, p.jax_loss, p.data, epochs=epochs, lr=lr,
        optimizer=optimizer, momentum=momentum, batch_size=batch_size, seed=seed,
        shuffle=shuffle, drop_last=drop_last, dtype=dtype, tolerance=tolerance,
        to_params=p.to_params, name=problem,
    )  # fmt: skip


def format_report(report: CompareReport) -> str:
    """A short text table of a `CompareReport`: differences, tolerance, verdict, wall times.

    Examples:
      >>> print(format_report(compare("quadratic", epochs=3, batch_size=8)).splitlines()[0])
      jaxgd vs PyTorch: quadratic, sgd (lr=0.01), batch_size=8, 3 epochs x 3 updates, float32
    """
    r = report
    batches = "full batch" if r.batch_size is None else f"batch_size={r.batch_size}"
    verdict = "PASS" if r.ok else "FAIL"
    return "\n".join([
        f"jaxgd vs PyTorch: {r.problem}, {r.optimizer} (lr={r.lr:g}), {batches}, "
        f"{r.epochs} epochs x {r.torch_losses.shape[1]} updates, {r.dtype}",
        f"  largest |loss difference|    {r.max_loss_diff:.2e}",
        f"  largest |param difference|   {r.max_param_diff:.2e}",
        f"  tolerance                    {r.tolerance:.1e}   {verdict}",
        f"  wall time torch              {r.torch_seconds:.4f} s",
        f"  wall time jaxgd              {r.jax_seconds:.4f} s "
        f"(first call, with compilation: {r.jax_first_seconds:.2f} s)",
        f"  speed ratio torch / jaxgd    {r.speed_ratio:.1f}x",
    ])  # fmt: skip
