"""`fit(..., mesh=mesh)`: data parallelism over 8 CPU devices equals the 1-device run.

This session has one CPU device, so the multi-device runs happen in a subprocess started with
`XLA_FLAGS=--xla_force_host_platform_device_count=8` (the flag must be set before jax starts and
must not leak into the other tests). It reports numbers and shardings as JSON; the tests here
check them.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import distributed

TIMEOUT_S = 180  # Every subprocess wait is bounded: a broken runtime fails, never hangs.


def run_python(code: str, devices: int = 8, extra_env=None, timeout=TIMEOUT_S):
    """Runs `code` in a fresh interpreter with `devices` CPU devices; its last stdout line as JSON."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.update(extra_env or {})
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBLEM = """
import json, re
import jax, jax.numpy as jnp, numpy as np, optax
import jaxgd
from jaxgd.loop import setup
from jaxgd.loop.run import run_epochs

def logistic_loss(p, x, y):
    z = x @ p["w"] + p["b"]
    return jnp.logaddexp(0.0, z) - y * z

rng = np.random.default_rng(0)
X = rng.normal(size=(100, 5)).astype(np.float32)
y = (X @ np.arange(1.0, 6.0) + 0.5 * rng.normal(size=100) > 0).astype(np.float32)
p0 = {"w": jnp.zeros(5), "b": jnp.zeros(())}

def max_err(r, ref):
    pairs = zip(jax.tree.leaves((r.params, r.losses, r.train_loss, r.val_loss)),
                jax.tree.leaves((ref.params, ref.losses, ref.train_loss, ref.val_loss)))
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)
"""

MULTI_DEVICE = (
    PROBLEM
    + """
from jax.sharding import Mesh
meshes = {
    "make_mesh": jax.make_mesh((8,), ("data",)),  # Explicit axes
    "Mesh": Mesh(np.array(jax.devices()), ("data",)),  # Auto axes
    "2d": jax.make_mesh((4, 2), ("data", "model")),
}
report = {"devices": jax.device_count(), "errors": {}, "replicated": {}}
cases = {  # batch_size, optimizer -> meshes. 100 rows (full batch), 12 and 1 pad to 8k rows.
    (None, 0.5): ("make_mesh", "Mesh"),
    (12, optax.sgd(0.3, momentum=0.9)): ("make_mesh", "Mesh", "2d"),
    (1, 0.1): ("make_mesh",),
}
for (bs, opt), names in cases.items():
    common = dict(epochs=2, optimizer=opt, batch_size=bs, key=jax.random.key(1),
                  val_data=(X[:20], y[:20]))
    ref = jaxgd.fit(logistic_loss, p0, (X, y), **common)
    for name in names:
        r = jaxgd.fit(logistic_loss, p0, (X, y), mesh=meshes[name], **common)
        report["errors"][f"{name} bs={bs}"] = max_err(r, ref)
        leaves = jax.tree.leaves((r.params, r.opt_state))
        report["replicated"][f"{name} bs={bs}"] = all(
            a.sharding.is_fully_replicated and len(a.sharding.device_set) == 8 for a in leaves)

# Streamed from the host (stream=True), each chunk replicated and each batch split over the mesh.
report["stream"] = {}
for bs, opt in ((12, optax.sgd(0.3, momentum=0.9)), (None, 0.5)):
    common = dict(epochs=2, optimizer=opt, batch_size=bs, key=jax.random.key(1),
                  val_data=(X[:20], y[:20]))
    ref = jaxgd.fit(logistic_loss, p0, (X, y), **common)
    r = jaxgd.fit(logistic_loss, p0, (X, y), mesh=meshes["make_mesh"], stream=True,
                  stream_chunk=36, **common)
    leaves = jax.tree.leaves((r.params, r.opt_state))
    report["stream"][f"bs={bs}"] = (max_err(r, ref), all(
        a.sharding.is_fully_replicated and len(a.sharding.device_set) == 8 for a in leaves))

# What each device computes: the compiled program's shapes are per device.
def compiled(mesh, bs):
    prep = setup.prepare(logistic_loss, p0, (X, y), epochs=1, optimizer=0.5, batch_size=bs,
                         key=jax.random.key(1), mesh=mesh)
    spec = prep.spec._replace(epochs=1)
    return run_epochs.lower(prep.state, prep.inputs, spec=spec).compile().as_text()

for name, mesh in (("none", None), ("make_mesh", meshes["make_mesh"]), ("Mesh", meshes["Mesh"])):
    hlo = compiled(mesh, 16)
    report[f"hlo {name}"] = {
        "batch_shapes": sorted(set(re.findall(r"f32\\[(\\d+),5\\]", hlo))),
        "grad_all_reduce": bool(re.search(r"all-reduce\\(f32\\[5\\]|= \\(f32\\[5\\]\\{0\\}.*all-reduce", hlo)),
    }

# The helper's own sharding of a batch: rows over "data", padded to a multiple of 8.
from jaxgd import distributed
for name in ("make_mesh", "Mesh"):
    seen = []
    @jax.jit
    def f(xb, yb):
        out = distributed.shard_batch((xb, yb, None), meshes[name])
        jax.debug.inspect_array_sharding(out[0], callback=lambda s: seen.append(str(s.spec)))
        return out
    replicated = jax.sharding.NamedSharding(meshes[name], jax.P())
    xb, yb, mask = f(*jax.device_put((jnp.ones((12, 5)), jnp.ones(12)), replicated))
    report[f"shard_batch {name}"] = {"spec": seen, "shape": list(xb.shape),
                                     "mask": int(mask.sum()), "out_spec": str(xb.sharding.spec)}

# sweep passes the mesh through: members equal fit's.
lrs = jnp.array([0.1, 0.5, 1.0])
s = jaxgd.sweep(logistic_loss, p0, (X, y), epochs=2, learning_rates=lrs, batch_size=16,
                key=jax.random.key(1), mesh=meshes["make_mesh"])
ref = jaxgd.sweep(logistic_loss, p0, (X, y), epochs=2, learning_rates=lrs, batch_size=16,
                  key=jax.random.key(1))
report["sweep"] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                      for a, b in zip(jax.tree.leaves((s.params, s.losses)),
                                      jax.tree.leaves((ref.params, ref.losses))))
print(json.dumps(report))
"""
)


