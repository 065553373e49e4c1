"""Benchmarks (issue 5): `jaxgd.fit` against the training loops people write by hand.

One run times, side by side, one epoch of logistic regression (float32, d = 20) by

* jaxgd: `jaxgd.fit` on NumPy arrays, `eval_train=False` (the others do not evaluate either);
* PyTorch: an idiomatic eager loop, `torch.randperm` batches of `X[idx]`, `nn.Linear`,
  `BCEWithLogitsLoss`, `torch.optim.SGD` (default `torch.get_num_threads()`);
* JAX loop: a jitted step with `optax.sgd`, called from a Python loop on NumPy batches;
* NumPy (full batch): `z = X @ w + b`, then `X.T @ (sigmoid(z) - y) / n`.

The implementations run interleaved (every repeat times each one once, in a rotating order), so
load that comes and goes hits them alike, and each case's repeats are taken in rounds that visit
every case in turn (`time_cases`), so that a slow spell of the machine is shared among the cases.
The report gives medians with their spread (min-max) and the ratios of medians that issue 5 sets
goals for. Every implementation also trains once on the same example orders, and their final
losses must agree. Besides: the compile time of a first
`fit` (fresh process), recompilations when only the learning rate, key or data values change,
peak memory of a shuffled mini-batch run at n = 10^6 (fresh process), `import jaxgd` against
`import jax, optax` (fresh processes), and how epoch time grows with n and d per schedule.

    python -m jaxgd.bench                # full run (~5-10 min on 2 cores): BENCHMARKS.md + plot
    jaxgd bench --quick                  # fewer repeats, a smaller growth sweep
    jaxgd bench --smoke --out /tmp/b     # tiny sizes: checks that the harness works

`run(**options) -> dict` is the same run as a function (the CLI's `jaxgd bench` calls `main`).
The XLA:CPU option `--xla-small-while-loop-bytes N` is an explicit opt-in: jaxgd never sets it,
and the harness only sets it in a separate process, reporting those figures next to the default.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from jaxgd import _host, _shuffle, loop
from jaxgd.bench_report import _LABELS, key_ratios, plot_growth, report

__all__ = ["run", "main", "GOALS"]

LR = 0.1  # Learning rate of every implementation.

# Issue 5's goals: (name, case, numerator, denominator, kind, bound). "min": ratio >= bound.
GOALS = [
    ("SGD batch 1, n=1e4, reshuffled: PyTorch / jaxgd", "sgd", "torch", "jaxgd", "min", 500),
    ("same: JAX jit-per-step loop / jaxgd", "sgd", "jax_loop", "jaxgd", "min", 50),
    ("mini-batch 32, n=1e4 (ragged last batch): PyTorch / jaxgd", "mb32", "torch", "jaxgd", "min", 50),
    ("same: JAX jit-per-step loop / jaxgd", "mb32", "jax_loop", "jaxgd", "min", 8),
    ("full batch, n=1e6 (80 MB): jaxgd / NumPy", "full", "jaxgd", "numpy", "max", 1.0),
    ("mini-batch 1024, n=1e6: PyTorch / jaxgd", "mb1024", "torch", "jaxgd", "min", 8),
    ("64 learning rates by sweep / one fit (issue 6; n=1e4, batch 32, reshuffled)", "sweep", "sweep", "fit", "max", 8),
]  # fmt: skip

# Sizes. Per case: n, batch size, jaxgd epochs per fit call, steps a slow loop times (then
# scaled to one epoch), epochs of the agreement run.
_SIZES = {
    "full": dict(
        cases={
            "sgd": dict(n=10_000, batch=1, epochs=20, steps=2_000, check_epochs=1),
            "mb32": dict(n=10_000, batch=32, epochs=50, steps=None, check_epochs=2),
            "full": dict(n=1_000_000, batch=None, epochs=20, steps=None, check_epochs=10),
            # More repeats: the ratio sits near its goal and both loops vary most here.
            "mb1024": dict(
                n=1_000_000, batch=1024, epochs=4, steps=None, check_epochs=1, repeats=15
            ),  # fmt: skip
        },
        repeats=7,
        blocks=3,  # Each case's repeats in 3 rounds spread over the timing section (time_cases).
        growth_n=(1_000, 10_000, 100_000, 1_000_000),
        growth_d=(2, 20, 100, 1000),
        growth_d_n=10_000,
        growth_repeats=3,
        import_repeats=5,
        memory_n=1_000_000,
        # Issue 6: `members` learning rates by one `sweep` against one `fit`, `epochs` per call.
        sweep=dict(n=10_000, batch=32, epochs=5, members=64, repeats=21),
    ),
    "quick": dict(
        cases={
            "sgd": dict(n=10_000, batch=1, epochs=10, steps=1_000, check_epochs=1),
            "mb32": dict(n=10_000, batch=32, epochs=20, steps=None, check_epochs=1),
            "full": dict(n=1_000_000, batch=None, epochs=10, steps=None, check_epochs=5),
            "mb1024": dict(n=1_000_000, batch=1024, epochs=2, steps=300, check_epochs=1),
        },
        repeats=3,
        blocks=3,
        growth_n=(1_000, 100_000, 1_000_000),
        growth_d=(2, 100, 1000),
        growth_d_n=10_000,
        growth_repeats=2,
        import_repeats=3,
        memory_n=1_000_000,
        sweep=dict(n=10_000, batch=32, epochs=5, members=64, repeats=11),
    ),
    "smoke": dict(
        cases={
            "sgd": dict(n=200, batch=1, epochs=3, steps=50, check_epochs=1),
            "mb32": dict(n=200, batch=32, epochs=3, steps=None, check_epochs=2),
            "full": dict(n=2_000, batch=None, epochs=3, steps=None, check_epochs=5),
            "mb1024": dict(n=2_000, batch=1024, epochs=2, steps=None, check_epochs=2),
        },
        repeats=2,
        blocks=1,
        growth_n=(100, 400),
        growth_d=(2, 8),
        growth_d_n=200,
        growth_repeats=1,
        import_repeats=1,
        memory_n=2_000,
        sweep=dict(n=200, batch=32, epochs=2, members=4, repeats=2),
    ),
}
_IMPLS = {"sgd": ("jaxgd", "torch", "jax_loop"), "mb32": ("jaxgd", "torch", "jax_loop"),
          "full": ("jaxgd", "numpy", "torch", "jax_loop", "jaxgd_eval"),
          "mb1024": ("jaxgd", "torch", "jax_loop")}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The task: logistic regression, written once per framework.


def example_loss(params, x, y):
    """Binary cross-entropy on the logit of ONE example (what `BCEWithLogitsLoss` computes)."""
    z = x @ params["w"] + params["b"]
    return jnp.logaddexp(0.0, z) - y * z


def make_data(n: int, d: int = 20, seed: int = 0):
    """`(X, y)`: float32 NumPy arrays, X (n, d) standard normal, y (n,) in {0, 1} from a noisy
    logistic model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    w = (rng.standard_normal(d) / math.sqrt(d)).astype(np.float32)
    y = (X @ w + 0.5 * rng.standard_normal(n, dtype=np.float32) > 0).astype(np.float32)
    return X, y


