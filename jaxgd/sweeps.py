"""`sweep`: K training runs as ONE compiled program, `jax.vmap` over the whole of `fit`.

Member k of a sweep is the run `fit` would make with member k's learning rate, key and initial
params; the sweep vmaps `fit`'s compiled run (an outer `lax.scan` over epochs of a `lax.scan` over
batches) over the members, so K runs cost one compilation and, on small problems, far less than
K times one run's time: the per-update overhead is paid once for all K.

Under `vmap`, a `lax.cond` whose predicate differs between members becomes a `select`: both
branches run for every member and each member keeps its own branch's result. So a member that
diverged (it stops before its first non-finite update, as in `fit`) or stopped early keeps its
last params and NaN history while the others go on, bit for bit as they would alone: nothing in
one member's arithmetic reads another member's values. Speed depends on how `loop.run` skips
the epochs of a stopped run: a `lax.cond` there becomes a select that also broadcasts every
operand, the training data included, to all K members (K times the gathers and copies), while a
`lax.while_loop` that runs the epoch once or never keeps the shared data unbatched. The same
holds for the update-by-update redo of an epoch that met a non-finite value: a while loop that
runs once, only when some member needs it, and that reads its inputs from its own carry (a body
that did not would be hoisted out of the loop by XLA and run every epoch). The "sweep" case of
the benchmark (`python -m benchmarks.sweep_case` in a checkout) times 64 learning rates against
one `fit` (docs/design.md#run-once-loops).
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd import _checks
from jaxgd.loop.result import EarlyStopping, FitResult, assemble
from jaxgd.loop.run import RunInputs, RunSpec, RunState, run_epochs
from jaxgd.loop.setup import prepare

__all__ = ["SweepResult", "sweep"]


class SweepResult(NamedTuple):
    """What `sweep` returns: `FitResult`'s fields with a leading axis K, and the learning rates."""

    params: Any  # leaves shape=(K, ...): final params; the last finite ones for a diverged member.
    opt_state: Any  # leaves shape=(K, ...): final optimizer states; () for plain GD.
    losses: jax.Array  # shape=(K, epochs, updates_per_epoch): each batch's loss before its update.
    train_loss: jax.Array  # shape=(K, epochs): mean example loss on the training data per epoch.
    train_metrics: dict  # name -> shape=(K, epochs).
    val_loss: jax.Array  # shape=(K, epochs): the same on `val_data` (NaN without it).
    val_metrics: dict  # name -> shape=(K, epochs).
    diverged: jax.Array  # shape=(K,), bool: the member met a non-finite loss, gradient or result.
    diverged_epoch: jax.Array  # shape=(K,), int32: the epoch of that update, -1 if none.
    diverged_update: jax.Array  # shape=(K,), int32: its index within the epoch, -1 if none.
    epochs_run: jax.Array  # shape=(K,), int32: epochs each member ran.
    learning_rates: jax.Array  # shape=(K,): each member's lr; NaN if the optimizer holds it.

    def member(self, k: int) -> FitResult:
        """Member `k` as the `FitResult` that `jaxgd.fit` with its settings returns."""
        pick = lambda tree: jax.tree.map(lambda a: a[k], tree)
        return FitResult(*(pick(getattr(self, name)) for name in FitResult._fields))


# ---------------------------------------------------------------------------------------------
# A learning rate that optax can be vmapped over.


class _LrState(NamedTuple):
    """The state of `_factory_tx(factory)`: the member's learning rate and its optimizer's state."""

    lr: jax.Array  # shape=(), the params' dtype: the learning rate given to `factory`.
    inner: Any  # factory(lr)'s own state.


@functools.lru_cache(maxsize=64)
def _factory_tx(factory: Callable) -> optax.GradientTransformation:
    """The optax transformation `factory(lr)` with `lr` read from its state, one per factory.

    `factory(lr)` is rebuilt inside the trace with `lr` a traced scalar of the params' dtype, so
    a vmapped `lr` reaches the optimizer's arithmetic exactly where a Python float would: the
    numbers are those of the unwrapped `factory(float(lr))`. `optax.inject_hyperparams` also
    turns the optimizer's other constants (b1, b2, eps...) into float32 arrays, which changes
    e.g. Adam's and RMSprop's results in the last bits. The cache keeps one transformation per
    factory, so calling `sweep` again with the same factory does not recompile.
    """

    def init(params):
        raise TypeError("internal: build the state with `_LrState(lr, factory(lr).init(params))`.")

    def update(updates, state: _LrState, params=None):
        updates, inner = factory(state.lr).update(updates, state.inner, params)
        return updates, _LrState(state.lr, inner)

    return optax.GradientTransformation(init, update)


