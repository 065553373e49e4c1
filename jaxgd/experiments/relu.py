"""course22: fit sums of k rectified linear functions to the quadratic's data by gradient descent.

The notebook only moves sliders (`double_relu`, "add as many as we like"); here each sum
`f(x) = sum_i max(m_i x + b_i, 0) + c` of k = 1, 2, 4, 8, ... terms is trained by plain
gradient descent on the mean absolute error, from PyTorch's `nn.Linear(1, k)` initialisation.
More terms bend the fit more: the final loss falls as k grows (on training data, which 20 noisy
points let a large k overfit).
"""

import dataclasses

import jax
import numpy as np

from jaxgd import data, losses, models
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder

DESCRIPTION = "course22: sums of k ReLUs fitted by GD to the quadratic's data; loss falls with k"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run relu --help` lists them)."""

    ks: tuple[int, ...] = option((1, 2, 4, 8, 16, 32), "numbers of rectified linear terms to "
                                 "compare", quick=(1, 2))  # fmt: skip
    lr: float = option(0.01, "learning rate of plain gradient descent")
    epochs: int = option(2000, "full-batch steps per fit (20 points: one step per epoch)",
                         quick=100)  # fmt: skip
    seed: int = option(0, "PRNG seed of every fit's initial slopes and intercepts")


def relu_mae(params, x, y):
    """The loss of ONE point: |sum_i max(m_i x + b_i, 0) + c - y|."""
    return losses.l1_loss(models.relu_sum(params, x), y)


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Fits one sum of k ReLUs per k and plots the fits and their final losses.

    Args:
      out_dir: folder for `results.json` and `relu.png`, or None.
      quick: toy size: each option's quick value (k = 1, 2 and 100 steps), unless given.
      **options: the fields of `Options`.

    Returns:
      The final mean absolute error for each k (falling with k), and each fit's parameters.
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options) -> tuple[dict, dict]:
    """The results and the figures of one run."""
    ks, epochs = o.ks, o.epochs
    if not ks:
        raise ValueError("`ks` must hold at least one number of terms, e.g. --ks 1,2,4.")
    x, y = data.quadratic_data()  # the same 20 points as the quadratic experiment
    fits = {}
    for k in ks:
        params = models.relu_sum_init(key=jax.random.key(o.seed), k=k)
        r = _common.fit(relu_mae, params, (x, y), epochs=epochs, optimizer=o.lr,
                        label=f"relu: k={k}")  # fmt: skip
        fits[k] = {"final_loss": r.train_loss[-1], "train_loss": r.train_loss, "params": r.params}
    final = {k: float(f["final_loss"]) for k, f in fits.items()}
    results = {
        "experiment": "relu",
        "options": as_dict(o),
        "summary": {},
        "table": [{"k": k, "final MAE": v} for k, v in final.items()],
        "falls_with_k": bool(np.all(np.diff(list(final.values())) < 0)),
        "fits": {str(k): f for k, f in fits.items()},
    }
    results["summary"]["loss falls with k"] = results["falls_with_k"]
    return results, {"relu": _plot(x, y, fits, epochs)}


def _plot(x, y, fits, epochs):
    plt = _common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    xs = np.linspace(-2.1, 2.1, 200, dtype=np.float32)
    left.scatter(x, y, s=14, color="k", label="data", zorder=3)
    predict = jax.vmap(models.relu_sum, in_axes=(None, 0))
    for i, (k, f) in enumerate(fits.items()):
        left.plot(xs, np.asarray(predict(f["params"], xs)), color=f"C{i}", label=f"k = {k}")
    left.set(xlabel="x", ylabel="y", title="sums of k rectified linear functions")
    left.legend(fontsize=7)
    for i, (k, f) in enumerate(fits.items()):
        right.plot(np.arange(1, epochs + 1), np.asarray(f["train_loss"]), color=f"C{i}",
                   label=f"k = {k}: {float(f['final_loss']):.3f}")  # fmt: skip
    right.set(xlabel="step", ylabel="MAE", xscale="log", title="training loss")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig
