"""Checkpoints on disk (`fit(..., checkpoint=PATH)`, `jaxgd.loop.checkpoint`): a run killed at
any moment resumes and ends bit for bit as the run that was never interrupted; another run's
checkpoint is refused, a corrupted one reported.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.loop import checkpoint
from tests.problems import accuracy, bce, make, sq

ROOT = Path(__file__).resolve().parents[1]


DATA, VAL = make(60, d=4), make(20, d=4, seed=1)
P = {"w": jnp.zeros(4), "b": jnp.zeros(())}
RUN = dict(
    epochs=12,
    optimizer=optax.sgd(0.1, momentum=0.9),
    batch_size=8,
    key=jax.random.key(3),
    val_data=VAL,
    metrics={"accuracy": accuracy},
    epochs_per_call=2,
)


def run(loss=bce, params=P, data=DATA, **changes):
    return jaxgd.fit(loss, params, data, **(RUN | changes))


def assert_same(a: jaxgd.FitResult, b: jaxgd.FitResult):
    """Every field of two results equal bit for bit (NaN equal to NaN)."""
    for name, x, z in zip(a._fields, a, b, strict=True):
        xs, zs = jax.tree.leaves(x), jax.tree.leaves(z)
        assert jax.tree.structure(x) == jax.tree.structure(z), name
        for u, v in zip(xs, zs, strict=True):
            assert np.asarray(u).dtype == np.asarray(v).dtype, name
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v), err_msg=name)


def files(path: Path) -> list[str]:
    return sorted(os.listdir(path))


def child(path: str, ready: str, after: int) -> None:
    """The run of `test_killed_run_resumes_bit_for_bit`, in a process of its own: it says it
    is ready after `after` epochs, then goes on slowly until it is killed."""

    def callback(done, result):
        if done == after:
            Path(ready).write_text(str(done))
        elif done > after:
            time.sleep(0.2)

    run(checkpoint=path, callback=callback)


def test_killed_run_resumes_bit_for_bit(tmp_path):
    ready, path = tmp_path / "ready", tmp_path / "ckpt"
    code = f"import test_checkpoint as t; t.child({str(path)!r}, {str(ready)!r}, 4)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL  # Killed mid-run, not finished.
    left = [int(name[5:13]) for name in files(path) if name.startswith("ckpt-")]
    assert 4 <= max(left) < 12
    seen = []
    resumed = run(checkpoint=path, callback=lambda done, r: seen.append(done))
    assert seen[0] == max(left) + 2  # It went on from the last checkpoint.
    assert_same(resumed, run())
    assert files(path) == ["ckpt-00000008.npz", "ckpt-00000010.npz", "ckpt-00000012.npz"]


class Interrupt(Exception):
    pass


def interrupt_after(epochs):
    def callback(done, result):
        if done >= epochs:
            raise Interrupt

    return callback


def test_interrupted_then_resumed_equals_one_run_for_each_kind_of_run(tmp_path):
    """In memory and streamed, keyed shuffles and explicit orders, full batch."""
    orders = np.stack([np.random.default_rng(e).permutation(60) for e in range(12)])
    kinds = {
        "key": {},
        "orders": dict(key=None, orders=orders),
        "full": dict(batch_size=None, optimizer=0.5),
        "streamed": dict(stream=True, stream_chunk=16),
        "streamed_full": dict(stream=True, stream_chunk=16, batch_size=None, key=None),
    }
    for name, options in kinds.items():
        path = tmp_path / name
        with pytest.raises(Interrupt):
            run(checkpoint=path, callback=interrupt_after(5), **options)
        assert files(path)[-1] == "ckpt-00000006.npz"  # Saved before the callback raised.
        assert_same(run(checkpoint=path, **options), run(**options))


def test_larger_epochs_continue_a_finished_run(tmp_path):
    orders = np.stack([np.random.default_rng(e).permutation(60) for e in range(20)])
    for options in ({}, dict(stream=True, stream_chunk=16), dict(key=None, orders=orders)):
        path = tmp_path / str(len(os.listdir(tmp_path)))
        short = {k: v[:12] if k == "orders" else v for k, v in options.items()}
        assert_same(run(checkpoint=path, **short), run(**short))
        assert_same(run(checkpoint=path, epochs=20, **options), run(epochs=20, **options))
    with pytest.raises(ValueError, match=r"holds 20 epochs of this run, more than `epochs`=12"):
        run(checkpoint=path, **short)
    other = orders.copy()
    other[3] = other[3][::-1]
    with pytest.raises(ValueError, match=r"orders was '[0-9a-f]+', now '[0-9a-f]+'"):
        run(checkpoint=path, epochs=20, key=None, orders=other)


def test_a_run_that_diverged_or_stopped_early_is_returned_as_it_was(tmp_path):
    X, y = DATA
    runs = {
        "diverged": dict(loss=sq, data=(X, 10 * y), optimizer=optax.sgd(1.5), epochs_per_call=1),
        "stopped": dict(early_stopping=jaxgd.EarlyStopping(monitor="train_loss", patience=1,
                                                            min_delta=0.5)),
    }  # fmt: skip
    longer = {}
    for name, options in runs.items():
        whole = run(**options)
        assert bool(whole.diverged) == (name == "diverged") and int(whole.epochs_run) < 12
        first = run(checkpoint=tmp_path / name, **options)
        saved = files(tmp_path / name)
        again = run(checkpoint=tmp_path / name, **options)
        assert files(tmp_path / name) == saved  # Nothing ran, nothing was saved.
        for result in (first, again):
            assert_same(result, whole)
        longer[name] = run(checkpoint=tmp_path / name, **options, epochs=16)
        assert_same(longer[name], run(**options, epochs=16))
    with pytest.raises(jaxgd.DivergenceError) as err:
        run(checkpoint=tmp_path / "diverged", **runs["diverged"], epochs=16, on_divergence="raise")
    assert_same(err.value.result, longer["diverged"])


def test_default_chunk_is_about_ten_checkpoints_a_run_and_keep_prunes(tmp_path):
    run(checkpoint=jaxgd.Checkpoint(tmp_path / "all", keep=100), epochs_per_call=None, epochs=20)
    assert files(tmp_path / "all") == [f"ckpt-{e:08d}.npz" for e in range(2, 21, 2)]
    run(checkpoint=jaxgd.Checkpoint(str(tmp_path / "one"), keep=1))
    assert files(tmp_path / "one") == ["ckpt-00000012.npz"]
    assert [checkpoint.default_chunk(e) for e in (0, 1, 9, 10, 11, 100, 1001)] == [
        0, 1, 1, 1, 2, 10, 101,
    ]  # fmt: skip


MISMATCHES = {
    "data shapes and dtypes": dict(data=make(61, d=4)),
    "data contents": dict(data=(DATA[0] * 2, DATA[1])),
    "val_data contents": dict(val_data=make(20, d=4, seed=2)),
    "batch_size": dict(batch_size=16),
    "drop_last": dict(drop_last=True),
    "key": dict(key=jax.random.key(4)),
    "shuffle": dict(key=None),
    "optimizer state structure": dict(optimizer=optax.adam(0.1)),
    "optimizer": dict(optimizer=0.1),
    "params structure": dict(params=P | {"c": jnp.zeros(())}),
    "params values": dict(params=P | {"b": jnp.ones(())}),
    "start_epoch": dict(start_epoch=3),
    "metrics": dict(metrics={}),
    "eval_train": dict(eval_train=False),
    "early_stopping": dict(early_stopping=jaxgd.EarlyStopping(monitor="val_loss")),
    "stream": dict(stream=True),
}


@pytest.mark.parametrize("what", list(MISMATCHES))
def test_another_runs_checkpoint_is_refused_naming_what_differs(tmp_path, what):
    run(checkpoint=tmp_path, epochs=2)
    before = files(tmp_path)
    with pytest.raises(ValueError, match="holds another run") as err:
        run(checkpoint=tmp_path, **MISMATCHES[what], epochs=2)
    assert f"{what} was " in str(err.value)
    assert "pass another `checkpoint` directory" in str(err.value)
    assert files(tmp_path) == before


def test_what_the_fingerprint_sees_in_the_optimizer_state(tmp_path):
    """Values injected into the state (`optax.inject_hyperparams`) are compared; a learning
    rate that optax keeps inside a function is not (the README says so)."""
    tx = lambda lr: optax.inject_hyperparams(optax.sgd)(learning_rate=lr)
    run(checkpoint=tmp_path, epochs=2, optimizer=tx(0.1))
    with pytest.raises(ValueError, match="optimizer state values was"):
        run(checkpoint=tmp_path, epochs=2, optimizer=tx(0.2))


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped":  # A bit of the saved losses.
        at = data.index(b"\x93NUMPY", data.index(b"losses.npy")) + 200
        path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    else:
        path.write_bytes(b"not a checkpoint")


@pytest.mark.parametrize("how", ["truncated", "flipped", "garbage"])
def test_a_corrupted_checkpoint_is_reported_with_the_fix(tmp_path, how):
    run(checkpoint=tmp_path, epochs=6)
    corrupt(tmp_path / "ckpt-00000006.npz", how)
    with pytest.raises(ValueError, match="is corrupted or unreadable") as err:
        run(checkpoint=tmp_path, epochs=6)
    assert "ckpt-00000004.npz" in str(err.value)  # The one to resume from instead.
    (tmp_path / "ckpt-00000006.npz").unlink()  # The fix it names.
    assert_same(run(checkpoint=tmp_path, epochs=6), run(epochs=6))


def test_any_flipped_byte_is_reported_or_harmless(tmp_path):
    """Every 5th byte of a checkpoint flipped in turn: reading it raises one of the errors that
    `fit` reports as a corrupted checkpoint, or gives the same arrays (a byte that no reader
    uses, such as a local header's copy of a size), never other arrays."""
    run(checkpoint=tmp_path, epochs=2)
    path = tmp_path / "ckpt-00000002.npz"
    data = path.read_bytes()
    manifest, arrays = checkpoint._decode(path)
    reported = 0
    for at in range(0, len(data), 5):
        path.write_bytes(data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :])
        try:
            got = checkpoint._decode(path)
        except checkpoint.UNREADABLE:
            reported += 1
            continue
        assert got[0] == manifest
        for k, a in arrays.items():
            np.testing.assert_array_equal(got[1][k], a)
    assert reported > 0.7 * len(data) / 5  # The rest: local headers' copies of sizes, times, flags.


