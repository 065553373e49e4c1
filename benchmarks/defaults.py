"""Issue 14's defaults section: `jaxgd.fit` timed the way a user calls it, with its defaults (the
training loss evaluated every epoch), NumPy arrays in and a few epochs a call, side by side with
PyTorch, NumPy and scikit-learn; the fixed cost of one small call; jaxgd's SGD update against a
plain C loop's (`benchmarks/floor.c`); and the first `fit`'s compile time in a fresh process."""

import importlib.util
import time

import jax

import jaxgd
from benchmarks import probes
from benchmarks.cases import DEFAULT_GOALS, DEFAULT_IMPLS, goal_rows
from benchmarks.floor import c_floor
from benchmarks.peers import xla_floor_runner
from benchmarks.task import LR, example_loss, make_data, zeros
from benchmarks.timing import check_agreement, summary, time_cases

FIXED_GOAL_MS = 0.3  # One small `fit` call after its first compile.
FLOOR_GOAL = 2.0  # jaxgd's ns per SGD update / the C loop's.
COMPILE_GOAL_S = 0.6  # The first `fit` (mini-batch 32, n = 1e4) in a fresh process.


def fixed_cost(cfg: dict, repeats: int) -> dict:
    """ms per `fit` call at n = `cfg["n"]`, 1 epoch, batch `cfg["batch"]`, defaults, NumPy in,
    after a call that compiles: each sample is the mean of `cfg["calls"]` calls."""
    X, y = make_data(cfg["n"])

    def call(key):
        r = jaxgd.fit(
            example_loss, params, (X, y), epochs=1, optimizer=LR, batch_size=cfg["batch"], key=key
        )
        jax.block_until_ready(r.params)

    params = zeros(X.shape[1])
    bare = xla_floor_runner(X, y, cfg["batch"])  # The same epoch, nothing around it.
    call(jax.random.key(0))
    bare(1)
    seconds, floor = [], []
    for rep in range(repeats):
        keys = list(jax.random.split(jax.random.key(rep + 1), cfg["calls"]))  # Made untimed.
        start = time.perf_counter()
        for key in keys:
            call(key)
        seconds.append((time.perf_counter() - start) / cfg["calls"])
        start = time.perf_counter()
        for _ in keys:
            bare(1)
        floor.append((time.perf_counter() - start) / cfg["calls"])
    return dict(summary(seconds), floor=summary(floor), **cfg)


def _floor_row(times: dict, floor: dict, n: int) -> dict:
    """jaxgd's ns per SGD update (its defaults row) against the C loop's, with the spread."""
    t = times["d_sgd"]["jaxgd_defaults"]
    ns = {k: t[k] * 1e6 / n for k in ("median_ms", "min_ms", "max_ms")}
    ratio = ns["median_ms"] / floor["median_ns"]
    spread = (ns["min_ms"] / floor["max_ns"], ns["max_ms"] / floor["min_ns"])
    bare = times["d_sgd"].get("xla_floor")
    return dict(
        goal=f"SGD batch 1, n=1e4: jaxgd ns per update / a plain C loop's ({ns['median_ms']:.0f} "
        f"against {floor['median_ns']:.0f} ns)",
        bound=f"≤ {FLOOR_GOAL:g}×",
        value=ratio,
        unit="×",
        spread=spread,
        met=ratio <= FLOOR_GOAL,
        xla=bare and bare["median_ms"] * 1e6 / n / floor["median_ns"],
    )


def _bare_goals() -> list:
    """DEFAULT_GOALS with the bare XLA bound in jaxgd's place: the ratio a `lax.scan` with no
    overhead at all would reach (`peers.xla_floor_runner`)."""
    swap = lambda impl: "xla_floor" if impl == "jaxgd_defaults" else impl
    return [
        (label, case, swap(a), swap(b), kind, goal)
        for label, case, a, b, kind, goal in DEFAULT_GOALS
    ]


def _rows(out: dict, n_sgd: int) -> list:
    """Every goal row of the section: `{goal, bound, value, unit, spread, met}`."""
    rows = [dict(g, value=g["ratio"], unit="×") for g in goal_rows(out["times"], DEFAULT_GOALS)]
    bare = {g["goal"]: g["ratio"] for g in goal_rows(out["times"], _bare_goals())}
    rows = [dict(row, xla=bare.get(row["goal"])) for row in rows]
    f = out["fixed"]
    rows.append(
        dict(
            goal=f"fixed cost of one `fit` call after its first compile (n={f['n']}, 1 "
            f"epoch, batch {f['batch']})",
            bound=f"≤ {FIXED_GOAL_MS:g} ms",
            value=f["median_ms"],
            unit="ms",
            spread=(f["min_ms"], f["max_ms"]),
            met=f["median_ms"] <= FIXED_GOAL_MS,
            xla=f["floor"]["median_ms"],
        )
    )
    if "skipped" not in out["floor"]:
        rows.append(_floor_row(out["times"], out["floor"], n_sgd))
    c = out.get("compile", {})
    if c and "error" not in c:
        rows.append(
            dict(
                goal="first `fit` in a fresh process (mini-batch 32, n=1e4): compile time",
                bound=f"≤ {COMPILE_GOAL_S:g} s",
                value=c["compile_s"],
                unit="s",
                spread=(min(c["runs"]), max(c["runs"])),
                met=c["compile_s"] <= COMPILE_GOAL_S,
            )
        )
    return rows


def defaults(sizes: dict, *, blocks: int, fresh_processes: bool = True, say=print) -> dict:
    """The whole section at `sizes` (a mode's `SIZES[mode]["defaults"]`).

    Returns:
      `{"sizes", "repeats", "times": {case: {impl: summary}}, "sklearn_agreement", "fixed", "floor", "compile"
      (with `fresh_processes`), "goals": [row, ...]}`.
    """
    cases = sizes["cases"]
    repeats = {case: sizes["repeats"] for case in cases}
    out = dict(sizes=cases, repeats=sizes["repeats"])
    impls = DEFAULT_IMPLS
    if importlib.util.find_spec("sklearn") is None:  # An optional peer: skipped with a note.
        impls = {case: tuple(k for k in names if k != "sklearn") for case, names in impls.items()}
        out["sklearn_agreement"] = dict(skipped="scikit-learn is not installed")
        say("  defaults: scikit-learn is not installed; its SGDClassifier row is skipped")
    else:
        agreement = check_agreement("d_sgd", cases["d_sgd"], impls=("jaxgd", "sklearn"))
        out["sklearn_agreement"] = agreement
    out["times"] = time_cases(cases, repeats, blocks=blocks, say=say, impls=impls)
    out["fixed"] = fixed_cost(sizes["fixed"], sizes["repeats"])
    say(f"  defaults fixed cost of one fit call {out['fixed']['median_ms']:.3f} ms")
    out["floor"] = c_floor(cases["d_sgd"]["n"], sizes["floor_epochs"], say=say)
    if fresh_processes:
        mb32 = cases["d_mb32"]
        out["compile"] = probes.first_fit_compile(
            mb32["n"], sizes["repeats"], batch=mb32["batch"], epochs=mb32["epochs"]
        )
    out["goals"] = _rows(out, cases["d_sgd"]["n"])
    return out