def mean_loss(w, b, X, y) -> float:
    """The mean training loss at `(w, b)`, in float64 NumPy: the referee of the agreement check."""
    z = X.astype(np.float64) @ np.asarray(w, np.float64) + float(b)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def _zeros(d):
    return {"w": jnp.zeros(d, jnp.float32), "b": jnp.zeros((), jnp.float32)}


def _jaxgd(X, y, batch, eval_train=False):
    """`run(epochs, orders=None, seed=0) -> (w, b)` with `jaxgd.fit`, blocked until done."""
    d = X.shape[1]

    def run(epochs, orders=None, seed=0):
        shuffle = dict(orders=orders) if orders is not None else dict(key=jax.random.key(seed))
        if batch is None:
            shuffle = {}
        r = jaxgd.fit(example_loss, _zeros(d), (X, y), epochs=epochs, optimizer=LR,
                      batch_size=batch, eval_train=eval_train, **shuffle)  # fmt: skip
        jax.block_until_ready(r.params)
        return np.asarray(r.params["w"]), float(r.params["b"])

    return run


def _torch(X, y, batch):
    """`run(epochs, orders=None, seed=0, steps=None)`: the idiomatic PyTorch eager loop."""
    import torch

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, d = X.shape

    def run(epochs, orders=None, seed=0, steps=None, clock=None):
        model = torch.nn.Linear(d, 1)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(seed)
        m = n if batch is None else batch
        for epoch in range(epochs):
            start = time.perf_counter()
            perm = (
                torch.randperm(n, generator=gen)
                if orders is None
                else torch.from_numpy(orders[epoch])
            )
            taken = 0
            for s in range(0, n, m):
                if steps is not None and taken == steps:
                    break
                if batch is None:
                    xb, yb = Xt, yt
                else:
                    idx = perm[s : s + m]
                    xb, yb = Xt[idx], yt[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb).squeeze(-1), yb)
                loss.backward()
                opt.step()
                taken += 1
            if clock is not None:
                clock.append((time.perf_counter() - start, taken))
        return model.weight.detach().numpy()[0].copy(), float(model.bias.detach()[0])

    return run


