"""jaxgd against PyTorch, update for update: `jaxgd.compare`, lecture 3.6 and fast.ai's quadratic.

Every torch loop here is an ordinary one (torch.optim, DataLoader batches, `reduction="mean"`);
jaxgd gets the same initial parameters and the same per-epoch example orders.
"""

import copy
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import jaxgd
from jaxgd import compare as compare_mod
from jaxgd import losses, models
from jaxgd.compare import compare, compare_models, format_report
from jaxgd.data import load_toy, quadratic_data, standardize
from jaxgd.interop import from_torch

TOY = "perceptron_toydata-truncated.txt"

# Lecture 3.6's printed losses (logreg-part3.ipynb, `f"{loss:.2f}"`), 20 epochs x 2 batches.
LECTURE_36 = [0.67, 0.73, 0.67, 0.67, 0.60, 0.68, 0.69, 0.54, 0.61, 0.57, 0.59, 0.54, 0.51, 0.58,
              0.51, 0.54, 0.51, 0.49, 0.53, 0.44, 0.42, 0.52, 0.46, 0.44, 0.46, 0.42, 0.41, 0.43,
              0.43, 0.39, 0.41, 0.39, 0.38, 0.39, 0.44, 0.31, 0.34, 0.39, 0.33, 0.38]  # fmt: skip
# course22 "How does a neural net really work?": `print(f'step={i}; loss={loss:.2f}')`.
COURSE22 = [2.40, 2.36, 2.30, 2.21, 2.11, 1.98, 1.85, 1.72, 1.58, 1.46]


def _max_diff(a, b) -> float:
    return max(jax.tree.leaves(jax.tree.map(lambda u, v: float(np.max(np.abs(u - v))), a, b)))


# --------------------------------------------------------------------------- the toy-set matrix


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize(
    "batch_size, drop_last, updates",
    [(None, False, 1), (1, False, 20), (10, False, 2), (8, False, 3), (8, True, 2)],
    ids=["full", "sgd", "mini10", "ragged", "ragged-drop"],
)
def test_toy_set_matches_torch(shared_data, optimizer, batch_size, drop_last, updates):
    r = compare("logistic", path=shared_data / TOY, epochs=10, batch_size=batch_size,
                drop_last=drop_last, optimizer=optimizer)  # fmt: skip
    assert r.torch_losses.shape == r.jax_losses.shape == (10, updates)
    np.testing.assert_allclose(r.jax_losses, r.torch_losses, rtol=0, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-5),
                 r.jax_params, r.torch_params)  # fmt: skip
    assert r.ok and r.max_loss_diff <= 1e-5 and r.max_param_diff <= 1e-5
    if optimizer != "adam":  # identical formulas: only the summation order differs (a few ulps)
        assert r.max_loss_diff < 1e-6 and r.max_param_diff < 1e-6
    # The orders came from torch's RandomSampler: permutations, new every epoch.
    assert (np.sort(r.orders, axis=1) == np.arange(20)).all()
    assert len({tuple(o) for o in r.orders}) == 10


def test_adam_difference_is_optax_float32_bias_correction(shared_data):
    """optax computes 1 - b2**t in float32 from b2 = 0.999 rounded to float32 (1.3e-5 relative
    error); torch computes it in Python floats. With an accurate bias correction the float32
    difference falls to the level of SGD's."""
    one_minus_b2 = 1 / float(optax.tree.bias_correction(jnp.float32(1), 0.999, jnp.int32(1)))
    assert 1e-5 < 1 - one_minus_b2 / 0.001 < 2e-5  # torch: 1 - 0.999**1 == 0.001 (Python float)

    def adam_accurate(lr, b1=0.9, b2=0.999, eps=1e-8):
        def update(g, state, params=None):
            t, m, v = state
            t = t + 1
            m = jax.tree.map(lambda m, g: (1 - b1) * g + b1 * m, m, g)
            v = jax.tree.map(lambda v, g: (1 - b2) * g * g + b2 * v, v, g)
            bc1, bc2 = -jnp.expm1(t * math.log(b1)), -jnp.expm1(t * math.log(b2))  # 1 - b**t
            step = lambda m, v: -lr * (m / bc1) / (jnp.sqrt(v / bc2) + eps)
            return jax.tree.map(step, m, v), (t, m, v)

        zeros = lambda p: jax.tree.map(jnp.zeros_like, p)
        return optax.GradientTransformation(lambda p: (jnp.int32(0), zeros(p), zeros(p)), update)

    r = compare("logistic", path=shared_data / TOY, epochs=10, batch_size=1, optimizer="adam",
                lr=0.05)  # fmt: skip
    assert r.max_param_diff > 5e-6  # optax.adam: about 1e-5 after 200 steps at lr 0.05
    X, y = standardize(load_toy(shared_data / TOY)[0])[0], load_toy(shared_data / TOY)[1]
    loss = lambda p, x, t: losses.binary_cross_entropy(models.logistic_regression(p, x), t)
    fixed = jaxgd.fit(loss, r.init_params, (X, y), epochs=10, optimizer=adam_accurate(0.05),
                      batch_size=1, orders=r.orders)  # fmt: skip
    assert np.max(np.abs(fixed.losses - r.torch_losses)) < 1e-6
    assert _max_diff(jax.tree.map(np.asarray, fixed.params), r.torch_params) < 1e-6


