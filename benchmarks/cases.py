"""What the harness measures: the cases' sizes per mode, which implementations each case times,
and issue 5's goals with the rows they give."""

# Issue 5's goals: (name, case, numerator, denominator, kind, bound). "min": ratio >= bound.
GOALS = [
    ("SGD batch 1, n=1e4, reshuffled: PyTorch / jaxgd", "sgd", "torch", "jaxgd", "min", 500),
    ("same: JAX jit-per-step loop / jaxgd", "sgd", "jax_loop", "jaxgd", "min", 50),
    (
        "mini-batch 32, n=1e4 (ragged last batch): PyTorch / jaxgd",
        "mb32",
        "torch",
        "jaxgd",
        "min",
        50,
    ),
    ("same: JAX jit-per-step loop / jaxgd", "mb32", "jax_loop", "jaxgd", "min", 8),
    ("full batch, n=1e6 (80 MB): jaxgd / NumPy", "full", "jaxgd", "numpy", "max", 1.0),
    ("mini-batch 1024, n=1e6: PyTorch / jaxgd", "mb1024", "torch", "jaxgd", "min", 8),
    (
        "64 learning rates by sweep / one fit (issue 6; n=1e4, batch 32, reshuffled)",
        "sweep",
        "sweep",
        "fit",
        "max",
        8,
    ),
]

# Issue 14's goals for `fit` as a user calls it (defaults, NumPy in, few epochs a call).
DEFAULT_GOALS = [
    ("SGD batch 1, n=1e4, 3 epochs a call: PyTorch eager / jaxgd", "d_sgd", "torch", "jaxgd_defaults", "min", 500),
    ("mini-batch 32, n=1e4, 3 epochs a call: PyTorch eager / jaxgd", "d_mb32", "torch", "jaxgd_defaults", "min", 60),
    ("full batch, n=1e6, 10 epochs a call: jaxgd / NumPy two-pass gradient", "d_full", "jaxgd_defaults", "numpy", "max", 0.9),
    ("mini-batch 1024, n=1e6, 2 epochs a call: PyTorch eager / jaxgd", "d_mb1024", "torch", "jaxgd_defaults", "min", 8),
    ("SGD batch 1, n=1e4: scikit-learn SGDClassifier epoch / jaxgd epoch", "d_sgd", "sklearn", "jaxgd_defaults", "min", 2),
]  # fmt: skip
DEFAULT_IMPLS = {
    "d_sgd": ("jaxgd_defaults", "torch", "sklearn", "xla_floor"),
    "d_mb32": ("jaxgd_defaults", "torch", "xla_floor"),
    "d_full": ("jaxgd_defaults", "numpy", "xla_floor"),
    "d_mb1024": ("jaxgd_defaults", "torch", "xla_floor"),
}

IMPLS = {
    "sgd": ("jaxgd", "torch", "jax_loop"),
    "mb32": ("jaxgd", "torch", "jax_loop"),
    "full": ("jaxgd", "numpy", "torch", "jax_loop", "jaxgd_eval"),
    "mb1024": ("jaxgd", "torch", "jax_loop"),
}
LABELS = {
    "jaxgd": "jaxgd.fit",
    "torch": "PyTorch eager",
    "jax_loop": "JAX jit-per-step loop",
    "numpy": "NumPy",
    "jaxgd_eval": "jaxgd.fit, eval_train=True (default)",
    "jaxgd_defaults": "jaxgd.fit, default options",
    "sklearn": "scikit-learn SGDClassifier",
    "xla_floor": "bare XLA bound (one jitted scan)",
}


def _case(n, batch, epochs, steps, check_epochs, **more):
    """One case: n, batch size, jaxgd epochs per fit call, steps a slow loop times (then scaled
    to one epoch), epochs of the agreement run, and optionally its own `repeats`."""
    return dict(n=n, batch=batch, epochs=epochs, steps=steps, check_epochs=check_epochs, **more)


SIZES = {
    "full": dict(
        cases={
            "sgd": _case(10_000, 1, 20, 2_000, 1),
            "mb32": _case(10_000, 32, 50, None, 2),
            "full": _case(1_000_000, None, 20, None, 10),
            # More repeats: the ratio sits near its goal and both loops vary most here.
            "mb1024": _case(1_000_000, 1024, 4, None, 1, repeats=15),
        },
        repeats=7,
        blocks=3,  # Each case's repeats in 3 rounds spread over the timing section.
        growth_n=(1_000, 10_000, 100_000, 1_000_000),
        growth_d=(2, 20, 100, 1000),
        growth_d_n=10_000,
        growth_repeats=3,
        import_repeats=5,
        memory_n=1_000_000,
        # Issue 6: `members` learning rates by one `sweep` against one `fit`, `epochs` per call.
        sweep=dict(n=10_000, batch=32, epochs=5, members=64, repeats=21),
        defaults=dict(
            cases={
                "d_sgd": _case(10_000, 1, 3, 2_000, 1),
                "d_mb32": _case(10_000, 32, 3, None, 1),
                "d_full": _case(1_000_000, None, 10, None, 1),
                "d_mb1024": _case(1_000_000, 1024, 2, None, 1),
            },
            repeats=7,
            fixed=dict(n=100, batch=32, calls=50),  # Calls per sample of the fixed cost.
            floor_epochs=20,
        ),
    ),
    "quick": dict(
        cases={
            "sgd": _case(10_000, 1, 10, 1_000, 1),
            "mb32": _case(10_000, 32, 20, None, 1),
            "full": _case(1_000_000, None, 10, None, 5),
            "mb1024": _case(1_000_000, 1024, 2, 300, 1),
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
        defaults=dict(
            cases={
                "d_sgd": _case(10_000, 1, 3, 1_000, 1),
                "d_mb32": _case(10_000, 32, 3, None, 1),
                "d_full": _case(1_000_000, None, 10, None, 1),
                "d_mb1024": _case(1_000_000, 1024, 2, 300, 1),
            },
            repeats=3,
            fixed=dict(n=100, batch=32, calls=50),
            floor_epochs=10,
        ),
    ),
    "smoke": dict(
        cases={
            "sgd": _case(200, 1, 3, 50, 1),
            "mb32": _case(200, 32, 3, None, 2),
            "full": _case(2_000, None, 3, None, 5),
            "mb1024": _case(2_000, 1024, 2, None, 2),
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
        defaults=dict(
            cases={
                "d_sgd": _case(200, 1, 2, 50, 1),
                "d_mb32": _case(200, 32, 2, None, 1),
                "d_full": _case(2_000, None, 2, None, 1),
                "d_mb1024": _case(2_000, 1024, 2, None, 1),
            },
            repeats=2,
            fixed=dict(n=100, batch=32, calls=5),
            floor_epochs=2,
        ),
    ),
}


def goal_rows(times: dict, goals=GOALS) -> list:
    """The `goals` (issue 5's by default) measured in `times` (`{case: {impl: summary}}`): one
    dict per goal with its ratio of medians, the spread the repeats allow, and whether it is met."""
    rows = []
    for label, case, num, den, kind, bound in goals:
        if case not in times or num not in times[case] or den not in times[case]:
            continue
        a, b = times[case][num], times[case][den]
        ratio = a["median_ms"] / b["median_ms"]
        spread = (a["min_ms"] / b["max_ms"], a["max_ms"] / b["min_ms"])
        met = ratio >= bound if kind == "min" else ratio <= bound
        goal = f"≥ {bound:g}×" if kind == "min" else f"≤ {bound:g}×"
        rows.append(dict(goal=label, bound=goal, ratio=ratio, spread=spread, met=met))
    return rows
