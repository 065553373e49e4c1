"""The three descent schedules, compiled as one `lax.scan` per epoch, in four layers:

* `step.py`: one update (`update_step`): predict, loss, gradient, step;
* `epoch.py`: one epoch (`train_epoch`): a `lax.scan` of updates over the epoch's batches
  (`batches.py` says which rows each batch holds), then the ragged last batch;
* `run.py`: the run, a `lax.scan` over epochs: evaluation, early stopping, divergence;
* `fit.py`: `fit`, the host side: checks (`setup.py`), device placement, chunks, callbacks.

`schedules.py` names the three schedules; `stream.py` runs the same epochs on data that stay
on the host; `checkpoint.py` saves a run on disk and resumes it; `result.py` holds what a run
returns.
"""

from jaxgd.loop.checkpoint import Checkpoint
from jaxgd.loop.epoch import Epoch, train_epoch
from jaxgd.loop.fit import fit
from jaxgd.loop.result import DivergenceError, EarlyStopping, FitResult
from jaxgd.loop.schedules import full_batch_gd, minibatch_gd, stochastic_gd
from jaxgd.loop.step import Step, batch_loss, init_opt_state, update_step

__all__ = [
    "Checkpoint",
    "FitResult",
    "EarlyStopping",
    "DivergenceError",
    "fit",
    "full_batch_gd",
    "stochastic_gd",
    "minibatch_gd",
    "batch_loss",
    "update_step",
    "Step",
    "train_epoch",
    "Epoch",
    "init_opt_state",
]
