"""jaxgd: gradient descent in JAX, the way the lectures teach it.

Full-batch GD, SGD and mini-batch GD as one compiled `lax.scan`, with losses and models
written for one example and batched with `jax.vmap`, checked step for step against PyTorch.
"""

__version__ = "0.1.0"

from jaxgd import autograd, compare, data, losses, metrics, models
from jaxgd.autograd import per_example_grads, per_example_losses
from jaxgd.loop import (
    Checkpoint,
    DivergenceError,
    EarlyStopping,
    Epoch,
    FitResult,
    Step,
    batch_loss,
    fit,
    full_batch_gd,
    init_opt_state,
    minibatch_gd,
    stochastic_gd,
    train_epoch,
    update_step,
)
from jaxgd.lr_finder import LRFindResult, lr_find
from jaxgd.metrics import accuracy, binary_accuracy
from jaxgd.sweeps import SweepResult, sweep

__all__ = [
    "__version__",
    "autograd",
    "compare",
    "LRFindResult",
    "lr_find",
    "SweepResult",
    "sweep",
    "data",
    "losses",
    "metrics",
    "models",
    "per_example_grads",
    "per_example_losses",
    "Checkpoint",
    "DivergenceError",
    "EarlyStopping",
    "FitResult",
    "Epoch",
    "Step",
    "accuracy",
    "batch_loss",
    "binary_accuracy",
    "fit",
    "full_batch_gd",
    "init_opt_state",
    "minibatch_gd",
    "stochastic_gd",
    "train_epoch",
    "update_step",
]
