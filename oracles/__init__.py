"""Score oracles: estimators of grad log f from particles, behind one small protocol.

    from oracles import build_oracle, OracleContext, available
    oracle = build_oracle({"kind": "blob"}, OracleContext(dim=3))

The built-in oracles (``oracles.BUILTIN``) are imported when first used: by name through the
registry (``build_oracle``, ``available``) or as attributes (``oracles.sbtm``), so that importing
this package, or ``SettingsError`` from it, loads no estimator (no network, no transformer).
"""
import importlib

from oracles.base import ScoreOracle
from oracles.registry import BUILTIN, OracleContext, available, build_oracle, parse_oracle_settings, register
from oracles.settings import SettingsError

__all__ = ["ScoreOracle", "OracleContext", "available", "build_oracle", "parse_oracle_settings",
           "register", "SettingsError"]


def __getattr__(name: str):
    """``oracles.blob`` etc.: the built-in oracle modules, imported on first access."""
    if name in BUILTIN:
        return importlib.import_module(BUILTIN[name])
    raise AttributeError(f"module 'oracles' has no attribute {name!r}")
