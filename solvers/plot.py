"""``python -m solvers.plot OUT.nc [--out FILE.png] [--frame K]``: covariance, energy and a 2D
histogram of the particles with score arrows for one output file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from solvers.figures import run_figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.plot", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="NetCDF output of solvers.run")
    parser.add_argument("--out", help="PNG path (default: beside the file, .png)")
    parser.add_argument("--frame", type=int, default=-1, help="frame for the particle histogram (default last)")
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.file).with_suffix(".png"))
    try:
        run_figure(args.file, out, args.frame)
    except (OSError, KeyError, ValueError, IndexError) as exc:
        print(f"error: {args.file}: cannot plot ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
