"""Where the time of a `fit` call goes (docs/design.md#the-fixed-cost-of-a-call).

    python -m benchmarks.fixed_cost_parts [--calls 2000] [--n 100] [--batch 32] [--epochs 1]
        [--no-eval-train] [--no-xla]

Times `calls` calls of `fit` after one that compiles: by default n = 100, 1 epoch, batch 32 (the
defaults section's fixed cost), a new key each call, default options, NumPy data in. A wall
clock runs around each of fit's host-side steps; the steps nest (`_run_chunks` holds `to_device`
and `_run_chunk`, which holds the compiled run). Then the XLA:CPU costs behind what is left: a
tiny program, a small `dot` as a program and inside a loop, and the threefry bits behind an
epoch's order.
"""

import argparse
import functools
import sys
import time

import jax
import jax.numpy as jnp
from jax import lax

import jaxgd
from benchmarks.task import example_loss, make_data, zeros

fit_module = sys.modules["jaxgd.loop.fit"]  # `jaxgd.loop.fit` is also the function's name.
setup_module = sys.modules["jaxgd.loop.setup"]
STEPS = {
    fit_module: ("prepare", "_run_chunks", "to_device", "_run_chunk", "assemble"),
    setup_module: ("_check_functions", "_initial_state"),
    jaxgd._checks: ("check_params", "check_data"),
}


def _timed(module, name: str, seconds: dict) -> None:
    """Wraps `module.name` so that its wall time adds up in `seconds[name]`."""
    inner = getattr(module, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)


def parts(
    calls: int, n: int = 100, batch: int = 32, epochs: int = 1, eval_train: bool = True
) -> tuple[float, dict]:
    """(us per call, {step: us per call}) over `calls` `fit` calls."""
    X, y = make_data(n)
    params = zeros(X.shape[1])
    keys = [jax.random.key(i) for i in range(calls + 1)]

    def call(key):
        r = jaxgd.fit(
            example_loss,
            params,
            (X, y),
            epochs=epochs,
            optimizer=0.1,
            batch_size=batch,
            key=key,
            eval_train=eval_train,
        )
        jax.block_until_ready(r.params)

    seconds: dict = {}
    for module, names in STEPS.items():
        for name in names:
            _timed(module, name, seconds)
    call(keys[0])
    seconds.clear()
    start = time.perf_counter()
    for key in keys[1:]:
        call(key)
    total = (time.perf_counter() - start) / calls * 1e6
    return total, {k: v / calls * 1e6 for k, v in seconds.items()}


def _us(fn, calls: int = 3000) -> float:
    """Mean us per blocked call of `fn()` after one warm-up call."""
    jax.block_until_ready(fn())
    start = time.perf_counter()
    for _ in range(calls):
        jax.block_until_ready(fn())
    return (time.perf_counter() - start) / calls * 1e6


def xla_costs() -> dict:
    """us per call of the small XLA:CPU programs the fixed cost is made of."""
    X, w = jnp.ones((100, 20)), jnp.ones(20)
    key = jax.random.key(0)
    one = jax.jit(lambda w: w + 1)
    dot = jax.jit(lambda X, w: X @ w)
    ten = jax.jit(lambda X, w: lax.fori_loop(0, 10, lambda i, c: X @ (w + c[:20]), jnp.zeros(100)))
    bits = jax.jit(lambda k: jax.random.bits(jax.random.fold_in(k, 1), (24,), jnp.uint32))
    return {
        "a program adding one to 20 floats": _us(lambda: one(w)),
        "(100, 20) @ (20,) as a program": _us(lambda: dot(X, w)),
        "the same dot inside a loop, per dot": _us(lambda: ten(X, w)) / 10,
        "fold_in + 24 threefry bits (an epoch's round keys)": _us(lambda: bits(key)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="fit calls to time")
    parser.add_argument("--n", type=int, default=100, help="examples")
    parser.add_argument("--batch", type=int, default=32, help="batch size")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per call")
    parser.add_argument(
        "--no-eval-train", action="store_true", help="fit with eval_train=False (default True)"
    )
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA:CPU programs")
    args = parser.parse_args(argv)
    total, steps = parts(args.calls, args.n, args.batch, args.epochs, not args.no_eval_train)
    print(
        f"fit, n={args.n}, {args.epochs} epoch(s), batch {args.batch}: {total:.0f} us per call; "
        "its steps (nested):"
    )
    for name, us in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"  {name:18s} {us:7.0f} us")
    if args.no_xla:
        return
    print("XLA:CPU programs, us per blocked call:")
    for name, us in xla_costs().items():
        print(f"  {name:52s} {us:6.1f}")


if __name__ == "__main__":
    main()
