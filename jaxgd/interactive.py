"""The notebooks' sliders: what each slider position shows, as functions you can test.

Two kinds of slider, as in fast.ai's "How does a neural net really work?" and beyond it:

* **By hand.** `quadratic_by_hand(a=, b=, c=)` and `relu_by_hand(m1=, b1=, m2=, b2=)` return
  the curve those values draw over course22's noisy quadratic data and its mean absolute error:
  the lesson's `@interact` sliders, before gradient descent takes over.
* **Live training.** `live_train(problem, learning_rate=, batch_size=, momentum=, epochs=)`
  re-runs the whole compiled `jaxgd.fit` and returns the loss curves and the fitted function.
  The learning rate and the momentum live in the optimizer's state
  (`optax.inject_hyperparams(optax.sgd)`, one object for every call), so moving them changes
  values, not the program: nothing recompiles. A new batch size or number of epochs compiles
  once per value (`fit`'s shapes change). A run that diverges is a result ("diverged at
  epoch k"), never an exception.

`hand_figure` and `live_figure` draw a result as SVG text (in well under a millisecond, where
matplotlib's PNG takes most of a slider move's budget); the widgets (`hand_sliders`,
`live_sliders`) wire sliders bounded to valid values to these functions. Only the widgets need
ipywidgets (`pip install ".[notebooks]"`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from jaxgd import _svg, data, losses, models
from jaxgd._monitor import count_compiles

__all__ = [
    "BOUNDS",
    "SliderPanel",
    "compile_counter",
    "HandFit",
    "hand_figure",
    "live_figure",
    "LiveProblem",
    "LiveRun",
    "hand_sliders",
    "live_problem",
    "live_sliders",
    "live_train",
    "quadratic_by_hand",
    "relu_by_hand",
]

# The range of every slider; the functions below refuse values outside it.
BOUNDS = {
    "a": (-5.0, 5.0),
    "b": (-5.0, 5.0),
    "c": (-5.0, 5.0),
    "m1": (-5.0, 5.0),
    "b1": (-5.0, 5.0),
    "m2": (-5.0, 5.0),
    "b2": (-5.0, 5.0),
    "learning_rate": (1e-4, 1.0),
    "momentum": (0.0, 1.0),  # 1.0 never forgets a gradient: course22's un-zeroed loop
    "epochs": (1, 500),
}
BATCH_SIZES = (1, 2, 5, 10, 20)  # the batch-size slider's stops (20 points: 20 is full batch)
EPOCHS = (10, 25, 50, 100, 200)  # the epochs slider's stops (each compiles once)
_GRID = np.linspace(-2.1, 2.1, 101, dtype=np.float32)  # where curves are drawn
# One optimizer object for every live run: its learning rate and momentum sit in its state.
_SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=0.0, momentum=0.0)


def _check_range(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a number; got {type(value).__name__} {value!r}.")
    low, high = BOUNDS[name]
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"`{name}` must be in [{low}, {high}] (the slider's range); got {value!r}."
        )
    return float(value)


# --------------------------------------------------------------------------- sliders by hand


class HandFit(NamedTuple):
    """What a hand slider shows: the data, the curve its values draw, and how far off it is."""

    x: np.ndarray  # shape=(20,): the data's inputs (course22's quadratic).
    y: np.ndarray  # shape=(20,): the data's noisy targets.
    grid: np.ndarray  # shape=(101,): inputs where the curve is drawn, -2.1 to 2.1.
    curve: np.ndarray  # shape=(101,): the function the sliders set, on `grid`.
    mae: float  # mean absolute error of that function on the data.


def _hand_fit(f: Callable) -> HandFit:
    x, y = data.quadratic_data()
    mae = float(losses.l1_loss(f(jnp.asarray(x)), jnp.asarray(y)))
    return HandFit(x, y, _GRID, np.asarray(f(jnp.asarray(_GRID))), mae)


def quadratic_by_hand(*, a: float, b: float, c: float) -> HandFit:
    """The quadratic `a x**2 + b x + c` over the noisy data, with its mean absolute error.

    Args:
      a, b, c: the coefficients, each in [-5, 5] (`BOUNDS`).

    Returns:
      A `HandFit`; `.mae` is the lesson's loss.

    Raises:
      TypeError, ValueError: a value is not a number or outside its slider's range.

    Examples:
      >>> round(quadratic_by_hand(a=1.1, b=1.1, c=1.1).mae, 4)  # the lesson's first guess
      2.4219
    """
    a, b, c = (_check_range(n, v) for n, v in (("a", a), ("b", b), ("c", c)))
    return _hand_fit(models.mk_quad(a, b, c))


def relu_by_hand(*, m1: float, b1: float, m2: float, b2: float) -> HandFit:
    """Two rectified lines `max(m1 x + b1, 0) + max(m2 x + b2, 0)` over the data, with their MAE.

    Args:
      m1, b1, m2, b2: slopes and intercepts, each in [-5, 5] (`BOUNDS`).

    Returns:
      A `HandFit`.

    Raises:
      TypeError, ValueError: a value is not a number or outside its slider's range.

    Examples:
      >>> fit = relu_by_hand(m1=-1.5, b1=1.5, m2=1.5, b2=1.5)
      >>> fit.curve.shape, round(float(fit.curve[50]), 2)  # at x = 0 both lines give 1.5
      ((101,), 3.0)
    """
    values = dict(m1=m1, b1=b1, m2=m2, b2=b2)
    m1, b1, m2, b2 = (_check_range(n, v) for n, v in values.items())
    return _hand_fit(lambda x: models.double_relu(m1, b1, m2, b2, x))


# --------------------------------------------------------------------------- live training


def _quad_mse(abc, x, y):
    """Squared error of ONE point under `a x**2 + b x + c` (`abc` of shape (3,))."""
    return losses.mse_loss(models.quad(abc[0], abc[1], abc[2], x), y)


def _quad_predict(abc, x):
    return models.quad(abc[0], abc[1], abc[2], x)


def _relu_mse(params, x, y):
    """Squared error of ONE point under a sum of rectified lines."""
    return losses.mse_loss(models.relu_sum(params, x), y)


class LiveProblem(NamedTuple):
    """A problem for the live sliders: its loss, model, starting point and data."""

    name: str  # "quadratic" or "relu".
    example_loss: Callable  # example_loss(params, x, y) -> scalar, for ONE point.
    predict: Callable  # predict(params, x) -> scalar, for ONE point.
    params: Any  # the initial params (a pytree of float32 arrays).
    curve: Callable  # curve(params, xs) -> predictions at every x of xs: `predict` vmapped, jitted.
    opt_state: Any  # _SGD's state for `params`, made once; each run replaces its hyperparams.
    data: tuple  # (x, y): float32 arrays of shape (20,).


def live_problem(name: str = "quadratic", *, k: int = 8, seed: int = 0) -> LiveProblem:
    """The live sliders' problems, both on course22's 20 noisy points, by squared error.

    "quadratic" fits `a x**2 + b x + c` from a = b = c = 1.1 (the lesson's start); "relu" fits
    a sum of `k` rectified lines from PyTorch's `nn.Linear` initialisation (`relu_sum_init`).

    Args:
      name: "quadratic" or "relu".
      k: rectified lines in the "relu" problem.
      seed: seed of the "relu" problem's initial params.

    Returns:
      A `LiveProblem`, to pass to `live_train` as often as you like.

    Raises:
      ValueError: `name` is not one of the two.

    Examples:
      >>> live_problem("quadratic").params.tolist()
      [1.100000023841858, 1.100000023841858, 1.100000023841858]
    """
    if name == "quadratic":
        loss, predict, params = _quad_mse, _quad_predict, jnp.full((3,), 1.1, jnp.float32)
    elif name == "relu":
        loss, predict = _relu_mse, models.relu_sum
        params = models.relu_sum_init(key=jax.random.key(seed), k=k)
    else:
        raise ValueError(f"`name` must be 'quadratic' or 'relu'; got {name!r}.")
    curve = jax.jit(jax.vmap(predict, (None, 0)))  # eager vmap would dispatch op by op each move
    return LiveProblem(name, loss, predict, params, curve, _SGD.init(params), data.quadratic_data())


class LiveRun(NamedTuple):
    """One live training run: what the plot shows and what it cost."""

    epoch_loss: np.ndarray  # shape=(epochs,): training loss after each epoch, NaN after divergence.
    batch_loss: (
        np.ndarray
    )  # shape=(epochs * updates_per_epoch,): each batch's loss before its step.
    updates_per_epoch: int  # batches per epoch, so `batch_loss` can be drawn against epochs.
    grid: np.ndarray  # shape=(101,): inputs where the fitted function is drawn.
    curve: np.ndarray  # shape=(101,): the fitted function (the last finite params).
    diverged_epoch: int | None  # the epoch (from 0) whose update went non-finite, or None.
    message: str  # "" or "diverged at epoch k": what the plot says.
    train_ms: float  # wall time of `jaxgd.fit` and reading its results back, in milliseconds.


def _check_choice(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"`{name}` must be in [{low}, {high}]; got {value}.")
    return int(value)


def live_train(
    problem: LiveProblem,
    *,
    learning_rate: float,
    batch_size: int,
    momentum: float,
    epochs: int,
    seed: int = 0,
) -> LiveRun:
    """Trains `problem` from its start with `jaxgd.fit` and returns what the live plot shows.

    SGD with momentum (`optax.sgd`, PyTorch's formula) through one `inject_hyperparams`
    object: a new `learning_rate` or `momentum` is a new value in the optimizer's state, so the
    compiled program is reused; a new `batch_size` or `epochs` compiles once per value, and the
    first run that diverges compiles the careful epoch that stops it, once.

    Args:
      problem: from `live_problem`.
      learning_rate: in [1e-4, 1].
      batch_size: 1 to n (20); n or more is full batch.
      momentum: in [0, 1]; 0 is plain gradient descent.
      epochs: in [1, 500].
      seed: seed of the shuffling key.

    Returns:
      A `LiveRun`. A diverging run is reported in `.diverged_epoch` and `.message`.

    Raises:
      TypeError, ValueError: a value is outside its slider's range.

    Examples:
      >>> run = live_train(live_problem(), learning_rate=0.01, batch_size=5, momentum=0.5, epochs=20)
      >>> run.epoch_loss.shape, run.batch_loss.shape, run.message
      ((20,), (80,), '')
      >>> live_train(live_problem(), learning_rate=0.5, batch_size=5, momentum=0.5, epochs=50).message
      'diverged at epoch 16'
    """
    lr = _check_range("learning_rate", learning_rate)
    m = _check_range("momentum", momentum)
    n = len(problem.data[0])
    batch_size = _check_choice("batch_size", batch_size, 1, n)
    epochs = _check_choice("epochs", epochs, *BOUNDS["epochs"])
    hyper = {"learning_rate": np.float32(lr), "momentum": np.float32(m)}
    state = problem.opt_state._replace(hyperparams=hyper)
    start = time.perf_counter()
    r = jaxgd.fit(problem.example_loss, problem.params, problem.data, epochs=epochs,
                  optimizer=_SGD, opt_state=state, batch_size=batch_size,
                  key=jax.random.key(seed))  # fmt: skip
    batch_loss, epoch_loss = np.asarray(r.losses), np.asarray(r.train_loss)
    curve = np.asarray(problem.curve(r.params, _GRID))
    train_ms = (time.perf_counter() - start) * 1e3
    diverged = int(r.diverged_epoch) if bool(r.diverged) else None
    message = "" if diverged is None else f"diverged at epoch {diverged}"
    return LiveRun(epoch_loss, batch_loss.reshape(-1), batch_loss.shape[1], _GRID, curve,
                   diverged, message, train_ms)  # fmt: skip


# --------------------------------------------------------------------------- drawing


def _y_range(*arrays: np.ndarray, log: bool) -> tuple[float, float]:
    values = np.concatenate([np.asarray(a, float).ravel() for a in arrays])
    values = values[np.isfinite(values) & ((values > 0) if log else True)]
    if not values.size:
        return (1e-3, 1.0) if log else (-1.0, 1.0)
    low, high = values.min(), values.max()
    if log:
        return low / 1.5, max(high * 1.5, low * 2)
    pad = max(high - low, 1e-6) * 0.08
    return low - pad, high + pad


def hand_figure(fit: HandFit, *, label: str = "your curve") -> str:
    """The hand sliders' plot as SVG: the data, the curve, and the MAE as its title.

    Examples:
      >>> svg = hand_figure(quadratic_by_hand(a=1.1, b=1.1, c=1.1))
      >>> "MAE 2.4219" in svg
      True
    """
    panel = _svg.Panel(
        (_svg.Series(fit.x, fit.y, "points", "data", "data"),
         _svg.Series(fit.grid, fit.curve, "line", "fit", label)),
        (float(fit.grid[0]), float(fit.grid[-1])), _y_range(fit.y, log=False),
        f"MAE {fit.mae:.4f}", "x",
    )  # fmt: skip
    return _svg.figure([panel])


def live_figure(problem: LiveProblem, run: LiveRun) -> str:
    """The live sliders' plot as SVG: data and fitted function left, losses right (log scale).

    A diverged run says so in the loss panel: "diverged at epoch k".

    Examples:
      >>> problem = live_problem()
      >>> run = live_train(problem, learning_rate=0.5, batch_size=5, momentum=0.5, epochs=50)
      >>> "diverged at epoch 16" in live_figure(problem, run)
      True
    """
    x, y = problem.data
    fit = _svg.Panel(
        (_svg.Series(x, y, "points", "data", "data"),
         _svg.Series(run.grid, run.curve, "line", "fit", "fitted")),
        (float(run.grid[0]), float(run.grid[-1])), _y_range(y, log=False),
        f"{problem.name}: the fitted function", "x",
    )  # fmt: skip
    epochs = len(run.epoch_loss)
    steps = np.arange(len(run.batch_loss)) / run.updates_per_epoch
    loss = _svg.Panel(
        (_svg.Series(steps, run.batch_loss, "line", "batch", "each batch"),
         _svg.Series(np.arange(1, epochs + 1), run.epoch_loss, "line", "epoch", "after each epoch")),
        (0.0, float(epochs)), _y_range(run.batch_loss, run.epoch_loss, log=True),
        "loss (MSE)", "epoch", log_y=True, note=run.message,
    )  # fmt: skip
    return _svg.figure([fit, loss])


# --------------------------------------------------------------------------- widgets


def _widgets():
    try:
        import ipywidgets
    except ImportError as err:
        raise ImportError(
            'the notebooks\' sliders need ipywidgets: pip install ".[notebooks]" '
            '(or "jaxgd[notebooks]") and restart the kernel.'
        ) from err
    return ipywidgets


@contextlib.contextmanager
def compile_counter():
    """Counts the XLA programs compiled inside the block (`jax.monitoring`'s compile event).

    Examples:
      >>> problem = live_problem()
      >>> _ = live_train(problem, learning_rate=0.01, batch_size=5, momentum=0.0, epochs=10)
      >>> with compile_counter() as compiled:
      ...     _ = live_train(problem, learning_rate=0.02, batch_size=5, momentum=0.9, epochs=10)
      >>> len(compiled)
      0
    """
    with count_compiles() as compiled:
        yield compiled


class SliderPanel:
    """Sliders, a plot and a status line; every move redraws. Display it as the cell's result.

    Attributes:
      box: the ipywidgets `VBox` shown in the notebook (CSS class `jaxgd-<kind>`).
      sliders: `{name: slider widget}`; setting `.value` from Python moves it like a hand.
      plot: the `HTML` widget holding the plot (SVG text).
      status: a `Label`: the loss (hand sliders) or the milliseconds of the last move.
      moves: `(train_ms, total_ms)` of every redraw so far: the training alone, and all the
        kernel's work for the move (training, drawing, handing the SVG to the widget).
    """

    def __init__(self, kind: str, sliders: dict, update: Callable[[dict], tuple[str, str, float]]):
        widgets = _widgets()
        self.sliders, self._update, self.moves = sliders, update, []
        self.plot = widgets.HTML()
        self.status = widgets.Label()
        self.status.add_class("jaxgd-status")
        self.plot.add_class("jaxgd-plot")
        controls = widgets.VBox(list(sliders.values()))
        self.box = widgets.VBox([widgets.HBox([controls, self.plot]), self.status])
        self.box.add_class(f"jaxgd-{kind}")
        for slider in sliders.values():
            slider.observe(self.redraw, names="value")
        self.redraw()

    def values(self) -> dict:
        """The sliders' current values by name."""
        return {name: slider.value for name, slider in self.sliders.items()}

    def redraw(self, change=None) -> None:
        """Runs the update for the sliders' values and shows the result."""
        start = time.perf_counter()
        svg, text, train_ms = self._update(self.values())
        self.plot.value = svg
        self.status.value = text
        self.moves.append((train_ms, (time.perf_counter() - start) * 1e3))

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)


def _float_slider(widgets, name: str, value: float, step: float = 0.1):
    low, high = BOUNDS[name]
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=name,
                               continuous_update=True, readout_format=".2f")  # fmt: skip


def hand_sliders(kind: str = "quadratic") -> SliderPanel:
    """The lesson's hand sliders: a, b, c of a quadratic, or two rectified lines, with the MAE.

    Args:
      kind: "quadratic" (a, b, c from 1.1) or "relu" (m1, b1, m2, b2).

    Returns:
      A `SliderPanel`; make it the last line of a cell to show it.

    Raises:
      ImportError: ipywidgets is missing (`pip install ".[notebooks]"`).
      ValueError: `kind` is not one of the two.
    """
    widgets = _widgets()
    if kind == "quadratic":
        start, by_hand = {"a": 1.1, "b": 1.1, "c": 1.1}, quadratic_by_hand
    elif kind == "relu":
        start, by_hand = {"m1": -1.5, "b1": -1.5, "m2": 1.5, "b2": -1.5}, relu_by_hand
    else:
        raise ValueError(f"`kind` must be 'quadratic' or 'relu'; got {kind!r}.")
    label = "a x² + b x + c" if kind == "quadratic" else "two rectified lines"
    sliders = {name: _float_slider(widgets, name, value) for name, value in start.items()}

    def update(values):
        fit = by_hand(**values)
        return hand_figure(fit, label=label), f"mean absolute error {fit.mae:.4f}", 0.0

    return SliderPanel(f"hand-{kind}", sliders, update)


def live_sliders(problem: str = "quadratic") -> SliderPanel:
    """Learning rate, batch size, momentum and epochs: every move re-runs the compiled `fit`.

    Args:
      problem: "quadratic" or "relu" (`live_problem`).

    Returns:
      A `SliderPanel` whose status line gives each move's training and drawing time.

    Raises:
      ImportError: ipywidgets is missing (`pip install ".[notebooks]"`).
      ValueError: `problem` is not one of the two.
    """
    widgets = _widgets()
    if problem not in ("quadratic", "relu"):
        raise ValueError(f"`problem` must be 'quadratic' or 'relu'; got {problem!r}.")
    task = live_problem(problem)
    low, high = BOUNDS["learning_rate"]
    sliders = {
        "learning_rate": widgets.FloatLogSlider(value=0.01, base=10, min=math.log10(low),
                                                max=math.log10(high), step=0.05,
                                                description="lr", readout_format=".4f"),
        "batch_size": widgets.SelectionSlider(options=BATCH_SIZES, value=5,
                                              description="batch", continuous_update=False),
        "momentum": _float_slider(widgets, "momentum", 0.0, step=0.05),
        "epochs": widgets.SelectionSlider(options=EPOCHS, value=50, description="epochs",
                                          continuous_update=False),
    }  # fmt: skip

    def update(values):
        run = live_train(task, **values)
        start = time.perf_counter()
        svg = live_figure(task, run)
        render_ms = (time.perf_counter() - start) * 1e3
        last = run.epoch_loss[np.isfinite(run.epoch_loss)]
        loss = f"loss {last[-1]:.4f}" if last.size else "no finite loss"
        text = (f"{run.message or loss} · trained in {run.train_ms:.1f} ms · "
                f"drawn in {render_ms:.1f} ms")  # fmt: skip
        return svg, text, run.train_ms

    return SliderPanel(f"live-{problem}", sliders, update)
