"""The exact score of the case's analytic solution (BKW, Gaussian linear Fokker-Planck)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from oracles.base import ScoreOracle
from oracles.registry import register
from oracles.settings import SettingsError


@register
class ExactOracle(ScoreOracle):
    """s(x, t) = grad log f(t, x) of the closed-form solution; a reference, not an estimator."""

    name = "exact"

    @dataclass
    class Settings:
        pass

    def __init__(self, settings: "ExactOracle.Settings | None" = None, context=None) -> None:
        super().__init__(settings or self.Settings(), context)
        if context is None or context.exact is None:
            raise SettingsError("oracle.kind: 'exact' needs a case with an analytic solution "
                                "(initial: bkw for Landau, or a Gaussian under linear Fokker-Planck)")
        self.solution = context.exact

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self.solution.score(x, t)

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self.solution.log_density(x, t)
