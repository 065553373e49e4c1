"""Lecture 3.6: logistic regression on a 2-D two-class toy set, trained by mini-batch SGD.

The lecture standardizes the 20 points (population std), trains `nn.Linear(2, 1)` + sigmoid with
binary cross-entropy, `torch.optim.SGD(lr=0.05)` and a shuffled `DataLoader(batch_size=10)` for 20
epochs, and reaches 100 % training accuracy. The built-in default is `data.toy_2d()` (a synthetic
stand-in with the file's class means and spreads); `data=PATH` reads the lecture's tab-separated
file (`x1 x2 label`) with `data.load_toy`.
"""

import jax
import numpy as np

import jaxgd
from jaxgd import data as datasets
from jaxgd import losses, models
from jaxgd.experiments import _common

DESCRIPTION = "lecture 3.6: logistic regression on a 2-D toy set, curve, accuracy, boundary"

_ACCURACY = {"accuracy": jaxgd.binary_accuracy(models.logistic_regression)}


def bce_loss(params, x, y):
    """Binary cross-entropy of ONE example on the model's probability, as the lecture's loss."""
    return losses.binary_cross_entropy(models.logistic_regression(params, x), y)


def run(
    *,
    out_dir=None,
    quick: bool = False,
    data: str | None = None,  # path of the lecture's toy file; None: the built-in toy_2d set
    epochs: int = 20,  # passes over the data, as the lecture
    batch_size: int = 10,  # examples per update, as the lecture's DataLoader
    lr: float = 0.05,  # learning rate of plain SGD, as the lecture's torch.optim.SGD
    seed: int = 1,  # PRNG seed of the initial params (torch's nn.Linear init) and of the shuffling
) -> dict:
    """Trains logistic regression and plots the training curve and the decision boundary.

    Args:
      out_dir: folder for `results.json` and `logistic.png`, or None.
      quick: 3 epochs.
      data: path of a tab-separated file with the header `x1 x2 label`, or None.
      epochs: the number of epochs.
      batch_size: the mini-batch size.
      lr: the learning rate.
      seed: seed of the initial parameters and of the per-epoch shuffling.

    Returns:
      The final training loss and accuracy, per-epoch curves and the learned parameters
      (in standardized units).

    Raises:
      FileNotFoundError, ValueError: `data` cannot be read (see `jaxgd.data.load_toy`).
    """
    _common.prepare_out_dir(out_dir)
    epochs = 3 if quick else epochs
    X, y = datasets.toy_2d() if data is None else datasets.load_toy(data)
    X, mean, std = datasets.standardize(X)  # lecture 3.6 standardizes with the population std
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = models.linear_init(key=init_key, in_features=2)
    r = _common.fit(bce_loss, params, (X, y), epochs=epochs, optimizer=lr, batch_size=batch_size,
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
        "options": {
            "data": data,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
        },  # fmt: skip
        "summary": summary,
        "batch_losses": r.losses,
        "train_loss": r.train_loss,
        "train_accuracy": accuracy,
        "params": r.params,
        "standardization": {"mean": mean, "std": std},
    }
    return _common.save(out_dir, results, {"logistic": _plot(X, y, r)})


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
