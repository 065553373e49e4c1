"""Regenerates the README gallery: every experiment at its defaults, plots as small PNGs.

    python experiments/make_gallery.py              # every registered experiment
    python experiments/make_gallery.py relu digits  # only these

Each experiment runs with its default options (built-in data, no downloads); its figures are
saved at 70 dpi into experiments/gallery/ as `<experiment>.png` (or `<experiment>-<figure>.png`
when the figure has another name), and its results table is printed: the numbers that
experiments/README.md quotes. A PNG over 60 KB fails the run (keep the repository small).
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

GALLERY = Path(__file__).resolve().parent / "gallery"
DPI = 70  # small enough for a repository, sharp enough to read
MAX_BYTES = 60_000  # per PNG


def main(argv=None) -> int:
    from jaxgd import experiments
    from jaxgd.cli import _format_results
    from jaxgd.experiments import _common

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="experiments (default: all of them)")
    args = parser.parse_args(argv)
    names = args.names or experiments.names()
    GALLERY.mkdir(exist_ok=True)
    too_big = []
    for name in names:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, _common.figure_dpi(DPI):
            results = experiments.get(name).run(out_dir=tmp)
            for png in sorted(Path(tmp).glob("*.png")):
                target = GALLERY / (f"{name}.png" if png.stem == name else f"{name}-{png.name}")
                shutil.copyfile(png, target)
                size = target.stat().st_size
                print(f"{target.relative_to(GALLERY.parent)}: {size / 1000:.0f} KB")
                if size > MAX_BYTES:
                    too_big.append(target.name)
        print(f"$ jaxgd run {name}   ({time.perf_counter() - start:.1f} s)")
        print(_format_results(name, results), end="\n\n", flush=True)
    if too_big:
        print(f"over {MAX_BYTES // 1000} KB: {', '.join(too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
