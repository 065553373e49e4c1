"""Fresh-process probe: peak resident memory (VmHWM) of a shuffled mini-batch 1024 `fit` of 3
epochs, default options, on the benchmark's NumPy data at n; also the resident memory after the
imports, with the data, and just before `fit` (its params and key made: JAX's first compiles),
so that `peak_mib - before_fit_mib` is what `fit` itself added.

    python -m benchmarks.probe_memory N    # prints one JSON line (MiB)
"""

import json
import resource
import sys

import jax

import jaxgd
from benchmarks.task import example_loss, make_data, zeros


def rss_mib() -> float:
    """This process's peak resident memory, VmHWM (ru_maxrss would keep the forking parent's)."""
    try:
        with open("/proc/self/status") as f:
            return int(f.read().split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n: int) -> None:
    imported = rss_mib()
    X, y = make_data(n)
    loaded = rss_mib()
    params, key = zeros(20), jax.random.key(0)
    before_fit = rss_mib()
    r = jaxgd.fit(example_loss, params, (X, y), epochs=3, optimizer=0.1, batch_size=1024, key=key)
    jax.block_until_ready(r.params)
    print(
        json.dumps(
            dict(
                imported_mib=imported,
                data_loaded_mib=loaded,
                before_fit_mib=before_fit,
                peak_mib=rss_mib(),
                data_mib=(X.nbytes + y.nbytes) / 2**20,
            )
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