def _check_factory(factory, lr, params):
    """`factory(lr)` must build an optax transformation from a traced learning rate."""
    made = factory(float(lr))
    if not isinstance(made, optax.GradientTransformation):
        raise TypeError(
            "`optimizer` as a function must map a learning rate to an optax "
            f"GradientTransformation, e.g. `lambda lr: optax.sgd(lr, momentum=0.9)`; "
            f"`optimizer({float(lr)})` returned {type(made).__name__}."
        )

    def one_update(lr):
        tx = factory(lr)
        return tx.update(params, tx.init(params), params)  # params stand in for gradients

    try:
        jax.eval_shape(one_update, lr)
    except jax.errors.ConcretizationTypeError as err:
        raise TypeError(
            "`optimizer(lr)` must accept the learning rate as a JAX scalar (sweeps trace it); "
            f"it used the value in Python control flow: {err}"
        ) from err


# ---------------------------------------------------------------------------------------------
# The members' axes.


def _check_learning_rates(values) -> np.ndarray:
    arr = _checks.as_array(values, "learning_rates")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"`learning_rates` must be a non-empty 1-D array, one per member, got shape {arr.shape}."
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"`learning_rates` must hold real numbers, got dtype {arr.dtype}.")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ValueError(
            f"`learning_rates` must be finite and >= 0; member {int(np.argmax(bad))} is "
            f"{arr[np.argmax(bad)]}."
        )
    return arr


def _check_keys(keys):
    keys = _checks.stack_keys(keys)  # A list of K keys is K keys.
    if isinstance(keys, (jax.Array, np.ndarray)):
        if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) and keys.ndim == 1 and keys.size:
            return keys
        if keys.dtype == np.uint32 and keys.ndim == 2 and keys.shape[1] == 2 and keys.shape[0]:
            return jnp.asarray(keys)
    seen = (
        f"{keys.dtype} of shape {keys.shape}"
        if isinstance(keys, (jax.Array, np.ndarray))
        else f"{type(keys).__name__} {keys!r}"[:80]
    )
    raise TypeError(
        "`keys` must hold K PRNG keys, one per member, e.g. "
        f"`jax.random.split(jax.random.key(0), K)`, got {seen}."
    )


def _check_init_params(init_params, params):
    """Every leaf of `init_params` has the leading axis K; `params`, if given, is one member."""
    _checks.check_params(init_params, "init_params")
    leaves = jax.tree_util.tree_leaves_with_path(init_params)
    sizes = {jax.tree_util.keystr(p): (jnp.shape(a)[0] if jnp.ndim(a) else None) for p, a in leaves}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(
            "`init_params` leaves must all have the same leading axis K (one row per member), got "
            f"leading sizes {sizes}. Stack members with `jax.tree.map(lambda *a: jnp.stack(a), ...)`."
        )
    if params is not None:
        one = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)), init_params
        )
        want = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), params
        )
        if jax.tree.structure(one) != jax.tree.structure(want) or jax.tree.leaves(
            jax.tree.map(lambda a, b: a.shape != b.shape, one, want)
        ).count(True):
            raise ValueError(
                "`init_params` must be `params` with a leading axis K on every leaf; got "
                f"{jax.tree.map(jnp.shape, init_params)} for params "
                f"{jax.tree.map(jnp.shape, params)}. Pass `params=None` to use `init_params` alone."
            )
    return next(iter(sizes.values()))


class _Axes(NamedTuple):
    """Which inputs carry the members' axis K (static: a change compiles a new program)."""

    size: int  # K.
    lr: bool  # `lr` has shape (K,): plain GD with one learning rate per member.
    key: bool  # `key` holds K keys.
    params: bool  # `params` leaves have a leading axis K.
    factory: Callable | None  # lr -> optax transformation, vmapped over `lr` of shape (K,).


def _member_states(template: RunState, params, lr, axes: _Axes) -> RunState:
    """Every member's initial carry: fit's, with its own params and optimizer state."""
    state = jax.tree.map(lambda a: jnp.broadcast_to(a, (axes.size, *jnp.shape(a))), template)
    if axes.params:
        state = state._replace(params=params)
    if axes.factory is not None:
        inner = jax.vmap(lambda r, p: axes.factory(r).init(p))(lr, state.params)
        state = state._replace(opt_state=_LrState(lr, inner))
    return state


def _member_result(metrics, state, losses, evals) -> FitResult:
    return assemble(state, [(losses, evals)], metrics)


