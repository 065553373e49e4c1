"""The lectures' experiments, one module each, found by name.

Every module here that does not start with an underscore is an experiment: it defines
`DESCRIPTION` (one line), `Options` (a frozen dataclass of `_options.option` fields: each option's
default, help and toy-size value, written once) and `run(*, out_dir=None, quick=False, **options)
-> dict`, which returns JSON-ready results and, given `out_dir`, writes `results.json` and its
plots there (`_output.results_folder`: the whole set or none).
"""

import importlib
import pkgutil

__all__ = ["names", "get"]


def names() -> list[str]:
    """The experiments' names, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str):
    """The experiment module called `name`; a ValueError lists the names if there is none."""
    if name not in names():
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(names())}.")
    return importlib.import_module(f"{__name__}.{name}")