def _jax_loop(X, y, batch):
    """`run(...)`: a jitted step (value_and_grad + optax.sgd) called per batch from Python, on
    batches indexed from the NumPy arrays (a data loader's way); full batch stays on the device."""
    n, d = X.shape
    tx = optax.sgd(LR)

    @jax.jit
    def step(params, opt_state, xb, yb):
        batch_mean = lambda p: jnp.mean(jax.vmap(example_loss, (None, 0, 0))(p, xb, yb))
        loss, grads = jax.value_and_grad(batch_mean)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    whole = (jnp.asarray(X), jnp.asarray(y)) if batch is None else None  # on the device once

    def run(epochs, orders=None, seed=0, steps=None, clock=None):
        params = _zeros(d)
        opt_state = tx.init(params)
        rng = np.random.default_rng(seed)
        m = n if batch is None else batch
        for epoch in range(epochs):
            start = time.perf_counter()
            perm = rng.permutation(n) if orders is None else orders[epoch]
            taken = 0
            for s in range(0, n, m):
                if steps is not None and taken == steps:
                    break
                if batch is None:
                    xb, yb = whole
                else:
                    idx = perm[s : s + m]
                    xb, yb = X[idx], y[idx]
                params, opt_state, loss = step(params, opt_state, xb, yb)
                taken += 1
            jax.block_until_ready(params)
            if clock is not None:
                clock.append((time.perf_counter() - start, taken))
        return np.asarray(params["w"]), float(params["b"])

    return run


def _numpy(X, y, batch):
    """`run(epochs, ...)`: full-batch gradient descent in float32 NumPy."""
    n, d = X.shape

    def run(epochs, orders=None, seed=0):
        w, b = np.zeros(d, np.float32), np.float32(0.0)
        with np.errstate(over="ignore"):
            for _ in range(epochs):
                z = X @ w + b
                r = (1 / (1 + np.exp(-z)) - y) / np.float32(n)  # dL/dz of the mean loss
                w = w - np.float32(LR) * (X.T @ r)
                b = b - np.float32(LR) * r.sum()
        return w, float(b)

    return run


_MAKERS = {"jaxgd": _jaxgd, "torch": _torch, "jax_loop": _jax_loop, "numpy": _numpy,
           "jaxgd_eval": lambda X, y, batch: _jaxgd(X, y, batch, eval_train=True)}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Timing.


