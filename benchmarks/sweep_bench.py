"""Issue 6's goal: 64 learning rates by `jaxgd.sweep` cost at most 8x one `jaxgd.fit` run.

Logistic regression on `jaxgd.bench.make_data(10_000)` (d = 20), mini-batches of 32 reshuffled
every epoch. The measurement is the benchmark harness's (`jaxgd.bench.time_sweep`, the "sweep"
case of `jaxgd bench`): both sides through the public functions (host checks included), timed
interleaved after a first call that compiles, as medians with their spread. Prints one line:

    python benchmarks/sweep_bench.py [--members 64] [--epochs 5] [--repeats 21] [--member-keys]

With `--member-keys` every member also shuffles with its own key (K different orders).
"""

import argparse

import jax

from jaxgd import bench


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=64)  # learning rates in the sweep
    parser.add_argument("--epochs", type=int, default=5)  # passes over the 10 000 examples
    parser.add_argument("--repeats", type=int, default=21)  # interleaved timed calls per side
    parser.add_argument("--member-keys", action="store_true")  # one shuffle per member
    args = parser.parse_args()

    cfg = dict(bench._SIZES["full"]["sweep"], members=args.members, epochs=args.epochs)
    out = bench.time_sweep(cfg, args.repeats, say=lambda *a: None, member_keys=args.member_keys)
    t, ratio, (lo, hi) = out["times"], out["ratio"], out["spread"]
    print(
        f"sweep_bench: {args.members} learning rates {t['sweep']['median_ms']:.1f} ms, one run "
        f"{t['fit']['median_ms']:.1f} ms (medians of {args.repeats}), ratio {ratio:.2f}x "
        f"[{lo:.2f}-{hi:.2f}] (goal <= 8x: {'met' if ratio <= 8 else 'MISSED'}; n={cfg['n']} "
        f"d=20 batch {cfg['batch']} shuffled{' per member' if args.member_keys else ''}, "
        f"{args.epochs} epochs, {jax.devices()[0].platform}; member agrees with fit: "
        f"{out['agreement']['ok']})"
    )


if __name__ == "__main__":
    main()
