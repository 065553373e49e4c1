"""What checkpoints cost: seconds per epoch of `fit` on the benchmark's mini-batch case with and
without `checkpoint=`, and (with --orbax, where orbax-checkpoint is installed) the storage
jaxgd chose against orbax-checkpoint's on the same saved state.

    python -m benchmarks.checkpoint_overhead                  # mini-batch 32, n=1e4, 50 epochs a call
    python -m benchmarks.checkpoint_overhead --case mb1024    # mini-batch 1024, n=1e6, 4 epochs
    python -m benchmarks.checkpoint_overhead --orbax          # also orbax-checkpoint's import and save

The variants run in rounds, each round every variant once in a rotated order, so that a slow
spell of a shared machine falls on all of them; each gets a fresh checkpoint directory (a
directory holding the finished run would resume it and train nothing). Printed: each variant's
median seconds per epoch with its min-max spread, and the differences of the medians.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import jaxgd
from benchmarks.cases import SIZES
from benchmarks.task import LR, example_loss, make_data, zeros
from jaxgd.loop import checkpoint

VARIANTS = {
    "one call": dict(),
    "1 epoch a call": dict(epochs_per_call=1),
    "1 epoch a call, checkpoint": dict(epochs_per_call=1, checkpoint=True),
    "default chunk, checkpoint": dict(checkpoint=True),
}


def _fit(X, y, case: dict, options: dict, root: Path, i: int) -> float:
    """Seconds of one `fit` call of the case (blocked until done)."""
    options = dict(options)
    if options.pop("checkpoint", False):
        options["checkpoint"] = root / f"run{i}"
    start = time.perf_counter()
    r = jaxgd.fit(example_loss, zeros(X.shape[1]), (X, y), epochs=case["epochs"], optimizer=LR,
                  batch_size=case["batch"], key=jax.random.key(0), eval_train=False, **options)  # fmt: skip
    jax.block_until_ready(r.params)
    seconds = time.perf_counter() - start
    shutil.rmtree(root / f"run{i}", ignore_errors=True)
    return seconds


def overhead(case_name: str, rounds: int, mode: str = "full") -> dict:
    """Seconds per epoch of each variant: median, min, max over `rounds` interleaved rounds, at
    the case's size in `mode` ("full"; "smoke" for a seconds-long check)."""
    case = SIZES[mode]["cases"][case_name]
    X, y = make_data(case["n"])
    root = Path(tempfile.mkdtemp(prefix="jaxgd-ckpt-bench-"))
    try:
        for options in VARIANTS.values():  # Compiles each variant's program once.
            _fit(X, y, case, options, root, -1)
        times = {name: [] for name in VARIANTS}
        names = list(VARIANTS)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                times[name].append(_fit(X, y, case, VARIANTS[name], root, r) / case["epochs"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = {
        name: dict(median=statistics.median(t), min=min(t), max=max(t)) for name, t in times.items()
    }
    med = {name: v["median"] for name, v in out.items()}
    out["checkpoint every epoch, minus 1 epoch a call"] = (
        med["1 epoch a call, checkpoint"] - med["1 epoch a call"]
    )
    out["checkpoint every epoch, minus one call"] = (
        med["1 epoch a call, checkpoint"] - med["one call"]
    )
    out["default chunk with checkpoint, minus one call"] = (
        med["default chunk, checkpoint"] - med["one call"]
    )
    return dict(case=case_name, n=case["n"], batch=case["batch"], epochs=case["epochs"],
                rounds=rounds, seconds_per_epoch=out)  # fmt: skip


def _state(case_name: str):
    """What a checkpoint of the case holds: params, an empty optimizer state, the run's scalars
    and a history of `epochs` rows of losses."""
    case = SIZES["full"]["cases"][case_name]
    updates = -(-case["n"] // case["batch"])
    leaves = [np.zeros(20, np.float32), np.zeros((), np.float32), np.zeros(2, np.int32)]
    return leaves + [np.zeros((case["epochs"], updates), np.float32)]


def orbax_against_npz(case_name: str, repeats: int = 9) -> dict:
    """orbax-checkpoint's import time (after jax, fresh process) and its save (StandardCheckpointer,
    waited for) against jaxgd's atomic .npz write of the same arrays, in ms."""
    code = "import time, jax; t = time.perf_counter(); import orbax.checkpoint; print(time.perf_counter() - t)"  # fmt: skip
    imports = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout) for _ in range(3)]  # fmt: skip
    import orbax.checkpoint as ocp

    leaves = _state(case_name)
    tree = {f"leaf_{i}": a for i, a in enumerate(leaves)}
    root = Path(tempfile.mkdtemp(prefix="jaxgd-ckpt-bench-"))
    saver, ours, theirs = ocp.StandardCheckpointer(), [], []
    try:
        for i in range(repeats):
            start = time.perf_counter()
            saver.save(root / f"orbax{i}", tree)
            saver.wait_until_finished()
            theirs.append(time.perf_counter() - start)
            start = time.perf_counter()
            manifest = dict(format=checkpoint.FORMAT, version=checkpoint.VERSION)
            checkpoint._write(root / f"ckpt-{i:08d}.npz", checkpoint._encode(manifest, tree))
            ours.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ms = lambda t: dict(median=1e3 * statistics.median(t), min=1e3 * min(t), max=1e3 * max(t))
    return dict(orbax_import_s=imports, orbax_save_ms=ms(theirs), npz_save_ms=ms(ours))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="mb32", choices=["mb32", "mb1024"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--orbax", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: a seconds-long check")
    args = parser.parse_args(argv)
    out = overhead(args.case, args.rounds, "smoke" if args.smoke else "full")
    if args.orbax:
        out["storage"] = orbax_against_npz(args.case)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
