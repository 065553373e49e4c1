"""The notes' autograd examples, the functional way: `jax.grad` instead of `.backward()`.

1. One-example logistic regression (w = 0.23, b = 0.1, x = 1.23, y = 1): z = 0.3829,
   a = sigmoid(z) = 0.5946, loss = 0.5199 (BCE on a, and BCE on the logit z), dL/dw = -0.4987,
   dL/db = -0.4054.
2. The x^2 examples: d(x^2)/dx at 3 is 6; mean(2x) over [1, 2, 3] has gradient 2/3 each;
   sum(x^2) at [3, 4, 10] is 125 with gradient [6, 8, 20].
3. Per-example gradients (`jax.vmap(jax.grad(loss))`) of logistic regression on the built-in
   2-D toy set: their mean is the gradient of the mean loss.

The plot shows the loss as a function of w with the tangent at w = 0.23, whose slope is dL/dw,
and the per-example gradients around their mean.
"""

import dataclasses

import jax
import numpy as np

from jaxgd import autograd, data, losses, models
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder

DESCRIPTION = "autograd: one-example logistic regression (loss 0.5199), x^2, per-example gradients"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run autograd --help` lists them)."""

    w: float = option(0.23, "weight of the notes' one neuron (the gradient and tangent are at w)")
    b: float = option(0.1, "its bias")
    x: float = option(1.23, "the one input")
    y: float = option(1.0, "the one target (class 1)")
    seed: int = option(1, "PRNG seed of the per-example part's initial params (linear_init, "
                       "torch init)")  # fmt: skip
    curve_points: int = option(200, "points on the plotted loss curve (the numbers do not "
                               "depend on it)", quick=50)  # fmt: skip


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Runs the autograd examples.

    Args:
      out_dir: folder for `results.json` and `autograd.png`, or None.
      quick: toy size: each option's quick value (fewer curve points), unless given.
      **options: the fields of `Options`.

    Returns:
      The numbers above, under "summary".
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options) -> tuple[dict, dict]:
    """The results and the figures of one run."""
    w, b, x, y = o.w, o.b, o.x, o.y
    X, labels = data.toy_2d()
    X, _, _ = data.standardize(X)
    params = models.linear_init(key=jax.random.key(o.seed), in_features=2)
    ws = np.linspace(w - 3.0, w + 3.0, o.curve_points, dtype=np.float32)
    # One compiled program for all the numbers (op-by-op JAX would compile every operation).
    n = _numbers(w, b, x, y, params, X, labels, ws)
    neuron = n["neuron"]
    per_example, batch_grad = n["per_example"], n["batch_grad"]
    gap = max(
        float(np.max(np.abs(np.mean(np.asarray(g), axis=0) - np.asarray(bg))))
        for g, bg in zip(jax.tree.leaves(per_example), jax.tree.leaves(batch_grad), strict=True)
    )
    sq_value, sq_grad = n["square"]
    md_value, md_grad = n["mean_double"]
    ss_value, ss_grad = n["sum_squares"]

    summary = {
        "z": neuron.z,
        "a": neuron.a,
        "loss": neuron.loss,
        "loss_from_logits": neuron.loss_from_logits,
        "dL/dw": neuron.dloss_dw,
        "dL/db": neuron.dloss_db,
        "d(x^2)/dx at 3": sq_grad,
        "mean(2x) at [1,2,3]": md_value,
        "grad mean(2x)": md_grad,
        "sum(x^2) at [3,4,10]": ss_value,
        "grad sum(x^2)": ss_grad,
        "per-example grads": f"{per_example['w'].shape[0]} x {tuple(per_example['w'].shape[1:])}",
        "max |mean per-example - batch grad|": gap,
    }
    results = {
        "experiment": "autograd",
        "options": as_dict(o),
        "summary": summary,
        "per_example_grads": {"w": per_example["w"], "b": per_example["b"]},
        "batch_grad": batch_grad,
        "square": {"value": sq_value, "grad": sq_grad},
    }
    figures = {"autograd": _plot(neuron, w=w, b=b, x=x, y=y, ws=ws, curve=n["curve"],
                                 per_example=per_example, batch_grad=batch_grad)}  # fmt: skip
    return results, figures


def bce_loss(params, x, y):
    """Binary cross-entropy of ONE example on logistic regression's probability."""
    return losses.binary_cross_entropy(models.logistic_regression(params, x), y)


@jax.jit
def _numbers(w, b, x, y, params, X, labels, ws):
    # 1. The one-example logistic regression, and its loss along w for the plot.
    neuron = autograd.logistic_example(w=w, b=b, x=x, y=y)
    curve = jax.vmap(lambda v: autograd.logistic_example(w=v, b=b, x=x, y=y).loss)(ws)
    # 2. The x^2 examples.
    square = autograd.square_example(x=3.0)
    mean_double = autograd.mean_double_example(x=(1.0, 2.0, 3.0))
    sum_squares = autograd.sum_squares_example(x=(3.0, 4.0, 10.0))
    # 3. Per-example gradients of logistic regression on the standardized toy set, and the
    #    gradient of the mean loss, which their mean equals.
    per_example = autograd.per_example_grads(bce_loss, params, X, labels)
    batch_grad = jax.grad(lambda p: autograd.mean_loss(bce_loss, p, X, labels))(params)
    return dict(neuron=neuron, curve=curve, square=square, mean_double=mean_double,
                sum_squares=sum_squares, per_example=per_example, batch_grad=batch_grad)  # fmt: skip


def _plot(neuron, *, w, b, x, y, ws, curve, per_example, batch_grad):
    plt = _common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(ws, np.asarray(curve), label="loss L(w)")
    loss, slope = float(neuron.loss), float(neuron.dloss_dw)
    near = np.linspace(w - 1.2, w + 1.2, 2)
    left.plot(near, loss + slope * (near - w), "--", label=f"tangent, slope dL/dw = {slope:.4f}")
    left.plot([w], [loss], "o", color="C3")
    left.annotate(f"w = {w}, L = {loss:.4f}", (w, loss), textcoords="offset points", xytext=(8, 8))
    left.set(xlabel="w", ylabel="BCE loss", title=f"one example: x = {x}, y = {y:g}, b = {b}")
    left.legend(fontsize=8)

    gw = np.asarray(per_example["w"])
    right.scatter(gw[:, 0], gw[:, 1], s=14, alpha=0.7, label="per-example dL/dw")
    mean = np.asarray(batch_grad["w"])
    right.plot([mean[0]], [mean[1]], "*", color="C3", markersize=14, label="batch gradient")
    right.set(xlabel="dL/dw1", ylabel="dL/dw2", title="per-example gradients (toy 2-D set)")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