def test_a_file_torn_by_a_kill_while_writing_is_litter_that_the_next_call_removes(tmp_path):
    run(checkpoint=tmp_path, epochs=4)
    torn = tmp_path / ".ckpt-00000006.npz.tmp-12345"  # What a kill during a write leaves.
    torn.write_bytes((tmp_path / "ckpt-00000004.npz").read_bytes()[:100])
    assert_same(run(checkpoint=tmp_path), run())
    assert files(tmp_path) == ["ckpt-00000008.npz", "ckpt-00000010.npz", "ckpt-00000012.npz"]


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_litter(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    run(checkpoint=tmp_path, epochs=4)
    monkeypatch.setattr(checkpoint.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        run(checkpoint=tmp_path, epochs=6)
    assert files(tmp_path) == ["ckpt-00000002.npz", "ckpt-00000004.npz"]


def test_an_unwritable_path_fails_before_training(tmp_path, traces):
    (tmp_path / "file").write_text("a file, not a directory")
    loss = lambda p, x, y: bce(p, x, y)  # A new function: training would trace it.
    for path in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(ValueError, match="`checkpoint` directory .* cannot be written"):
            run(loss=loss, checkpoint=path)
    assert traces("run_epochs") == 0


def test_bad_checkpoint_arguments():
    with pytest.raises(TypeError, match=r"`checkpoint` must be a directory path .* got int: 3"):
        run(checkpoint=3)
    with pytest.raises(ValueError, match=r"`checkpoint.keep` must be an integer >= 1, got 0"):
        run(checkpoint=jaxgd.Checkpoint("x", keep=0))


def test_jaxgd_run_checkpoint_keeps_a_folder_per_run_and_resumes(tmp_path, capsys):
    from jaxgd import cli

    args = ["run", "quadratic", "--quick", "--quiet", "--json", "--checkpoint", str(tmp_path / "c")]
    assert cli.main(args + ["--out", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().out
    runs = sorted(os.listdir(tmp_path / "c"))
    assert len(runs) == 2 and all(name.startswith("quadratic_") for name in runs)
    saved = {run: files(tmp_path / "c" / run) for run in runs}
    assert cli.main(args + ["--out", str(tmp_path / "b")]) == 0  # Finished runs: loaded.
    assert capsys.readouterr().out.replace("/b", "/a") == first.replace("/b", "/a")
    assert {run: files(tmp_path / "c" / run) for run in runs} == saved
    assert cli.main(["run", "autograd", "--quick", "--quiet", "--checkpoint", str(tmp_path / "s")]
                    + ["--out", str(tmp_path / "s_out")]) == 0  # fmt: skip
    assert "--checkpoint saved nothing" in capsys.readouterr().err


def test_the_overhead_benchmark_runs_at_toy_size(capsys):
    from benchmarks import checkpoint_overhead

    checkpoint_overhead.main(["--smoke", "--rounds", "2"])
    out = json.loads(capsys.readouterr().out)
    times = out["seconds_per_epoch"]
    for name in checkpoint_overhead.VARIANTS:
        assert 0 < times[name]["min"] <= times[name]["median"] <= times[name]["max"]
    assert out["n"] == 200 and out["rounds"] == 2