def test_torch_dampening_skips_the_first_step():
    """torch's momentum buffer starts as g, not (1 - dampening) g (the module docstring's note)."""
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    seen = []
    for _ in range(2):
        opt.zero_grad()
        (w**2).sum().backward()  # g = 2 w
        opt.step()
        seen.append(w.item())
    # Step 1: buf = g = 2, w = 1 - 0.1 * 2 = 0.8 (no factor 1 - 0.5).
    # Step 2: g = 1.6, buf = 0.9 * 2 + 0.5 * 1.6 = 2.6, w = 0.8 - 0.26 = 0.54.
    assert seen == pytest.approx([0.8, 0.54])


# --------------------------------------------------------------------------- lecture 3.6


def test_lecture_3_6_reproduced(shared_data):
    """The lecture's cells as written (global seeding included); the DataLoader's orders are
    recorded by the Dataset, then replayed by jaxgd from torch's initial weights."""
    table = np.loadtxt(shared_data / TOY, skiprows=1)  # float64, as the lecture's pandas
    X_train, y_train = table[:, :2], table[:, 2]
    np.testing.assert_allclose(X_train.mean(axis=0), [0.7375, 0.3975], rtol=1e-12)
    np.testing.assert_allclose(X_train.std(axis=0), [1.06256706, 2.4824139], rtol=1e-8)
    X_train = (X_train - X_train.mean(axis=0)) / X_train.std(axis=0)  # population std (ddof=0)

    class LogisticRegression(torch.nn.Module):
        def __init__(self, num_features):
            super().__init__()
            self.linear = torch.nn.Linear(num_features, 1)

        def forward(self, x):
            logits = self.linear(x)
            probas = torch.sigmoid(logits)
            return probas

    class MyDataset(Dataset):
        def __init__(self, X, y):
            self.features = torch.tensor(X, dtype=torch.float32)
            self.labels = torch.tensor(y, dtype=torch.float32)
            self.seen = []  # added: the indices the DataLoader asked for, in order

        def __getitem__(self, index):
            self.seen.append(index)
            return self.features[index], self.labels[index]

        def __len__(self):
            return self.labels.shape[0]

    with torch.random.fork_rng():  # the lecture seeds the global RNG; restore it afterwards
        torch.manual_seed(1)
        model = LogisticRegression(num_features=2)
        train_ds = MyDataset(X_train, y_train)
        train_loader = DataLoader(dataset=train_ds, batch_size=10, shuffle=True)

        torch.manual_seed(1)
        model = LogisticRegression(num_features=2)
        init = from_torch(copy.deepcopy(model))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        torch_losses = []
        for _epoch in range(20):
            model = model.train()
            for features, class_labels in train_loader:
                probas = model(features)
                loss = F.binary_cross_entropy(probas, class_labels.view(probas.shape))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                torch_losses.append(loss.item())
        assert [round(v, 2) for v in torch_losses] == LECTURE_36
        with torch.no_grad():
            assert ((model(train_ds.features)[:, 0] > 0.5).float() == train_ds.labels).all()

    orders = np.array(train_ds.seen).reshape(20, 20)
    X_raw = load_toy(shared_data / TOY)[0]  # jaxgd's own loader and standardize
    example_loss = lambda p, x, t: losses.binary_cross_entropy(models.logistic_regression(p, x), t)
    accuracy = jaxgd.binary_accuracy(models.logistic_regression)
    result = jaxgd.fit(example_loss, init, (standardize(X_raw)[0], y_train), epochs=20,
                       optimizer=0.05, batch_size=10, orders=orders,
                       metrics={"accuracy": accuracy})  # fmt: skip
    assert result.losses.shape == (20, 2)
    np.testing.assert_allclose(result.losses.ravel(), torch_losses, rtol=1e-6, atol=1e-7)
    assert [round(float(v), 2) for v in result.losses.ravel()] == LECTURE_36
    assert _max_diff(jax.tree.map(np.asarray, result.params), from_torch(model)) < 1e-6
    assert float(result.train_metrics["accuracy"][-1]) == 1.0


