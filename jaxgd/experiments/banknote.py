"""Deep Learning Fundamentals, unit 3 exercise: logistic regression on banknote authentication.

The exercise reads UCI's banknote file (1372 x 4 wavelet features, label 0/1), splits it
1097 / 275 (`random_split` after `torch.manual_seed(1)`), standardizes the features, and trains
`nn.Linear(4, 1)` + sigmoid with binary cross-entropy, batch size 10, lr 0.5, for 2 epochs:
about 98 % training and validation accuracy. `data=PATH` reads that file
(`data.load_banknote`); the default is the built-in synthetic stand-in
(`data.synthetic_banknote`, same shape and class balance), so it runs without a download.
The split here is a permutation from `seed` (not torch's), standardized with the training
part's mean and std.
"""

import dataclasses

import jax
import numpy as np

from jaxgd import data as datasets
from jaxgd import models
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder
from jaxgd.experiments.logistic import _ACCURACY, bce_loss  # lecture 3.6's model and loss

DESCRIPTION = "unit 3 exercise: banknote logistic regression, 1097/275 split, about 98 % accuracy"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run banknote --help` lists them)."""

    data: str | None = option(None, "path of the banknote CSV (headerless: 4 features, a 0/1 "
                              "label); None: the built-in synthetic set")  # fmt: skip
    train_size: int = option(1097, "examples in the training part; the rest validate (275 of "
                             "1372)")  # fmt: skip
    epochs: int = option(2, "passes over the training part, as the exercise", quick=1)
    batch_size: int = option(10, "examples per update, as the exercise's DataLoader")
    lr: float = option(0.5, "learning rate of plain SGD, as the exercise")
    seed: int = option(1, "PRNG seed of the split, the initial params and the shuffling")


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Trains logistic regression on the banknote data and reports train and validation accuracy.

    Args:
      out_dir: folder for `results.json` and `banknote.png`, or None.
      quick: toy size: each option's quick value (1 epoch), unless given.
      **options: the fields of `Options`.

    Returns:
      Final training loss, training and validation accuracy, per-epoch curves and the
      per-update losses.

    Raises:
      FileNotFoundError, ValueError: `data` cannot be read, or `train_size` does not split it.
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _split_sizes(o: Options, n: int) -> None:
    """Refuses a `train_size` that leaves no training or no validation example."""
    where = "the built-in set" if o.data is None else f"{o.data!r}"
    if n < 2:
        raise ValueError(f"the banknote data ({where}) has {n} example; the split needs at least "
                         "2, one to train and one to validate.")  # fmt: skip
    if not 0 < o.train_size < n:
        raise ValueError(
            f"`train_size` must be between 1 and {n - 1} for {n} examples, got "
            f"{o.train_size}; the rest of the examples validate."
        )


def _run(o: Options) -> tuple[dict, dict]:
    """The results and the figures of one run."""
    data, train_size = o.data, o.train_size
    X, y = datasets.synthetic_banknote() if data is None else datasets.load_banknote(data)
    _split_sizes(o, len(y))
    split_key, init_key, shuffle_key = jax.random.split(jax.random.key(o.seed), 3)
    order = np.asarray(jax.random.permutation(split_key, len(y)))
    train, val = order[:train_size], order[train_size:]
    X_train, mean, std = datasets.standardize(X[train])  # the training part's statistics
    X_val, _, _ = datasets.standardize(X[val], mean=mean, std=std)
    params = models.linear_init(key=init_key, in_features=X.shape[1])
    r = _common.fit(bce_loss, params, (X_train, y[train]), epochs=o.epochs, optimizer=o.lr,
                    batch_size=o.batch_size, key=shuffle_key, val_data=(X_val, y[val]),
                    metrics=_ACCURACY, label="banknote")  # fmt: skip
    summary = {
        "data": "built-in synthetic banknote" if data is None else str(data),
        "train / validation": f"{train_size} / {len(y) - train_size}",
        "updates": int(r.losses.size),
        "final train loss": r.train_loss[-1],
        "train accuracy": r.train_metrics["accuracy"][-1],
        "validation accuracy": r.val_metrics["accuracy"][-1],
    }
    results = {
        "experiment": "banknote",
        "options": as_dict(o),
        "summary": summary,
        "train_accuracy": r.train_metrics["accuracy"][-1],
        "val_accuracy": r.val_metrics["accuracy"][-1],
        "batch_losses": r.losses,
        "params": r.params,
        "standardization": {"mean": mean, "std": std},
    }
    return results, {"banknote": _plot(r)}


def _plot(r):
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    losses_ = np.asarray(r.losses).ravel()
    per_epoch = r.losses.shape[1]
    ax.plot(np.arange(1, len(losses_) + 1), losses_, alpha=0.5, lw=0.8, label="batch loss")
    window = min(20, len(losses_))
    smooth = np.convolve(losses_, np.ones(window) / window, mode="valid")
    ax.plot(np.arange(window, len(losses_) + 1), smooth, label=f"mean of {window}")
    for e in range(1, r.losses.shape[0]):
        ax.axvline(e * per_epoch, color="gray", ls=":", lw=0.8)
    train_acc = float(r.train_metrics["accuracy"][-1])
    val_acc = float(r.val_metrics["accuracy"][-1])
    ax.set(xlabel="update", ylabel="BCE", yscale="log",
           title=f"banknote: train acc {train_acc:.3f}, validation acc {val_acc:.3f}")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
