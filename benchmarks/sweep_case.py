"""Issue 6's case: many learning rates by one `jaxgd.sweep` against one `jaxgd.fit`.

Also a command of its own, one line out (the "sweep" case of `python -m benchmarks`):

    python -m benchmarks.sweep_case [--members 64] [--epochs 5] [--repeats 21] [--member-keys]

With `--member-keys` every member also shuffles with its own key (K different orders).
"""

import argparse
import time

import jax
import numpy as np

import jaxgd
from benchmarks.cases import SIZES
from benchmarks.task import LR, example_loss, make_data, zeros
from benchmarks.timing import summary


def _sides(cfg: dict, member_keys: bool):
    """`(lrs, shuffle, fit, many)`: the learning rates, `shuffle(seed)` keyword arguments, and
    the two timed calls (`fit(lr, key)` and `many(seed)`, blocked until done)."""
    X, y = make_data(cfg["n"])
    lrs = np.geomspace(1e-3, 1.0, cfg["members"])
    common = dict(epochs=cfg["epochs"], batch_size=cfg["batch"])

    def shuffle(seed):
        key = jax.random.key(seed)
        return dict(keys=jax.random.split(key, len(lrs))) if member_keys else dict(key=key)

    def fit(lr, key):
        r = jaxgd.fit(example_loss, zeros(X.shape[1]), (X, y), optimizer=lr, key=key, **common)
        return jax.block_until_ready(r)

    def many(seed):
        s = jaxgd.sweep(
            example_loss, zeros(X.shape[1]), (X, y), learning_rates=lrs, **shuffle(seed), **common
        )
        return jax.block_until_ready(s)

    return lrs, shuffle, fit, many


def _agreement(lrs, shuffle, fit, s, member_keys) -> dict:
    """The member of sweep result `s` nearest `LR` against `fit` with its learning rate and key."""
    member = int(np.argmin(np.abs(np.log(lrs / LR))))
    r = fit(float(lrs[member]), shuffle(0)["keys"][member] if member_keys else jax.random.key(0))
    pairs = zip(
        jax.tree.leaves((s.member(member).params, s.member(member).losses)),
        jax.tree.leaves((r.params, r.losses)),
        strict=True,
    )
    worst = float(max(np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in pairs))
    return dict(member=member, lr=float(lrs[member]), max_abs_diff=worst, ok=worst <= 1e-5)


def time_sweep(cfg: dict, repeats: int, say=print, member_keys: bool = False) -> dict:
    """Interleaved timings of one `jaxgd.fit` and one `jaxgd.sweep` over `cfg["members"]`
    learning rates (`geomspace(1e-3, 1, K)`, which holds `LR`), both with their host checks,
    default options (`eval_train=True`), NumPy data in, `cfg["epochs"]` epochs of batches of
    `cfg["batch"]` reshuffled by a key (one shared by the members, or one each with
    `member_keys`). Every repeat times each side once, in turn first, after a call of each that
    compiles. Also checks that the member whose learning rate is nearest `LR` equals `fit` with
    that learning rate and key (issue 6: within 1e-5).

    Returns:
      `{"times": {"fit": summary, "sweep": summary}` (ms per call), `"ratio"` (of the medians),
      `"spread"` (min-max), `"agreement"`, and the sizes.
    """
    lrs, shuffle, fit, many = _sides(cfg, member_keys)
    agreement = _agreement(lrs, shuffle, fit, many(0), member_keys)  # many(0) compiles.
    sides = {"fit": lambda seed: fit(LR, jax.random.key(seed)), "sweep": many}
    sides["fit"](0)  # Warms up (a new learning rate value does not recompile).
    seconds, names = {name: [] for name in sides}, list(sides)
    for rep in range(repeats):
        for name in names[rep % 2 :] + names[: rep % 2]:  # Who goes first alternates.
            start = time.perf_counter()
            sides[name](rep + 1)
            seconds[name].append(time.perf_counter() - start)
    times = {name: summary(v) for name, v in seconds.items()}
    ratio = times["sweep"]["median_ms"] / times["fit"]["median_ms"]
    spread = (
        times["sweep"]["min_ms"] / times["fit"]["max_ms"],
        times["sweep"]["max_ms"] / times["fit"]["min_ms"],
    )
    say(
        f"  sweep   {len(lrs)} learning rates {times['sweep']['median_ms']:8.2f} ms, one fit "
        f"{times['fit']['median_ms']:.2f} ms: ratio {ratio:.2f}x; member {agreement['member']} "
        f"against fit: max |diff| {agreement['max_abs_diff']:.1e} "
        f"({'ok' if agreement['ok'] else 'DISAGREE'})"
    )
    return dict(
        times=times,
        ratio=ratio,
        spread=spread,
        members=len(lrs),
        n=cfg["n"],
        batch=cfg["batch"],
        epochs=cfg["epochs"],
        member_keys=member_keys,
        agreement=agreement,
    )


def main(argv=None) -> int:
    """Prints one line: both medians, their ratio with its spread, and the member's agreement."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sweep_case", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--members", type=int, default=64)  # Learning rates in the sweep.
    parser.add_argument("--epochs", type=int, default=5)  # Passes over the 10 000 examples.
    parser.add_argument("--repeats", type=int, default=21)  # Interleaved timed calls per side.
    parser.add_argument("--member-keys", action="store_true")  # One shuffle per member.
    args = parser.parse_args(argv)
    cfg = dict(SIZES["full"]["sweep"], members=args.members, epochs=args.epochs)
    out = time_sweep(cfg, args.repeats, say=lambda *a: None, member_keys=args.member_keys)
    t, ratio, (lo, hi) = out["times"], out["ratio"], out["spread"]
    print(
        f"sweep: {args.members} learning rates {t['sweep']['median_ms']:.1f} ms, one run "
        f"{t['fit']['median_ms']:.1f} ms (medians of {args.repeats}), ratio {ratio:.2f}x "
        f"[{lo:.2f}-{hi:.2f}] (goal <= 8x: {'met' if ratio <= 8 else 'MISSED'}; n={cfg['n']} "
        f"d=20 batch {cfg['batch']} shuffled{' per member' if args.member_keys else ''}, "
        f"{args.epochs} epochs, {jax.devices()[0].platform}; member agrees with fit: "
        f"{out['agreement']['ok']})"
    )
    return 0 if out["agreement"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
