"""What every experiment shares: atomic result files, headless plots and an optional progress bar.

* `save` writes the PNGs and `results.json` so that an interruption (Ctrl-C) leaves complete files
  or none: every figure is rendered in memory first, then all files are written, each through a
  temporary file and an atomic rename, with SIGINT held back until the last one is in place.
* `prepare_out_dir` checks that the output folder can be written before any training starts.
* `fit` is `jaxgd.fit` plus the progress reporter that the `jaxgd` command installs with
  `reporting` when it shows a progress bar: the run then goes in compiled chunks of epochs and
  reports between them (which also lets Ctrl-C stop it between chunks). Without a reporter it
  is exactly `jaxgd.fit`: one compiled program.
"""

import contextlib
import contextvars
import io
import json
import math
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "to_json",
    "atomic_write_bytes",
    "prepare_out_dir",
    "save",
    "pyplot",
    "figure_dpi",
    "reporting",
    "fit",
    "timed_fit",
]

DPI = 80  # Resolution of the saved PNGs; `figure_dpi` changes it (the gallery uses 70).
_dpi = contextvars.ContextVar("jaxgd_figure_dpi", default=DPI)
# A progress reporter factory: `factory(label, total_epochs) -> (update(epochs_done), close())`.
_reporter = contextvars.ContextVar("jaxgd_progress_reporter", default=None)
CHUNKS = 10  # With a reporter, a run is cut into about this many compiled chunks of epochs.


def to_json(value):
    """Converts arrays and NumPy/JAX scalars inside `value` to plain Python for JSON."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        return to_json(arr.tolist()) if arr.ndim else to_json(arr.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` so that the file is either complete or absent (rename is atomic)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_out_dir(out_dir) -> Path | None:
    """Creates `out_dir` if needed and checks that a file can be written there.

    Call it before training, so that a bad `--out` fails in a second, not after the run.

    Args:
      out_dir: a folder path, or None (nothing will be written).

    Returns:
      The folder as a `Path`, or None.

    Raises:
      OSError: `out_dir` cannot be created or written; the message names it and the reason.

    Examples:
      >>> import pathlib, tempfile
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     print(prepare_out_dir(pathlib.Path(tmp) / "a" / "b").is_dir())
      True
    """
    if out_dir is None:
        return None
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".jaxgd-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise OSError(
            err.errno,
            f"cannot write results to {os.fspath(out)!r} ({reason}); choose another folder",
        ) from None
    return out


@contextlib.contextmanager
def _sigint_held():
    """Holds SIGINT back until the block ends (main thread only), then raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def save(out_dir, results: dict, figures: dict | None = None) -> dict:
    """Writes each figure as `<name>.png` and then `results.json` into `out_dir`, atomically.

    The figures are rendered in memory first; then every file is written through a temporary
    file and a rename, with Ctrl-C held back until all are in place: an interrupted `save`
    leaves the previous files or all the new ones, never a partial file.

    Args:
      out_dir: the folder (created if needed), or None to write nothing.
      results: JSON-ready results (arrays are converted).
      figures: `{name: matplotlib Figure}`; each is closed after rendering.

    Returns:
      `results` converted to plain Python, with `"files"` listing what was written.
    """
    results = to_json(results)
    figures = dict(figures or {})
    if out_dir is None:
        for fig in figures.values():
            _close(fig)
        return results
    out = prepare_out_dir(out_dir)
    rendered = {}
    for name, fig in figures.items():
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=_dpi.get(), bbox_inches="tight")
        finally:
            _close(fig)
        rendered[f"{name}.png"] = buffer.getvalue()
    results["files"] = list(rendered) + ["results.json"]
    rendered["results.json"] = json.dumps(results, indent=2).encode()
    with _sigint_held():
        for name, data in rendered.items():  # results.json last: its presence means "complete".
            atomic_write_bytes(out / name, data)
    return results


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (a clear ImportError without the extra)."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install "jaxgd[plot]"') from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def figure_dpi(dpi: int):
    """Saves figures at `dpi` inside the block (the gallery's small PNGs)."""
    token = _dpi.set(dpi)
    try:
        yield
    finally:
        _dpi.reset(token)


@contextlib.contextmanager
def reporting(factory: Callable | None):
    """Installs a progress reporter for every `fit` inside the block.

    Args:
      factory: `factory(label, total_epochs)` returning `(update, close)`: `update(epochs_done)`
        is called after each compiled chunk, `close()` once at the end. None: no reporter, and
        `fit` is exactly `jaxgd.fit`.
    """
    token = _reporter.set(factory)
    try:
        yield
    finally:
        _reporter.reset(token)


def _refuse_zero_epochs(options: dict) -> None:
    """`jaxgd.fit` allows 0 epochs; an experiment reports its last epoch, so it needs one."""
    if options.get("epochs") == 0 and not isinstance(options.get("epochs"), bool):
        raise ValueError(
            "`epochs` must be >= 1 in an experiment, got 0: its tables and plots report the "
            "last epoch. Use --quick for the smallest run."
        )


def fit(example_loss, params, data, *, label: str = "fit", callback=None, **options):
    """`jaxgd.fit`, reporting progress between compiled chunks when a reporter is installed.

    Args:
      example_loss, params, data: as `jaxgd.fit`.
      label: what the progress bar says.
      callback: an extra `callback(epochs_done, result)`, as `jaxgd.fit`'s.
      **options: the keyword arguments of `jaxgd.fit` (`epochs`, `optimizer`, ...).

    Returns:
      `jaxgd.fit`'s `FitResult`: the same numbers with or without a reporter.
    """
    import jaxgd

    _refuse_zero_epochs(options)
    factory = _reporter.get()
    epochs = options.get("epochs")
    if factory is None or not isinstance(epochs, int) or epochs < 1:
        if callback is not None:
            options.setdefault("epochs_per_call", epochs)
        return jaxgd.fit(example_loss, params, data, callback=callback, **options)
    update, close = factory(label, epochs)
    if options.get("epochs_per_call") is None:
        options["epochs_per_call"] = max(1, math.ceil(epochs / CHUNKS))

    def report(done, result):
        update(done)
        if callback is not None:
            callback(done, result)

    try:
        return jaxgd.fit(example_loss, params, data, callback=report, **options)
    finally:
        close()


def timed_fit(example_loss, params, data, **options):
    """Runs `jaxgd.fit` twice and returns the second run's result and its wall time per epoch.

    The first call compiles the program (and runs it); the second, identical call is timed, so
    the times are running time only. The run is one compiled program in which every epoch does
    the same work, so the time at the end of epoch e is taken as `total * (e + 1) / epochs`.

    Returns:
      `(FitResult, times)` with `times` of shape (epochs,): seconds from the start of the run to
      the end of each epoch.
    """
    import time

    import jax

    import jaxgd

    _refuse_zero_epochs(options)
    jax.block_until_ready(jaxgd.fit(example_loss, params, data, **options))  # compiles
    start = time.perf_counter()
    result = jax.block_until_ready(jaxgd.fit(example_loss, params, data, **options))
    seconds = time.perf_counter() - start
    epochs = result.losses.shape[0]
    return result, seconds * np.arange(1, epochs + 1) / max(epochs, 1)
