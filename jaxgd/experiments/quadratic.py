"""course22, "How does a neural net really work?": fit a quadratic to noisy data by gradient descent.

20 points on [-2, 2] from 3x^2 + 2x + 1 with the notebook's noise (`data.quadratic_data`), the
mean absolute error of `a x^2 + b x + c`, and gradient descent from a = b = c = 1.1 at lr 0.01.
The first loss is 2.4219.

The notebook's loop never calls `abc.grad.zero_()`, so each step subtracts the SUM of all the
gradients so far: that is SGD with momentum 1, `optax.sgd(lr, momentum=1.0)` (trace = g + trace,
update = -lr * trace), and it prints 2.40, 2.36, 2.30, ... The textbook loop zeroes the gradients:
plain gradient descent, `optimizer=lr`, which moves much more slowly at this learning rate.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
import optax

from jaxgd import data, losses, models
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder

DESCRIPTION = "course22 quadratic: MAE, GD from a=b=c=1.1, accumulated vs zeroed gradients"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run quadratic --help` lists them)."""

    lr: float = option(0.01, "the notebook's learning rate")
    epochs: int = option(10, "gradient steps (full batch: one per epoch), as the notebook's loop",
                         quick=3)  # fmt: skip
    start: float = option(1.1, "initial a = b = c, as the notebook's "
                          "`abc = torch.tensor([1.1,1.1,1.1])`")  # fmt: skip


def quad_mae(abc, x, y):
    """The notebook's loss for ONE point: |a x^2 + b x + c - y|, with `abc` = [a, b, c]."""
    return losses.l1_loss(models.quad(abc[0], abc[1], abc[2], x), y)


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Runs both loops and plots the data, the fits and the loss curves.

    Args:
      out_dir: folder for `results.json` and `quadratic.png`, or None.
      quick: toy size: each option's quick value (3 steps), unless given.
      **options: the fields of `Options`.

    Returns:
      The first loss, each loop's losses (before each step) and final parameters.
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options) -> tuple[dict, dict]:
    """The results and the figures of one run."""
    x, y = data.quadratic_data()  # 20 points, float32
    abc = jnp.full((3,), o.start, jnp.float32)
    first = jnp.mean(jnp.abs(models.quad(abc[0], abc[1], abc[2], x) - y))
    loops = {
        # The notebook's loop: gradients accumulate, so each step uses their running sum.
        "accumulated": optax.sgd(o.lr, momentum=1.0),
        # Gradients zeroed after each step: plain gradient descent, abc <- abc - lr * grad.
        "zeroed": o.lr,
    }
    fits = {}
    for name, optimizer in loops.items():
        r = _common.fit(quad_mae, abc, (x, y), epochs=o.epochs, optimizer=optimizer,
                        label=f"quadratic: {name}")  # fmt: skip
        fits[name] = {
            "losses": r.losses[:, 0],  # the loss each step printed, before its update
            "final_loss": r.train_loss[-1],  # the loss after the last step
            "abc": r.params,
        }
    summary = {"first loss": first}
    for name, f in fits.items():
        printed = ", ".join(f"{v:.2f}" for v in np.asarray(f["losses"]))
        summary[f"{name}: losses"] = printed
        summary[f"{name}: final loss"] = f["final_loss"]
        summary[f"{name}: a, b, c"] = ", ".join(f"{v:.4f}" for v in np.asarray(f["abc"]))
    results = {
        "experiment": "quadratic",
        "options": as_dict(o),
        "summary": summary,
        "first_loss": first,
        "fits": fits,
        "data": {"x": x, "y": y},
    }
    return results, {"quadratic": _plot(x, y, o.start, fits, o.lr)}


def _plot(x, y, start, fits, lr):
    plt = _common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    xs = np.linspace(-2.1, 2.1, 100)
    left.scatter(x, y, s=14, color="k", label="data")
    left.plot(xs, 3 * xs**2 + 2 * xs + 1, ":", color="gray", label="3x² + 2x + 1")
    left.plot(xs, start * (xs**2 + xs + 1), "--", color="C7", label=f"start: {start}x² + ...")
    for i, (name, f) in enumerate(fits.items()):
        a, b, c = np.asarray(f["abc"])
        left.plot(xs, a * xs**2 + b * xs + c, color=f"C{i}", label=f"{name}: {a:.2f}x² + ...")
    left.set(xlabel="x", ylabel="y", title="data and fits")
    left.legend(fontsize=7)
    for i, (name, f) in enumerate(fits.items()):
        right.plot(np.asarray(f["losses"]), "o-", color=f"C{i}", label=name)
    right.set(xlabel="step", ylabel="MAE before the step", title=f"loss curves (lr {lr:g})")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