@functools.partial(jax.jit, static_argnames=("spec", "axes"))
def _run_members(template: RunState, params, lr, inputs: RunInputs, *, spec: RunSpec, axes: _Axes):
    """`run_epochs` vmapped over the members, and their `FitResult`s."""
    state = _member_states(template, params, lr, axes)
    inputs = inputs._replace(lr=lr if spec.tx is None else jnp.zeros_like(lr, shape=()))
    in_axes = RunInputs(
        None, None, 0 if axes.lr else None, 0 if axes.key else None, None, None, None
    )
    run = functools.partial(run_epochs, spec=spec)
    final, losses, evals = jax.vmap(run, in_axes=(0, in_axes))(state, inputs)
    if axes.factory is not None:
        final = final._replace(opt_state=final.opt_state.inner)
    names = tuple(name for name, _ in spec.metrics)
    result = jax.vmap(functools.partial(_member_result, names))(final, losses, evals)
    if axes.lr or axes.factory is not None:
        rates = lr
    else:  # One optimizer for all: its learning rate if it is a number, NaN inside optax.
        rates = jnp.full((axes.size,), jnp.nan if spec.tx is not None else lr, lr.dtype)
    return SweepResult(*result, learning_rates=rates)


def _members(learning_rates, keys, init_params, params, key, orders):
    """The members' axes checked: `(learning_rates, keys, K)`."""
    sizes = {}
    if learning_rates is not None:
        learning_rates = _check_learning_rates(learning_rates)
        sizes["learning_rates"] = learning_rates.shape[0]
    if keys is not None:
        if key is not None or orders is not None:
            raise ValueError(
                "Pass `keys` (one per member) or `key` / `orders` (shared by all), not both."
            )
        keys = _check_keys(keys)
        sizes["keys"] = keys.shape[0]
    if init_params is not None:
        sizes["init_params"] = _check_init_params(init_params, params)
    elif params is None:
        raise ValueError("`params` is None: pass the initial params, or `init_params` per member.")
    if not sizes:
        raise ValueError(
            "`sweep` needs at least one member axis: `learning_rates`, `keys` or `init_params` "
            "(each with K entries). For a single run use `jaxgd.fit`."
        )
    if len(set(sizes.values())) != 1:
        raise ValueError(
            f"the members' axes must have the same length K, got {sizes}; give each axis K "
            "entries (`jnp.repeat` / `jnp.tile` build a grid)."
        )
    return learning_rates, keys, next(iter(sizes.values()))


def _is_factory(optimizer) -> bool:
    return callable(optimizer) and not isinstance(optimizer, optax.GradientTransformation)


def _member_optimizer(optimizer, learning_rates):
    """`(what fit gets for member 0, the lr -> optax factory or None)`."""
    if learning_rates is None:
        if optimizer is None or _is_factory(optimizer):
            raise ValueError(
                "`optimizer` is None or a function of the learning rate: pass `learning_rates`, "
                "one per member, or an optimizer shared by all (a number or an optax "
                "transformation)."
            )
        return optimizer, None
    if optimizer is None:
        return learning_rates[0], None
    if _is_factory(optimizer):
        return _factory_tx(optimizer), optimizer
    raise TypeError(
        "With `learning_rates`, `optimizer` must be None (plain GD) or a function "
        "lr -> optax transformation such as `lambda lr: optax.sgd(lr, momentum=0.9)`, got "
        f"{type(optimizer).__name__}; an optax transformation has its learning rate fixed."
    )


