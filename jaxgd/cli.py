"""The `jaxgd` command: run the lectures' experiments, the demo, the PyTorch comparison.

    jaxgd list                          the experiments, one per line
    jaxgd run NAME [--out DIR] [--checkpoint DIR] [--json] [--quiet] [--quick] [--OPTION VALUE ...]
    jaxgd demo [--out DIR]              full batch vs SGD vs mini-batch on built-in data
    jaxgd compare [--problem P] ...     jaxgd against a PyTorch loop, step by step

Exit status: 0 on success, 1 when `compare` finds a difference above its tolerance, an extra is
missing or the results cannot be written (another run holds --out, a full disk), 2 for a bad
command line or a value the library rejects, 130 after Ctrl-C (SIGINT), 143 after SIGTERM.
Everything heavy (JAX, the experiments, matplotlib, tqdm, torch) is imported only when needed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import signal
import sys
import textwrap
import threading
import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143

_EPILOG = """\
examples:
  jaxgd list
  jaxgd demo
  jaxgd run quadratic --out results/quadratic
  jaxgd run logistic --data ../shared/data/perceptron_toydata-truncated.txt --json
  jaxgd run schedules --epochs 5 --quiet
  jaxgd run relu --help                 the experiment's options and their defaults
  jaxgd compare --problem logistic --batch-size 10 --optimizer adam
"""

_RUN_EPILOG = """\
examples:
  jaxgd run autograd
  jaxgd run quadratic --out results/quadratic --lr 0.01 --epochs 10
  jaxgd run banknote --data data_banknote_authentication.txt --json
  jaxgd run digits --quick --quiet
  jaxgd run schedules --help            the experiment's options and their defaults

Options after NAME are the experiment's (`--epochs 5` or `--epochs=5`, dashes or underscores);
lists are comma-separated (`--ks 1,2,4`), booleans true/false. Results go to --out
(default ./jaxgd-results/NAME): results.json and the plots, which replace the folder's earlier
result set all at once (a stopped run leaves the earlier set); two runs into one --out at once
are refused.
"""

_DEMO_EPILOG = """\
examples:
  jaxgd demo
  jaxgd demo --out /tmp/demo --epochs 10
  jaxgd demo --json --quiet

The demo is `jaxgd run schedules` on built-in data (no download): logistic regression on a
synthetic 1372 x 4 banknote-like set, 20 epochs of full-batch GD, SGD and mini-batch GD at the
same learning rate; a table of final loss, accuracy, updates and wall time, and loss.png.
"""

_COMPARE_EPILOG = """\
examples:
  jaxgd compare
  jaxgd compare --problem quadratic --batch-size full --epochs 10
  jaxgd compare --problem logistic --batch-size 1 --optimizer momentum --momentum 0.9
  jaxgd compare --problem mlp --optimizer adam --lr 0.01 --dtype float64 --json
  jaxgd compare --problem logistic --data perceptron_toydata-truncated.txt