def _epoch_seconds(name, runner, cfg, seed):
    """One timed measurement of one epoch, in seconds, and how it was timed."""
    steps_per_epoch = 1 if cfg["batch"] is None else -(-cfg["n"] // cfg["batch"])
    if name in ("jaxgd", "jaxgd_eval"):
        start = time.perf_counter()
        runner(cfg["epochs"], seed=seed)
        return (time.perf_counter() - start) / cfg["epochs"]
    if name == "numpy":
        start = time.perf_counter()
        runner(cfg["epochs"])
        return (time.perf_counter() - start) / cfg["epochs"]
    steps = cfg["steps"]
    if steps is None or steps >= steps_per_epoch:
        clock = []
        runner(1, seed=seed, clock=clock)
        return clock[0][0]
    clock = []
    runner(1, seed=seed, steps=steps, clock=clock)
    seconds, taken = clock[0]
    return seconds * steps_per_epoch / taken


def _how_timed(name, cfg):
    steps_per_epoch = 1 if cfg["batch"] is None else -(-cfg["n"] // cfg["batch"])
    if name in ("jaxgd", "jaxgd_eval", "numpy"):
        extra = ", NumPy data in: copy and checks included" if name != "numpy" else ""
        return f"{cfg['epochs']} epochs per call{extra}"
    if cfg["steps"] is not None and cfg["steps"] < steps_per_epoch:
        return f"{cfg['steps']} of {steps_per_epoch} steps, scaled"
    return f"1 epoch ({steps_per_epoch} steps)"


def _summary(seconds):
    ms = sorted(1e3 * s for s in seconds)
    return dict(median_ms=statistics.median(ms), min_ms=ms[0], max_ms=ms[-1], samples=len(ms))


def time_case(case, cfg, repeats, say=print, impls=None):
    """Interleaved timings of one case: `{impl: summary}` with medians in ms and the spread."""
    return time_cases({case: cfg}, {case: repeats}, blocks=1, say=say, impls=impls)[case]


def time_cases(cases: dict, repeats: dict, *, blocks: int, say=print, impls=None) -> dict:
    """Interleaved timings of several cases: `{case: {impl: summary}}`.

    The repeats of every case are split into `blocks` rounds, and each round visits every case
    in turn, so that each case's samples come from the whole timing section rather than from
    one stretch of it: a slow spell of the machine then falls on part of every case's samples
    instead of on all of one's. (Here memory-bound XLA runs were at times 20-47% slower, for
    the first ten seconds of a process or for a whole run, while PyTorch's loop was not; the
    rounds help with the first kind only.) Each round warms every implementation up again,
    untimed, since other cases ran in between.
    """
    runners, seconds = {}, {}
    for case, cfg in cases.items():
        X, y = make_data(cfg["n"])
        names = impls or _IMPLS[case]
        runners[case] = {name: _MAKERS[name](X, y, cfg["batch"]) for name in names}
        seconds[case] = {name: [] for name in names}
    for block in range(blocks):
        for case, cfg in cases.items():
            names = list(runners[case])
            for name, runner in runners[case].items():  # warm up: compile, first-touch memory
                _epoch_seconds(name, runner, cfg, seed=0)
            share = range(repeats[case] * block // blocks, repeats[case] * (block + 1) // blocks)
            for r in share:
                order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
                for name in order:
                    runner = runners[case][name]
                    seconds[case][name].append(_epoch_seconds(name, runner, cfg, seed=r + 1))
    out = {}
    for case, cfg in cases.items():
        out[case] = {}
        for name, samples in seconds[case].items():
            t = out[case][name] = dict(_summary(samples), how=_how_timed(name, cfg))
            say(f"  {case:7s} {_LABELS[name]:22s} {t['median_ms']:10.3f} ms/epoch "
                f"[{t['min_ms']:.3f}-{t['max_ms']:.3f}]")  # fmt: skip
    return out


def check_agreement(case, cfg, impls=None):
    """Every implementation trains `check_epochs` epochs on the same orders from zero params:
    `{impl: final mean loss}`, and the largest relative deviation from jaxgd's."""
    X, y = make_data(cfg["n"])
    names = [k for k in impls or _IMPLS[case] if k != "jaxgd_eval"]  # the same as jaxgd's
    rng = np.random.default_rng(123)
    epochs = cfg["check_epochs"]
    orders = np.stack([rng.permutation(cfg["n"]) for _ in range(epochs)])
    losses = {}
    for name in names:
        runner = _MAKERS[name](X, y, cfg["batch"])
        w, b = runner(epochs, orders=None if cfg["batch"] is None else orders)
        losses[name] = mean_loss(w, b, X, y)
    ref = losses["jaxgd"]
    worst = max(abs(v - ref) / abs(ref) for v in losses.values())
    start = mean_loss(np.zeros(X.shape[1]), 0.0, X, y)
    return dict(losses=losses, start=start, epochs=epochs, max_rel_diff=worst, ok=worst < 1e-3)


# ---------------------------------------------------------------------------------------------
# Where a shuffled mini-batch epoch goes.


def anatomy(cfg: dict, repeats: int, say=print) -> dict:
    """Epoch times behind the mini-batch 1024 row, medians in ms of interleaved repeats:

    * `fit_shuffled`, `fit_in_order`: `jaxgd.fit` on data already on the device (no copy; its
      checks of the data run there), reshuffled every epoch or in data order;
    * `gather_shuffled`, `gather_in_order`: a bare `lax.scan` that only takes the epoch's
      batches of rows out of X (and sums them, so the gather is not optimised away), in the
      epoch's shuffled order or in data order;
    * `permutation`: drawing the epoch's order (`_shuffle.permutation`).
    """
    n, m, epochs = cfg["n"], cfg["batch"], cfg["epochs"]
    X, y = make_data(n)
    data = tuple(jax.device_put(_host.aligned_copy(a)) for a in (X, y))
    steps = n // m

    def fit(key):
        r = jaxgd.fit(example_loss, _zeros(X.shape[1]), data, epochs=epochs, optimizer=LR,
                      batch_size=m, eval_train=False, key=key)  # fmt: skip
        return r.params

    @jax.jit
    def gather(X, order):
        take = lambda total, rows: (total + jnp.sum(X[rows]), None)
        return jax.lax.scan(take, jnp.float32(0), order[: steps * m].reshape(steps, m))[0]

    permutation = jax.jit(_shuffle.permutation, static_argnums=1)
    in_order = jnp.arange(n, dtype=jnp.int32)
    shuffled = permutation(jax.random.key(0), n)
    runs = {
        "fit_shuffled": (lambda: fit(jax.random.key(1)), epochs),
        "fit_in_order": (lambda: fit(None), epochs),
        "gather_shuffled": (lambda: gather(data[0], shuffled), 1),
        "gather_in_order": (lambda: gather(data[0], in_order), 1),
        "permutation": (lambda: permutation(jax.random.key(2), n), 1),
    }
    seconds = {name: [] for name in runs}
    for r in range(repeats + 1):  # the first round warms up
        for name, (call, per) in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            if r:
                seconds[name].append((time.perf_counter() - start) / per)
    out = {name: _summary(v) for name, v in seconds.items()}
    for name, t in out.items():
        say(f"  anatomy {name:16s} {t['median_ms']:8.2f} ms [{t['min_ms']:.2f}-{t['max_ms']:.2f}]")
    return dict(n=n, batch=m, times=out)


# ---------------------------------------------------------------------------------------------
# Issue 6: many learning rates by one `sweep` against one `fit`.


def time_sweep(cfg: dict, repeats: int, say=print, member_keys: bool = False) -> dict:
    """Interleaved timings of one `jaxgd.fit` and one `jaxgd.sweep` over `cfg["members"]`
    learning rates (`geomspace(1e-3, 1, K)`, which holds `LR`), both through the public
    functions with their host checks, default options (`eval_train=True`), NumPy data in,
    `cfg["epochs"]` epochs of batches of `cfg["batch"]` reshuffled by a key (one shared by the
    members, or one each with `member_keys`). Every repeat times each side once, in turn first,
    after a call of each that compiles. Also checks that the member whose learning rate is
    nearest `LR` equals `fit` with that learning rate and key (issue 6: within 1e-5).

    Returns:
      `{"times": {"fit": summary, "sweep": summary}` (ms per call), `"ratio"` (of the medians),
      `"spread"` (min-max), `"agreement"`, and the sizes.
    """
    from jaxgd.sweep import sweep  # `jaxgd.sweep` the attribute is the function, not the module

    X, y = make_data(cfg["n"])
    lrs = np.geomspace(1e-3, 1.0, cfg["members"])
    common = dict(epochs=cfg["epochs"], batch_size=cfg["batch"])

    def shuffle(seed):
        key = jax.random.key(seed)
        return dict(keys=jax.random.split(key, len(lrs))) if member_keys else dict(key=key)

    def fit(lr, key):
        r = jaxgd.fit(example_loss, _zeros(X.shape[1]), (X, y), optimizer=lr, key=key, **common)
        return jax.block_until_ready(r)

    def many(seed):
        s = sweep(example_loss, _zeros(X.shape[1]), (X, y), learning_rates=lrs, **shuffle(seed),
                  **common)  # fmt: skip
        return jax.block_until_ready(s)

    sides = {"fit": lambda seed: fit(LR, jax.random.key(seed)), "sweep": many}
    s = many(0)  # Compiles; its member nearest LR against that member's single run:
    member = int(np.argmin(np.abs(np.log(lrs / LR))))
    r = fit(float(lrs[member]), shuffle(0)["keys"][member] if member_keys else jax.random.key(0))
    sides["fit"](0)  # Warms up (a new learning rate value does not recompile).
    diffs = [np.max(np.abs(np.asarray(a) - np.asarray(b)))
             for a, b in zip(jax.tree.leaves((s.member(member).params, s.member(member).losses)),
                             jax.tree.leaves((r.params, r.losses)), strict=True)]  # fmt: skip
    seconds = {name: [] for name in sides}
    names = list(sides)
    for rep in range(repeats):
        for name in names[rep % 2 :] + names[: rep % 2]:  # who goes first alternates
            start = time.perf_counter()
            sides[name](rep + 1)
            seconds[name].append(time.perf_counter() - start)
    times = {name: _summary(v) for name, v in seconds.items()}
    ratio = times["sweep"]["median_ms"] / times["fit"]["median_ms"]
    spread = (times["sweep"]["min_ms"] / times["fit"]["max_ms"],
              times["sweep"]["max_ms"] / times["fit"]["min_ms"])  # fmt: skip
    worst = float(max(diffs))
    out = dict(times=times, ratio=ratio, spread=spread, members=len(lrs), n=cfg["n"],
               batch=cfg["batch"], epochs=cfg["epochs"], member_keys=member_keys,
               agreement=dict(member=member, lr=float(lrs[member]), max_abs_diff=worst,
                              ok=worst <= 1e-5))  # fmt: skip
    say(f"  sweep   {len(lrs)} learning rates {times['sweep']['median_ms']:8.2f} ms "
        f"[{times['sweep']['min_ms']:.2f}-{times['sweep']['max_ms']:.2f}], one fit "
        f"{times['fit']['median_ms']:.2f} ms [{times['fit']['min_ms']:.2f}-"
        f"{times['fit']['max_ms']:.2f}]: ratio {ratio:.2f}x; member {member} against fit: "
        f"max |diff| {worst:.1e} ({'ok' if out['agreement']['ok'] else 'DISAGREE'})")  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# Measurements in fresh processes.


def _python(code: str, env=None, timeout=600) -> dict:
    """Runs `code` in a fresh Python; its last stdout line is JSON."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=timeout)  # fmt: skip
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        tail = [re.sub(r"^[FEW]\d{4} [\d:.]+\s+\d+ \S+\] ", "", line) for line in tail]  # glog
        return {"error": " | ".join(tail)[-400:] or f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


_PRELUDE = "import json, resource, sys, time\n"


def import_times(repeats: int) -> dict:
    """Seconds to `import jaxgd` and to `import jax, optax`, each in fresh processes, interleaved."""
    code = (
        _PRELUDE
        + "t = time.perf_counter()\nimport {mods}\nprint(json.dumps(time.perf_counter() - t))"
    )
    seconds = {"jaxgd": [], "jax, optax": []}
    for _ in range(repeats):
        for mods in seconds:
            out = _python(code.format(mods=mods))
            if isinstance(out, dict):
                return {"error": out["error"]}
            seconds[mods].append(out)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    return dict(seconds=seconds, median_s=med, ratio=med["jaxgd"] / med["jax, optax"])


def _median_of(runs: list, field: str) -> dict:
    """The run with the median `field` (all values under "runs"), or the first error."""
    good = sorted((r for r in runs if "error" not in r), key=lambda r: r[field])
    if not good:
        return runs[0]
    return dict(good[(len(good) - 1) // 2], runs=[r[field] for r in good])


def first_fit_compile(n: int, repeats: int = 1) -> dict:
    """Fresh processes: the first `fit` (traces, compiles, runs) against a second one with a new
    learning rate and key (runs only): SGD batch 1, 5 epochs of the benchmark data. The median
    of `repeats` processes."""
    code = _PRELUDE + textwrap.dedent(f"""
        import jax, jax.monitoring, numpy as np
        from jaxgd import bench, loop
        import jaxgd
        compiles = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda name, secs, **kw: compiles.append(secs)
            if name == "/jax/core/compile/backend_compile_duration" else None)
        X, y = bench.make_data({n})
        params = dict(w=np.zeros(20, np.float32), b=np.float32(0))
        def fit(lr, seed):
            t = time.perf_counter()
            r = jaxgd.fit(bench.example_loss, params, (X, y), epochs=5, optimizer=lr,
                          batch_size=1, key=jax.random.key(seed))
            jax.block_until_ready(r.params)
            return time.perf_counter() - t
        first = fit(0.1, 0)
        n_first, xla_first = len(compiles), sum(compiles)
        second = fit(0.2, 1)
        print(json.dumps(dict(first_s=first, second_s=second, compile_s=first - second,
              xla_compiles=n_first, xla_compile_s=xla_first, run_xla_s=max(compiles), n={n})))
    """)
    return _median_of([_python(code) for _ in range(repeats)], "compile_s")


def peak_memory(n: int, repeats: int = 1) -> dict:
    """Fresh processes: peak resident memory (VmHWM) of a shuffled mini-batch (1024) run of
    3 epochs on NumPy data at n, default `fit` options, against the data's bytes. The median
    of `repeats` processes. Also the resident memory after `import jax, jaxgd`, with the data,
    and just before the `fit` call (its params and key made: JAX's first compiles), so that
    `peak_mib - before_fit_mib` is what `fit` itself added."""
    code = _PRELUDE + textwrap.dedent(f"""
        def rss():  # MiB: VmHWM, this process's peak (ru_maxrss keeps the forking parent's)
            try:
                status = open("/proc/self/status").read().split("VmHWM:")[1]
                return int(status.split()[0]) / 1024
            except (OSError, IndexError):
                return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        import jax, jaxgd
        from jaxgd import bench
        imported = rss()
        X, y = bench.make_data({n})
        loaded = rss()
        params, key = bench._zeros(20), jax.random.key(0)
        before_fit = rss()
        r = jaxgd.fit(bench.example_loss, params, (X, y), epochs=3, optimizer=0.1,
                      batch_size=1024, key=key)
        jax.block_until_ready(r.params)
        print(json.dumps(dict(imported_mib=imported, data_loaded_mib=loaded,
                              before_fit_mib=before_fit, peak_mib=rss(),
                              data_mib=(X.nbytes + y.nbytes) / 2**20)))
    """)
    out = _median_of([_python(code) for _ in range(repeats)], "peak_mib")
    if "error" not in out:
        # The units: bytes, and MB = 10^6 bytes (80 MB of data at n = 10^6, d = 20).
        out["limit_mib"] = (2.5 * out["data_mib"] * 2**20 + 300e6) / 2**20
        out["ok"] = out["peak_mib"] <= out["limit_mib"]
    return out


def small_while_loops(byte_threshold: int, cases: dict, repeats: int) -> dict:
    """The explicit opt-in: jaxgd's SGD and batch-32 rows in a fresh process whose XLA_FLAGS set
    `--xla_cpu_small_while_loop_byte_threshold` (jaxgd itself never sets it)."""
    flag = f"--xla_cpu_small_while_loop_byte_threshold={byte_threshold}"
    env = {"XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()}
    code = _PRELUDE + textwrap.dedent(f"""
        from jaxgd import bench
        out = {{}}
        for case, cfg in {cases!r}.items():
            out[case] = bench.time_case(case, cfg, {repeats}, say=lambda *a: None,
                                        impls=("jaxgd",))["jaxgd"]
        print(json.dumps(out))
    """)
    return dict(flag=flag, results=_python(code, env=env))


# ---------------------------------------------------------------------------------------------
# Recompilations and growth, in this process.


def recompiles(n: int) -> dict:
    """`fit` again with a new learning rate, key and data values of the same shapes, for each
    schedule: how many times `loop._run` was traced and how many XLA programs were compiled."""
    import jax.monitoring

    compiled = []

    def listen(name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiled.append(secs)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        return _count_recompiles(n, compiled)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def _count_recompiles(n, compiled):
    X, y = make_data(n)
    X2, y2 = make_data(n, seed=1)
    out = {}
    for label, batch in (("full batch", None), ("SGD", 1), ("mini-batch 32", 32)):

        def fit(lr, seed, data, batch=batch):
            shuffle = {} if batch is None else dict(key=jax.random.key(seed))
            r = jaxgd.fit(example_loss, _zeros(20), data, epochs=2, optimizer=lr,
                          batch_size=batch, **shuffle)  # fmt: skip
            jax.block_until_ready(r.params)

        fit(0.1, 0, (X, y))
        traces, xla = loop._traces, len(compiled)
        fit(0.05, 1, (X, y))  # a new learning rate and key
        fit(0.3, 2, (X2, y2))  # new data values
        fit(np.float32(0.2), 3, (X2, y2))
        out[label] = dict(traces=loop._traces - traces, xla_compiles=len(compiled) - xla)
    return out


def growth(sizes: dict, say=print) -> dict:
    """jaxgd's epoch time against n (d = 20) and against d, per schedule, with ns per example."""
    rows = []
    points = [(n, 20) for n in sizes["growth_n"]]
    points += [(sizes["growth_d_n"], d) for d in sizes["growth_d"] if d != 20]
    for n, d in points:
        X, y = make_data(n, d)
        for schedule, batch in (("full batch", None), ("SGD", 1), ("mini-batch 32", 32)):
            epochs = max(5, min(200, 2_000_000 // (n * max(1, d // 20))))
            runner = _jaxgd(X, y, batch)
            runner(epochs)  # compile
            times = []
            for r in range(sizes["growth_repeats"]):
                start = time.perf_counter()
                runner(epochs, seed=r)
                times.append((time.perf_counter() - start) / epochs)
            ms = 1e3 * statistics.median(times)
            rows.append(dict(schedule=schedule, n=n, d=d, epoch_ms=ms, epochs_per_call=epochs,
                             ns_per_example=1e6 * ms / n))  # fmt: skip
            say(f"  growth {schedule:13s} n={n:>8} d={d:>5}: {ms:9.3f} ms/epoch "
                f"({1e6 * ms / n:7.1f} ns per example)")  # fmt: skip
    fits = {}
    for schedule in ("full batch", "SGD", "mini-batch 32"):
        pts = [(r["n"], r["epoch_ms"]) for r in rows if r["schedule"] == schedule and r["d"] == 20]
        if len(pts) >= 2:
            ns, ms = np.array(pts, float).T  # relative residuals: weights 1 / time
            slope, intercept = np.polyfit(ns, ms, 1, w=1 / ms)
            fits[schedule] = dict(ns_per_example=1e6 * slope, overhead_ms=intercept)
    return dict(rows=rows, linear_fit=fits)


# ---------------------------------------------------------------------------------------------
# The run and its report.


def machine() -> dict:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = dict(cpu=cpu, cores=os.cpu_count(), system=platform.platform(),
                python=platform.python_version(), jax=jax.__version__, numpy=np.__version__,
                optax=optax.__version__, XLA_FLAGS=os.environ.get("XLA_FLAGS", ""))  # fmt: skip
    with contextlib.suppress(ImportError):
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def _goal_rows(times: dict) -> list:
    rows = []
    for label, case, num, den, kind, bound in GOALS:
        if case not in times or num not in times[case] or den not in times[case]:
            continue
        ratio = times[case][num]["median_ms"] / times[case][den]["median_ms"]
        lo = times[case][num]["min_ms"] / times[case][den]["max_ms"]
        hi = times[case][num]["max_ms"] / times[case][den]["min_ms"]
        met = ratio >= bound if kind == "min" else ratio <= bound
        goal = f"≥ {bound:g}×" if kind == "min" else f"≤ {bound:g}×"
        rows.append(dict(goal=label, bound=goal, ratio=ratio, spread=(lo, hi), met=met))
    return rows


def run(*, quick=False, smoke=False, repeats=None, cases=None, growth_sweep=True,
        fresh_processes=True, xla_small_while_loop_bytes=None, streaming=True,
        say=print) -> dict:  # fmt: skip
    """The whole benchmark; returns a JSON-ready dict (see `report` for the Markdown).

    Args:
      quick: fewer repeats and a smaller growth sweep (~2-3 min).
      smoke: tiny sizes (seconds): checks the harness, not the speed.
      repeats: override the number of interleaved repeats per case.
      cases: a subset of "sgd", "mb32", "full", "mb1024" and "sweep" (issue 6's 64 learning
        rates by `jaxgd.sweep` against one `fit`, `time_sweep`) (default all).
      growth_sweep: measure epoch time against n and d.
      fresh_processes: measure import time, first-fit compile time and peak memory in
        subprocesses (each starts Python and JAX: a few seconds).
      xla_small_while_loop_bytes: opt in to timing jaxgd's SGD and batch-32 rows once more in a
        fresh process with `--xla_cpu_small_while_loop_byte_threshold=<this>` in XLA_FLAGS.
      streaming: measure streamed runs (`jaxgd.bench_stream`): epoch time against the in-memory
        run, and the peak memory of a run on a 4 GB `np.memmap` (written to a temporary folder).
      say: progress printer (`lambda *a: None` for silence).

    Returns:
      `{"machine", "sizes", "times", "sweep", "goals", "agreement", "recompiles", "compile",
      "memory", "imports", "growth", "small_while_loops", "seconds"}`.
    """
    start = time.perf_counter()
    mode = "smoke" if smoke else "quick" if quick else "full"
    sizes = _SIZES[mode]
    reps = repeats or sizes["repeats"]
    chosen = {k: v for k, v in sizes["cases"].items() if cases is None or k in cases}
    out = dict(mode=mode, machine=machine(), sizes=dict(chosen), repeats=reps, lr=LR)
    out["blocks"] = sizes["blocks"]
    out["load_before"] = os.getloadavg()
    say(f"jaxgd benchmarks ({mode}): {out['machine']['cpu']}, {out['machine']['cores']} cores")
    out["agreement"] = {}
    for case, cfg in chosen.items():
        out["agreement"][case] = check_agreement(case, cfg)
        a = out["agreement"][case]
        say(f"  agreement {case}: max relative difference {a['max_rel_diff']:.1e} "
            f"({'ok' if a['ok'] else 'DISAGREE'})")  # fmt: skip
    counts = {case: repeats or cfg.get("repeats", reps) for case, cfg in chosen.items()}
    out["times"] = time_cases(chosen, counts, blocks=sizes["blocks"], say=say)
    timed = dict(out["times"])
    if "mb1024" in chosen:
        out["anatomy"] = anatomy(chosen["mb1024"], reps, say=say)
    if cases is None or "sweep" in cases:
        out["sweep"] = time_sweep(sizes["sweep"], repeats or sizes["sweep"]["repeats"], say=say)
        timed["sweep"] = out["sweep"]["times"]
    out["goals"] = _goal_rows(timed)
    out["recompiles"] = recompiles(sizes["cases"]["mb32"]["n"])
    if fresh_processes:
        out["compile"] = first_fit_compile(sizes["cases"]["sgd"]["n"], sizes["import_repeats"])
        out["memory"] = peak_memory(sizes["memory_n"], sizes["import_repeats"])
        out["imports"] = import_times(sizes["import_repeats"])
    if xla_small_while_loop_bytes is not None:
        opt_cases = {k: chosen[k] for k in ("sgd", "mb32") if k in chosen}
        out["small_while_loops"] = small_while_loops(xla_small_while_loop_bytes, opt_cases, reps)
    if growth_sweep:
        out["growth"] = growth(sizes, say=say)
    if streaming:
        from jaxgd import bench_stream

        out["streaming"] = bench_stream.run(mode, say=say)
    out["load_after"] = os.getloadavg()
    out["seconds"] = time.perf_counter() - start
    return out


def main(argv=None) -> int:
    """`jaxgd bench [--quick | --smoke] [--out DIR] ...`: runs `run` and writes the report."""
    parser = argparse.ArgumentParser(prog="jaxgd bench", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer repeats, smaller growth sweep")
    size.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness only")
    parser.add_argument("--repeats", type=int, help="interleaved repeats per case")
    parser.add_argument("--cases", nargs="+", choices=sorted([*_SIZES["full"]["cases"], "sweep"]),
                        help="a subset of the cases")  # fmt: skip
    parser.add_argument("--no-growth", action="store_true", help="skip the n and d sweep")
    parser.add_argument("--no-streaming", action="store_true",
                        help="skip the streamed runs (they write a 4 GB memmap to a temp folder)")  # fmt: skip
    parser.add_argument("--no-subprocesses", action="store_true",
                        help="skip import time, first-fit compile time and peak memory")  # fmt: skip
    parser.add_argument("--xla-small-while-loop-bytes", type=int, metavar="N",
                        help="opt in: time the SGD and batch-32 rows again in a separate process "
                        "with XLA_FLAGS=--xla_cpu_small_while_loop_byte_threshold=N")  # fmt: skip
    parser.add_argument("--out", default=".",
                        help="folder for BENCHMARKS.md and benchmarks/growth.png (default .)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, smoke=args.smoke, repeats=args.repeats, cases=args.cases,
                 growth_sweep=not args.no_growth, fresh_processes=not args.no_subprocesses,
                 xla_small_while_loop_bytes=args.xla_small_while_loop_bytes,
                 streaming=not args.no_streaming)  # fmt: skip
    command = "python -m jaxgd.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    plot = "benchmarks/growth.png" if "growth" in result else None
    text = report(result, command.strip(), plot)
    if args.no_write:
        print(text)
    else:
        out.mkdir(parents=True, exist_ok=True)
        if plot:
            plot_growth(result["growth"], out / plot)
        (out / "BENCHMARKS.md").write_text(text)
        print(f"wrote {out / 'BENCHMARKS.md'}" + (f" and {out / plot}" if plot else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    if result["mode"] == "smoke":
        print("Smoke sizes: the ratios below check the harness, not the goals.")
    print(key_ratios(result))
    agree = all(a["ok"] for a in result["agreement"].values())
    agree = agree and result.get("streaming", {}).get("times", {}).get("same_params", True)
    agree = agree and result.get("sweep", {}).get("agreement", {}).get("ok", True)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
