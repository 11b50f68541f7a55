"""Shared fixtures of the solver test suite: repository paths, case files, CLI runners.

CLI tests run the public interface two ways: in-process (``solvers.run.main(argv)``, fast, for
the many validation cases) and as a real subprocess (``python -m solvers.run``) where exit
status, stderr and tracebacks of the actual executable matter.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"

torch.set_num_threads(1)


def case_path(name: str) -> Path:
    return CASES / f"{name}.yaml"


def load_case(name: str) -> dict:
    return yaml.safe_load(case_path(name).read_text())


def write_case(directory: Path, raw: dict, name: str = "case.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_cli(args: list, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m solvers.run ARGS`` as a subprocess (the real executable)."""
    return subprocess.run([sys.executable, "-m", "solvers.run", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def run_main(args: list, capsys) -> tuple[int, str, str]:
    """``solvers.run.main(ARGS)`` in-process; returns (exit status, stdout, stderr)."""
    from solvers.run import main
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
