"""Losses with PyTorch's names, argument order and `reduction`, as pure JAX functions.

Each function mirrors `torch.nn.functional.<name>`: same positional order, keyword-only
`reduction="mean" | "sum" | "none"` (default "mean"). They work on one example (0-d arrays or
Python floats; `(C,)` logits for `cross_entropy`) and on batches of any shape, so a loss written
for one example can be batched with `jax.vmap` and gives the same numbers as the batched call.

Rules (all checked on static shapes and dtypes, so they also hold under `jit` and `vmap`):

* Shapes: predictions and targets must have *equal* shapes. jaxgd never broadcasts them (torch
  warns, then broadcasts `(n,)` against `(n, 1)` into an `(n, n)` loss); a mismatch is a
  `ValueError` naming both shapes. `weight` and `pos_weight` broadcast to the predictions' shape
  as in torch (trailing axes), but may not enlarge it.
* Dtypes: predictions (probabilities, logits, log-probabilities) must be real floating point;
  integer, bool or complex ones are a `TypeError`. Targets that are bool or integer (0/1 labels,
  fastbook's `tensor([1]*n)`) or floats of another width are *cast to the predictions' dtype*, so
  the loss always has the predictions' dtype (torch rejects integer targets in
  `binary_cross_entropy`; jaxgd accepts them). Complex targets are a `TypeError`. Class labels for
  `cross_entropy`/`nll_loss` are integers shaped like the scores without their class axis;
  `cross_entropy` also takes float class probabilities shaped like the logits.
* The class axis: the last for (C,) and (N, C), where jaxgd and torch agree; with more axes
  `axis` must say which (torch's (N, C, d1, ...) is `axis=1`), so that a d1 equal to C cannot
  put the classes on the wrong axis. `weight`, `ignore_index` (default -100: such labels are
  skipped) and `label_smoothing` follow torch, its weighted "mean" included.
* Values cannot be checked under `jit`: probabilities outside [0, 1] and labels outside [0, C)
  (other than `ignore_index`) give NaN where torch raises.

Gradients equal torch's autograd, with these deliberate differences (all at degenerate points):
`binary_cross_entropy`'s gradient w.r.t. `targets` where a log term is clamped (probs 0 or 1,
or within e^-100 of them) is the derivative of the clamped loss (±100 at 0 and 1) where torch
returns the unclamped -logit(p) (±inf at 0 and 1); `rmse` has gradient 0 at an exact fit where
`torch.sqrt(F.mse_loss(...))` gives NaN; `binary_cross_entropy_with_logits` is exact in float32
where torch cancels (at logit -1e4, target 2^-23 the loss is 1.19e-3, torch's 9.8e-4; the
gradient at logit 20, target 1 is -2.06e-9, torch's 0). JAX also
differentiates w.r.t. `weight` and `pos_weight`, which torch refuses.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

Reduction = Literal["mean", "sum", "none"]

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mnist_loss",
    "mse_loss",
    "nll_loss",
    "rmse",
]

_REDUCTIONS = ("mean", "sum", "none")
_LOG_CLAMP = -100.0  # torch clamps each log term of binary_cross_entropy at -100
# torch's EPSILON in binary_cross_entropy_backward is a C++ float: 1e-12 rounded to float32,
# also in float64 (so the clamped gradient is 1.000000004e12, not 1e12).
_GRAD_EPS = float(np.float32(1e-12))


def _check_reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if not isinstance(reduction, str) or reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"`reduction` must be one of {names}; got {reduction!r}.")


def _reduce(loss: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.mean(loss)
    return jnp.sum(loss) if reduction == "sum" else loss


def _floats(x: ArrayLike, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be a real floating-point array; got dtype {x.dtype}. "
            f"Fix: cast it, e.g. `{name}.astype(jnp.float32)`."
        )
    return x


def _real(x: ArrayLike, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(
            f"`{name}` must be real (bool, integer or float); got dtype {x.dtype}. "
            f"Fix: pass `jnp.real({name})` if the imaginary part is zero."
        )
    return x


def _cast_like(x: ArrayLike, like: jax.Array, name: str) -> jax.Array:
    return _real(x, name).astype(like.dtype)  # the documented policy: the predictions' dtype


def _check_same_shape(a: jax.Array, b: jax.Array, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        fix = (
            f"`{b_name}.reshape({a_name}.shape)`"
            if a.size == b.size
            else f"arrays with as many elements ({a.size} against {b.size})"
        )
        raise ValueError(
            f"`{b_name}` has shape {b.shape} but `{a_name}` has shape {a.shape}; they must be "
            f"equal (jaxgd does not broadcast them: (n,) against (n, 1) would silently give an "
            f"(n, n) loss). Fix: pass {fix}."
        )


def _broadcast_weight(w: ArrayLike | None, like: jax.Array, name: str) -> jax.Array | None:
    if w is None:
        return None
    w = _cast_like(w, like, name)
    try:
        ok = jnp.broadcast_shapes(w.shape, like.shape) == like.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"`{name}` has shape {w.shape}, which does not broadcast to the predictions' shape "
            f"{like.shape} without enlarging it. Fix: give `{name}` shape {like.shape} or a "
            f"trailing part of it (e.g. one weight per class)."
        )
    return jnp.broadcast_to(w, like.shape)


def _weighted(loss: jax.Array, w: jax.Array | None) -> jax.Array:
    return loss if w is None else loss * w


@jax.custom_jvp
def _bce_terms(p: jax.Array, y: jax.Array) -> jax.Array:
    # torch's kernel: (y - 1) * max(log1p(-p), -100) - y * max(log(p), -100)
    return (y - 1) * jnp.maximum(jnp.log1p(-p), _LOG_CLAMP) - y * jnp.maximum(
        jnp.log(p), _LOG_CLAMP
    )


@_bce_terms.defjvp
def _bce_terms_jvp(primals, tangents):
    p, y = primals
    dp, dy = tangents
    log_q = jnp.maximum(jnp.log1p(-p), _LOG_CLAMP)
    log_p = jnp.maximum(jnp.log(p), _LOG_CLAMP)
    # d/dp: torch's (p - y) / max(p (1 - p), 1e-12), finite at p = 0 and 1.
    grad_p = (p - y) / jnp.maximum((1 - p) * p, jnp.asarray(_GRAD_EPS, p.dtype))
    return (y - 1) * log_q - y * log_p, grad_p * dp + (log_q - log_p) * dy


def binary_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    """Binary cross-entropy on probabilities, as `torch.nn.functional.binary_cross_entropy`.

    Ports the loss of lecture 3.6 (logistic regression in PyTorch).

    ``l = -w * [y * max(log p, -100) + (1 - y) * max(log(1 - p), -100)]``

    Each log term is clamped at -100 exactly as torch does, so p = 0 or 1 gives 100 for a wrong
    target and 0 for a right one, never inf. The gradient w.r.t. `probs` is torch's
    ``w (p - y) / max(p (1 - p), 1e-12)``: finite (about ±1e12) at p = 0 and 1.

    Args:
      probs: probabilities in [0, 1], any shape (values outside give NaN).
      targets: same shape as `probs`; floats in [0, 1] (bool/int are cast to `probs.dtype`).
      weight: optional rescaling, broadcastable to `probs.shape`.
      reduction: "mean" (default), "sum" or "none" (elementwise, shape of `probs`).

    Returns:
      The reduced loss (0-d), or the elementwise loss for `reduction="none"`.

    Raises:
      ValueError: unknown `reduction`, or shapes that differ.
      TypeError: non-float `probs`, or complex `targets`/`weight`.

    Examples:
      The notes' neuron (w=0.23, b=0.1, x=1.23, y=1):

      >>> import jax, jax.numpy as jnp
      >>> a = jax.nn.sigmoid(0.23 * 1.23 + 0.1)
      >>> print(f"{float(binary_cross_entropy(a, 1.0)):.4f}")
      0.5199
      >>> binary_cross_entropy(jnp.array([0.0, 1.0]), jnp.array([1, 0]), reduction="none").tolist()
      [100.0, 100.0]
    """
    _check_reduction(reduction)
    p = _floats(probs, "probs")
    y = _cast_like(targets, p, "targets")
    _check_same_shape(p, y, "probs", "targets")
    w = _broadcast_weight(weight, p, "weight")
    return _reduce(_weighted(_bce_terms(p, y), w), reduction)


@jax.custom_jvp
def _bce_logits_terms(x: jax.Array, y: jax.Array, pw: jax.Array) -> jax.Array:
    # -[pw y log s(x) + (1 - y) log s(-x)], regrouped so that no large terms cancel:
    # (1 - y) max(x, 0) - pw y min(x, 0) + (1 + (pw - 1) y) log1p(exp(-|x|))
    c = 1 + (pw - 1) * y
    return (
        (1 - y) * jnp.maximum(x, 0)
        - pw * y * jnp.minimum(x, 0)
        + c * jnp.log1p(jnp.exp(-jnp.abs(x)))
    )


@_bce_logits_terms.defjvp
def _bce_logits_terms_jvp(primals, tangents):
    x, y, pw = primals
    dx, dy, dpw = tangents
    log_s, log_1ms = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    # d/dx = (1 + (pw - 1) y) s(x) - pw y, written without cancellation:
    grad_x = (1 - y) * jax.nn.sigmoid(x) - pw * y * jax.nn.sigmoid(-x)
    tangent = grad_x * dx + (log_1ms - pw * log_s) * dy - y * log_s * dpw
    return _bce_logits_terms(x, y, pw), tangent


def binary_cross_entropy_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    """Binary cross-entropy on logits, as `torch.nn.functional.binary_cross_entropy_with_logits`.

    Ports the lectures' "better practice" step: feed the logit z, not sigmoid(z), to the loss.

    ``l = -w * [pw * y * log s(x) + (1 - y) * log(1 - s(x))]``, with s the sigmoid,

    computed as ``(1-y) max(x,0) - pw y min(x,0) + (1 + (pw-1) y) log(1 + exp(-|x|))`` (the
    log-sum-exp form): finite and exact for any finite logits (±1e4 included), values and
    gradients.
    The gradient w.r.t. `logits` is ``w [(1 - y) s(x) - pw y s(-x)]`` (``s(x) - y`` when pw=1).

    Args:
      logits: real-valued scores, any shape.
      targets: same shape as `logits`; floats in [0, 1] (bool/int are cast to `logits.dtype`).
      weight: optional rescaling, broadcastable to `logits.shape`.
      pos_weight: optional weight of the positive term, broadcastable to `logits.shape` (for
        logits `(n, C)`, one per class: shape `(C,)`).
      reduction: "mean" (default), "sum" or "none" (elementwise, shape of `logits`).

    Returns:
      The reduced loss (0-d), or the elementwise loss for `reduction="none"`.

    Raises:
      ValueError: unknown `reduction`, or shapes that differ.
      TypeError: non-float `logits`, or complex `targets`/`weight`/`pos_weight`.

    Examples:
      The notes' neuron (w=0.23, b=0.1, x=1.23, y=1), loss and dL/dw:

      >>> import jax, jax.numpy as jnp
      >>> loss = lambda w, b: binary_cross_entropy_with_logits(w * 1.23 + b, 1.0)
      >>> print(f"{float(loss(0.23, 0.1)):.4f}")
      0.5199
      >>> print(f"{float(jax.grad(loss)(0.23, 0.1)):.4f}")
      -0.4987
      >>> x = jnp.array([1e4, -1e4])
      >>> binary_cross_entropy_with_logits(x, jnp.array([0.0, 0.0]), reduction="none").tolist()
      [10000.0, 0.0]
    """
    _check_reduction(reduction)
    x = _floats(logits, "logits")
    y = _cast_like(targets, x, "targets")
    _check_same_shape(x, y, "logits", "targets")
    w = _broadcast_weight(weight, x, "weight")
    pw = _broadcast_weight(pos_weight, x, "pos_weight")
    pw = jnp.ones_like(x) if pw is None else pw
    return _reduce(_weighted(_bce_logits_terms(x, y, pw), w), reduction)


def _residual(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    x = _floats(predictions, "predictions")
    y = _cast_like(targets, x, "targets")
    _check_same_shape(x, y, "predictions", "targets")
    return x - y


def l1_loss(
    predictions: ArrayLike, targets: ArrayLike, *, reduction: Reduction = "mean"
) -> jax.Array:
    """Mean absolute error, as `torch.nn.functional.l1_loss`: ``l = |x - y|``.

    The gradient at a tie (x == y) is 0, as in torch (JAX's `abs` would give 1).

    Args:
      predictions: any shape, floating point.
      targets: same shape (bool/int/other floats are cast to `predictions.dtype`).
      reduction: "mean" (default), "sum" or "none".

    Returns:
      The reduced loss (0-d), or the elementwise loss for `reduction="none"`.

    Raises:
      ValueError: unknown `reduction`, or shapes that differ.
      TypeError: non-float `predictions`, or complex `targets`.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(f"{float(l1_loss(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 3.0, 2.0]))):.4f}")
      1.0000
    """
    _check_reduction(reduction)
    d = _residual(predictions, targets)
    return _reduce(d * jnp.sign(d), reduction)  # |d|, with gradient sign(d) = 0 at d = 0


def mse_loss(
    predictions: ArrayLike, targets: ArrayLike, *, reduction: Reduction = "mean"
) -> jax.Array:
    """Mean squared error, as `torch.nn.functional.mse_loss`: ``l = (x - y)^2``.

    The regression loss of lecture 4.5 (a PyTorch MLP for regression).

    Args:
      predictions: any shape, floating point.
      targets: same shape (bool/int/other floats are cast to `predictions.dtype`).
      reduction: "mean" (default), "sum" or "none".

    Returns:
      The reduced loss (0-d), or the elementwise loss for `reduction="none"`.

    Raises:
      ValueError: unknown `reduction`, or shapes that differ.
      TypeError: non-float `predictions`, or complex `targets`.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(f"{float(mse_loss(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 3.0, 2.0]))):.4f}")
      1.6667
    """
    _check_reduction(reduction)
    return _reduce(jnp.square(_residual(predictions, targets)), reduction)


def rmse(predictions: ArrayLike, targets: ArrayLike, *, reduction: Reduction = "mean") -> jax.Array:
    """Root mean squared error: ``sqrt(mean((x - y)^2))``, the square root of `mse_loss`.

    One lecture note labels `F.mse_loss` as "RMSE"; it is not: `mse_loss` is the mean of the
    squares, without the root. `reduction="sum"` gives ``sqrt(sum((x - y)^2))`` (the Euclidean
    norm of the residual). `reduction="none"` is rejected: the root of one squared error is just
    ``|x - y|`` (use `l1_loss(..., reduction="none")`). At an exact fit the gradient is 0, where
    ``torch.sqrt(F.mse_loss(...))`` gives NaN.

    Args:
      predictions: any shape, floating point.
      targets: same shape (bool/int/other floats are cast to `predictions.dtype`).
      reduction: "mean" (default) or "sum".

    Returns:
      A 0-d array.

    Raises:
      ValueError: `reduction` other than "mean"/"sum" (including "none"), or shapes that differ.
      TypeError: non-float `predictions`, or complex `targets`.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(f"{float(rmse(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 3.0, 2.0]))):.4f}")
      1.2910
    """
    if reduction == "none":
        raise ValueError(
            "`reduction` must be 'mean' or 'sum' for rmse; got 'none': the root of one squared "
            "error is |x - y|. Fix: use `l1_loss(..., reduction='none')` or "
            "`mse_loss(..., reduction='none')`."
        )
    _check_reduction(reduction, ("mean", "sum"))
    m = mse_loss(predictions, targets, reduction=reduction)
    zero = m == 0  # double `where`: a finite (zero) gradient at an exact fit, NaN stays NaN
    return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, m)))


def _class_axis(scores: jax.Array, axis: int | None, name: str) -> int:
    """The class axis of `scores`, as a non-negative int; None means "last" for 1 or 2 axes."""
    if scores.ndim == 0:
        raise ValueError(
            f"`{name}` must have a class axis; got a 0-d array. "
            f"Fix: pass shape (C,) for one example or (N, C) for a batch."
        )
    if axis is None:
        if scores.ndim > 2:
            raise ValueError(
                f"`{name}` has shape {scores.shape}: with {scores.ndim} axes, say which one holds "
                "the classes: `axis=1` for PyTorch's layout (N, C, d1, ...), or `axis=-1` for "
                "classes last (N, d1, ..., C). With one or two axes the classes are on the last "
                "axis, as in PyTorch."
            )
        return scores.ndim - 1
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"`axis` must be an int (the class axis of `{name}`), got {axis!r}.")
    if not -scores.ndim <= axis < scores.ndim:
        raise ValueError(
            f"`axis`={axis} is not an axis of `{name}` (shape {scores.shape}); pass one in "
            f"[{-scores.ndim}, {scores.ndim})."
        )
    return int(axis) % scores.ndim


def _labels(scores: jax.Array, labels: ArrayLike, ax: int, name: str, probabilities: bool):
    """`(labels, is_probabilities)`: integer indices shaped like `scores` without its class axis,
    or (with `probabilities`) float class probabilities shaped like `scores`."""
    labels = _real(labels, "labels")
    want = scores.shape[:ax] + scores.shape[ax + 1 :]
    where = (
        f"`{name}.shape[:-1]` = {want}"
        if ax == scores.ndim - 1
        else f"`{name}`'s shape without its class axis {ax}: {want}"
    )
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != want:
            raise ValueError(
                f"`labels` has shape {labels.shape} but `{name}` has shape {scores.shape}; labels "
                f"must have shape {where} (one class index per example). "
                f"Fix: e.g. `labels.reshape({want})`."
            )
        return labels, False
    probs = "or float class probabilities shaped like `logits`" if probabilities else ""
    if not jnp.issubdtype(labels.dtype, jnp.floating):
        raise TypeError(
            f"`labels` must be integer class indices{' ' + probs if probs else ''}; got dtype "
            f"{labels.dtype}. Fix: `labels.astype(jnp.int32)`."
        )
    if not probabilities:
        raise TypeError(
            f"`labels` must be integer class indices; got dtype {labels.dtype}. Fix: "
            "`labels.astype(jnp.int32)` for indices stored as floats; for class probabilities "
            "use `cross_entropy(logits, probabilities)` (`nll_loss` takes indices, as in PyTorch)."
        )
    if labels.shape != scores.shape:
        fix = (
            f"for class indices stored as floats pass `labels.astype(jnp.int32)` (shape {want})"
            if labels.shape == want
            else f"give one probability per class, shape {scores.shape}"
        )
        raise ValueError(
            f"`labels` of dtype {labels.dtype} are class probabilities and must have the shape of "
            f"`{name}` {scores.shape}; got {labels.shape}. Fix: {fix}."
        )
    return labels.astype(scores.dtype), True


def _class_weight(weight: ArrayLike | None, scores: jax.Array, ax: int) -> jax.Array | None:
    """`weight` of shape (C,) in the dtype of the scores, whose class axis is `ax`."""
    if weight is None:
        return None
    w = _cast_like(weight, scores, "weight")
    if w.shape != (scores.shape[ax],):
        raise ValueError(
            f"`weight` must have shape (C,) = {(scores.shape[ax],)}, one weight per class; got "
            f"{w.shape}."
        )
    return w


def _classes_last(a: jax.Array, ax: int) -> jax.Array:
    return a if ax == a.ndim - 1 else jnp.moveaxis(a, ax, -1)


def _check_index(ignore_index) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(
            f"`ignore_index` must be an int (PyTorch's default is -100), got {ignore_index!r}."
        )
    return int(ignore_index)


def _check_smoothing(label_smoothing) -> float:
    ok = isinstance(label_smoothing, (int, float, np.integer, np.floating))
    if isinstance(label_smoothing, bool) or not ok:
        raise TypeError(
            f"`label_smoothing` must be a number in [0, 1], got {label_smoothing!r} (a Python "
            "number: it is not traced)."
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1], got {label_smoothing}.")
    return float(label_smoothing)


def _nll_terms(log_probs, labels, w, ignore_index):
    """Per-position `-w[y] log_probs[y]` (0 where ignored, NaN outside [0, C)) and the weight
    `w[y]` each position adds to the denominator of "mean" (0 where ignored). Classes last."""
    valid = (labels >= 0) & (labels < log_probs.shape[-1])
    ignored = labels == ignore_index
    safe = jnp.where(valid, labels, 0)
    picked = -jnp.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
    wy = jnp.ones_like(picked) if w is None else w[safe]
    loss = picked if w is None else wy * picked
    loss = jnp.where(ignored, 0, jnp.where(valid, loss, jnp.nan))
    return loss, jnp.where(ignored, 0, wy)


def _weighted_reduce(loss, total, reduction):
    """PyTorch's weighted mean: the sum over the weight of the positions counted."""
    return jnp.sum(loss) / jnp.sum(total) if reduction == "mean" else _reduce(loss, reduction)


def nll_loss(
    log_probs: ArrayLike,
    labels: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    axis: int | None = None,
) -> jax.Array:
    """Negative log-likelihood, as `torch.nn.functional.nll_loss`: ``l = -w[y] log_probs[y]``.

    Lecture 4.1's cheat-sheet: `nll_loss` takes log-probabilities (`log_softmax` outputs).
    Positions whose label is `ignore_index` (-100 by default, as in PyTorch) give 0 and do not
    count. "mean" is PyTorch's weighted mean, ``sum_i l_i / sum_i w[y_i]`` over the positions
    counted: NaN when none counts (all labels ignored, a one-example loss included: use
    `reduction="sum"` there, which gives 0).

    Args:
      log_probs: shape (C,) for one example, (N, C), or more axes with `axis` naming the class
        axis (PyTorch's (N, C, d1, ...) is `axis=1`), floating point.
      labels: integer class indices shaped like `log_probs` without its class axis (NaN loss
        outside [0, C) unless equal to `ignore_index`).
      weight: optional rescaling of each class, shape (C,).
      ignore_index: a label value that is skipped.
      reduction: "mean" (default), "sum" or "none" (the shape of `labels`).
      axis: the class axis; None is the last one and needs at most 2 axes.

    Returns:
      The reduced loss (0-d), or the per-position loss for `reduction="none"`.

    Raises:
      ValueError: unknown `reduction`, 0-d `log_probs`, more than 2 axes without `axis`,
        labels or weight of the wrong shape.
      TypeError: non-float `log_probs`, non-integer `labels`.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(f"{float(nll_loss(jnp.array([-1.0, -2.0]), 1)):.4f}")
      2.0000
      >>> lp = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]))
      >>> w, y = jnp.array([1.0, 3.0]), jnp.array([0, -100, 1])  # example 1 is ignored
      >>> print(f"{float(nll_loss(lp, y, weight=w)):.4f}")  # (0.6931 + 3 * 0.2231) / (1 + 3)
      0.3407
    """
    _check_reduction(reduction)
    lp = _floats(log_probs, "log_probs")
    ax = _class_axis(lp, axis, "log_probs")
    labels, _ = _labels(lp, labels, ax, "log_probs", probabilities=False)
    w = _class_weight(weight, lp, ax)
    loss, total = _nll_terms(_classes_last(lp, ax), labels, w, _check_index(ignore_index))
    return _weighted_reduce(loss, total, reduction)


def cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    axis: int | None = None,
) -> jax.Array:
    """Softmax cross-entropy, as `torch.nn.functional.cross_entropy`.

    Lecture 4.1's cheat-sheet: `cross_entropy` takes logits (it applies `log_softmax` itself).
    With q = log_softmax(z) over the class axis, C classes and smoothing eps:

    * class indices y: ``l = (1 - eps) (-w[y] q[y]) + eps/C sum_c (-w[c] q[c])``, 0 where
      ``y == ignore_index``; "mean" divides the sum by ``sum_i w[y_i]`` over the positions
      counted (the count without `weight`), as PyTorch does.
    * class probabilities t (float labels shaped like the logits): ``l = -sum_c w[c] t'[c]
      q[c]`` with ``t' = (1 - eps) t + eps / C``; "mean" divides by the number of positions.

    A one-example loss whose label is ignored is NaN under "mean" (nothing counts), as in
    PyTorch: use `reduction="sum"` in a per-example loss, which gives 0.

    Args:
      logits: shape (C,) for one example, (N, C), or more axes with `axis` naming the class
        axis (PyTorch's (N, C, d1, ...) is `axis=1`), floating point.
      labels: integer class indices shaped like `logits` without its class axis (NaN loss
        outside [0, C) unless equal to `ignore_index`), or float class probabilities shaped
        like `logits` (cast to its dtype).
      weight: optional rescaling of each class, shape (C,).
      ignore_index: a label value that is skipped (class indices only).
      reduction: "mean" (default), "sum" or "none" (the logits' shape without the class axis).
      label_smoothing: eps in [0, 1], a Python number.
      axis: the class axis; None is the last one and needs at most 2 axes.

    Returns:
      The reduced loss (0-d), or the per-position loss for `reduction="none"`.

    Raises:
      ValueError: unknown `reduction`, 0-d `logits`, more than 2 axes without `axis`, labels
        or weight of the wrong shape, `label_smoothing` outside [0, 1].
      TypeError: non-float `logits`, bool or complex `labels`, float labels in `nll_loss`.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(f"{float(cross_entropy(jnp.array([1.0, -2.0]), 1)):.4f}")
      3.0486
      >>> z = jnp.zeros((2, 3, 4))  # PyTorch's (N, C, d1): 3 classes on axis 1
      >>> print(cross_entropy(z, jnp.zeros((2, 4), jnp.int32), axis=1, reduction="none").shape)
      (2, 4)
      >>> print(f"{float(cross_entropy(jnp.array([2.0, 0.0]), jnp.array([0.75, 0.25]))):.4f}")
      0.6269
    """
    _check_reduction(reduction)
    eps = _check_smoothing(label_smoothing)
    z = _floats(logits, "logits")
    ax = _class_axis(z, axis, "logits")
    labels, probabilities = _labels(z, labels, ax, "logits", probabilities=True)
    w = _class_weight(weight, z, ax)
    ignore_index = _check_index(ignore_index)
    q = jax.nn.log_softmax(_classes_last(z, ax), axis=-1)
    C = q.shape[-1]
    wq = q if w is None else jnp.broadcast_to(w, q.shape) * q
    if probabilities:
        t = _classes_last(labels, ax)
        t = t if eps == 0 else t * (1 - eps) + eps / C
        loss = -jnp.sum(t * wq, axis=-1)
        return jnp.sum(loss) / loss.size if reduction == "mean" else _reduce(loss, reduction)
    loss, total = _nll_terms(q, labels, w, ignore_index)
    if eps == 0:
        return _weighted_reduce(loss, total, reduction)
    smooth = jnp.where(labels == ignore_index, 0, -jnp.sum(wq, axis=-1))
    return (1 - eps) * _weighted_reduce(loss, total, reduction) + eps / C * _weighted_reduce(
        smooth, total, reduction
    )


def mnist_loss(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """fastbook chapter 4's `mnist_loss`: distance of sigmoid(prediction) from the target.

    ``p = sigmoid(x);  l = mean(where(y == 1, 1 - p, p))``

    Targets are compared with 1, so 0/1 labels of any dtype (fastbook uses integers) work.

    Args:
      predictions: raw scores (logits), any shape, floating point.
      targets: same shape as `predictions`; 1 for the positive class, anything else negative.

    Returns:
      A 0-d array: the mean over all elements.

    Raises:
      ValueError: shapes that differ (fastbook's targets are (n, 1): match the predictions).
      TypeError: non-float `predictions`, or complex `targets`.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(f"{float(mnist_loss(jnp.array([0.9, 0.4, -0.2]), jnp.array([1, 0, 1]))):.4f}")
      0.4792
    """
    x = _floats(predictions, "predictions")
    y = _real(targets, "targets")  # compared with 1, not cast: any real dtype works
    _check_same_shape(x, y, "predictions", "targets")
    p = jax.nn.sigmoid(x)
    return jnp.mean(jnp.where(y == 1, 1 - p, p))
