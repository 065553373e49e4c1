"""The notebooks' sliders, driven from Python: values in, figure and compile count out."""

import re
import sys

import jax
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import _svg, data, interactive

# --------------------------------------------------------------------------- by hand


def test_quadratic_by_hand_against_numpy():
    x, y = data.quadratic_data()
    fit = interactive.quadratic_by_hand(a=3.0, b=2.0, c=1.0)
    expected = np.abs(3 * x.astype(np.float64) ** 2 + 2 * x + 1 - y).mean()
    assert fit.mae == pytest.approx(expected, rel=1e-6)
    g = fit.grid.astype(np.float64)
    np.testing.assert_allclose(fit.curve, 3 * g**2 + 2 * g + 1, rtol=1e-6)
    assert round(interactive.quadratic_by_hand(a=1.1, b=1.1, c=1.1).mae, 4) == 2.4219


def test_relu_by_hand_against_numpy():
    x, y = data.quadratic_data()
    fit = interactive.relu_by_hand(m1=-2.0, b1=0.5, m2=3.0, b2=-1.0)
    f = lambda v: np.maximum(-2 * v + 0.5, 0) + np.maximum(3 * v - 1, 0)
    assert fit.mae == pytest.approx(np.abs(f(x.astype(np.float64)) - y).mean(), rel=1e-6)
    np.testing.assert_allclose(fit.curve, f(fit.grid.astype(np.float64)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: interactive.quadratic_by_hand(a=6.0, b=0, c=0), ValueError,
         r"`a` must be in \[-5.0, 5.0\] \(the slider's range\); got 6.0"),
        (lambda: interactive.quadratic_by_hand(a=0, b=float("nan"), c=0), ValueError, "`b` must be in"),
        (lambda: interactive.relu_by_hand(m1=0, b1=0, m2="1", b2=0), TypeError,
         "`m2` must be a number; got str '1'"),
        (lambda: interactive.quadratic_by_hand(a=True, b=0, c=0), TypeError, "`a` must be a number"),
    ],
)  # fmt: skip
def test_hand_values_outside_the_sliders_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_hand_sliders_redraw_the_curve_and_the_mae():
    panel = interactive.hand_sliders("quadratic")
    assert "MAE 2.4219" in panel.plot.value and panel.status.value == "mean absolute error 2.4219"
    before = panel.plot.value
    panel.sliders["a"].value = 3.0  # moved from Python as a hand would
    fit = interactive.quadratic_by_hand(a=3.0, b=1.1, c=1.1)
    assert panel.plot.value != before and f"MAE {fit.mae:.4f}" in panel.plot.value
    panel.sliders["c"].value = 99.0  # past the end: the slider stops at its bound
    assert panel.values()["c"] == interactive.BOUNDS["c"][1]
    relu = interactive.hand_sliders("relu")
    assert set(relu.sliders) == {"m1", "b1", "m2", "b2"}
    with pytest.raises(ValueError, match="`kind` must be 'quadratic' or 'relu'; got 'cubic'"):
        interactive.hand_sliders("cubic")


# --------------------------------------------------------------------------- live training


def _reference(problem, *, lr, momentum, batch_size, epochs):
    """The same run through a fresh `optax.sgd` object: what `live_train` must equal."""
    return jaxgd.fit(problem.example_loss, problem.params, problem.data, epochs=epochs,
                     optimizer=optax.sgd(lr, momentum=momentum), batch_size=batch_size,
                     key=jax.random.key(0))  # fmt: skip


@pytest.mark.parametrize("name", ["quadratic", "relu"])
def test_live_train_equals_fit_with_optax_sgd(name):
    problem = interactive.live_problem(name)
    run = interactive.live_train(problem, learning_rate=0.01, batch_size=5, momentum=0.9,
                                 epochs=10)  # fmt: skip
    ref = _reference(problem, lr=0.01, momentum=0.9, batch_size=5, epochs=10)
    np.testing.assert_allclose(run.batch_loss, np.asarray(ref.losses).ravel(), rtol=1e-5)
    np.testing.assert_allclose(run.epoch_loss, ref.train_loss, rtol=1e-5)
    curve = jax.vmap(problem.predict, (None, 0))(ref.params, run.grid)
    np.testing.assert_allclose(run.curve, curve, rtol=1e-5, atol=1e-5)
    assert run.updates_per_epoch == 4 and run.diverged_epoch is None and run.message == ""


