"""Fresh-process probe: the first `fit` (trace, compile, run) against a second one with a new
learning rate and key (run only), default options, on the benchmark's data at n.

    python -m benchmarks.probe_first_fit N BATCH EPOCHS    # prints one JSON line
"""

import json
import sys
import time

import jax
import numpy as np

import jaxgd
from benchmarks.compiles import count_compiles
from benchmarks.task import example_loss, make_data


def _timed_fit(data, lr: float, seed: int, batch: int, epochs: int) -> float:
    params = dict(w=np.zeros(20, np.float32), b=np.float32(0))
    start = time.perf_counter()
    key = jax.random.key(seed)
    r = jaxgd.fit(
        example_loss, params, data, epochs=epochs, optimizer=lr, batch_size=batch, key=key
    )
    jax.block_until_ready(r.params)
    return time.perf_counter() - start


def main(n: int, batch: int, epochs: int) -> None:
    data = make_data(n)
    with count_compiles() as compiles:
        first = _timed_fit(data, 0.1, 0, batch, epochs)
        n_first, xla_first = len(compiles), sum(compiles)
        second = _timed_fit(data, 0.2, 1, batch, epochs)
    print(
        json.dumps(
            dict(
                first_s=first,
                second_s=second,
                compile_s=first - second,
                xla_compiles=n_first,
                xla_compile_s=xla_first,
                run_xla_s=max(compiles),
                n=n,
                batch=batch,
                epochs=epochs,
            )
        )
    )


if __name__ == "__main__":
    main(*map(int, sys.argv[1:4]))
