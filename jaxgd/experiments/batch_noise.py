"""Gradient noise of mini-batches, measured with per-example gradients.

The notes say that a mini-batch gradient is an unbiased estimate of the full gradient and that
its noise falls as the batch grows. With the per-example gradients g_i of logistic regression on
the banknotes (`jax.vmap(jax.grad(loss))`), full gradient G = (1/n) sum_i g_i and their spread
sigma^2 = (1/n) sum_i ||g_i - G||^2, a batch B of m examples drawn WITHOUT replacement gives

    E[g_B] = G,        E||g_B - G||^2 = sigma^2 / m * (n - m) / (n - 1),

the 1/m law of sampling with replacement times the finite-population factor (n - m) / (n - 1):
the noise vanishes at m = n, where the batch is the data set. This experiment draws many batches
of every size 1, 2, 4, ..., n and compares their mean and spread with these formulas, at the
initial parameters and at the parameters after full-batch training (where G is nearly 0 but the
noise is not: why SGD jitters around the minimum).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.data import load_banknote, standardize, synthetic_banknote
from jaxgd.experiments import _common
from jaxgd.experiments._options import as_dict, option, resolve
from jaxgd.experiments._output import results_folder

DESCRIPTION = "mini-batch gradient noise: unbiased mean, variance sigma^2/m (n-m)/(n-1), measured"

TRAIN_EPOCHS = 100  # full-batch GD epochs before the "trained" measurement
TRAIN_LR = 0.5  # their learning rate (standardized features: the loss's curvature is < 1)
CHUNK = 250  # batches whose running sums are held in memory at once (memory, not results)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The experiment's options (`jaxgd run batch_noise --help` lists them)."""

    path: str | None = option(None, "the real UCI banknote file; None: synthetic_banknote")
    seed: int = option(0, "seeds the synthetic data and the sampled batches")
    samples: int = option(4000, "batches drawn per batch size, without replacement",
                          quick=1000)  # fmt: skip


def example_loss(params, x, y):
    """Binary cross-entropy on the logit `x @ w + b`, for ONE banknote (log(1 + e^z) - y z)."""
    z = x @ params["w"] + params["b"]
    return jnp.logaddexp(0.0, z) - y * z


def batch_sizes(n: int) -> list[int]:
    """1, 2, 4, ... below n, then n itself."""
    return [2**k for k in range(n.bit_length()) if 2**k < n] + [n]


def per_example_grads(params, X, y) -> np.ndarray:
    """g_i for every example, flattened: shape (n, number of parameters), float64."""
    grads = jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, X, y)
    leaves = [np.asarray(g, np.float64).reshape(len(X), -1) for g in jax.tree.leaves(grads)]
    return np.concatenate(leaves, axis=1)


def measure(g: np.ndarray, orders: np.ndarray, sizes: list[int]) -> dict:
    """Mean and spread of the batch gradients of every size in `sizes` against the formulas.

    Batch s of size m is `orders[s, :m]`: the first m examples of a uniform random permutation,
    a uniform sample of m distinct examples (the sizes share permutations; each size's
    estimates are unbiased).
    """
    n, S = g.shape[0], orders.shape[0]
    full = g.mean(axis=0)  # G
    sigma2 = float(np.mean(np.sum((g - full) ** 2, axis=1)))
    means = np.empty((S, len(sizes), g.shape[1]))
    for start in range(0, S, CHUNK):  # Running sums of each permutation give every size at once.
        sums = np.cumsum(g[orders[start : start + CHUNK]], axis=1)
        means[start : start + CHUNK] = sums[:, np.array(sizes) - 1] / np.array(sizes)[:, None]
    table = []
    for j, m in enumerate(sizes):
        sq = np.sum((means[:, j] - full) ** 2, axis=1)  # ||g_B - G||^2 of every batch
        theory = sigma2 / m * (n - m) / (n - 1)
        empirical, se = float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(S))  # and its s.e.
        table.append(
            {
                "m": m,
                "fpc": (n - m) / (n - 1),  # finite-population factor
                "var_theory": theory,
                "var_measured": empirical,
                "var_with_replacement": sigma2 / m,
                "rel_error": (empirical - theory) / theory if m < n else None,
                "z": (empirical - theory) / se if m < n else None,  # in standard errors
                # ||mean over the S batches - G||, and its expected size sqrt(var / S).
                "mean_error": float(np.linalg.norm(means[:, j].mean(axis=0) - full)),
                "mean_error_expected": float(np.sqrt(theory / S)),
            }
        )
    return {"full_grad_norm": float(np.linalg.norm(full)), "sigma2": sigma2, "rows": table}


