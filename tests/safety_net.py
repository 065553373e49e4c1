"""The loop's safety net: `FitResult`s of many configurations, recorded once and compared bit for bit.

Record (after a deliberate change of numbers, say which in the commit):
    python tests/safety_net.py --record
`tests/test_safety_net.py` runs every configuration and compares with `tests/data/safety_net.npz`.
"""

import platform
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from tests.problems import accuracy, bce, sq

RECORD = Path(__file__).parent / "data" / "safety_net.npz"


def _problem(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    y = (X @ w + 0.5 * rng.standard_normal(n) > 0).astype(np.float32)
    return X, y


def _mlp(p, x, y):
    h = jax.nn.relu(x @ p["W1"] + p["b1"])
    z = h @ p["w2"] + p["b2"]
    return jnp.logaddexp(0.0, z) - y * z


def _params(d: int):
    return {"w": np.zeros(d, np.float32), "b": np.float32(0.0)}


def _mlp_params(d: int, h: int = 8):
    k1, k2 = jax.random.split(jax.random.key(3))
    return {
        "W1": jax.random.normal(k1, (d, h)) * 0.3,
        "b1": jnp.zeros(h),
        "w2": jax.random.normal(k2, (h,)) * 0.3,
        "b2": jnp.float32(0.0),
    }


def _orders(epochs: int, n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(epochs)]).astype(np.int32)


def configurations():
    """name -> a function returning a FitResult-like NamedTuple."""
    X, y = _problem(50, 3)
    Xv, yv = _problem(20, 3, seed=1)
    big = _problem(40_000, 20, seed=2)  # 3.2 MB: the gathered-copy path for small batches.
    key = jax.random.key(0)
    p = _params(3)
    adam = optax.adam(0.05)
    mom = optax.sgd(0.1, momentum=0.9)
    fit = jaxgd.fit
    one = jax.make_mesh((1,), ("data",))
    return {
        "full_lr": lambda: fit(bce, p, (X, y), epochs=5, optimizer=0.5),
        "full_adam": lambda: fit(bce, p, (X, y), epochs=5, optimizer=adam),
        "full_mlp": lambda: fit(_mlp, _mlp_params(3), (X, y), epochs=4, optimizer=0.3),
        "sgd_lr_key": lambda: fit(bce, p, (X, y), epochs=3, optimizer=0.1, batch_size=1, key=key),
        "sgd_mom_orders": lambda: fit(
            bce, p, (X, y), epochs=3, optimizer=mom, batch_size=1, orders=_orders(3, 50)
        ),
        "mb_ragged_lr_key": lambda: fit(
            bce,
            p,
            (X, y),
            epochs=4,
            optimizer=0.2,
            batch_size=8,
            key=key,
            metrics={"acc": accuracy},
            val_data=(Xv, yv),
        ),
        "mb_ragged_adam_orders": lambda: fit(
            bce, p, (X, y), epochs=3, optimizer=adam, batch_size=8, orders=_orders(3, 50)
        ),
        "mb_drop_last": lambda: fit(
            bce, p, (X, y), epochs=3, optimizer=0.2, batch_size=8, key=key, drop_last=True
        ),
        "mb_data_order": lambda: fit(bce, p, (X, y), epochs=3, optimizer=0.2, batch_size=8),
        "early_stop": lambda: fit(
            bce,
            p,
            (X, y),
            epochs=30,
            optimizer=2.0,
            batch_size=10,
            key=key,
            val_data=(Xv, yv),
            metrics={"acc": accuracy},
            early_stopping=jaxgd.EarlyStopping(monitor="val_loss", patience=2),
        ),
        "diverge_lr": lambda: fit(
            _mlp, _mlp_params(3), (X * 1e3, y), epochs=6, optimizer=1e3, batch_size=8, key=key
        ),
        "diverge_optax": lambda: fit(
            sq, p, (X, y), epochs=6, optimizer=optax.sgd(5.0), batch_size=16
        ),
        "chunks_resume": lambda: fit(
            bce,
            fit(bce, p, (X, y), epochs=2, optimizer=0.2, batch_size=8, key=key).params,
            (X, y),
            epochs=4,
            optimizer=0.2,
            batch_size=8,
            key=key,
            start_epoch=2,
            callback=lambda *a: None,
            epochs_per_call=3,
        ),
        "mesh_1": lambda: fit(
            bce, p, (X, y), epochs=3, optimizer=0.2, batch_size=8, key=key, mesh=one
        ),
        "stream_mb": lambda: fit(
            bce,
            p,
            (X, y),
            epochs=3,
            optimizer=0.2,
            batch_size=8,
            key=key,
            stream=True,
            stream_chunk=16,
            val_data=(Xv, yv),
        ),
        "stream_full": lambda: fit(
            bce, p, (X, y), epochs=3, optimizer=0.5, stream=True, stream_chunk=16
        ),
        "big_mb32_copy": lambda: fit(
            bce, _params(20), big, epochs=2, optimizer=0.1, batch_size=32, key=key
        ),
        "big_mb600_gather": lambda: fit(
            bce, _params(20), big, epochs=2, optimizer=0.1, batch_size=600, key=key
        ),
        "big_sgd_copy": lambda: fit(
            bce,
            _params(20),
            big,
            epochs=1,
            optimizer=0.05,
            batch_size=1,
            key=key,
            eval_train=False,
        ),
        "big_full_per_example": lambda: fit(bce, _params(20), big, epochs=3, optimizer=0.5),
        "sweep_lr_keys": lambda: jaxgd.sweep(
            sq,
            p,
            (X, y),
            epochs=3,
            batch_size=8,
            learning_rates=jnp.array([0.05, 0.5, 50.0]),
            keys=jax.random.split(key, 3),
        ),
        "sweep_factory": lambda: jaxgd.sweep(
            bce,
            p,
            (X, y),
            epochs=3,
            batch_size=8,
            key=key,
            optimizer=lambda lr: optax.sgd(lr, momentum=0.9),
            learning_rates=jnp.array([0.05, 0.5]),
        ),
        "lr_find": lr_find_row,  # recorded after lr_find took fastai's semantics and fit's orders
    }


def lr_find_row():
    X, y = _problem(50, 3)
    r = jaxgd.lr_find(bce, _params(3), (X, y), batch_size=8, num_steps=30, key=jax.random.key(1))
    return {"learning_rates": r.learning_rates, "losses": r.losses, "raw_losses": r.raw_losses}


def flatten(result) -> dict:
    """A NamedTuple result as {path: np.ndarray}."""
    leaves = jax.tree_util.tree_leaves_with_path(
        result._asdict() if hasattr(result, "_asdict") else result
    )
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def compute() -> dict:
    out = {}
    for name, make in configurations().items():
        for path, value in flatten(make()).items():
            out[f"{name}{path}"] = value
    return out


def machine() -> str:
    """What the bits depend on besides the code: the CPU (XLA compiles for its features) and jax."""
    model = ""
    if Path("/proc/cpuinfo").exists():
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(
            (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), ""
        )
        flags = next(
            (line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []
        )
        model += " " + " ".join(sorted(f for f in flags if f.startswith("avx")))
    return f"{platform.machine()} {model} jax {jax.__version__}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/safety_net.py --record")
    values = compute()
    np.savez_compressed(RECORD, __machine__=np.array(machine()), **values)
    print(f"recorded {len(values)} arrays to {RECORD}")