@pytest.fixture(scope="module")
def eight_devices():
    return run_python(MULTI_DEVICE)


def test_eight_devices_equal_one(eight_devices):
    assert eight_devices["devices"] == 8
    assert len(eight_devices["errors"]) == 6
    for case, err in eight_devices["errors"].items():
        assert err < 1e-5, (case, err)


def test_params_and_opt_state_replicated(eight_devices):
    assert all(eight_devices["replicated"].values()), eight_devices["replicated"]


def test_batches_split_over_devices(eight_devices):
    # Alone, a batch of 16 rows is computed whole; on the mesh each device takes 2 rows of it
    # and the gradient (5 weights) is summed by an all-reduce.
    assert "16" in eight_devices["hlo none"]["batch_shapes"]
    assert not eight_devices["hlo none"]["grad_all_reduce"]
    for name in ("make_mesh", "Mesh"):
        hlo = eight_devices[f"hlo {name}"]
        assert "2" in hlo["batch_shapes"] and "16" not in hlo["batch_shapes"], hlo
        assert hlo["grad_all_reduce"], hlo


def test_shard_batch_pads_and_splits(eight_devices):
    for name in ("make_mesh", "Mesh"):
        got = eight_devices[f"shard_batch {name}"]
        assert got["spec"] == ["P('data',)"], got
        assert got["shape"] == [16, 5] and got["mask"] == 12, got


def test_streamed_run_on_mesh(eight_devices):
    assert set(eight_devices["stream"]) == {"bs=12", "bs=None"}
    for case, (err, replicated) in eight_devices["stream"].items():
        assert err < 1e-5 and replicated, (case, err, replicated)


