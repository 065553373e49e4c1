"""`jaxgd.lr_find` against fastai's own `Learner.lr_find`, on the same problems.

Both sides start from the same weights (jaxgd's copied into torch), read the same full batches in
stored order (fastai: `shuffle=False, drop_last=True`), take plain SGD steps (fastai's `SGD`,
no momentum, no weight decay) on the mean binary cross-entropy with logits, and run fastai's
defaults (1e-7 to 10 over 100 steps, smoothing 0.98, stop at 4x). Compared: the learning rates,
the raw and smoothed losses, where the test stops, and each of fastai's four suggestions.

fastai installs without torchvision and spaCy, which it never imports on this path (see the
README's test command); run `python tests/test_lr_find_fastai.py` for the side-by-side table.
"""

import functools
import os
import sys
import tempfile
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.data import synthetic_logistic

torch = pytest.importorskip("torch")
with warnings.catch_warnings():
    # fastai's import meets its dependencies' deprecations (torch.jit.script, a pandas option);
    # ignored during the import only, as `pytest.importorskip` does.
    warnings.simplefilter("ignore")
    if os.environ.get("CI"):
        import fastai.callback.schedule  # noqa: F401  In CI a missing fastai fails, never skips.
    fastai = pytest.importorskip("fastai.callback.schedule", reason="pip install --no-deps fastai")

RULES = ("valley", "slide", "minimum", "steep")
BATCH = 32  # 256 examples: 8 full batches an epoch, 13 epochs for 100 steps.
GUARD_AT = 0.3  # The NaN and inf cases' loss turns non-finite once a first-layer weight passes it.


class Case(NamedTuple):
    """A range test to run in both libraries."""

    name: str  # how the test and the table call it
    hidden: int  # hidden units (0: logistic regression)
    scale: float  # the features are multiplied by it (the larger, the sooner it diverges)
    max_lr: float  # the end of the grid
    guard: str | None  # "nan" or "inf": the loss becomes that once a weight passes GUARD_AT


CASES = [
    Case("converging", hidden=0, scale=1.0, max_lr=0.1, guard=None),  # runs all 100 steps
    Case("diverging", hidden=8, scale=8.0, max_lr=10.0, guard=None),  # stops at 4x
    Case("nan", hidden=0, scale=1.0, max_lr=10.0, guard="nan"),  # trains on through NaN
    Case("inf", hidden=0, scale=1.0, max_lr=10.0, guard="inf"),  # stops at the first inf
]


def problem(case: Case):
    X, y = synthetic_logistic(n=256, d=5, seed=3)
    return case.scale * X, y


def init(case: Case):
    """jaxgd params: logistic regression (w, b), or an MLP d -> hidden -> 1 with ReLU."""
    k1, k2 = jax.random.split(jax.random.key(7))
    d = 5
    if not case.hidden:
        return {"w": 0.1 * jax.random.normal(k1, (d,)), "b": jnp.zeros(())}
    return {
        "W1": jax.random.normal(k1, (d, case.hidden)) / np.sqrt(d),
        "b1": jnp.zeros(case.hidden),
        "w2": jax.random.normal(k2, (case.hidden,)) / np.sqrt(case.hidden),
        "b2": jnp.zeros(()),
    }


def logit(params, x):
    if "w" in params:
        return x @ params["w"] + params["b"]
    return jax.nn.relu(x @ params["W1"] + params["b1"]) @ params["w2"] + params["b2"]


def guard_term(guard, size, np_):
    """0 while the largest first-layer weight `size` is below GUARD_AT, then NaN or inf (the
    log of a negative number, or a jump), in either library (`np_` is jnp or torch)."""
    if guard == "nan":
        return 0.0 * np_.log(GUARD_AT - size)
    return np_.where(size > GUARD_AT, np_.inf, 0.0)


def example_loss(params, x, y, *, guard: str | None):
    z = logit(params, x)
    loss = jnp.logaddexp(0.0, z) - y * z
    if guard:
        first = params["w"] if "w" in params else params["W1"]
        loss = loss + guard_term(guard, jnp.max(jnp.abs(first)), jnp)
    return loss


class TorchModel(torch.nn.Module):
    """The same model in torch, from jaxgd's params (copied)."""

    def __init__(self, params):
        super().__init__()
        copy = lambda a: torch.nn.Parameter(torch.tensor(np.array(a)))
        self.names = sorted(params)
        for name in self.names:
            setattr(self, name, copy(params[name]))

    def forward(self, x):
        if "w" in self.names:
            return x @ self.w + self.b
        return torch.relu(x @ self.W1 + self.b1) @ self.w2 + self.b2

    def first(self):
        return self.w if "w" in self.names else self.W1


