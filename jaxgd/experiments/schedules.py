"""Full-batch GD vs SGD vs mini-batch GD on the same problem, for the same number of epochs.

One update is `w <- w - lr * grad (1/|B|) sum_{i in B} loss(w, x_i, y_i)`; the schedules differ
in the batches B: all n examples (1 update per epoch), one example (n updates per epoch, each
cheap and noisy), or m examples (ceil(n/m) per epoch). The problem is logistic regression on a
banknote-like data set (built-in synthetic 1372 x 4 by default, standardized), all three at the
same learning rate from the same initial parameters and the same shuffling key.

The plot shows the trade-offs the notes describe: per epoch SGD gets furthest (most updates);
per update full batch is best (each step uses all the data) and SGD's batch losses are noisy;
against wall time the mini-batch is the compromise. Wall times are running time only: each run
is compiled and run once, then timed on a second identical call (`_common.timed_fit`).
`jaxgd demo` runs this experiment.
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

DESCRIPTION = "full batch vs SGD vs mini-batch: loss against epochs, updates and wall time"

_ACCURACY = {"accuracy": jaxgd.binary_accuracy(models.logistic_logit, threshold=0.0)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run schedules --help` lists them)."""

    data: str | None = option(None, "a banknote CSV path; None: the built-in synthetic banknote "
                              "set")  # fmt: skip
    n: int = option(1372, "examples of the synthetic set (ignored with `data`)", quick=200)
    epochs: int = option(20, "epochs for every schedule: the same passes over the data",
                         quick=2)  # fmt: skip
    lr: float = option(0.1, "one learning rate for all three schedules")
    batch_size: int = option(32, "the mini-batch schedule's batch size")
    seed: int = option(0, "PRNG seed of the data, the initial params and the shuffling")


def bce_logits_loss(params, x, y):
    """Binary cross-entropy of ONE example, on the logit (the numerically stable form)."""
    return losses.binary_cross_entropy_with_logits(models.logistic_logit(params, x), y)


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Trains the same model with the three schedules and compares them.

    Args:
      out_dir: folder for `results.json` and `loss.png`, or None.
      quick: toy size: each option's quick value (200 examples and 2 epochs), unless given.
      **options: the fields of `Options`.

    Returns:
      A table with one row per schedule (final loss, accuracy, updates, wall time) and the
      curves against epochs, updates and seconds.

    Raises:
      FileNotFoundError, ValueError: `data` cannot be read.
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options) -> tuple[dict, dict]:
    """The results and the figures of one run."""
    data, epochs, lr, batch_size, seed = o.data, o.epochs, o.lr, o.batch_size, o.seed
    if data is None:
        X, y = datasets.synthetic_banknote(seed=seed, n=o.n)
    else:
        X, y = datasets.load_banknote(data)
    X, _, _ = datasets.standardize(X)
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = models.linear_init(key=init_key, in_features=X.shape[1])
    start = float(_mean_loss(params, X, y))  # every curve starts here, at epoch 0
    schedules = {
        "full batch": None,  # 1 update per epoch on all n examples
        "SGD": 1,  # n updates per epoch, one example each
        f"mini-batch {batch_size}": batch_size,  # ceil(n / m) updates per epoch
    }
    rows, curves = [], {}
    for name, size in schedules.items():
        r, seconds = _common.timed_fit(
            bce_logits_loss, params, (X, y), epochs=epochs, optimizer=lr, batch_size=size,
            key=shuffle_key, metrics=_ACCURACY,
        )  # fmt: skip
        per_epoch = r.losses.shape[1]
        rows.append({
            "schedule": name,
            "batch": len(y) if size is None else size,
            "updates/epoch": per_epoch,
            "updates": per_epoch * epochs,
            "final loss": float(r.train_loss[-1]),
            "accuracy": float(r.train_metrics["accuracy"][-1]),
            "wall s": float(seconds[-1]),
        })  # fmt: skip
        curves[name] = {
            "train_loss": r.train_loss,  # (epochs,): mean loss on all data after each epoch
            "batch_losses": r.losses.ravel(),  # (updates,): each batch's loss before its update
            "seconds": seconds,  # (epochs,): wall time at the end of each epoch
            "updates_per_epoch": per_epoch,
        }
    results = {
        "experiment": "schedules",
        "options": {**as_dict(o), "n": len(y)},  # n: the examples trained on
        "table": rows,
        "summary": {
            "data": "built-in synthetic banknote" if data is None else str(data),
            "examples x features": f"{X.shape[0]} x {X.shape[1]}",
            "epochs, lr": f"{epochs}, {lr:g}",
        },
        "curves": curves,
    }
    results["summary"]["initial loss"] = start
    return results, {"loss": _plot(curves, epochs, start)}


@jax.jit
def _mean_loss(params, X, y):
    return jaxgd.batch_loss(bce_logits_loss, params, X, y)


def _plot(curves, epochs, start):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for i, (name, c) in enumerate(curves.items()):
        color, loss = f"C{i}", np.concatenate([[start], np.asarray(c["train_loss"])])
        axes[0].plot(np.arange(epochs + 1), loss, "o-", color=color, label=name, ms=3)
        batch = np.asarray(c["batch_losses"])
        updates = np.arange(1, len(batch) + 1)
        if len(batch) > 2000:  # thin SGD's per-example losses for the picture
            step = len(batch) // 2000
            updates, batch = updates[::step], batch[::step]
        axes[1].plot(updates, batch, color=color, alpha=0.25, lw=0.6)
        ends = np.arange(epochs + 1) * c["updates_per_epoch"]
        axes[1].plot(ends, loss, "o-", color=color, label=name, ms=3)
        seconds = np.concatenate([[0.0], np.asarray(c["seconds"])])
        axes[2].plot(seconds, loss, "o-", color=color, label=name, ms=3)
    axes[0].set(xlabel="epoch", ylabel="training loss (BCE)", title="loss vs epochs",
                ylim=(0, 1.25 * start))  # fmt: skip
    axes[1].set_xscale("symlog", linthresh=1)
    axes[1].set_xlim(left=0)  # updates are never negative
    axes[1].set(xlabel="updates", title="vs updates (faint: batch losses)")
    axes[2].set(xlabel="wall time (s, after compilation)", title="vs wall time")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
