"""Lecture 3.6: logistic regression on a 2-D two-class toy set, trained by mini-batch SGD.

The lecture standardizes the 20 points (population std), trains `nn.Linear(2, 1)` + sigmoid with
binary cross-entropy, `torch.optim.SGD(lr=0.05)` and a shuffled `DataLoader(batch_size=10)` for 20
epochs, and reaches 100 % training accuracy. The built-in default is `data.toy_2d()` (a synthetic
stand-in with the file's class means and spreads); `data=PATH` reads the lecture's tab-separated
file (`x1 x2 label`) with `data.load_toy`.
"""

import dataclasses

import jax
import numpy as np

import jaxgd
from jaxgd import data as datasets
from jaxgd import losses, models
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder

DESCRIPTION = "lecture 3.6: logistic regression on a 2-D toy set, curve, accuracy, boundary"

_ACCURACY = {"accuracy": jaxgd.binary_accuracy(models.logistic_regression)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run logistic --help` lists them)."""

    data: str | None = option(None, "path of the lecture's toy file (tab-separated, header "
                              "`x1 x2 label`); None: the built-in toy_2d set")  # fmt: skip
    epochs: int = option(20, "passes over the data, as the lecture", quick=3)
    batch_size: int = option(10, "examples per update, as the lecture's DataLoader")
    lr: float = option(0.05, "learning rate of plain SGD, as the lecture's torch.optim.SGD")
    seed: int = option(1, "PRNG seed of the initial params (torch's nn.Linear init) and of the "
                       "shuffling")  # fmt: skip


def bce_loss(params, x, y):
    """Binary cross-entropy of ONE example on the model's probability, as the lecture's loss."""
    return losses.binary_cross_entropy(models.logistic_regression(params, x), y)


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Trains logistic regression and plots the training curve and the decision boundary.

    Args:
      out_dir: folder for `results.json` and `logistic.png`, or None.
      quick: toy size: each option's quick value (3 epochs), unless given.
      **options: the fields of `Options`.

    Returns:
      The final training loss and accuracy, per-epoch curves and the learned parameters
      (in standardized units).

    Raises:
      FileNotFoundError, ValueError: `data` cannot be read (see `jaxgd.data.load_toy`).
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options) -> tuple[dict, dict]:
    """The results and the figures of one run."""
    data = o.data
    X, y = datasets.toy_2d() if data is None else datasets.load_toy(data)
    X, mean, std = datasets.standardize(X)  # lecture 3.6 standardizes with the population std
    init_key, shuffle_key = jax.random.split(jax.random.key(o.seed))
    params = models.linear_init(key=init_key, in_features=2)
    r = _common.fit(bce_loss, params, (X, y), epochs=o.epochs, optimizer=o.lr, batch_size=o.batch_size,
                    key=shuffle_key, metrics=_ACCURACY, label="logistic")  # fmt: skip
    accuracy = r.train_metrics["accuracy"]
    summary = {
        "data": "built-in toy_2d" if data is None else str(data),
        "examples": len(y),
        "updates": int(r.losses.size),
        "first batch loss": r.losses[0, 0],
        "final train loss": r.train_loss[-1],
        "final train accuracy": accuracy[-1],
    }
    results = {
        "experiment": "logistic",
        "options": as_dict(o),
        "summary": summary,
        "batch_losses": r.losses,
        "train_loss": r.train_loss,
        "train_accuracy": accuracy,
        "params": r.params,
        "standardization": {"mean": mean, "std": std},
    }
    return results, {"logistic": _plot(X, y, r)}


def _plot(X, y, r):
    plt = _common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    epochs = np.arange(1, len(r.train_loss) + 1)
    left.plot(epochs, np.asarray(r.train_loss), "o-", label="training loss")
    per_update = np.asarray(r.losses).ravel()
    left.plot(np.linspace(0, len(epochs), len(per_update) + 1)[1:], per_update, alpha=0.4,
              label="batch losses")  # fmt: skip
    left.plot(epochs, np.asarray(r.train_metrics["accuracy"]), "s-", label="training accuracy")
    left.set(xlabel="epoch", title="training curve")
    left.legend(fontsize=8)

    for label, marker in ((0.0, "o"), (1.0, "^")):
        pick = y == label
        right.scatter(X[pick, 0], X[pick, 1], marker=marker, label=f"class {label:g}")
    w, b = np.asarray(r.params["w"]), float(r.params["b"])
    lo, hi = X[:, 0].min() - 0.5, X[:, 0].max() + 0.5
    xs = np.linspace(lo, hi, 2)
    if abs(w[1]) > 1e-12:  # the boundary w1 x1 + w2 x2 + b = 0, where the probability is 0.5
        right.plot(xs, -(w[0] * xs + b) / w[1], "k--", label="decision boundary")
    right.set(xlabel="x1 (standardized)", ylabel="x2 (standardized)", title="decision boundary",
              ylim=(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5))  # fmt: skip
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