def run(*, out_dir=None, quick: bool = False, **options) -> dict:
    """Measures the noise at the initial and the trained parameters; see the module doc.

    Args:
      out_dir: where to write `results.json` and `batch_noise.png` (None: nothing written).
      quick: toy size: each option's quick value (1000 batches per size), unless given.
      **options: the fields of `Options`.

    Returns:
      A JSON-ready dict: `table`, one row per point ("init", "trained") and batch size m with
      the variance in theory and measured, their relative error and z-score (in standard
      errors of the measurement), and the error of the batches' mean against its expected size;
      `points` with sigma^2 and |G| at each point; `summary` with the largest |z| and relative
      error over all m < n; `options`.
    """
    o = resolve(Options, options, quick=quick)
    with results_folder(out_dir) as folder:
        return folder.save(*_run(o))


def _run(o: Options):
    """The results, and a function that makes the figures."""
    path, seed, samples = o.path, o.seed, o.samples
    X, y = load_banknote(path) if path is not None else synthetic_banknote(seed=seed)
    X, _, _ = standardize(X)
    n = X.shape[0]
    init = {"w": jnp.zeros(X.shape[1]), "b": jnp.zeros(())}
    trained = _common.fit(
        example_loss, init, (X, y), epochs=TRAIN_EPOCHS, optimizer=TRAIN_LR, eval_train=False,
        label="batch_noise: full-batch training",
    ).params  # fmt: skip
    keys = jax.random.split(jax.random.key(seed), samples)
    orders = np.asarray(jax.vmap(lambda k: jax.random.permutation(k, n))(keys))
    sizes = batch_sizes(n)
    points = {
        name: measure(per_example_grads(params, X, y), orders, sizes)
        for name, params in (("init", init), ("trained", trained))
    }
    table = [{"params": name, **row} for name, p in points.items() for row in p.pop("rows")]
    below_n = [row for row in table if row["m"] < n]
    summary = {
        "data": str(path) if path is not None else "synthetic_banknote (not the real file)",
        "n": n,
        "parameters": int(sum(np.size(a) for a in jax.tree.leaves(init))),
        "batches per size": samples,
        "max |z|": max(abs(row["z"]) for row in below_n),
        "max |rel error|": max(abs(row["rel_error"]) for row in below_n),
        "max var at m = n": max(row["var_measured"] for row in table if row["m"] == n),
    }
    results = {"summary": summary, "table": table, "points": points, "batch_sizes": sizes,
               "options": as_dict(o)}  # fmt: skip
    return results, lambda: {"batch_noise": _plot(results)}


def _plot(results):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    n, samples = results["summary"]["n"], results["summary"]["batches per size"]
    for ax, (name, point) in zip(axes, results["points"].items(), strict=True):
        rows = [r for r in results["table"] if r["params"] == name]
        shown = [r for r in rows if r["m"] < n]  # var = 0 at m = n: off a log axis
        m = np.array([r["m"] for r in shown])
        fine = np.unique(np.geomspace(1, n - 1, 200).round().astype(int))
        sigma2 = point["sigma2"]
        ax.plot(fine, sigma2 / fine, "--", color="0.5", label=r"$\sigma^2/m$ (with replacement)")
        ax.plot(fine, sigma2 / fine * (n - fine) / (n - 1), color="C0",
                label=r"$\sigma^2/m \cdot (n-m)/(n-1)$")  # fmt: skip
        ax.plot(m, [r["var_measured"] for r in shown], "o", color="C1",
                label=f"measured ({samples} batches each)")  # fmt: skip
        at_n = rows[-1]["var_measured"]
        ax.text(0.03, 0.05, f"m = n: measured {at_n:.1e}, theory 0", transform=ax.transAxes)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size m")
        ax.set_ylabel(r"$E\,\|g_B - G\|^2$")
        ax.set_title(f"{name} params: |G| = {point['full_grad_norm']:.3g}, n = {n}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