# --------------------------------------------------------------------------- fast.ai's quadratic


def _course22_torch(*, zero_grad: bool) -> list[float]:
    """The notebook's cells: one manual step, then its loop (gradients zeroed only if asked)."""
    x, y = (torch.from_numpy(a) for a in quadratic_data())

    def mae(preds, acts):
        return (torch.abs(preds - acts)).mean()

    def quad_mae(params):
        return mae(params[0] * x**2 + params[1] * x + params[2], y)

    abc = torch.tensor([1.1, 1.1, 1.1]).requires_grad_()
    losses_seen = []
    for _ in range(11):  # update 0 is the notebook's manual cell, 1..10 its `for i in range(10)`
        loss = quad_mae(abc)
        loss.backward()
        with torch.no_grad():
            abc -= abc.grad * 0.01
        if zero_grad:
            abc.grad.zero_()
        losses_seen.append(loss.item())
    return losses_seen


def _course22_jaxgd(optimizer) -> np.ndarray:
    loss = lambda abc, x, y: losses.l1_loss(models.quad(abc[0], abc[1], abc[2], x), y)
    r = jaxgd.fit(loss, jnp.array([1.1, 1.1, 1.1]), quadratic_data(), epochs=11,
                  optimizer=optimizer)  # fmt: skip
    return np.asarray(r.losses[:, 0])


def test_course22_accumulated_gradients_are_momentum_one():
    torch_losses = _course22_torch(zero_grad=False)
    assert [round(v, 2) for v in torch_losses[1:]] == COURSE22
    ours = _course22_jaxgd(optax.sgd(0.01, momentum=1.0))
    np.testing.assert_allclose(ours, torch_losses, rtol=0, atol=1e-6)
    assert [round(float(v), 2) for v in ours[1:]] == COURSE22


def test_course22_zeroed_gradients_are_plain_gradient_descent():
    torch_losses = _course22_torch(zero_grad=True)
    ours = _course22_jaxgd(0.01)
    np.testing.assert_allclose(ours, torch_losses, rtol=0, atol=1e-6)
    assert [round(float(v), 2) for v in ours[1:]] != COURSE22  # the printed run was not this one
    assert ours[-1] > 2.0  # zeroed: 1.1 -> ... slowly; accumulated reached 1.46


# --------------------------------------------------------------------------- compare itself


@pytest.mark.parametrize(
    "problem, optimizer",
    [("linear", "sgd"), ("linear", "adam"), ("quadratic", "momentum"), ("quadratic", "adam"),
     ("mlp", "sgd"), ("mlp", "adam")],
)  # fmt: skip
def test_compare_problems(problem, optimizer):
    """Every problem and every optimizer (logistic's are in the toy-set matrix above)."""
    r = compare(problem, epochs=3, batch_size=8, optimizer=optimizer)
    n = r.orders.shape[1]
    assert r.ok, format_report(r)
    assert (r.problem, r.optimizer, r.batch_size, r.epochs, r.dtype) == (
        problem, optimizer, 8, 3, "float32")  # fmt: skip
    assert r.torch_losses.shape == r.jax_losses.shape == (3, math.ceil(n / 8))
    assert r.max_loss_diff == pytest.approx(np.max(np.abs(r.jax_losses - r.torch_losses)))
    assert r.max_param_diff == pytest.approx(_max_diff(r.jax_params, r.torch_params))
    assert _max_diff(r.init_params, r.torch_params) > 10 * r.max_param_diff  # it did train
    assert r.speed_ratio == pytest.approx(r.torch_seconds / r.jax_seconds)
    assert r.lr == (0.01 if optimizer == "adam" or problem == "quadratic" else 0.05)


