"""An experiment's result folder: complete and consistent, or absent, whatever stops the run.

`results_folder(out_dir)` reserves the folder for one run before any training starts:

* it refuses `""`, the working folder (or one above it) and a folder holding files that jaxgd
  did not write, since a new result set replaces the whole folder;
* it takes a lock (`.NAME.lock` beside the folder, an `flock` the system drops when the process
  dies, so a killed run never leaves it stuck): a second run into the same folder is refused;
* its `save(results, figures)` renders every figure in memory, writes all the files into a new
  hidden sibling folder (`.NAME.new-*`, with the umask's modes), and only then swaps it in by
  two renames (the old folder to `.NAME.old-*`, the new one to NAME), with SIGINT and SIGTERM
  held back between them. A failed write (a full disk) removes the new folder and keeps the old.
* A run killed by SIGKILL or a power cut leaves at most those hidden folders; the next run into
  the same folder puts a stranded old result set back and removes them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import threading
from pathlib import Path

from jaxgd.experiments import _common

__all__ = ["ResultsError", "ResultsFolder", "check_out_dir", "results_folder", "save"]


class ResultsError(OSError):
    """The result folder is taken by another run, or its files cannot be written."""


def check_out_dir(out_dir) -> Path:
    """Checks that `out_dir` can take a result set, and creates its parent folder.

    Call it before training, so that a bad `--out` fails in a second, not after the run.

    Args:
      out_dir: the folder for `results.json` and the plots.

    Returns:
      The folder as an absolute `Path` (it need not exist yet).

    Raises:
      ValueError: `out_dir` is empty, is the working folder or one above it, is a file, or holds
        files that jaxgd did not write.
      OSError: its parent folder cannot be created or written; the message names it.

    Examples:
      >>> import pathlib, tempfile
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     print(check_out_dir(pathlib.Path(tmp) / "a" / "b").parent.is_dir())
      True
      >>> check_out_dir("")
      Traceback (most recent call last):
      ...
      ValueError: `out_dir` is empty (an unset shell variable?); give a folder for the results.
    """
    if os.fspath(out_dir) == "":
        raise ValueError("`out_dir` is empty (an unset shell variable?); give a folder for the "
                         "results.")  # fmt: skip
    out = Path(os.path.abspath(out_dir))
    real, cwd = Path(os.path.realpath(out)), Path(os.path.realpath(os.getcwd()))
    if real == cwd or real in cwd.parents:
        raise ValueError(f"`out_dir` {os.fspath(out_dir)!r} is the working folder or above it; "
                         "a result set replaces its whole folder: give a new one, e.g. "
                         "jaxgd-results/NAME.")  # fmt: skip
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        raise OSError(err.errno, f"cannot write results to {os.fspath(out_dir)!r} "
                      f"({err.strerror or err}); choose another folder") from None  # fmt: skip
    _refuse_foreign_files(out, out_dir)
    return out


def _refuse_foreign_files(out: Path, shown) -> None:
    """A result set replaces its folder: refuse one that holds anything else."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise ValueError(f"`out_dir` {os.fspath(shown)!r} is a file or a link, not a folder; "
                         "give a folder for the results.")  # fmt: skip
    present = set(os.listdir(out))
    ours = {"results.json"}
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        ours |= set(json.loads((out / "results.json").read_text()).get("files", []))
    foreign = sorted(present - ours) if "results.json" in present else sorted(present)
    if foreign:
        raise ValueError(f"`out_dir` {os.fspath(shown)!r} holds files that are not an earlier "
                         f"result set ({', '.join(foreign[:3])}{', ...' * (len(foreign) > 3)}); "
                         "new results replace the whole folder: give a new or empty one.")  # fmt: skip