Exits 1 when the largest loss or parameter difference exceeds --tolerance.
"""


class _UsageError(Exception):
    """A bad command line: reported as one line, exit status 2."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a timeout, `kill`, `docker stop`): stopped as Ctrl-C is, exit status 143."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage block) and never exit by themselves."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def main(argv: list[str] | None = None) -> int:
    """Runs the `jaxgd` command line and returns its exit status.

    Args:
      argv: the arguments after `jaxgd`; default `sys.argv[1:]`.

    Returns:
      0 on success, 1 for a failed comparison or a missing extra, 2 for a bad command line or
      value, 130 when interrupted.

    Examples:
      >>> main(["run", "no-such-experiment"])  # its one-line error goes to stderr
      2
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with _signals_as_interrupts():
            return _main(argv)
    except _UsageError as err:
        _say(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, _Terminated) else "interrupted"
        _say(f"jaxgd: {what}; no partial result files were left")
        return EXIT_TERMINATED if isinstance(err, _Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:  # `jaxgd list | head -1`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the exit-time flush
        return EXIT_OK


class _StopOnSignal:
    """The handler of SIGINT and SIGTERM: raises KeyboardInterrupt or `_Terminated`, and keeps
    the signal, so that `_check_stop` raises it again where Python swallowed the first raise
    (an exception in a garbage-collector callback, such as JAX's, is only printed)."""

    def __init__(self):
        self.received = None  # The first signal received, or None.

    def __call__(self, signum, frame):
        self.received = self.received or signum
        self.raise_()

    def raise_(self):
        if self.received == signal.SIGTERM:
            raise _Terminated
        if self.received is not None:
            raise KeyboardInterrupt


def _check_stop() -> None:
    """Raises again a SIGINT or SIGTERM received before, if its first raise was swallowed."""
    handler = signal.getsignal(signal.SIGTERM)
    if isinstance(handler, _StopOnSignal):
        handler.raise_()


@contextlib.contextmanager
def _signals_as_interrupts():
    """SIGINT and SIGTERM stop the block as Ctrl-C does (SIGTERM as `_Terminated`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _StopOnSignal()
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    sys.unraisablehook = functools.partial(_quiet_swallowed_stop, hook)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for s, old in previous.items():
            signal.signal(s, old)


def _quiet_swallowed_stop(hook, unraisable) -> None:
    """Python prints an exception it cannot raise (one from a garbage-collector callback); a
    stop is raised again by `_check_stop`, so its report would only be noise."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        hook(unraisable)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


_KW = dict(formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)


def _parser() -> tuple[_Parser, dict[str, _Parser]]:
    from jaxgd import __version__

    parser = _Parser(
        prog="jaxgd",
        description="Gradient descent in JAX, the way the lectures teach it: the experiments, "
        "a demo of the three schedules, and the PyTorch comparison.",
        epilog=_EPILOG,
        **_KW,
    )
    parser.add_argument("--version", action="version", version=f"jaxgd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    kw = _KW
    sub.add_parser("list", help="list the experiments", description="List the experiments: "
                   "name, then a one-line description.", epilog="example:\n  jaxgd list", **kw)  # fmt: skip
    subparsers = {"run": _run_command(sub), "demo": _demo_command(sub)}
    _compare_command(sub)
    return parser, subparsers


def _run_command(sub) -> _Parser:
    run = sub.add_parser("run", help="run one experiment", epilog=_RUN_EPILOG, add_help=False,
                         usage="jaxgd run NAME [--out DIR] [--checkpoint DIR] [--json] [--quiet] "
                         "[--quick] [--OPTION VALUE ...]",
                         description="Run one experiment: print a table of its results and "
                         "write results.json and its plots.", **_KW)  # fmt: skip
    run.add_argument("-h", "--help", action="store_true", help="show this help (after NAME: "
                     "the experiment's options)")  # fmt: skip
    run.add_argument("name", nargs="?", metavar="NAME", help="an experiment (see `jaxgd list`)")
    run.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return run


def _demo_command(sub) -> _Parser:
    demo = sub.add_parser("demo", help="full batch vs SGD vs mini-batch on built-in data",
                          description="Compare the three descent schedules on one built-in "
                          "problem, in seconds.", epilog=_DEMO_EPILOG, add_help=False, **_KW)  # fmt: skip
    demo.add_argument("-h", "--help", action="store_true", help="show this help")
    demo.add_argument("--out", metavar="DIR", help="folder for results.json and loss.png "
                      "(default ./jaxgd-demo)")  # fmt: skip
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.add_argument("--quiet", action="store_true", help="no progress bar, no closing line")
    demo.add_argument("--quick", action="store_true", help="toy size (seconds)")
    demo.add_argument("--OPTION", metavar="VALUE", help="any option of `jaxgd run schedules` "
                      "(see `jaxgd run schedules --help`)")  # fmt: skip
    return demo


def _compare_command(sub) -> _Parser:
    compare = sub.add_parser("compare", help="jaxgd against a PyTorch loop, step by step",
                             description="Run one problem as an ordinary PyTorch loop and with "
                             "jaxgd.fit (same init, same batch orders) and report the largest "
                             "differences and the speed ratio.", epilog=_COMPARE_EPILOG, **_KW)  # fmt: skip
    opt = dict(default=argparse.SUPPRESS)  # unset options keep jaxgd.compare's defaults
    compare.add_argument("--problem", metavar="P", help="logistic (default), linear, quadratic "
                         "or mlp", **opt)  # fmt: skip
    compare.add_argument("--epochs", type=int, help="epochs (default 20)", **opt)
    compare.add_argument("--batch-size", type=_batch_size, metavar="M|full",
                         help="1 for SGD, m for mini-batch, 'full' for full batch (default 10)",
                         **opt)  # fmt: skip
    compare.add_argument("--optimizer", metavar="NAME", help="sgd (default), momentum, "
                         "nesterov or adam", **opt)  # fmt: skip
    compare.add_argument("--lr", type=_finite, help="learning rate (default: the problem's)",
                         **opt)  # fmt: skip
    compare.add_argument("--momentum", type=_finite, help="momentum for momentum/nesterov "
                         "(default 0.9)", **opt)  # fmt: skip
    compare.add_argument("--seed", type=int, help="torch.manual_seed for the init and the "
                         "shuffling (default 1)", **opt)  # fmt: skip
    compare.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                         help="visit the examples in data order", **opt)  # fmt: skip
    compare.add_argument("--drop-last", action="store_true", help="drop a smaller last batch",
                         **opt)  # fmt: skip
    compare.add_argument("--dtype", metavar="D", help="float32 (default) or float64", **opt)
    compare.add_argument("--tolerance", type=_finite, help="largest allowed difference "
                         "(default 1e-5)", **opt)  # fmt: skip
    compare.add_argument("--data", dest="path", metavar="PATH", help="the lecture's toy file "
                         "for --problem logistic (default: built-in)", **opt)  # fmt: skip
    compare.add_argument("--json", action="store_true", help="print the report as JSON")
    return compare


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _batch_size(text: str):
    if text.lower() in ("full", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'full', got {text!r}"
        ) from None


def _main(argv: list[str]) -> int:
    if argv[:1] == ["bench"]:  # the harness left the package; say where it is
        _say(
            "jaxgd: the benchmarks are `python -m benchmarks`, run from a checkout of the repository"
        )
        return EXIT_USAGE
    parser, subparsers = _parser()
    if argv[:1] == ["demo"]:  # argparse cannot pass options through a leading REMAINDER
        if {"-h", "--help"} & set(argv[1:]):
            subparsers["demo"].print_help()
            return EXIT_OK
        return _run("schedules", argv[1:], prog="jaxgd demo", default_out="jaxgd-demo")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if args.command == "list":
        return _list()
    if args.command == "run":
        if args.name is None:
            if args.help:
                subparsers["run"].print_help()
                return EXIT_OK
            raise _UsageError("jaxgd run: error: which experiment? (see 'jaxgd list')")
        return _run(args.name, ["--help"] * args.help + args.rest, prog=f"jaxgd run {args.name}")
    if args.command == "compare":
        return _compare(args)
    raise AssertionError(args.command)  # pragma: no cover


# ---------------------------------------------------------------------------------- list


def _list() -> int:
    from jaxgd import experiments

    names = experiments.names()
    width = max(map(len, names), default=0)
    for name in names:
        print(f"{name:<{width}}  {_description(experiments.get(name))}")
    return EXIT_OK


def _description(module) -> str:
    text = getattr(module, "DESCRIPTION", "") or (module.__doc__ or "").strip()
    return text.splitlines()[0] if text else ""


# ---------------------------------------------------------------------------------- run


def _run_parser(prog: str, default_out: str | None) -> _Parser:
    parser = _Parser(prog=prog, add_help=False, allow_abbrev=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--quick", action="store_true")
    return parser


def _run(name: str, rest: list[str], *, prog: str, default_out: str | None = None) -> int:
    from jaxgd import experiments

    if name not in experiments.names():
        raise _UsageError(
            f"jaxgd run: error: unknown experiment {name!r}; choose one of: "
            f"{', '.join(experiments.names())}"
        )
    module = experiments.get(name)
    common, extras = _run_parser(prog, default_out).parse_known_args(rest)
    if common.help:
        print(_experiment_help(name, module, prog.replace(f" {name}", "")))
        return EXIT_OK
    options = _parse_options(_specs(module), extras, prog=prog)
    _check_options(module, options, quick=common.quick, prog=prog)
    out = _out_dir(common.out, name, prog)
    _check_checkpoint_dir(common.checkpoint, prog)
    if not common.quiet:
        _say(f"jaxgd: running {name} (results to {out}/)")
    start = time.perf_counter()
    results = _call_experiment(module, out, common, options)
    if isinstance(results, int):  # an exit status: the error is already said
        return results
    seconds = time.perf_counter() - start
    if common.json:
        print(json.dumps(results, indent=2))
    else:
        print(_format_results(name, results))
        if not common.quiet:
            files = ", ".join(results.get("files", [])) if isinstance(results, dict) else ""
            print(f"\nwrote {files} to {out}/ in {seconds:.1f} s")
    return EXIT_OK


def _out_dir(out: str | None, name: str, prog: str) -> str:
    """--out, checked now (a bad folder fails before the training), or the default folder."""
    from jaxgd.experiments import _output

    if out == "":
        raise _UsageError(f"{prog}: error: --out is empty (an unset shell variable?); give a "
                          f"folder, e.g. --out jaxgd-results/{name}")  # fmt: skip
    out = out if out is not None else os.path.join("jaxgd-results", name)
    try:
        _output.check_out_dir(out)
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else _one_line(err)
        raise _UsageError(f"{prog}: error: {reason.replace('`out_dir`', '--out')}") from None
    return out


def _check_checkpoint_dir(path: str | None, prog: str) -> None:
    """--checkpoint, checked now: a folder this process can create and write to."""
    if path is None:
        return
    if path == "":
        raise _UsageError(f"{prog}: error: --checkpoint is empty (an unset shell variable?); "
                          "give a folder, e.g. --checkpoint jaxgd-checkpoints")  # fmt: skip
    from jaxgd.loop import checkpoint

    try:
        checkpoint.Saver(path)  # Creates it and writes a file there (removed at once).
    except ValueError as err:
        raise _UsageError(
            f"{prog}: error: {_one_line(err)}".replace("`checkpoint`", "--checkpoint")
        ) from None


def _check_options(module, options: dict, *, quick: bool, prog: str) -> None:
    """The experiment's own checks of its options, now, before any folder or training."""
    from jaxgd.experiments import _options

    try:
        _options.resolve(module.Options, options, quick=quick)
    except (TypeError, ValueError) as err:
        raise _UsageError(f"{prog}: error: {_one_line(err)}") from None


def _call_experiment(module, out: str, common, options: dict):
    """`module.run(...)`'s results, or an exit status after a one-line error."""
    from jaxgd.experiments import _common, _output

    show_bar = not common.quiet and sys.stderr.isatty()
    saving = contextlib.nullcontext([None])
    if common.checkpoint is not None:
        saving = _common.checkpointing(common.checkpoint)
    try:
        with _common.reporting(_progress_factory(show_bar)), saving as used:
            results = module.run(out_dir=out, quick=common.quick, **options)
        _check_stop()  # a signal whose raise was swallowed during the last chunk
        if not used:
            _say(f"jaxgd: note: {module.__name__.rsplit('.', 1)[-1]} has no run that checkpoints "
                 "(its runs are timed, or not trained by fit); --checkpoint saved nothing")  # fmt: skip
        return results
    except _output.ResultsError as err:  # --out taken by another run, or a full disk
        _say(f"jaxgd: error: {_one_line(err.strerror or err)}")
        return EXIT_FAILED
    except (ValueError, TypeError, FileNotFoundError) as err:
        if os.environ.get("JAXGD_DEBUG"):
            raise
        _say(f"jaxgd: error: {_one_line(err)}")
        return EXIT_USAGE
    except ImportError as err:
        _say(f"jaxgd: error: {_one_line(err)}")
        return EXIT_FAILED


def _specs(module) -> dict:
    """`{name: OptionSpec}` of an experiment's `Options`."""
    from jaxgd.experiments import _options

    return {spec.name: spec for spec in _options.specs(module.Options)}


def _parse_options(specs: dict, tokens: list[str], *, prog: str) -> dict:
    """`--key value` / `--key=value` tokens, checked against the experiment's options, converted."""
    known = ", ".join("--" + k.replace("_", "-") for k in specs) or "none"
    options, i = {}, 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise _UsageError(f"{prog}: error: unexpected argument {token!r}; options are "
                              f"--name value")  # fmt: skip
        key, has_value, value = token[2:].partition("=")
        key = key.replace("-", "_")
        flag = "--" + key.replace("_", "-")
        if key not in specs:
            raise _UsageError(f"{prog}: error: unknown option {flag}; this experiment's "
                              f"options: {known}")  # fmt: skip
        if not has_value:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise _UsageError(f"{prog}: error: option {flag} needs a value")
            i += 1
            value = tokens[i]
        if key in options:
            raise _UsageError(f"{prog}: error: option {flag} given twice")
        options[key] = _convert(value, specs[key], flag=flag, prog=prog)
        i += 1
    return options


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}  # fmt: skip


def _convert(text: str, spec, *, flag: str, prog: str):
    """An option's text as its type: a number, true/false, a comma-separated tuple, or none."""
    if spec.optional and text.lower() == "none":
        return None
    if spec.many:
        items = [item.strip() for item in text.split(",") if item.strip()]
        return tuple(_scalar(item, spec.kind, flag, prog) for item in items)
    return _scalar(text, spec.kind, flag, prog)


def _scalar(text: str, kind: type, flag: str, prog: str):
    if kind is bool:
        if text.lower() not in _BOOLEANS:
            raise _UsageError(f"{prog}: error: {flag} expects true or false, got {text!r}")
        return _BOOLEANS[text.lower()]
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise _UsageError(f"{prog}: error: {flag} expects an integer, got {text!r}") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise _UsageError(f"{prog}: error: {flag} expects a number, got {text!r}") from None
        if not math.isfinite(value):
            raise _UsageError(f"{prog}: error: {flag} expects finite numbers, got {text!r}")
        return value
    return text


def _shown(value) -> str:
    """An option's value as the command line writes it."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _option_line(spec) -> str:
    """One option in `--help`: flag, type, help, default (and the --quick value if it differs),
    wrapped at 100 columns."""
    kind = spec.kind.__name__.upper() + (",..." if spec.many else "") + ("|none" * spec.optional)
    flag = f"--{spec.name.replace('_', '-')} {kind}"
    quick = f"; --quick: {_shown(spec.quick)}" if spec.quick != spec.default else ""
    text = f"  {flag:<22} {spec.help} (default: {_shown(spec.default)}{quick})"
    return textwrap.fill(text, width=100, subsequent_indent=" " * 25)


def _experiment_help(name: str, module, prog: str) -> str:
    lines = [
        f"usage: {prog} {name} [--out DIR] [--checkpoint DIR] [--json] [--quiet] [--quick] "
        "[--OPTION VALUE ...]",
        "",
        _description(module),
        "",
        "common options:",
        "  --out DIR     folder for results.json and the plots (default ./jaxgd-results/NAME)",
        "  --checkpoint DIR  keep each training run's checkpoints there (a folder per run); the",
        "                same command again resumes an interrupted run",
        "  --json        print the results as JSON instead of a table",
        "  --quiet       no progress bar, no closing line",
        "  --quick       toy size (seconds), as the smoke tests run it: the --quick values below",
        "",
        f"{name} options (INT,... and FLOAT,...: comma-separated lists):",
    ]
    lines += [_option_line(spec) for spec in _specs(module).values()] or ["  (none)"]
    return "\n".join(lines)


def _progress_factory(show: bool):
    """A reporter for `_common.reporting`: a tqdm bar per training run, or silent chunking.

    Even without a bar, runs go in compiled chunks, so that Ctrl-C is answered between chunks.
    """
    tqdm = None
    if show:
        try:
            from tqdm import tqdm
        except ImportError:  # the `progress` extra is optional
            tqdm = None
    return functools.partial(_progress, tqdm)


def _progress(tqdm, label: str, total: int):
    """`(update(epochs_done), close())` of one training run: a tqdm bar, or nothing."""
    if tqdm is None:
        return _between_chunks, (lambda: None)
    bar = tqdm(total=total, desc=label, unit="epoch", leave=False, file=sys.stderr,
               delay=1.0, **_width())  # fmt: skip
    return functools.partial(_advance, bar), bar.close


def _between_chunks(done: int) -> None:
    _check_stop()  # a signal whose raise Python swallowed is raised here


def _advance(bar, done: int) -> None:
    bar.update(done - bar.n)
    _check_stop()


def _width() -> dict:
    """tqdm's size: the terminal's as it changes, or 80 x 24 where a pseudo-terminal reports
    0 x 0 (tqdm would draw nothing there)."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        size = os.terminal_size((0, 0))
    return {"dynamic_ncols": True} if min(size) > 0 else {"ncols": 80, "nrows": 24}


# ---------------------------------------------------------------------------------- output


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.3e}"
    if isinstance(value, list) and len(value) <= 8:
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(
        v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
    )
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule] + [line(r) for r in cells])