def run_fastai(case: Case, params, X, y):
    """fastai's `lr_find` on the case: (lrs, raw losses, smoothed losses, suggestions)."""
    from fastai.callback.schedule import minimum, slide, steep, valley
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.learner import Learner
    from fastai.optimizer import SGD

    data = list(zip(torch.tensor(X), torch.tensor(y), strict=True))
    loader = functools.partial(DataLoader, bs=BATCH, shuffle=False, drop_last=True, num_workers=0)
    dls = DataLoaders(loader(data), loader(data[:BATCH]), device="cpu")
    raw, model = [], TorchModel(params)

    def loss_func(z, t):  # each batch's loss kept as fastai computes it
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t)
        if case.guard:
            loss = loss + guard_term(case.guard, model.first().abs().max(), torch)
        raw.append(loss.item())
        return loss

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # NumPy 2 deprecations inside fastai: its reload of the model after the test reads
        # `numpy.core`, and its `slide` passes a torch tensor to `np.log10`.
        warnings.filterwarnings("ignore", "numpy.core is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "__array_wrap__ must accept", DeprecationWarning)
        learn = Learner(dls, model, loss_func=loss_func,
                        opt_func=functools.partial(SGD, mom=0.0, wd=0.0), path=tmp)  # fmt: skip
        with learn.no_bar():
            found = learn.lr_find(end_lr=case.max_lr, show_plot=False,
                                  suggest_funcs=(valley, slide, minimum, steep))  # fmt: skip
    lrs = np.array(learn.recorder.lrs)
    smooth = np.array([float(v) for v in learn.recorder.losses], np.float32)
    return lrs, np.array(raw[: len(lrs)], np.float32), smooth, found._asdict()


def run_jaxgd(case: Case, params, X, y):
    loss = functools.partial(example_loss, guard=case.guard)
    return jaxgd.lr_find(loss, params, (X, y), batch_size=BATCH, max_lr=case.max_lr)


def run_both(case: Case):
    X, y = problem(case)
    params = init(case)
    return run_jaxgd(case, params, X, y), run_fastai(case, params, X, y)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_lr_find_matches_fastai(case):
    ours, (lrs, raw, smooth, suggestions) = run_both(case)
    # Same length: both stop after the same step (or run all 100).
    assert len(ours.learning_rates) == len(lrs)
    np.testing.assert_allclose(ours.learning_rates, lrs, rtol=1e-6)
    np.testing.assert_allclose(ours.raw_losses, raw, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.losses, smooth, rtol=1e-5, atol=1e-7)
    assert np.isnan(ours.losses).sum() == np.isnan(smooth).sum()  # assert_allclose: NaN == NaN
    for rule in RULES:
        assert ours.suggestions[rule] == pytest.approx(suggestions[rule], rel=1e-6), rule
    assert ours.suggestion == ours.suggestions["valley"]  # fastai's default


def test_the_cases_are_what_they_say():
    converging, diverging, nan, inf = (run_jaxgd(c, init(c), *problem(c)) for c in CASES)
    assert len(converging.losses) == 100 and not converging.diverged
    assert len(diverging.losses) < 95 and diverging.diverged
    assert diverging.losses[-1] > 4 * diverging.losses.min() and np.isfinite(diverging.losses).all()
    first_nan = int(np.argmax(np.isnan(nan.losses)))
    assert len(nan.losses) == 100 and nan.diverged and 20 < first_nan < 90
    assert np.isfinite(nan.losses[:first_nan]).all() and np.isnan(nan.losses[first_nan:]).all()
    # The NaN cut leaves the window [10, first_nan): every suggestion comes from before it.
    assert all(v <= nan.learning_rates[first_nan - 1] for v in nan.suggestions.values())
    assert inf.diverged and np.isinf(inf.losses[-1]) and np.isfinite(inf.losses[:-1]).all()


def table() -> str:
    """The side-by-side suggestions, one row per case and rule."""
    lines = ["| case | steps (jaxgd / fastai) | rule | jaxgd | fastai |", "|---|---|---|---|---|"]
    for case in CASES:
        ours, (lrs, _, _, suggestions) = run_both(case)
        for rule in RULES:
            lines.append(
                f"| {case.name} | {len(ours.losses)} / {len(lrs)} | {rule} | "
                f"{ours.suggestions[rule]:.6g} | {suggestions[rule]:.6g} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    jax.config.update("jax_numpy_rank_promotion", "raise")
    print(table())
    sys.exit(0)