def test_sweep_on_mesh(eight_devices):
    assert eight_devices["sweep"] < 1e-5


def test_one_device_mesh_equals_no_mesh():
    X = jnp.linspace(-1, 1, 10)[:, None]
    y = 3 * X[:, 0]
    sq = lambda w, x, y: (x @ w - y) ** 2
    mesh = jax.make_mesh((1,), ("data",))
    a = jaxgd.fit(sq, jnp.zeros(1), (X, y), epochs=3, optimizer=optax.adam(0.1), batch_size=3)
    b = jaxgd.fit(sq, jnp.zeros(1), (X, y), epochs=3, optimizer=optax.adam(0.1), batch_size=3,
                  mesh=mesh)  # fmt: skip
    np.testing.assert_allclose(a.params, b.params, atol=1e-6)
    np.testing.assert_allclose(a.losses, b.losses, atol=1e-6)


def test_bad_mesh():
    sq = lambda w, x, y: (w * x - y) ** 2
    data = (jnp.ones(4), jnp.ones(4))
    with pytest.raises(TypeError, match=r"`mesh` must be a jax.sharding.Mesh, got list"):
        jaxgd.fit(sq, 0.0, data, epochs=1, optimizer=0.1, mesh=jax.devices())
    with pytest.raises(ValueError, match=r"`mesh` has axes \('batch',\) but no \"data\" axis"):
        jaxgd.fit(sq, 0.0, data, epochs=1, optimizer=0.1, mesh=jax.make_mesh((1,), ("batch",)))
    assert distributed.check_mesh(None) is None


WORKER = (
    """
import sys
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU all-reduce across processes.
jax.config.update("jax_num_cpu_devices", 4)
process_id, port = int(sys.argv[1]), sys.argv[2]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                           process_id=process_id, initialization_timeout=60)
"""
    + PROBLEM
    + """
mesh = jax.make_mesh((jax.device_count(),), ("data",))  # 8 devices, 4 in each process.
r = jaxgd.fit(logistic_loss, p0, (X, y), epochs=2, optimizer=optax.sgd(0.3, momentum=0.9),
              batch_size=12, key=jax.random.key(1), val_data=(X[:20], y[:20]), mesh=mesh)
print(json.dumps({
    "processes": jax.process_count(), "devices": jax.device_count(),
    "local_devices": jax.local_device_count(),
    "param_processes": sorted({d.process_index for d in r.params["w"].sharding.device_set}),
    "w": np.asarray(r.params["w"]).tolist(), "b": float(r.params["b"]),
    "losses": np.asarray(r.losses).tolist(), "val_loss": np.asarray(r.val_loss).tolist(),
}))
jax.distributed.shutdown()
"""
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_together():
    """2 processes x 4 CPU devices on one global mesh (loopback) equal the 1-process run."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), str(i), port],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=TIMEOUT_S)
            assert p.returncode == 0, stderr[-3000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:  # Never leave a worker behind (one waiting for a dead peer, say).
            if p.poll() is None:
                p.kill()
                p.communicate()

    ns = {}
    exec(textwrap.dedent(PROBLEM), ns)
    X, y = ns["X"], ns["y"]
    ref = jaxgd.fit(ns["logistic_loss"], ns["p0"], (X, y), epochs=2,
                    optimizer=optax.sgd(0.3, momentum=0.9), batch_size=12, key=jax.random.key(1),
                    val_data=(X[:20], y[:20]))  # fmt: skip
    for out in outs:
        assert (out["processes"], out["devices"], out["local_devices"]) == (2, 8, 4)
        assert out["param_processes"] == [0, 1]  # The params live on both processes' devices.
        np.testing.assert_allclose(out["w"], ref.params["w"], atol=1e-5)
        np.testing.assert_allclose(out["b"], ref.params["b"], atol=1e-5)
        np.testing.assert_allclose(out["losses"], ref.losses, atol=1e-5)
        np.testing.assert_allclose(out["val_loss"], ref.val_loss, atol=1e-5)
