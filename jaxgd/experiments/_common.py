"""What every experiment shares: atomic result files and headless plots."""

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def to_json(value):
    """Converts arrays and NumPy/JAX scalars inside `value` to plain Python for JSON."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        return to_json(arr.tolist()) if arr.ndim else to_json(arr.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` so that the file is either complete or absent (rename is atomic)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(out_dir, results: dict, figures: dict | None = None) -> dict:
    """Writes each figure as `<name>.png` and then `results.json` into `out_dir`, atomically.

    Args:
      out_dir: the folder (created if needed), or None to write nothing.
      results: JSON-ready results (arrays are converted).
      figures: `{name: matplotlib Figure}`; each is closed after saving.

    Returns:
      `results` converted to plain Python, with `"files"` listing what was written.
    """
    results = to_json(results)
    if out_dir is None:
        for fig in (figures or {}).values():
            _close(fig)
        return results
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in (figures or {}).items():
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        _close(fig)
        atomic_write_bytes(out / f"{name}.png", buffer.getvalue())
        written.append(f"{name}.png")
    results["files"] = written + ["results.json"]
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=2).encode())
    return results


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (a clear ImportError without the extra)."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install "jaxgd[plot]"') from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
