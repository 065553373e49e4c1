"""Streamed runs (issue 7): epoch time against the in-memory run, and the memory of a run on an
`np.memmap` larger than the goal allows the process to hold.

* Epoch time: the same shuffled mini-batch run (batch 1024, `eval_train=False`) on data that
  fits, once in memory (`fit` on NumPy arrays) and once streamed from an `np.memmap` of the same
  numbers; interleaved, repeated, medians. Both runs must end with the same params.
* Memory: a fresh process (`benchmarks.probe_memmap`) trains one epoch (default options) on a
  memmap of `memory_gb` GB and reports the peak of its own memory (anonymous pages) and VmHWM,
  which also counts the memmap's page cache; the goal is on the former.

`python -m benchmarks.streaming` runs the epoch-time comparison alone.
"""

import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import jaxgd
from benchmarks.probes import run_probe
from benchmarks.task import example_loss, zeros

GOAL_RATIO = 1.5  # Streamed epoch / in-memory epoch on data that fits.
GOAL_MEMORY_MB = 1000  # Peak memory (MB = 10^6 bytes) of a run on the big memmap.
D, BATCH = 20, 1024

SIZES = {
    "full": dict(n=1_000_000, epochs=3, repeats=5, memory_gb=4.0),
    "quick": dict(n=1_000_000, epochs=2, repeats=3, memory_gb=1.0),
    "smoke": dict(n=20_000, epochs=2, repeats=1, memory_gb=0.01),
}


def write_memmap(folder: Path, n: int, d: int = D, seed: int = 0, block: int = 1_000_000):
    """Writes data like `benchmarks.task.make_data`'s, block by block, to `folder`/X.f32 and
    y.f32; returns the paths. Never holds more than a block in memory."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(d) / np.sqrt(d)).astype(np.float32)
    paths = folder / "X.f32", folder / "y.f32"
    with open(paths[0], "wb") as fx, open(paths[1], "wb") as fy:
        for start in range(0, n, block):
            X = rng.standard_normal((min(block, n - start), d), dtype=np.float32)
            noise = 0.5 * rng.standard_normal(len(X), dtype=np.float32)
            X.tofile(fx)
            (X @ w + noise > 0).astype(np.float32).tofile(fy)
    return paths


def open_memmap(paths, n: int, d: int = D):
    """The `(X, y)` memmaps (read-only) of `write_memmap`'s files."""
    X = np.memmap(paths[0], np.float32, "r", shape=(n, d))
    y = np.memmap(paths[1], np.float32, "r", shape=(n,))
    return X, y


def _fit(data, epochs: int, stream):
    r = jaxgd.fit(
        example_loss,
        zeros(D),
        data,
        epochs=epochs,
        optimizer=0.1,
        batch_size=BATCH,
        key=jax.random.key(0),
        eval_train=False,
        stream=stream,
    )
    return jax.block_until_ready(r.params)


def epoch_times(folder: Path, n: int, epochs: int, repeats: int) -> dict:
    """In memory against streamed from a memmap: seconds per epoch, medians, and agreement."""
    streamed = open_memmap(write_memmap(folder, n), n)
    in_memory = np.array(streamed[0]), np.array(streamed[1])
    runs = {
        "in memory": lambda: _fit(in_memory, epochs, False),
        "streamed": lambda: _fit(streamed, epochs, None),
    }
    finals = {name: run() for name, run in runs.items()}  # Compile and warm up.
    same = all(np.array_equal(a, finals["streamed"][k]) for k, a in finals["in memory"].items())
    seconds = {name: [] for name in runs}
    for _ in range(repeats):  # Interleaved: the machine's noise hits both alike.
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append((time.perf_counter() - start) / epochs)
    med = {name: float(np.median(s)) for name, s in seconds.items()}
    return dict(
        n=n,
        epochs=epochs,
        batch=BATCH,
        seconds=seconds,
        median_s=med,
        same_params=same,
        ratio=med["streamed"] / med["in memory"],
        spread=(
            min(seconds["streamed"]) / max(seconds["in memory"]),
            max(seconds["streamed"]) / min(seconds["in memory"]),
        ),
    )


def peak_memory(folder: Path, gb: float) -> dict:
    """A fresh process trains one epoch on a memmap of `gb` GB; its peak memory."""
    n = int(gb * 1e9) // (4 * D)
    paths = write_memmap(folder, n)
    out = run_probe("probe_memmap", paths[0], paths[1], n, BATCH, timeout=1800)
    for p in paths:
        p.unlink()
    if "error" in out:
        return dict(out, n=n)
    out.update(n=n, ok=out["anon_peak"] < GOAL_MEMORY_MB * 1e6)
    return out


def run(mode: str = "full", say=print) -> dict:
    """Both measurements at `mode`'s sizes ("full", "quick" or "smoke")."""
    sizes = SIZES[mode]
    with tempfile.TemporaryDirectory(prefix="jaxgd-stream-") as tmp:
        say(f"  streaming: epoch time at n = {sizes['n']:,} (in memory against a memmap)")
        (Path(tmp) / "fits").mkdir()
        (Path(tmp) / "big").mkdir()
        times = epoch_times(Path(tmp) / "fits", sizes["n"], sizes["epochs"], sizes["repeats"])
        say(f"  streaming: peak memory of one epoch on a {sizes['memory_gb']:g} GB memmap")
        memory = peak_memory(Path(tmp) / "big", sizes["memory_gb"])
    return dict(mode=mode, times=times, memory=memory)


def main() -> None:
    """`python -m benchmarks.streaming`: the epoch-time comparison alone, at the full sizes."""
    sizes = SIZES["full"]
    with tempfile.TemporaryDirectory(prefix="jaxgd-stream-") as tmp:
        t = epoch_times(Path(tmp), sizes["n"], sizes["epochs"], sizes["repeats"])
    ms = {k: [round(1e3 * s) for s in v] for k, v in t["seconds"].items()}
    print(
        f"ms per epoch: {ms}; streamed / in memory {t['ratio']:.2f}x, same params {t['same_params']}"
    )


if __name__ == "__main__":
    main()
