"""The whole benchmark as a function (`run`) and as a command (`main`, `python -m benchmarks`).

One run times, side by side, one epoch of logistic regression (float32, d = 20) by `jaxgd.fit`
on NumPy arrays (`eval_train=False`: the others do not evaluate either), an idiomatic PyTorch
eager loop, a jitted JAX step called from a Python loop, and (full batch) NumPy; reports medians
with their spread and the ratios issue 5 sets goals for; checks that they all reach the same
loss; and adds where a shuffled epoch goes, `sweep` against `fit`, recompilations, the first
`fit`'s compile time, peak memory and import time (fresh processes), streamed runs, and how
epoch time grows with n and d. The XLA:CPU option `--xla-small-while-loop-bytes N` is an
explicit opt-in: jaxgd never sets it, and the harness only sets it in a separate process.
"""

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax

from benchmarks import probes, streaming
from benchmarks.anatomy import anatomy
from benchmarks.cases import SIZES, goal_rows
from benchmarks.compiles import recompiles
from benchmarks.defaults import defaults
from benchmarks.growth import growth, plot_growth
from benchmarks.report import key_ratios, report
from benchmarks.sweep_case import time_sweep
from benchmarks.task import LR
from benchmarks.timing import check_agreement, time_cases

PLOT = "benchmarks/growth.png"  # Where the growth plot goes, relative to --out.


def machine() -> dict:
    """The CPU, core count, system and library versions, and XLA_FLAGS."""
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = dict(
        cpu=cpu,
        cores=os.cpu_count(),
        system=platform.platform(),
        python=platform.python_version(),
        jax=jax.__version__,
        numpy=np.__version__,
        optax=optax.__version__,
        XLA_FLAGS=os.environ.get("XLA_FLAGS", ""),
    )
    with contextlib.suppress(ImportError):
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def _epoch_sections(out, chosen, sizes, repeats, cases, say):
    """Agreement, the interleaved epoch times, anatomy, sweep, and the goal ratios, into `out`."""
    reps = out["repeats"]
    out["agreement"] = {}
    for case, cfg in chosen.items():
        a = out["agreement"][case] = check_agreement(case, cfg)
        say(
            f"  agreement {case}: max relative difference {a['max_rel_diff']:.1e} "
            f"({'ok' if a['ok'] else 'DISAGREE'})"
        )
    counts = {case: repeats or cfg.get("repeats", reps) for case, cfg in chosen.items()}
    out["times"] = time_cases(chosen, counts, blocks=sizes["blocks"], say=say)
    timed = dict(out["times"])
    if "mb1024" in chosen:
        out["anatomy"] = anatomy(chosen["mb1024"], reps, say=say)
    if cases is None or "sweep" in cases:
        out["sweep"] = time_sweep(sizes["sweep"], repeats or sizes["sweep"]["repeats"], say=say)
        timed["sweep"] = out["sweep"]["times"]
    out["goals"] = goal_rows(timed)


def _fresh_process_sections(out, chosen, sizes, xla_small_while_loop_bytes):
    """First-fit compile time, peak memory, import time, and the opt-in XLA flag, into `out`."""
    out["compile"] = probes.first_fit_compile(sizes["cases"]["sgd"]["n"], sizes["import_repeats"])
    out["memory"] = probes.peak_memory(sizes["memory_n"], sizes["import_repeats"])
    out["imports"] = probes.import_times(sizes["import_repeats"])
    if xla_small_while_loop_bytes is not None:
        opt_cases = {k: chosen[k] for k in ("sgd", "mb32") if k in chosen}
        out["small_while_loops"] = probes.small_while_loops(
            xla_small_while_loop_bytes, opt_cases, out["repeats"]
        )


