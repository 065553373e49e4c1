"""Issue 6's goal: 64 learning rates by `jaxgd.sweep` cost at most 8x one `jaxgd.fit` run.

Logistic regression on `synthetic_logistic(n=10_000, d=20)`, mini-batches of 32 reshuffled every
epoch. Both sides are timed through the public functions (host checks included), after a first
call that compiles, as the best of `--repeats` calls. Prints one line:

    python benchmarks/sweep_bench.py [--members 64] [--epochs 5] [--repeats 5] [--member-keys]

With `--member-keys` every member also shuffles with its own key (K different orders).
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd
from jaxgd.data import synthetic_logistic
from jaxgd.sweep import sweep


def example_loss(params, x, y):
    """Binary cross-entropy on the logit of ONE example."""
    z = x @ params["w"] + params["b"]
    return jnp.logaddexp(0.0, z) - y * z


def best_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # Compile (and warm up) first.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=64)  # learning rates in the sweep
    parser.add_argument("--epochs", type=int, default=5)  # passes over the 10 000 examples
    parser.add_argument("--repeats", type=int, default=5)  # timed calls per side (best is kept)
    parser.add_argument("--member-keys", action="store_true")  # one shuffle per member
    args = parser.parse_args()

    data = synthetic_logistic(n=10_000, d=20, seed=0)  # issue 6's problem size
    params = {"w": jnp.zeros(20), "b": jnp.zeros(())}
    base = dict(epochs=args.epochs, batch_size=32)  # mini-batches of 32
    key = jax.random.key(0)  # reshuffles every epoch
    lrs = np.geomspace(1e-3, 1.0, args.members)  # the swept learning rates
    shuffle = {"keys": jax.random.split(key, args.members)} if args.member_keys else {"key": key}
    one = lambda: jaxgd.fit(example_loss, params, data, optimizer=0.1, key=key, **base).params
    many = lambda: sweep(example_loss, params, data, learning_rates=lrs, **shuffle, **base).params
    t_one, t_many = best_time(one, args.repeats), best_time(many, args.repeats)
    ratio = t_many / t_one
    print(
        f"sweep_bench: {args.members} learning rates {t_many * 1e3:.1f} ms, one run "
        f"{t_one * 1e3:.1f} ms, ratio {ratio:.2f}x (goal <= 8x: {'met' if ratio <= 8 else 'MISSED'}; "
        f"n=10000 d=20 batch 32 shuffled{' per member' if args.member_keys else ''}, "
        f"{args.epochs} epochs, {jax.devices()[0].platform})"
    )


if __name__ == "__main__":
    main()
