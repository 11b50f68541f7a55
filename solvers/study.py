"""Parameter sweeps and the oracle scoreboard.

    python -m solvers.study --cases A.yaml B.yaml --oracles blob sbtm --particles 500 1000
                            --seeds 0 1 2 [--set key=value] [--reference exact] --out results/covariance
    python -m solvers.study --grid results/scoreboard/grid.yaml [--table-only]

Runs every (case, oracle, n, seed), one NetCDF file each under ``--workdir``. A run is keyed by its
resolved case (every setting after overrides and defaults, except the output path), so a completed
file is reused only for the very same run: an interrupted study continues where it stopped, while
``--set time.end=300`` does not reuse the t = 40 runs. Then it writes ``table.md`` (mean ± std over
seeds of the metrics of :func:`solvers.compare.summarize`, the pathwise deviation measured against the
``--reference`` oracle's run of the same case, n and seed) and one figure per case.

A grid file lists groups of runs in priority order (each group: ``case``, an optional ``label`` and
``set`` list, ``oracles``, ``particles``, ``seeds``; top level: ``workdir``, ``out``,
``reference``, ``figure_n``); an oracle is a name or a mapping of settings (``{kind: expfam,
degree: 6, label: expfam6}``). ``--table-only`` rebuilds the table from the runs completed so far.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from oracles import SettingsError
from solvers.case import load_yaml
from solvers.compare import summarize
from solvers.figures import covariance_figure
from solvers.api import execute
from solvers.checkpoint import output_state
from solvers.run import plan_runs


@dataclass
class Group:
    """Runs of one case: every oracle x n x seed."""

    case: str
    oracles: list
    particles: list[int]
    seeds: list[int]
    overrides: list[str] = field(default_factory=list)
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or Path(self.case).stem


def oracle_label(spec: str | dict) -> str:
    return spec if isinstance(spec, str) else spec.get("label", spec["kind"])


def run_overrides(group: Group, spec: str | dict, n: int, seed: int) -> list[str]:
    spec = {"kind": spec} if isinstance(spec, str) else {k: v for k, v in spec.items() if k != "label"}
    oracle = yaml.safe_dump(spec, default_flow_style=True).strip()
    return [*group.overrides, f"particles={n}", f"seed={seed}", f"oracle={oracle}"]


def run_path(workdir: Path, group: Group, spec: str | dict, n: int, seed: int) -> Path:
    """``LABEL_ORACLE_nN_sSEED_KEY.nc``, KEY a hash of the resolved case without the output path and
    of the digests of the files its oracle loads (new shipped weights are a new run)."""
    (run,) = plan_runs(group.case, run_overrides(group, spec, n, seed), [], out=str(workdir / "probe.nc"))
    case = {**run.problem.case, "output": {k: v for k, v in run.problem.case["output"].items() if k != "path"}}
    inputs = run.oracle.inputs()
    text = yaml.safe_dump(case, sort_keys=True) + (yaml.safe_dump(inputs, sort_keys=True) if inputs else "")
    key = hashlib.sha256(text.encode()).hexdigest()[:10]
    return workdir / f"{group.label}_{oracle_label(spec)}_n{n}_s{seed}_{key}.nc"


def completed(path: Path) -> bool:
    return output_state(path)[2] == "complete"


def run_one(group: Group, spec: str | dict, n: int, seed: int, path: Path) -> None:
    if completed(path):
        return
    (run,) = plan_runs(group.case, run_overrides(group, spec, n, seed), [], out=str(path))
    result = execute(run)
    print(result.message, flush=True)
    if result.status:
        raise RuntimeError(result.message)


def _ms(values: list[float], fmt: str = ".4f") -> str:
    a = np.array(values, dtype=float)
    if np.isnan(a).all():
        return "n/a"
    return f"{np.nanmean(a):{fmt}} ± {np.nanstd(a):{fmt}}"


TABLE = [("final cov. error vs exact law", "cov_err_final", ".4f"),
         ("distance to equilibrium cov.", "eq_dist_final", ".4f"),
         ("initial cov. rate error", "rate0_err", ".4f"),
         ("score error (mean over frames)", "score_err_mean", ".4f"),
         ("rel. E\\|v-m\\|^4 error, end", "m4_rel_err_final", ".4f"),
         ("radial W1, end", "radial_w1_final", ".4f"),
         ("pathwise dev. from reference, end", "path_dev_final", ".4f"),
         ("max entropy production", "entropy_prod_max", ".2e"),
         ("energy drift", "energy_drift", ".1e"),
         ("wall s", "wall_s", ".1f")]


def table(rows: dict[tuple[str, str, int], list[dict]], reference: str | None) -> str:
    head = [name if key != "path_dev_final" else f"{name} ({reference or 'none'})" for name, key, _ in TABLE]
    lines = ["| case | oracle | n | seeds | " + " | ".join(head) + " |", "|" + "---|" * (4 + len(TABLE))]
    for (case, oracle, n), rs in rows.items():
        cells = [_ms([r[key] for r in rs], fmt) for _, key, fmt in TABLE]
        lines.append(f"| {case} | {oracle} | {n} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def study(groups: list[Group], workdir: Path, out: Path, reference: str | None, figure_n: int | None,
          run: bool = True) -> str:
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[tuple[str, str, int, int], Path] = {}
    for g in groups:
        for n in g.particles:
            for seed in g.seeds:
                for spec in g.oracles:
                    path = paths[(g.label, oracle_label(spec), n, seed)] = run_path(workdir, g, spec, n, seed)
                    if run:
                        run_one(g, spec, n, seed, path)
    rows: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for g in groups:
        for spec in g.oracles:
            for n in g.particles:
                for seed in g.seeds:
                    path = paths[(g.label, oracle_label(spec), n, seed)]
                    ref = paths.get((g.label, reference, n, seed)) if reference else None
                    if completed(path):
                        rows[(g.label, oracle_label(spec), n)].append(
                            summarize(path, ref if ref is not None and completed(ref) else None))
    text = table(rows, reference)
    (out / "table.md").write_text(text)
    for g in groups:
        fig_n = figure_n or max(g.particles)
        files = [paths[(g.label, oracle_label(o), fig_n, g.seeds[0])] for o in g.oracles
                 if (g.label, oracle_label(o), fig_n, g.seeds[0]) in paths]
        files = [f for f in files if completed(f)]
        if files:
            covariance_figure(files, out / f"{g.label}_n{fig_n}.png")
    return text


def read_grid(path: str) -> tuple[list[Group], dict]:
    spec = load_yaml(Path(path).read_text())
    groups = [Group(case=g["case"], oracles=g["oracles"], particles=g["particles"], seeds=g["seeds"],
                    overrides=g.get("set", []), label=g.get("label", "")) for g in spec["groups"]]
    return groups, spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.study", description=__doc__.splitlines()[0])
    parser.add_argument("--grid", help="YAML grid file (replaces --cases/--oracles/--particles/--seeds)")
    parser.add_argument("--cases", nargs="+")
    parser.add_argument("--oracles", nargs="+")
    parser.add_argument("--particles", nargs="+", type=int)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    parser.add_argument("--reference", help="oracle whose run of the same case, n and seed is the pathwise reference")
    parser.add_argument("--workdir", help="where the NetCDF files go (default out/study)")
    parser.add_argument("--out", help="where table.md and figures go (default results/covariance)")
    parser.add_argument("--figure-n", type=int, help="n of the runs drawn in the figures (default: largest)")
    parser.add_argument("--table-only", action="store_true", help="tabulate the completed runs, run nothing")
    args = parser.parse_args(argv)
    try:
        if args.grid:
            groups, spec = read_grid(args.grid)
            for g in groups:
                g.overrides += args.set
            defaults = {"workdir": spec.get("workdir", "out/scoreboard"), "out": spec.get("out", "results/scoreboard"),
                        "reference": spec.get("reference"), "figure_n": spec.get("figure_n")}
        elif args.cases and args.oracles and args.particles:
            groups = [Group(c, args.oracles, args.particles, args.seeds, list(args.set)) for c in args.cases]
            defaults = {"workdir": "out/study", "out": "results/covariance", "reference": None, "figure_n": None}
        else:
            parser.error("give --grid FILE, or --cases, --oracles and --particles")
        text = study(groups, Path(args.workdir or defaults["workdir"]), Path(args.out or defaults["out"]),
                     args.reference or defaults["reference"], args.figure_n or defaults["figure_n"],
                     run=not args.table_only)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
