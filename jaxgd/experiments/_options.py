"""An experiment's options, written once: a frozen dataclass of `option(default, help, quick=)`.

Every experiment declares its options in the style of nanoGPT's config files, one commented line
each, but with the comment as a string the program can read:

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Options:
        lr: float = option(0.01, "the notebook's learning rate")
        epochs: int = option(10, "gradient steps, one per epoch", quick=3)

From that one class come `run(**options)`'s checks (`resolve`), `results["options"]`
(`as_dict`) and `jaxgd run NAME --help` (`specs`). `quick=` is the option's toy-size value:
`resolve(..., quick=True)` uses it only for the options the user did not give.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = ["OptionSpec", "option", "resolve", "specs", "as_dict"]

_UNSET = object()  # an option whose `quick` value is its default


class OptionSpec(NamedTuple):
    """One option as the command line and `--help` see it."""

    name: str  # The field's name, e.g. "batch_size" (`--batch-size` on the command line).
    kind: type  # int, float, bool or str: the value's type, or each item's for a tuple.
    many: bool  # A tuple of `kind` values (comma-separated on the command line).
    optional: bool  # None is allowed ("none" on the command line).
    default: Any  # The value when the option is not given.
    quick: Any  # The value under `quick` when not given (the default if quick leaves it).
    help: str  # What the option is, and why its default.


def option(default, help: str, *, quick=_UNSET):
    """A field of an experiment's `Options`: its default, its one-line help, its quick value.

    Args:
      default: the value when the option is not given (immutable: a tuple, not a list).
      help: one line: what it is and why that default (`--help` shows it).
      quick: the toy-size value that `quick=True` uses when the option is not given; leave it
        out when toy size keeps the default.

    Returns:
      A `dataclasses.field` carrying the help and quick value in its metadata.

    Examples:
      >>> import dataclasses
      >>> @dataclasses.dataclass(frozen=True, kw_only=True)
      ... class Options:
      ...     epochs: int = option(10, "passes over the data", quick=2)
      >>> Options().epochs, specs(Options)[0].quick
      (10, 2)
    """
    return dataclasses.field(default=default, metadata={"help": help, "quick": quick})


def _spec(field: dataclasses.Field, hint) -> OptionSpec:
    """The `OptionSpec` of one field, from its type hint (int, float | None, tuple[int, ...])."""
    args = typing.get_args(hint)
    optional = type(None) in args and typing.get_origin(hint) in (typing.Union, types.UnionType)
    if optional:
        (hint,) = [a for a in args if a is not type(None)]
    many = typing.get_origin(hint) is tuple
    kind = typing.get_args(hint)[0] if many else hint
    if kind not in (int, float, bool, str):
        raise TypeError(f"option `{field.name}` has type {hint!r}; use int, float, bool or str.")
    quick = field.metadata.get("quick", _UNSET)
    return OptionSpec(name=field.name, kind=kind, many=many, optional=optional,
                      default=field.default, quick=field.default if quick is _UNSET else quick,
                      help=field.metadata.get("help", ""))  # fmt: skip


def specs(options_class) -> list[OptionSpec]:
    """The options of an `Options` class, in the order they are written.

    Examples:
      >>> from jaxgd.experiments.quadratic import Options
      >>> [(s.name, s.kind.__name__, s.default, s.quick) for s in specs(Options)]
      [('lr', 'float', 0.01, 0.01), ('epochs', 'int', 10, 3), ('start', 'float', 1.1, 1.1)]
    """
    hints = typing.get_type_hints(options_class)
    return [_spec(f, hints[f.name]) for f in dataclasses.fields(options_class)]


def _checked(spec: OptionSpec, value):
    """`value` as the option's type; a TypeError naming the option otherwise."""
    if value is None and spec.optional:
        return None
    if spec.many:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise TypeError(f"`{spec.name}` must be a sequence of {spec.kind.__name__}s, got "
                            f"{type(value).__name__} {value!r}.")  # fmt: skip
        return tuple(_scalar(spec, item) for item in value)
    return _scalar(spec, value)


def _scalar(spec: OptionSpec, value):
    kind = spec.kind
    if kind is bool and isinstance(value, (bool, np.bool_)):
        return bool(value)
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:  # JAX and NumPy take int64 (a seed beyond it overflows)
            raise ValueError(f"`{spec.name}` must be in int64's range [-2**63, 2**63 - 1], got "
                             f"{value}.")  # fmt: skip
        return int(value)
    if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, (str, os.PathLike)):
        return os.fspath(value)  # a path as text, for results.json
    none = " or None" if spec.optional else ""
    raise TypeError(f"`{spec.name}` must be {'a sequence of ' * spec.many}{kind.__name__}"
                    f"{'s' * spec.many}{none}, got {type(value).__name__} {value!r}.")  # fmt: skip


def resolve(options_class, given: Mapping[str, Any], *, quick: bool = False):
    """The experiment's options: the user's `given` values, checked, and defaults for the rest.

    Args:
      options_class: the experiment's `Options` dataclass.
      given: the options the user gave (`run(**options)`'s keyword arguments).
      quick: use each option's toy-size `quick` value where the user gave none.

    Returns:
      An `options_class` instance.

    Raises:
      TypeError: an option the class does not have, or a value of the wrong type; the message
        names the option.
      ValueError: an integer beyond int64.

    Examples:
      >>> from jaxgd.experiments.quadratic import Options
      >>> resolve(Options, {}, quick=True).epochs, resolve(Options, {"epochs": 7}, quick=True).epochs
      (3, 7)
      >>> resolve(Options, {"epoch": 7})
      Traceback (most recent call last):
      ...
      TypeError: unknown option `epoch`; this experiment's options: lr, epochs, start.
    """
    by_name = {s.name: s for s in specs(options_class)}
    for name in given:
        if name not in by_name:
            raise TypeError(f"unknown option `{name}`; this experiment's options: "
                            f"{', '.join(by_name)}.")  # fmt: skip
    values = {name: _checked(by_name[name], value) for name, value in given.items()}
    for name, spec in by_name.items():
        if name not in values and quick:
            values[name] = spec.quick
    return options_class(**values)


def as_dict(options) -> dict:
    """The options as `results["options"]`: `{name: value}` in the order they are written.

    Examples:
      >>> from jaxgd.experiments.quadratic import Options
      >>> as_dict(Options(epochs=2))
      {'lr': 0.01, 'epochs': 2, 'start': 1.1}
    """
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
