"""Measurements that need a fresh process: import time, the first `fit`'s compile time, peak
memory, and the opt-in XLA flag. Each runs a `benchmarks.probe_*` module with
`python -m`, whose last line of output is JSON."""

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # The checkout: `benchmarks` and `jaxgd` live here.


def run_probe(module: str, *args, env=None, timeout=600):
    """Runs `python -m benchmarks.<module> *args` from the checkout; its last stdout line as
    JSON, or `{"error": the last lines of its stderr}`."""
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *map(str, args)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=timeout
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        tail = [re.sub(r"^[FEW]\d{4} [\d:.]+\s+\d+ \S+\] ", "", line) for line in tail]  # glog
        return {"error": " | ".join(tail)[-400:] or f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def import_times(repeats: int) -> dict:
    """Seconds to `import jaxgd` and to `import jax, optax`, each in fresh processes, interleaved."""
    seconds = {"jaxgd": [], "jax, optax": []}
    for _ in range(repeats):
        for mods in seconds:
            out = run_probe("probe_import", *mods.split(", "))
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


def first_fit_compile(n: int, repeats: int = 1, *, batch: int = 1, epochs: int = 5) -> dict:
    """Fresh processes (`probe_first_fit`): the first `fit` (traces, compiles, runs) against a
    second one with a new learning rate and key: the median of `repeats` processes."""
    runs = [run_probe("probe_first_fit", n, batch, epochs) for _ in range(repeats)]
    return _median_of(runs, "compile_s")


def peak_memory(n: int, repeats: int = 1) -> dict:
    """Fresh processes (`probe_memory`): peak resident memory of a shuffled mini-batch 1024 run
    at n against the data's bytes, the median of `repeats` processes, and issue 5's limit."""
    out = _median_of([run_probe("probe_memory", n) for _ in range(repeats)], "peak_mib")
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
    out = run_probe("probe_small_while", json.dumps(cases), repeats, env=env)
    return dict(flag=flag, results=out)