def test_compare_nesterov_float64_and_data_order():
    r = compare("linear", epochs=2, batch_size=5, optimizer="nesterov", dtype="float64",
                shuffle=False, tolerance=1e-12)  # fmt: skip
    assert r.ok and r.jax_losses.dtype == np.float64, format_report(r)
    assert (r.orders == np.arange(40)).all()


def test_compare_models_with_your_own_model():
    """A Sequential MLP on the quadratic data (targets scaled to losses near 1, where 1e-5 is
    about 100 float32 ulps), with jaxgd's `mlp` and `mse_loss`."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    x, y = quadratic_data()
    r = compare_models(
        net, lambda out, t: F.mse_loss(out, t.view(out.shape)), models.mlp, losses.mse_loss,
        (x[:, None], y / 10), epochs=4, lr=0.01, optimizer="adam", batch_size=6, name="quad-mlp",
    )  # fmt: skip
    assert r.ok and r.problem == "quad-mlp" and r.jax_losses.shape == (4, 4)
    assert _max_diff(r.torch_params, from_torch(net)) == 0.0  # the module was trained in place


def test_format_report():
    r = compare("quadratic", epochs=3, batch_size=8, optimizer="momentum")  # compiled above
    text = format_report(r)
    assert (
        format_report(r._replace(batch_size=None))
        .splitlines()[0]
        .endswith("quadratic, momentum (lr=0.01), full batch, 3 epochs x 3 updates, float32")
    )
    for word in ("jaxgd vs PyTorch", "quadratic", "batch_size=8", "largest |loss difference|",
                 "largest |param difference|", "tolerance", "PASS", "wall time torch",
                 "wall time jaxgd", "speed ratio"):  # fmt: skip
        assert word in text, word
    assert "FAIL" in format_report(r._replace(ok=False))


def test_bad_arguments():
    with pytest.raises(ValueError, match="`problem` must be one of"):
        compare("resnet")
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        compare("linear", optimizer="rmsprop")
    with pytest.raises(ValueError, match="`dtype` must be"):
        compare("linear", dtype="float16")
    with pytest.raises(ValueError, match="`batch_size`=30 > n=20 with `drop_last=True`"):
        compare("logistic", batch_size=30, drop_last=True)
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1"):
        compare("logistic", epochs=0)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        compare("logistic", batch_size=0)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"lr": float("nan")}, ValueError, "`lr` must be a finite number >= 0, got nan."),
        ({"lr": -1.0}, ValueError, "`lr` must be a finite number >= 0, got -1.0."),
        ({"lr": "0.1"}, TypeError, "`lr` must be a number >= 0, got str '0.1'."),
        ({"momentum": -0.9}, ValueError, "`momentum` must be a finite number >= 0, got -0.9."),
        ({"tolerance": float("inf")}, ValueError, "`tolerance` must be a finite number >= 0"),
        ({"seed": -1}, ValueError, "`seed` must be an integer >= 0, got -1."),
        ({"seed": 2**64}, ValueError, "`seed` must be at most 2\\*\\*64 - 1"),
        ({"seed": 1.0}, TypeError, "`seed` must be an integer >= 0, got float 1.0."),
    ],
)
def test_bad_numbers_are_refused_naming_the_argument(options, error, message):
    """Refused before torch sees them (its own words name no argument: "Invalid learning rate")."""
    with pytest.raises(error, match=message):
        compare("linear", epochs=1, **options)
    net = torch.nn.Linear(3, 1)
    with pytest.raises(error, match=message):
        compare_models(net, F.mse_loss, models.linear, losses.mse_loss,
                       (np.zeros((4, 3)), np.zeros(4)), epochs=1, **{"lr": 0.1, **options})  # fmt: skip


def test_the_largest_seed_is_accepted():
    r = compare("linear", epochs=1, seed=2**64 - 1)
    assert r.ok and r.orders.shape == (1, 40)


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "jaxgd\[torch\]"'):
        compare_mod._import_torch()
