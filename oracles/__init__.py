"""Score oracles: estimators of grad log f from particles, behind one small protocol.

    from oracles import build_oracle, OracleContext, available
    oracle = build_oracle({"kind": "blob"}, OracleContext(dim=3))
"""
from oracles.base import ScoreOracle
from oracles.registry import OracleContext, available, build_oracle, parse_oracle_settings, register
from oracles.settings import SettingsError
from oracles import blob, discoformer, exact, expfam, gaussian, kde, sbtm  # noqa: F401  (register the built-in oracles)

__all__ = ["ScoreOracle", "OracleContext", "available", "build_oracle", "parse_oracle_settings",
           "register", "SettingsError"]
