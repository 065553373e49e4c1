"""The machine's floor for SGD: `benchmarks/floor.c`, a plain C loop of single-example updates
(reshuffled every epoch), compiled with the system's C compiler when there is one."""

import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.task import LR, make_data, mean_loss

SOURCE = Path(__file__).with_name("floor.c")


def _compile(folder: Path) -> Path | None:
    """The compiled floor in `folder`, or None when there is no `cc` (or it fails)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    exe = folder / "floor"
    done = subprocess.run([cc, "-O3", "-o", str(exe), str(SOURCE), "-lm"], capture_output=True)
    return exe if done.returncode == 0 else None


def c_floor(n: int, epochs: int, say=print) -> dict:
    """ns per update of the C loop at n (d = 20): every epoch but the first (which faults its
    memory in), their median and spread; its final loss against the same data's start. Without
    a C compiler: `{"skipped": why}`."""
    with tempfile.TemporaryDirectory(prefix="jaxgd-floor-") as tmp:
        exe = _compile(Path(tmp))
        if exe is None:
            say("  floor: no working C compiler (cc); the C floor is skipped")
            return dict(skipped="no working C compiler (`cc`) on this machine")
        X, y = make_data(n)
        X.tofile(Path(tmp) / "X.f32")
        y.tofile(Path(tmp) / "y.f32")
        args = [exe, Path(tmp) / "X.f32", Path(tmp) / "y.f32", n, X.shape[1], epochs + 1, LR, 0]
        done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True)

    out = json.loads(done.stdout)
    ns = out["ns_per_update"][1:]
    say(f"  floor: C loop {statistics.median(ns):.1f} ns per update [{min(ns):.1f}-{max(ns):.1f}]")
    return dict(
        n=n,
        epochs=epochs,
        ns=ns,
        median_ns=statistics.median(ns),
        min_ns=min(ns),
        max_ns=max(ns),
        loss=out["loss"],
        start=mean_loss([0.0] * X.shape[1], 0.0, X, y),
        compiler="cc -O3",
    )