def _format_results(name: str, results) -> str:
    """A short text report: the results' "table" (rows), then its "summary" (name: value)."""
    if not isinstance(results, dict):
        return str(results)
    parts = [name]
    table = results.get("table")
    if isinstance(table, list) and table and all(isinstance(r, dict) for r in table):
        parts.append(_table(table))
    summary = results.get("summary")
    if not isinstance(summary, dict):  # an experiment without a summary: its scalar results
        summary = {k: v for k, v in results.items() if isinstance(v, (int, float, str, bool))}
        summary.pop("experiment", None)
    if summary:
        width = max(map(len, summary))
        parts.append("\n".join(f"{k:<{width}}  {_fmt(v)}" for k, v in summary.items()))
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------- compare


def _compare(args) -> int:
    options = {k: v for k, v in vars(args).items() if k not in ("command", "json")}
    try:
        from jaxgd import compare as comparison
    except ImportError as err:
        _say(f"jaxgd: error: the PyTorch comparison is not available: {_one_line(err)}")
        return EXIT_FAILED
    try:
        report = comparison.compare(**options)
    except (ValueError, TypeError, FileNotFoundError) as err:
        if os.environ.get("JAXGD_DEBUG"):
            raise
        _say(f"jaxgd: error: {_one_line(err)}")
        return EXIT_USAGE
    except ImportError as err:  # torch missing
        _say(f"jaxgd: error: {_one_line(err)}")
        return EXIT_FAILED
    if args.json:
        from jaxgd.experiments._common import to_json

        fields = report._asdict() if hasattr(report, "_asdict") else dict(vars(report))
        print(json.dumps(to_json(fields), indent=2))
    else:
        print(comparison.format_report(report))
    return EXIT_OK if bool(report.ok) else EXIT_FAILED


def entry() -> None:
    """The `jaxgd` console script: `main()`, then exit with its status.

    After Ctrl-C or SIGTERM it exits at once with `os._exit(130)` or `os._exit(143)`: JAX's
    threads may still be inside a compiled call, and the interpreter's normal teardown can then
    crash (seen as a SIGSEGV exit instead of 130). The result files are already complete or
    absent at that point.
    """
    status = main()
    if status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    entry()