def test_a_diverging_learning_rate_is_reported_on_the_plot_not_raised():
    problem = interactive.live_problem()
    run = interactive.live_train(problem, learning_rate=1.0, batch_size=20, momentum=0.0,
                                 epochs=50)  # fmt: skip
    ref = jaxgd.fit(problem.example_loss, problem.params, problem.data, epochs=50,
                    optimizer=1.0, batch_size=20, key=jax.random.key(0))  # fmt: skip
    assert bool(ref.diverged) and run.diverged_epoch == int(ref.diverged_epoch)
    assert run.message == f"diverged at epoch {int(ref.diverged_epoch)}"
    svg = interactive.live_figure(problem, run)
    assert re.search(r'class="note"[^>]*>diverged at epoch \d+</text>', svg)
    assert np.isnan(run.epoch_loss[-1]) and np.isfinite(run.curve).all()


def test_live_values_outside_the_sliders_are_refused():
    problem = interactive.live_problem()
    good = dict(learning_rate=0.01, batch_size=5, momentum=0.0, epochs=10)
    for bad, error, match in [
        ({"learning_rate": 2.0}, ValueError, r"`learning_rate` must be in \[0.0001, 1.0\]"),
        ({"learning_rate": -0.1}, ValueError, "got -0.1"),
        ({"momentum": 1.5}, ValueError, r"`momentum` must be in \[0.0, 1.0\]"),
        ({"batch_size": 21}, ValueError, r"`batch_size` must be in \[1, 20\]; got 21"),
        ({"batch_size": 2.0}, TypeError, "`batch_size` must be an int; got float 2.0"),
        ({"epochs": 0}, ValueError, r"`epochs` must be in \[1, 500\]; got 0"),
    ]:
        with pytest.raises(error, match=match):
            interactive.live_train(problem, **{**good, **bad})
    with pytest.raises(ValueError, match="`name` must be 'quadratic' or 'relu'; got 'mnist'"):
        interactive.live_problem("mnist")


def test_live_sliders_retrain_on_every_move_and_compile_only_for_new_shapes():
    panel = interactive.live_sliders("quadratic")
    lr, momentum, batch = (panel.sliders[k] for k in ("learning_rate", "momentum", "batch_size"))
    assert (lr.min, lr.max) == (-4, 0) and (momentum.min, momentum.max) == (0.0, 1.0)
    assert tuple(batch.options) == interactive.BATCH_SIZES
    shown = [panel.plot.value]
    with interactive.compile_counter() as compiled:
        for value in (0.001, 0.003, 0.02, 0.05):
            lr.value = value
            shown.append(panel.plot.value)
        for value in (0.3, 0.6, 0.9):
            momentum.value = value
            shown.append(panel.plot.value)
    assert len(compiled) == 0, "a new learning rate or momentum must not compile"
    assert len(set(shown)) == len(shown), "every move redraws a different plot"
    assert len(panel.moves) == 8
    with interactive.compile_counter() as compiled:
        batch.value = 10
    assert len(compiled) >= 1  # a new batch size is a new program (once)
    with interactive.compile_counter() as compiled:
        batch.value = 5
        lr.value = 0.01
    assert len(compiled) == 0  # ...and the old one is still cached
    lr.value = 1.0  # far too large with momentum 0.9
    assert "diverged at epoch" in panel.status.value and "diverged at epoch" in panel.plot.value


def test_a_new_optax_object_per_move_would_compile_each_time():
    """Why the live sliders keep one `inject_hyperparams` object: the alternative, a fresh
    `optax.sgd(lr, momentum=m)` per move, compiles a new program for every move."""
    problem = interactive.live_problem()
    with interactive.compile_counter() as compiled:
        for m in (0.1, 0.2):
            _reference(problem, lr=0.01, momentum=m, batch_size=5, epochs=10)
    assert len(compiled) >= 2


def test_svg_lines_break_at_non_finite_values():
    path = _svg._path(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, np.nan, 2.0, 3.0]))
    assert path == "M0.0 1.0M2.0 2.0L3.0 3.0"
    assert _svg._ticks(1e-3, 1e3, True) == [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0][::2]
    assert _svg._ticks(-2.1, 2.1, False) == [-2.0, 0.0, 2.0]  # steps of 1, 2 or 5 times 10**k
    assert _svg._ticks(0.0, 50.0, False) == [0.0, 20.0, 40.0]


def test_sliders_without_ipywidgets_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    for make in (interactive.hand_sliders, interactive.live_sliders):
        with pytest.raises(ImportError, match=re.escape('pip install ".[notebooks]"')):
            make()
    assert interactive.quadratic_by_hand(a=1.0, b=1.0, c=1.0).mae > 0  # the logic needs none