def run(
    *,
    quick=False,
    smoke=False,
    repeats=None,
    cases=None,
    growth_sweep=True,
    fresh_processes=True,
    xla_small_while_loop_bytes=None,
    streamed=True,
    with_defaults=True,
    say=print,
) -> dict:
    """The whole benchmark; returns a JSON-ready dict (see `benchmarks.report` for the Markdown).

    Args:
      quick: fewer repeats and a smaller growth sweep.
      smoke: tiny sizes (seconds): checks the harness, not the speed.
      repeats: override the number of interleaved repeats per case.
      cases: a subset of "sgd", "mb32", "full", "mb1024" and "sweep" (default all).
      growth_sweep: measure epoch time against n and d.
      fresh_processes: measure import time, first-fit compile time and peak memory in
        subprocesses (each starts Python and JAX: a few seconds).
      xla_small_while_loop_bytes: opt in to timing jaxgd's SGD and batch-32 rows once more in a
        fresh process with `--xla_cpu_small_while_loop_byte_threshold=<this>` in XLA_FLAGS.
      streamed: measure streamed runs (`benchmarks.streaming`), which write a memmap of up to
        4 GB to a temporary folder.
      with_defaults: time `fit` as a user calls it (`benchmarks.defaults`, issue 14): defaults,
        few epochs a call, against PyTorch, NumPy, scikit-learn and a C loop.
      say: progress printer (`lambda *a: None` for silence).

    Returns:
      `{"machine", "sizes", "times", "anatomy", "sweep", "goals", "defaults", "agreement", "recompiles",
      "compile", "memory", "imports", "small_while_loops", "streaming", "growth", "seconds"}`
      and the run's settings; a section that did not run is absent.
    """
    start = time.perf_counter()
    mode = "smoke" if smoke else "quick" if quick else "full"
    sizes = SIZES[mode]
    chosen = {k: v for k, v in sizes["cases"].items() if cases is None or k in cases}
    out = dict(
        mode=mode,
        machine=machine(),
        sizes=dict(chosen),
        repeats=repeats or sizes["repeats"],
        lr=LR,
        blocks=sizes["blocks"],
        load_before=os.getloadavg(),
    )
    say(f"jaxgd benchmarks ({mode}): {out['machine']['cpu']}, {out['machine']['cores']} cores")
    _epoch_sections(out, chosen, sizes, repeats, cases, say)
    if with_defaults:
        out["defaults"] = defaults(
            sizes["defaults"], blocks=sizes["blocks"], fresh_processes=fresh_processes, say=say
        )
    out["recompiles"] = recompiles(sizes["cases"]["mb32"]["n"])
    if fresh_processes:
        _fresh_process_sections(out, chosen, sizes, xla_small_while_loop_bytes)
    if growth_sweep:
        out["growth"] = growth(sizes, say=say)
    if streamed:
        out["streaming"] = streaming.run(mode, say=say)
    out["load_after"] = os.getloadavg()
    out["seconds"] = time.perf_counter() - start
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer repeats, smaller growth sweep")
    size.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness only")
    parser.add_argument("--repeats", type=int, help="interleaved repeats per case")
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=sorted([*SIZES["full"]["cases"], "sweep"]),
        help="a subset of the cases",
    )
    parser.add_argument("--no-growth", action="store_true", help="skip the n and d sweep")
    parser.add_argument(
        "--no-defaults",
        action="store_true",
        help="skip the section that times fit with its defaults (issue 14)",
    )
    parser.add_argument(
        "--no-streaming",
        action="store_true",
        help="skip the streamed runs (they write a 4 GB memmap to a temp folder)",
    )
    parser.add_argument(
        "--no-subprocesses",
        action="store_true",
        help="skip import time, first-fit compile time and peak memory",
    )
    parser.add_argument(
        "--xla-small-while-loop-bytes",
        type=int,
        metavar="N",
        help="opt in: time the SGD and batch-32 rows again in a separate process "
        "with XLA_FLAGS=--xla_cpu_small_while_loop_byte_threshold=N",
    )
    parser.add_argument(
        "--out", default=".", help=f"folder for BENCHMARKS.md and {PLOT} (default .)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    return parser


def _write(result: dict, command: str, out: Path, no_write: bool) -> None:
    """BENCHMARKS.md and the growth plot under `out`, or the report printed with `no_write`."""
    plot = PLOT if "growth" in result else None
    text = report(result, command, plot)
    if no_write:
        print(text)
        return
    out.mkdir(parents=True, exist_ok=True)
    if plot:
        plot_growth(result["growth"], out / plot)
    (out / "BENCHMARKS.md").write_text(text)
    print(f"wrote {out / 'BENCHMARKS.md'}" + (f" and {out / plot}" if plot else ""))


def _agrees(result: dict) -> bool:
    """Whether every implementation, the streamed run and the sweep's member agreed."""
    agree = all(a["ok"] for a in result["agreement"].values())
    agree = agree and result.get("streaming", {}).get("times", {}).get("same_params", True)
    return agree and result.get("sweep", {}).get("agreement", {}).get("ok", True)


def main(argv=None) -> int:
    """`python -m benchmarks [--quick | --smoke] [--out DIR] ...`: `run`, then the report.

    Returns 0, or 1 when the implementations disagree.
    """
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    result = run(
        quick=args.quick,
        smoke=args.smoke,
        repeats=args.repeats,
        cases=args.cases,
        growth_sweep=not args.no_growth,
        fresh_processes=not args.no_subprocesses,
        xla_small_while_loop_bytes=args.xla_small_while_loop_bytes,
        streamed=not args.no_streaming,
        with_defaults=not args.no_defaults,
    )
    _write(result, " ".join(["python -m benchmarks", *argv]), Path(args.out), args.no_write)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    if result["mode"] == "smoke":
        print("Smoke sizes: the ratios below check the harness, not the goals.")
    print(key_ratios(result))
    return 0 if _agrees(result) else 1
