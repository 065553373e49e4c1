"""How jaxgd's epoch time grows with n and d, per schedule, and its plot."""

import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.task import jaxgd_runner, make_data

SCHEDULES = (("full batch", None), ("SGD", 1), ("mini-batch 32", 32))


def _point(n, d, schedule, batch, repeats, say) -> dict:
    """Median ms per epoch of `fit` at (n, d), after a call that compiles."""
    X, y = make_data(n, d)
    epochs = max(5, min(200, 2_000_000 // (n * max(1, d // 20))))  # About 2e6 examples a call.
    runner = jaxgd_runner(X, y, batch)
    runner(epochs)
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        runner(epochs, seed=r)
        times.append((time.perf_counter() - start) / epochs)
    ms = 1e3 * statistics.median(times)
    say(
        f"  growth {schedule:13s} n={n:>8} d={d:>5}: {ms:9.3f} ms/epoch "
        f"({1e6 * ms / n:7.1f} ns per example)"
    )
    return dict(
        schedule=schedule,
        n=n,
        d=d,
        epoch_ms=ms,
        epochs_per_call=epochs,
        ns_per_example=1e6 * ms / n,
    )


def growth(sizes: dict, say=print) -> dict:
    """jaxgd's epoch time against n (d = 20) and against d, per schedule, with ns per example,
    and per schedule a line through the times over n (least relative squares)."""
    points = [(n, 20) for n in sizes["growth_n"]]
    points += [(sizes["growth_d_n"], d) for d in sizes["growth_d"] if d != 20]
    rows = [
        _point(n, d, schedule, batch, sizes["growth_repeats"], say)
        for n, d in points
        for schedule, batch in SCHEDULES
    ]
    fits = {}
    for schedule, _ in SCHEDULES:
        pts = [(r["n"], r["epoch_ms"]) for r in rows if r["schedule"] == schedule and r["d"] == 20]
        if len(pts) >= 2:
            ns, ms = np.array(pts, float).T
            slope, intercept = np.polyfit(ns, ms, 1, w=1 / ms)  # Weights 1 / time: relative.
            fits[schedule] = dict(ns_per_example=1e6 * slope, overhead_ms=intercept)
    return dict(rows=rows, linear_fit=fits)


def plot_growth(result: dict, path: Path):
    """Epoch time against n and against d, log-log, one line per schedule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    d_n = max((r["n"] for r in rows if r["d"] != 20), default=None)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (schedule, _), style in zip(SCHEDULES, ("o-", "s-", "^-"), strict=True):
        mine = [r for r in rows if r["schedule"] == schedule]
        by_n = sorted((r["n"], r["epoch_ms"]) for r in mine if r["d"] == 20)
        by_d = sorted((r["d"], r["epoch_ms"]) for r in mine if r["n"] == d_n)
        if by_n:
            axes[0].loglog(*zip(*by_n, strict=True), style, label=schedule)
        if by_d:
            axes[1].loglog(*zip(*by_d, strict=True), style, label=schedule)
    ns = sorted({r["n"] for r in rows if r["d"] == 20})
    sgd = {r["n"]: r["epoch_ms"] for r in rows if r["schedule"] == "SGD" and r["d"] == 20}
    if ns and ns[-1] in sgd:
        axes[0].loglog(ns, [sgd[ns[-1]] * n / ns[-1] for n in ns], "k:", label="linear in n")
    axes[0].set(
        xlabel="n (examples), d = 20", ylabel="ms per epoch", title="jaxgd.fit: epoch time vs n"
    )
    axes[1].set(xlabel=f"d (features), n = {d_n}", ylabel="ms per epoch", title="epoch time vs d")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
