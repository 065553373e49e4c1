"""Streamed runs in the benchmark harness (issue 7): epoch time against the in-memory run, and
the memory of a run on an `np.memmap` larger than the goal allows the process to hold.

Called by `jaxgd bench` (`jaxgd.bench.run`); on its own:

    python -m jaxgd.bench_stream [--quick | --smoke]

* Epoch time: the same shuffled mini-batch run (logistic regression, float32, d = 20, batch
  1024, `eval_train=False`) on data that fits, once in memory (`fit` on NumPy arrays) and once
  streamed from an `np.memmap` of the same numbers; interleaved, repeated, medians. Both runs
  must end with the same params.
* Memory: a fresh process trains one epoch (default options) on a memmap of `memory_gb` GB
  (4 GB in full mode) and reports its peak memory. Two figures: the peak of its own memory
  (anonymous pages: Python, JAX, XLA, the buffers), sampled every 2 ms; and VmHWM, the peak
  resident set, which also counts the memmap's pages that the kernel maps in while rows are
  gathered. Those are the file's page cache, shared and dropped by the kernel under pressure:
  they are not memory the run holds, and the goal is on the former.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

__all__ = ["run", "report_lines", "write_memmap"]

GOAL_RATIO = 1.5  # Streamed epoch / in-memory epoch on data that fits.
GOAL_MEMORY_MB = 1000  # Peak memory (MB = 10^6 bytes) of a run on the big memmap.

_SIZES = {
    "full": dict(n=1_000_000, epochs=3, repeats=5, memory_gb=4.0),
    "quick": dict(n=1_000_000, epochs=2, repeats=3, memory_gb=1.0),
    "smoke": dict(n=20_000, epochs=2, repeats=1, memory_gb=0.01),
}
_D, _BATCH = 20, 1024


def write_memmap(folder: Path, n: int, d: int = _D, seed: int = 0, block: int = 1_000_000):
    """Writes `jaxgd.bench.make_data`-like data, block by block, to `folder`/X.f32 and y.f32;
    returns the paths. Never holds more than a block in memory."""
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


def _open(paths, n: int, d: int = _D):
    X = np.memmap(paths[0], np.float32, "r", shape=(n, d))
    y = np.memmap(paths[1], np.float32, "r", shape=(n,))
    return X, y


def epoch_times(folder: Path, n: int, epochs: int, repeats: int) -> dict:
    """In memory against streamed from a memmap: median seconds per epoch, and agreement."""
    import jax

    import jaxgd
    from jaxgd import bench

    paths = write_memmap(folder, n)
    streamed = _open(paths, n)
    in_memory = np.array(streamed[0]), np.array(streamed[1])

    def fit(data, stream):
        r = jaxgd.fit(bench.example_loss, bench._zeros(_D), data, epochs=epochs, optimizer=0.1,
                      batch_size=_BATCH, key=jax.random.key(0), eval_train=False, stream=stream)  # fmt: skip
        return jax.block_until_ready(r.params)

    runs = {"in memory": lambda: fit(in_memory, False), "streamed": lambda: fit(streamed, None)}
    finals = {name: run() for name, run in runs.items()}  # Compile and warm up.
    same = all(
        np.array_equal(finals["in memory"][k], finals["streamed"][k]) for k in finals["in memory"]
    )
    seconds = {name: [] for name in runs}
    for _ in range(repeats):  # Interleaved: the machine's noise hits both alike.
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append((time.perf_counter() - start) / epochs)
    med = {name: float(np.median(s)) for name, s in seconds.items()}
    return dict(
        n=n, epochs=epochs, batch=_BATCH, seconds=seconds, median_s=med, same_params=same,
        ratio=med["streamed"] / med["in memory"],
        spread=(min(seconds["streamed"]) / max(seconds["in memory"]),
                max(seconds["streamed"]) / min(seconds["in memory"])),
    )  # fmt: skip


_MEMORY_CODE = """
import json, sys, threading, time
import numpy as np

def status():
    text = open("/proc/self/status").read()
    return {k: int(text.split(k + ":")[1].split()[0]) * 1024 for k in ("VmHWM", "RssAnon", "RssFile")}

peak = [0]
def sample():  # The process's own memory (anonymous pages), every 2 ms.
    while True:
        peak[0] = max(peak[0], status()["RssAnon"])
        time.sleep(0.002)

threading.Thread(target=sample, daemon=True).start()
import jax, jaxgd
from jaxgd import bench, bench_stream
n = N_EXAMPLES
X, y = bench_stream._open((X_PATH, Y_PATH), n)
before = status()
start = time.perf_counter()
r = jaxgd.fit(bench.example_loss, bench._zeros(X.shape[1]), (X, y), epochs=1, optimizer=0.1,
              batch_size=BATCH, key=jax.random.key(0))
jax.block_until_ready(r.params)
seconds = time.perf_counter() - start
time.sleep(0.01)
end = status()
print(json.dumps(dict(anon_peak=max(peak[0], end["RssAnon"]), vmhwm=end["VmHWM"],
                      memmap_pages=end["RssFile"] - before["RssFile"], seconds=seconds, data_bytes=X.nbytes + y.nbytes,
                      train_loss=float(r.train_loss[0]), diverged=bool(r.diverged))))
