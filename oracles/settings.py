"""Typed settings (``parse_settings``, ``SettingsError``) and the ``Registry`` class.

They live in :mod:`landau.settings`, which imports nothing from this project, so that the
equation and initial-data registries of ``solvers`` need no oracle; this module re-exports them
for the oracles and for existing code.
"""
from landau.settings import Registry, SettingsError, coerce, parse_settings

__all__ = ["Registry", "SettingsError", "coerce", "parse_settings"]
