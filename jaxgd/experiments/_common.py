"""What every experiment shares: JSON-ready results, headless plots and an optional progress bar.

* An experiment's options are a dataclass of `_options.option(...)` fields (`_options`), and its
  result folder is reserved and written by `_output.results_folder` (complete or absent).
* `fit` is `jaxgd.fit` plus the progress reporter that the `jaxgd` command installs with
  `reporting` when it shows a progress bar: the run then goes in compiled chunks of epochs and
  reports between them (which also lets Ctrl-C stop it between chunks). Without a reporter it
  is exactly `jaxgd.fit`: one compiled program. Inside `checkpointing(DIR)` (`jaxgd run NAME
  --checkpoint DIR`) each run keeps checkpoints in `DIR/<its label>` and resumes from them.
"""

import contextlib
import contextvars
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "to_json",
    "pyplot",
    "close_figure",
    "figure_dpi",
    "figure_dpi_now",
    "reporting",
    "checkpointing",
    "fit",
    "timed_fit",
]

DPI = 80  # Resolution of the saved PNGs; `figure_dpi` changes it (the gallery uses 70).
_dpi = contextvars.ContextVar("jaxgd_figure_dpi", default=DPI)
# A progress reporter factory: `factory(label, total_epochs) -> (update(epochs_done), close())`.
_reporter = contextvars.ContextVar("jaxgd_progress_reporter", default=None)
CHUNKS = 10  # With a reporter, a run is cut into about this many compiled chunks of epochs.
# `(directory, [run directories used])`: where `fit` keeps checkpoints, one folder per label.
_checkpoints = contextvars.ContextVar("jaxgd_checkpoints", default=None)


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


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (a clear ImportError without the extra)."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install "jaxgd[plot]"') from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def close_figure(fig) -> None:
    """Closes a matplotlib figure (frees its memory; pyplot keeps every open figure)."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def figure_dpi_now() -> int:
    """The resolution figures are saved at: `DPI`, or what an enclosing `figure_dpi` set."""
    return _dpi.get()


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


@contextlib.contextmanager
def checkpointing(directory):
    """Every `fit` inside the block keeps checkpoints in `directory/<its label>` (`jaxgd.fit`'s
    `checkpoint`): run again, an interrupted run resumes and a finished one is not trained again.

    Yields:
      The list of run directories used so far (empty if no run of the block checkpoints).
    """
    used = []
    token = _checkpoints.set((Path(directory), used))
    try:
        yield used
    finally:
        _checkpoints.reset(token)


def _checkpoint_dir(label: str):
    """This run's checkpoint folder inside the installed one (None if none is installed)."""
    installed = _checkpoints.get()
    if installed is None:
        return None
    root, used = installed
    path = root / (re.sub(r"[^A-Za-z0-9.=-]+", "_", label).strip("_") or "fit")
    used.append(path)
    return path


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
    if "checkpoint" not in options and (path := _checkpoint_dir(label)) is not None:
        options["checkpoint"] = path
    factory = _reporter.get()
    epochs = options.get("epochs")
    if factory is None or not isinstance(epochs, int) or epochs < 1:
        if callback is not None and "checkpoint" not in options:
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
