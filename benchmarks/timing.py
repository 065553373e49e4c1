"""Interleaved timings of the cases' implementations, and the check that they all train alike.

Every repeat times each implementation once, in a rotating order, so load that comes and goes
hits them alike; each case's repeats are taken in rounds that visit every case in turn, so a slow
spell of the machine falls on part of every case's samples (see docs/design.md, "Benchmark
harness"). Every implementation also trains once on the same example orders, and their final
losses must agree.
"""

import statistics
import time

import numpy as np

from benchmarks import peers
from benchmarks.cases import IMPLS, LABELS
from benchmarks.task import jaxgd_defaults_runner, jaxgd_runner, make_data, mean_loss

MAKERS = {
    "jaxgd": jaxgd_runner,
    "jaxgd_eval": lambda X, y, batch: jaxgd_runner(X, y, batch, eval_train=True),
    "torch": peers.torch_runner,
    "jax_loop": peers.jax_loop_runner,
    "numpy": peers.numpy_runner,
    "jaxgd_defaults": jaxgd_defaults_runner,
    "sklearn": peers.sklearn_runner,
    "xla_floor": peers.xla_floor_runner,
}
_WHOLE_CALLS = (
    "jaxgd",
    "jaxgd_eval",
    "jaxgd_defaults",
    "numpy",
    "sklearn",
    "xla_floor",
)  # Timed as whole calls of `epochs` epochs.


def summary(seconds) -> dict:
    """Median, min and max in ms of a list of seconds, and how many there were."""
    ms = sorted(1e3 * s for s in seconds)
    return dict(median_ms=statistics.median(ms), min_ms=ms[0], max_ms=ms[-1], samples=len(ms))


def _steps_per_epoch(cfg) -> int:
    return 1 if cfg["batch"] is None else -(-cfg["n"] // cfg["batch"])


def epoch_seconds(name, runner, cfg, seed) -> float:
    """One timed measurement of one epoch, in seconds."""
    if name in _WHOLE_CALLS:
        start = time.perf_counter()
        runner(cfg["epochs"], seed=seed) if name != "numpy" else runner(cfg["epochs"])
        return (time.perf_counter() - start) / cfg["epochs"]
    steps, per_epoch = cfg["steps"], _steps_per_epoch(cfg)
    clock = []
    if steps is None or steps >= per_epoch:
        runner(1, seed=seed, clock=clock)
        return clock[0][0]
    runner(1, seed=seed, steps=steps, clock=clock)
    seconds, taken = clock[0]
    return seconds * per_epoch / taken


def how_timed(name, cfg) -> str:
    """The report's "timed as" cell."""
    per_epoch = _steps_per_epoch(cfg)
    if name in _WHOLE_CALLS:
        extra = ", NumPy data in: copy and checks included" if name.startswith("jaxgd") else ""
        if name == "xla_floor":
            extra = ", data on the device, orders drawn ahead"
        per = "epochs per call" if name != "sklearn" else "epochs (one `partial_fit` each)"
        return f"{cfg['epochs']} {per}{extra}"
    if cfg["steps"] is not None and cfg["steps"] < per_epoch:
        return f"{cfg['steps']} of {per_epoch} steps, scaled"
    return f"1 epoch ({per_epoch} steps)"


def time_case(case, cfg, repeats, say=print, impls=None) -> dict:
    """Interleaved timings of one case: `{impl: summary}` with medians in ms and the spread."""
    return time_cases({case: cfg}, {case: repeats}, blocks=1, say=say, impls=impls)[case]


def _one_round(runners, cases, repeats, block, blocks, seconds):
    """One round: every case in turn warms up (untimed) then takes its share of repeats."""
    for case, cfg in cases.items():
        names = list(runners[case])
        for name, runner in runners[case].items():  # Warm up: compile, first-touch memory.
            epoch_seconds(name, runner, cfg, seed=0)
        share = range(repeats[case] * block // blocks, repeats[case] * (block + 1) // blocks)
        for r in share:
            order = names[r % len(names) :] + names[: r % len(names)]  # Who goes first rotates.
            for name in order:
                runner = runners[case][name]
                seconds[case][name].append(epoch_seconds(name, runner, cfg, seed=r + 1))


def time_cases(cases: dict, repeats: dict, *, blocks: int, say=print, impls=None) -> dict:
    """Interleaved timings of several cases: `{case: {impl: summary}}`, of the implementations
    `impls` (names, or `{case: names}`; default `cases.IMPLS[case]`).

    The repeats of every case are split into `blocks` rounds, and each round visits every case
    in turn, so that each case's samples come from the whole timing section rather than from
    one stretch of it. Each round warms every implementation up again, untimed, since other
    cases ran in between.
    """
    runners, seconds = {}, {}
    for case, cfg in cases.items():
        X, y = make_data(cfg["n"])
        names = impls.get(case, ()) if isinstance(impls, dict) else impls or IMPLS[case]
        runners[case] = {name: MAKERS[name](X, y, cfg["batch"]) for name in names}
        seconds[case] = {name: [] for name in names}
    for block in range(blocks):
        _one_round(runners, cases, repeats, block, blocks, seconds)
    out = {}
    for case, cfg in cases.items():
        out[case] = {}
        for name, samples in seconds[case].items():
            t = out[case][name] = dict(summary(samples), how=how_timed(name, cfg))
            say(
                f"  {case:7s} {LABELS[name]:22s} {t['median_ms']:10.3f} ms/epoch "
                f"[{t['min_ms']:.3f}-{t['max_ms']:.3f}]"
            )
    return out


def check_agreement(case, cfg, impls=None) -> dict:
    """Every implementation trains `check_epochs` epochs on the same orders from zero params:
    `{impl: final mean loss}`, and the largest relative deviation from jaxgd's."""
    X, y = make_data(cfg["n"])
    names = [k for k in impls or IMPLS[case] if k != "jaxgd_eval"]  # The same as jaxgd's.
    rng = np.random.default_rng(123)
    epochs = cfg["check_epochs"]
    orders = np.stack([rng.permutation(cfg["n"]) for _ in range(epochs)])
    losses = {}
    for name in names:
        runner = MAKERS[name](X, y, cfg["batch"])
        w, b = runner(epochs, orders=None if cfg["batch"] is None else orders)
        losses[name] = mean_loss(w, b, X, y)
    ref = losses["jaxgd"]
    worst = max(abs(v - ref) / abs(ref) for v in losses.values())
    start = mean_loss(np.zeros(X.shape[1]), 0.0, X, y)
    return dict(losses=losses, start=start, epochs=epochs, max_rel_diff=worst, ok=worst < 1e-3)
