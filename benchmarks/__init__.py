"""The benchmark harness: `jaxgd.fit` against the training loops people write by hand.

Run it from a checkout (it is not part of the installed package):

    python -m benchmarks                 # full run (a few minutes on 2 cores): BENCHMARKS.md + plot
    python -m benchmarks --quick         # fewer repeats, a smaller growth sweep
    python -m benchmarks --smoke --out /tmp/b    # tiny sizes: checks that the harness works

One module per concept: `task` (the problem and jaxgd's runner), `peers` (PyTorch, a
jit-per-step JAX loop, NumPy), `cases` (sizes and goals), `timing` (interleaved timings and the
agreement check), `anatomy`, `sweep_case`, `streaming`, `growth`, `compiles` (recompilations),
`probes` (fresh-process measurements, each a `probe_*` module), `report` (BENCHMARKS.md, one
function per section) and `harness` (`run` and the command line).

This file imports nothing, so that `python -m benchmarks.probe_import` times imports from a
clean process.
"""
