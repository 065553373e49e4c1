"""The learning-rate finder on fastbook's 3s against 7s, its spread over seeds, and a check.

fastbook chapter 5 picks a learning rate with `learn.lr_find()`. Here `jaxgd.lr_find` runs the
same range test for logistic regression on `digits_3_vs_7` (scikit-learn's 8x8 digits: MNIST
cannot be downloaded here), once per seed under one `vmap`, and plots the smoothed loss against
the learning rate (log axis) with fastai's four suggestions marked ("valley", fastai's default, is
`.suggestion`). A `jaxgd.sweep` over a grid of learning rates then trains each for a few epochs:
it shows where each suggestion sits against the learning rates that train best.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.data import digits_3_vs_7
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder
from jaxgd.lr_finder import RULES, lr_find
from jaxgd.sweeps import sweep

DESCRIPTION = (
    "lr_find on digits 3 vs 7: the range-test curve, its suggestions, their spread over seeds"
)

MIN_LR = 1e-7  # first learning rate of the range test (fastai's default)
MAX_LR = 10.0  # last one (fastai's default)
SMOOTHING = 0.98  # beta of the loss's moving average (fastai's default)
DIVERGE_FACTOR = 4.0  # stop when the smoothed loss exceeds 4x its minimum (fastai's default)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run lr_find --help` lists them)."""

    seed: int = option(0, "splits the digits and seeds the range tests' shuffles")
    seeds: int = option(8, "range tests run at once (one shuffle each): the run-to-run spread",
                        quick=3)  # fmt: skip
    batch_size: int = option(32, "mini-batch size of the range test and of the check (289 "
                             "training images: 9 full batches per epoch)")  # fmt: skip
    num_steps: int = option(100, "most steps of the range test (fastai's default)")
    check_points: int = option(16, "learning rates of the checking sweep, from 1e-3 to 30",
                               quick=6)  # fmt: skip
    check_epochs: int = option(5, "epochs each of them trains", quick=2)


def example_loss(params, x, y):
    """Binary cross-entropy on the logit `x @ w + b`, for ONE image (log(1 + e^z) - y z)."""
    z = x @ params["w"] + params["b"]
    return jnp.logaddexp(0.0, z) - y * z


def accuracy(params, x, y):
    return ((x @ params["w"] + params["b"] > 0) == (y > 0.5)).astype(jnp.float32)


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Runs the range test over `seeds` shuffles and the checking sweep; see the module doc.

    Args:
      out_dir: folder for `results.json` and `lr_find.png`, or None.
      quick: toy size: each option's quick value (3 seeds and a check of 6 learning rates for 2
        epochs), unless given.
      **options: the fields of `Options`.

    Returns:
      A JSON-ready dict: `table` (each seed's steps and suggestions), seed 0's `curve`,
      `suggestion` (rule "valley") and `suggestions`, the `spread` of each rule over the seeds,
      the `check` sweep's final training loss and test accuracy per learning rate, a `summary`
      and the `options`.
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options):
    """The results, and a function that makes the figures."""
    seed, seeds, batch_size, num_steps = o.seed, o.seeds, o.batch_size, o.num_steps
    check_lrs, check_epochs = np.geomspace(1e-3, 30.0, o.check_points), o.check_epochs
    X, y, X_test, y_test = digits_3_vs_7(seed=seed)
    params = {"w": jnp.zeros(X.shape[1]), "b": jnp.zeros(())}  # logistic regression, from 0
    keys = jax.random.split(jax.random.key(seed), seeds)
    tests = lr_find(
        example_loss, params, (X, y), batch_size=batch_size, min_lr=MIN_LR, max_lr=MAX_LR,
        num_steps=num_steps, smoothing=SMOOTHING, diverge_factor=DIVERGE_FACTOR, keys=keys,
    )  # fmt: skip
    first = tests[0]
    check = sweep(
        example_loss, params, (X, y), epochs=check_epochs, learning_rates=check_lrs,
        batch_size=batch_size, key=jax.random.key(seed), val_data=(X_test, y_test),
        metrics={"accuracy": accuracy},
    )  # fmt: skip
    spread = {}
    for rule in RULES:
        values = np.array([t.suggestions[rule] for t in tests])
        spread[rule] = {
            "values": values,
            "min": float(np.min(values)),
            "median": float(np.median(values)),
            "max": float(np.max(values)),
            "max/min": float(np.max(values) / np.min(values)),
        }
    check_loss = np.asarray(check.train_loss[:, -1])
    summary = {
        "data": f"digits_3_vs_7 (scikit-learn 8x8 digits), {X.shape[0]} training images",
        "rule": first.rule,
        "suggestion (seed 0)": first.suggestion,
        **{
            f"{rule} {end} over seeds": spread[rule][end]
            for rule in RULES
            for end in ("min", "max")
        },
        "check: best learning rate": float(check_lrs[int(np.nanargmin(check_loss))]),
    }
    table = [
        {"seed": k, "steps": len(t.learning_rates), "diverged": t.diverged, **t.suggestions}
        for k, t in enumerate(tests)
    ]
    results = {
        "options": as_dict(o),
        "summary": summary,
        "table": table,
        "rule": first.rule,
        "suggestion": first.suggestion,
        "suggestions": first.suggestions,
        "curve": {
            "learning_rates": first.learning_rates,
            "losses": first.losses,
            "raw_losses": first.raw_losses,
        },
        "spread": spread,
        "check": {
            "epochs": check_epochs,
            "learning_rates": check_lrs,
            "train_loss": check_loss,
            "test_accuracy": check.val_metrics["accuracy"][:, -1],
            "diverged": check.diverged,
        },
    }
    return results, lambda: {"lr_find": _plot(tests, results)}


def _plot(tests, results):
    plt = _common.pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for k, t in enumerate(tests[1:], start=1):
        ax.plot(
            t.learning_rates, t.losses, color="0.75", lw=1, label="other seeds" if k == 1 else None
        )
    first = tests[0]
    ax.plot(first.learning_rates, first.losses, color="C0", lw=2, label="seed 0 (smoothed)")
    for rule, marker in zip(RULES, "ovsD", strict=True):
        lr = first.suggestions[rule]
        loss = np.interp(np.log(lr), np.log(first.learning_rates), first.losses)
        size = 11 if rule == first.rule else 7
        ax.plot(
            lr,
            loss,
            marker,
            ms=size,
            label=f"{rule}: {lr:.3g}" + (" (suggestion)" if rule == first.rule else ""),
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.set_title(f"range test, {len(tests)} seeds")
    ax.legend(fontsize=8)

    check = results["check"]
    spread = results["spread"][first.rule]
    ax2.plot(check["learning_rates"], check["train_loss"], "o-", label="training loss")
    ax2.axvspan(spread["min"], spread["max"], color="C1", alpha=0.25,
                label=f"{first.rule} over seeds")  # fmt: skip
    ax2.axvline(first.suggestion, color="C1")
    ax2.set_xscale("log")
    ax2.set_xlabel("learning rate")
    ax2.set_ylabel("training loss after the check")
    ax2.set_title(f"check: {check['epochs']} epochs of mini-batch GD per learning rate")
    acc = ax2.twinx()
    acc.plot(check["learning_rates"], check["test_accuracy"], "s--", color="C2")
    acc.set_ylabel("test accuracy (squares)")
    ax2.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return fig