@contextlib.contextmanager
def _locked(out: Path):
    """Holds `.NAME.lock` beside `out` with `flock` (dropped by the system if the process dies)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): concurrent runs go undetected
        yield
        return
    path = out.parent / f".{out.name}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ResultsError(f"another run is writing to {os.fspath(out)!r} (process "
                               f"{holder}); wait for it, or choose another folder") from None  # fmt: skip
        with contextlib.suppress(FileNotFoundError):  # the file we locked is still the lock?
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)  # its holder removed it as we opened it: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still held, so no one can hold the removed file
        os.close(fd)


def _siblings(out: Path, kind: str) -> list[Path]:
    """The hidden `.NAME.new-*` or `.NAME.old-*` folders beside `out`, oldest first."""
    prefix = f".{out.name}.{kind}-"
    found = [out.parent / n for n in os.listdir(out.parent) if n.startswith(prefix)]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _recover(out: Path) -> None:
    """Puts back a result set stranded by a killed swap; removes unfinished new folders."""
    old = _siblings(out, "old")
    if old and not out.exists():
        os.rename(old.pop(), out)
    for stale in old + _siblings(out, "new"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _signals_held():
    """Holds SIGINT and SIGTERM back until the block ends (main thread only), then delivers them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for signum in dict.fromkeys(caught):
        signal.raise_signal(signum)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can sync a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_new(out: Path, files: dict[str, bytes]) -> Path:
    """Writes `files` into a new hidden sibling of `out`; on any failure removes it."""
    new = out.parent / f".{out.name}.new-{secrets.token_hex(4)}"
    try:
        os.mkdir(new)  # mode 0o777 less the umask, as any folder the user makes
        for name, data in files.items():  # results.json last: its presence means "complete"
            with open(new / name, "xb") as file:  # 0o666 less the umask (mkstemp gives 0o600)
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        _fsync_dir(new)
    except BaseException as err:
        shutil.rmtree(new, ignore_errors=True)
        if isinstance(err, OSError):
            kept = "the earlier results there are kept" if out.exists() else "nothing was written"
            raise ResultsError(err.errno, f"cannot write results to {os.fspath(out)!r} "
                               f"({err.strerror or err}); {kept}") from None  # fmt: skip
        raise
    return new


def _swap(new: Path, out: Path) -> None:
    """Puts the folder `new` in the place of `out`: two renames, the old set removed after."""
    old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
    with _signals_held():
        if out.exists():
            os.rename(out, old)
        os.rename(new, out)
        _fsync_dir(out.parent)
        shutil.rmtree(old, ignore_errors=True)


def _render(figures: dict) -> dict[str, bytes]:
    """Each figure as PNG bytes, `{name}.png`; every figure is closed, even after an error."""
    rendered = {}
    try:
        for name, fig in figures.items():
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=_common.figure_dpi_now(), bbox_inches="tight")
            rendered[f"{name}.png"] = buffer.getvalue()
    finally:
        for fig in figures.values():
            _common.close_figure(fig)
    return rendered


class ResultsFolder:
    """A result folder reserved by `results_folder`; `save` writes the run's files into it."""

    def __init__(self, out: Path | None):
        self.out = out  # The folder (absolute), or None: nothing is written.

    def save(self, results: dict, figures: dict | None = None) -> dict:
        """Writes each figure as `<name>.png` and `results.json`, replacing the folder at once.

        Args:
          results: JSON-ready results (arrays are converted).
          figures: `{name: matplotlib Figure}`, each closed after rendering; or a function of
            no arguments that makes them, called only when there is a folder.

        Returns:
          `results` converted to plain Python, with `"files"` listing what was written (when
          there is a folder).

        Raises:
          ResultsError: a file cannot be written (a full disk); the earlier results are kept.
        """
        results = _common.to_json(results)
        if callable(figures):
            figures = figures() if self.out is not None else None
        if self.out is None:
            for fig in (figures or {}).values():
                _common.close_figure(fig)
            return results
        files = _render(dict(figures or {}))
        results["files"] = list(files) + ["results.json"]
        files["results.json"] = json.dumps(results, indent=2).encode()
        _swap(_write_new(self.out, files), self.out)
        return results


@contextlib.contextmanager
def results_folder(out_dir):
    """Reserves `out_dir` for this run's results; yields a `ResultsFolder` to `save` them.

    Enter it before training: a bad or busy folder fails at once. The lock is held until the
    block ends.

    Args:
      out_dir: the folder for `results.json` and the plots, or None to write nothing.

    Raises:
      ValueError, OSError: as `check_out_dir`.
      ResultsError: another run holds the folder.

    Examples:
      >>> import pathlib, tempfile
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     with results_folder(pathlib.Path(tmp) / "out") as folder:
      ...         saved = folder.save({"loss": 0.5})
      ...     print(saved["files"], sorted(p.name for p in pathlib.Path(tmp).iterdir()))
      ['results.json'] ['out']
    """
    if out_dir is None:
        yield ResultsFolder(None)
        return
    out = check_out_dir(out_dir)
    with _locked(out):
        _recover(out)
        _refuse_foreign_files(out, out_dir)  # again, now that no one else can write there
        yield ResultsFolder(out)


def save(out_dir, results: dict, figures: dict | None = None) -> dict:
    """`results_folder(out_dir)` and its `save` in one call, for a result set made elsewhere."""
    with results_folder(out_dir) as folder:
        return folder.save(results, figures)
