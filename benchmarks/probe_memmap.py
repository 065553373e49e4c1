"""Fresh-process probe: one epoch of `fit` (default options, mini-batches, reshuffled) on an
`np.memmap`, and the process's peak memory: its own (anonymous pages, sampled every 2 ms) and
VmHWM (which also counts the memmap's pages mapped in while rows are gathered: page cache).

    python -m benchmarks.probe_memmap X_PATH Y_PATH N BATCH    # prints one JSON line (bytes)
"""

import json
import sys
import threading
import time


def status() -> dict:
    """VmHWM, RssAnon and RssFile of this process, in bytes."""
    with open("/proc/self/status") as f:
        text = f.read()
    return {
        k: int(text.split(k + ":")[1].split()[0]) * 1024 for k in ("VmHWM", "RssAnon", "RssFile")
    }


def _sample(peak: list) -> None:
    while True:
        peak[0] = max(peak[0], status()["RssAnon"])
        time.sleep(0.002)


def main(x_path: str, y_path: str, n: int, batch: int) -> None:
    peak = [0]
    threading.Thread(target=_sample, args=(peak,), daemon=True).start()  # Before the imports.
    import jax

    import jaxgd
    from benchmarks.streaming import open_memmap
    from benchmarks.task import example_loss, zeros

    X, y = open_memmap((x_path, y_path), n)
    before = status()
    start = time.perf_counter()
    r = jaxgd.fit(
        example_loss,
        zeros(X.shape[1]),
        (X, y),
        epochs=1,
        optimizer=0.1,
        batch_size=batch,
        key=jax.random.key(0),
    )
    jax.block_until_ready(r.params)
    seconds = time.perf_counter() - start
    time.sleep(0.01)
    end = status()
    print(
        json.dumps(
            dict(
                anon_peak=max(peak[0], end["RssAnon"]),
                vmhwm=end["VmHWM"],
                memmap_pages=end["RssFile"] - before["RssFile"],
                seconds=seconds,
                data_bytes=X.nbytes + y.nbytes,
                train_loss=float(r.train_loss[0]),
                diverged=bool(r.diverged),
            )
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