def sweep(
    example_loss: Callable,
    params,
    data,
    *,
    epochs: int,
    optimizer=None,
    learning_rates=None,
    keys=None,
    init_params=None,
    key=None,
    batch_size: int | None = None,
    orders=None,
    drop_last: bool = False,
    val_data=None,
    metrics: dict[str, Callable] | None = None,
    early_stopping: EarlyStopping | None = None,
    eval_train: bool = True,
    mesh: jax.sharding.Mesh | None = None,
) -> SweepResult:
    """Trains K members at once: `jax.vmap` over `fit`'s whole compiled run.

    Member k uses `learning_rates[k]`, `keys[k]` and `init_params[k]` (each axis that you give
    has K entries; those you leave out are shared), and equals `jaxgd.fit` with those settings.
    A grid (say 8 learning rates x 4 seeds) is a sweep of K = 32 built with `jnp.repeat` and
    `jnp.tile`. A diverging member stops before its first non-finite update (reported in
    `.diverged`, as `fit` does) while the others go on undisturbed. New values of the same K and
    shapes reuse the compiled program.

    Args:
      example_loss: `example_loss(params, x, y) -> scalar`, the loss of ONE example.
      params: initial parameters shared by all members, a pytree of float arrays; None when
        `init_params` gives each member's.
      data: `(X, y)`: arrays sharing the leading axis n (shared by all members).
      epochs: passes over the data.
      optimizer: None (plain GD, `w <- w - lr * grad`, with `learning_rates`); a function
        `lr -> optax.GradientTransformation` such as `lambda lr: optax.sgd(lr, momentum=0.9)`,
        called with each member's learning rate (as a traced scalar, so it must not branch on
        it in Python); or, without `learning_rates`, anything `fit` takes (a number or an optax
        transformation) shared by all members.
      learning_rates: shape (K,): one learning rate per member, finite and >= 0.
      keys: K PRNG keys, e.g. `jax.random.split(jax.random.key(0), K)`: member k reshuffles
        every epoch with `keys[k]` (as `fit(key=keys[k])`). Exclusive with `key` and `orders`.
      init_params: `params` with a leading axis K on every leaf: member k starts at
        `jax.tree.map(lambda a: a[k], init_params)`.
      key: one PRNG key shared by all members (the same example order for all).
      batch_size: None for full-batch GD, 1 for SGD, m for mini-batch GD (as `fit`).
      orders: int array (epochs, n) of example orders shared by all members (as `fit`).
      drop_last: drop a smaller last batch instead of padding and masking it (as `fit`).
      val_data: optional `(X_val, y_val)` evaluated after every epoch.
      metrics: optional `{name: metric(params, x, y) -> scalar}` (as `fit`).
      early_stopping: a `jaxgd.EarlyStopping`, applied to each member on its own.
      eval_train: evaluate the training loss and metrics after every epoch (as `fit`).
      mesh: a `jax.sharding.Mesh` with a "data" axis: every member's batches are split over it
        (as `fit`).

    Returns:
      A `SweepResult`: `FitResult`'s fields with a leading axis K (`.losses` of shape
      (K, epochs, updates_per_epoch), `.params` leaves (K, ...), `.diverged` (K,)...), plus
      `.learning_rates` (K,). `.member(k)` is member k's `FitResult`.

    Raises:
      ValueError, TypeError: for a bad argument (as `fit`, and for members' axes of different
        lengths or a missing one), before anything is compiled.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sq = lambda w, x, y: (w * x - y) ** 2          # least squares through the origin
      >>> X = jnp.array([1.0, 2.0, 3.0, 4.0]); y = 2 * X  # the best w is 2
      >>> s = sweep(sq, 0.0, (X, y), epochs=20, learning_rates=jnp.array([0.02, 0.05, 0.5]),
      ...           batch_size=2)
      >>> print(s.losses.shape, s.params.shape, s.diverged)
      (3, 20, 2) (3,) [False False  True]
      >>> print(jnp.round(s.params[:2], 4), s.epochs_run)  # member 2 stopped in epoch 15
      [2. 2.] [20 20 16]
    """
    learning_rates, keys, K = _members(learning_rates, keys, init_params, params, key, orders)
    member_opt, factory = _member_optimizer(optimizer, learning_rates)

    # Member 0 goes through fit's checks; the members' own axes were checked above.
    params0 = (
        params if init_params is None else jax.tree.map(lambda a: np.asarray(a)[0], init_params)
    )
    member_state = None
    if factory is not None:
        dtype = jnp.result_type(*jax.tree.leaves(params0))
        _check_factory(factory, jnp.asarray(learning_rates[0], dtype), params0)
        member_state = _LrState(jnp.zeros((), dtype), ())  # The members' are built in the jit.
    prep = prepare(
        example_loss,
        params0,
        data,
        epochs=epochs,
        optimizer=member_opt,
        batch_size=batch_size,
        key=key if keys is None else keys[0],
        orders=orders,
        drop_last=drop_last,
        val_data=val_data,
        metrics=metrics,
        early_stopping=early_stopping,
        opt_state=member_state,
        eval_train=eval_train,
        mesh=mesh,
    )
    spec = prep.spec
    _checks.check_history(
        epochs=epochs,
        start_epoch=0,
        n=spec.n,
        batch_size=spec.batch_size,
        drop_last=spec.drop_last,
        series=2 * (1 + len(prep.metrics)),
        itemsize=prep.inputs.lr.dtype.itemsize,
        members=K,
    )
    axes = _Axes(
        K,
        learning_rates is not None and factory is None,
        keys is not None,
        init_params is not None,
        factory,
    )
    lr = prep.inputs.lr
    lr = lr if learning_rates is None else jnp.asarray(learning_rates, lr.dtype)
    inputs = prep.inputs._replace(key=keys if keys is not None else prep.inputs.key)
    return _run_members(
        prep.state, init_params, lr, inputs, spec=prep.spec._replace(epochs=epochs), axes=axes
    )