"""


def peak_memory(folder: Path, gb: float) -> dict:
    """A fresh process trains one epoch on a memmap of `gb` GB; its peak memory."""
    n = int(gb * 1e9) // (4 * _D)
    paths = write_memmap(folder, n)
    code = _MEMORY_CODE
    for name, value in (("N_EXAMPLES", n), ("X_PATH", repr(str(paths[0]))),
                        ("Y_PATH", repr(str(paths[1]))), ("BATCH", _BATCH)):  # fmt: skip
        code = code.replace(name, str(value))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1])]
                                                       + sys.path))  # fmt: skip
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=1800)  # fmt: skip
    for p in paths:
        p.unlink()
    if done.returncode:
        return dict(error=done.stderr.strip().splitlines()[-1:], n=n)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out.update(n=n, ok=out["anon_peak"] < GOAL_MEMORY_MB * 1e6)
    return out


def run(mode: str = "full", say=print) -> dict:
    """Both measurements at `mode`'s sizes ("full", "quick" or "smoke")."""
    sizes = _SIZES[mode]
    with tempfile.TemporaryDirectory(prefix="jaxgd-stream-") as tmp:
        say(f"  streaming: epoch time at n = {sizes['n']:,} (in memory against a memmap)")
        (Path(tmp) / "fits").mkdir()
        (Path(tmp) / "big").mkdir()
        times = epoch_times(Path(tmp) / "fits", sizes["n"], sizes["epochs"], sizes["repeats"])
        say(f"  streaming: peak memory of one epoch on a {sizes['memory_gb']:g} GB memmap")
        memory = peak_memory(Path(tmp) / "big", sizes["memory_gb"])
    return dict(mode=mode, times=times, memory=memory)


def goal_rows(result: dict) -> list:
    """Rows for the harness's goals table: (case, goal, measured, spread, met)."""
    t, mem = result["times"], result["memory"]
    n = f"{t['n']:.0e}".replace("e+0", "e").replace("e+", "e")
    rows = [(f"streamed / in-memory epoch, mini-batch {t['batch']}, n={n} (from an np.memmap)",
             f"≤ {GOAL_RATIO:g}×", f"**{t['ratio']:.2f}×**",
             f"{t['spread'][0]:.2f}×–{t['spread'][1]:.2f}×",
             t["ratio"] <= GOAL_RATIO and t["same_params"])]  # fmt: skip
    if "error" not in mem:
        rows.append((f"peak memory of one epoch on a {mem['data_bytes'] / 1e9:.1f} GB memmap "
                     "(the process's own pages)", f"< {GOAL_MEMORY_MB / 1000:g} GB",
                     f"**{mem['anon_peak'] / 1e6:,.0f} MB**", "", mem["ok"]))  # fmt: skip
    return rows


def report_lines(result: dict) -> list:
    """The section of BENCHMARKS.md on streamed runs."""
    t, mem = result["times"], result["memory"]
    med = t["median_s"]
    lines = [
        "## Streaming data from the host (issue 7)",
        "",
        f"* Epoch time, shuffled mini-batch {t['batch']}, n = {t['n']:,}, d = {_D}, "
        f"`eval_train=False`, {t['epochs']} epochs per `fit` call, medians of {len(t['seconds']['streamed'])} "
        f"interleaved calls: in memory (NumPy arrays) {med['in memory'] * 1e3:.1f} ms, streamed "
        f"from an `np.memmap` of the same numbers {med['streamed'] * 1e3:.1f} ms: ratio "
        f"{t['ratio']:.2f}× (goal ≤ {GOAL_RATIO:g}). Final params "
        + ("identical." if t["same_params"] else "DIFFERENT."),
    ]  # fmt: skip
    if "error" in mem:
        lines.append(f"* Peak memory on a memmap: failed: {mem['error']}")
    else:
        lines.append(
            f"* One epoch (default options: mini-batch {_BATCH}, reshuffled, the training loss "
            f"evaluated) on an `np.memmap` of {mem['data_bytes'] / 1e9:.2f} GB (n = {mem['n']:,}) "
            f"in a fresh process took {mem['seconds']:.1f} s. Peak of the process's own memory "
            f"(anonymous pages, sampled every 2 ms): **{mem['anon_peak'] / 1e6:,.0f} MB** (goal "
            f"< {GOAL_MEMORY_MB / 1000:g} GB). Peak resident set (VmHWM): "
            f"{mem['vmhwm'] / 1e6:,.0f} MB, which also counts the memmap's pages mapped in while "
            f"rows were gathered ({mem['memmap_pages'] / 1e6:,.0f} MB of them at the end): "
            "page cache, which the kernel drops under pressure, not memory the run holds."
        )  # fmt: skip
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxgd.bench_stream",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a 1 GB memmap, fewer repeats")
    size.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness only")
    args = parser.parse_args(argv)
    result = run("smoke" if args.smoke else "quick" if args.quick else "full")
    print("\n".join(report_lines(result)))
    return 0 if all(row[-1] for row in goal_rows(result)) or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
