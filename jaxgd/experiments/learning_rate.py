"""fastbook chapter 4's learning-rate pictures: too small, good and too large, on the quadratic.

Full-batch gradient descent fits `a x^2 + b x + c` to the course22 data (`data.quadratic_data`)
from a = b = c = 1.1 with the mean squared error, whose gradient grows with the error: a step
that overshoots makes the next error and the next step larger. Too small a learning rate
crawls; a good one converges; too large a one oscillates with growing amplitude until the
loss overflows. The loop stops before the first update whose loss or gradient is not finite
and reports it (`result.diverged`, `result.diverged_epoch`): divergence is a result, not a crash.
The three runs share one compiled program (a learning rate given as a number is a traced value).
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxgd import data, losses, models
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder

DESCRIPTION = "learning rate too small / good / too large on the quadratic; divergence reported"

_NAMES = ("too small", "good", "too large")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run learning_rate --help` lists them)."""

    lrs: tuple[float, ...] = option((0.001, 0.1, 0.5), "learning rates, non-negative: too "
                                    "small, good, too large for this problem")  # fmt: skip
    epochs: int = option(100, "full-batch steps of each run", quick=40)
    start: float = option(1.1, "initial a = b = c, as the quadratic experiment")


def quad_mse(abc, x, y):
    """The squared error of ONE point: (a x^2 + b x + c - y)^2, with `abc` = [a, b, c]."""
    return losses.mse_loss(models.quad(abc[0], abc[1], abc[2], x), y)


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Runs gradient descent at each learning rate and plots the loss curves and fits.

    Args:
      out_dir: folder for `results.json` and `learning_rate.png`, or None.
      quick: toy size: each option's quick value (40 steps: the default too-large rate still diverges, at epoch 34), unless given.
      **options: the fields of `Options`.

    Returns:
      For each learning rate: the last finite loss, whether and at which epoch it diverged, and
      the loss curve.
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options) -> tuple[dict, dict]:
    """The results and the figures of one run."""
    lrs, epochs = o.lrs, o.epochs
    if not lrs:
        raise ValueError("`lrs` must hold at least one learning rate, e.g. --lrs 0.001,0.1,0.5.")
    x, y = data.quadratic_data()
    abc = jnp.full((3,), o.start, jnp.float32)
    names = _NAMES if len(lrs) == 3 else tuple(f"lr={lr:g}" for lr in lrs)
    rows, runs = [], {}
    for name, lr in zip(names, lrs, strict=True):
        r = _common.fit(quad_mse, abc, (x, y), epochs=epochs, optimizer=lr,
                        label=f"learning_rate: {lr:g}")  # fmt: skip
        curve = np.asarray(r.train_loss, dtype=np.float64)
        finite = curve[np.isfinite(curve)]
        diverged = bool(r.diverged)
        rows.append({
            "run": name,
            "lr": lr,
            "last finite loss": float(finite[-1]) if finite.size else None,
            "diverged": diverged,
            "at epoch": int(r.diverged_epoch) if diverged else None,
            "a, b, c": ", ".join(f"{v:.3g}" for v in np.asarray(r.params)),
        })  # fmt: skip
        runs[name] = {"lr": lr, "train_loss": curve, "params": r.params, "diverged": diverged,
                      "diverged_epoch": r.diverged_epoch, "diverged_update": r.diverged_update}  # fmt: skip
    results = {
        "experiment": "learning_rate",
        "options": as_dict(o),
        "table": rows,
        "summary": {"first loss (MSE)": float(np.mean((1.1 * (x**2 + x + 1) - y) ** 2))},
        "runs": runs,
    }
    return results, {"learning_rate": _plot(x, y, runs, epochs)}


def _plot(x, y, runs, epochs):
    plt = _common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, (name, r) in enumerate(runs.items()):
        label = f"{name} (lr {r['lr']:g})"
        if r["diverged"]:
            finite = r["train_loss"][np.isfinite(r["train_loss"])]
            label += f": diverged at epoch {int(r['diverged_epoch'])} (loss {finite[-1]:.0e})"
        left.plot(np.arange(1, epochs + 1), r["train_loss"], color=f"C{i}", label=label)
    first = min(float(r["train_loss"][0]) for r in runs.values())
    lowest = min(float(np.nanmin(r["train_loss"])) for r in runs.values())
    left.set(xlabel="epoch", ylabel="MSE (log scale)", yscale="log", title="loss curves",
             ylim=(0.7 * lowest, 1e3 * first))  # a diverging curve leaves the top  # fmt: skip
    left.legend(fontsize=7)
    xs = np.linspace(-2.1, 2.1, 100)
    right.scatter(x, y, s=14, color="k", label="data", zorder=3)
    for i, (name, r) in enumerate(runs.items()):
        if not r["diverged"]:
            a, b, c = np.asarray(r["params"])
            right.plot(xs, a * xs**2 + b * xs + c, color=f"C{i}", label=name)
    right.set(xlabel="x", ylabel="y", title="fits (diverged runs left out)")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
