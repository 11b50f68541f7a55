"""A Gaussian mixture sum_k w_k N(mu_k, S_k) (``initial: {kind: gaussian_mixture, weights, means, covs}``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landau import GaussianMixture
from landau.settings import SettingsError
from solvers.equations import Tensorize
from solvers.initial import INITIALS, Initial
from solvers.shapes import matrix, vector


@INITIALS.register
class Mixture(Initial):
    name = "gaussian_mixture"

    @dataclass
    class Settings:
        weights: list
        means: list
        covs: list

    def validate(self) -> None:
        s, d = self.settings, self.dim
        k = len(s.weights)
        w = vector(s.weights, k, f"{self.key}.weights") if k else np.zeros(0)
        if k == 0 or (w <= 0).any():
            raise SettingsError(f"{self.key}.weights: expected a non-empty list of positive numbers")
        if len(s.means) != k or len(s.covs) != k:
            raise SettingsError(f"{self.key}: weights, means and covs must have the same length ({k})")
        s.weights = (w / w.sum()).tolist()
        s.means = [vector(m, d, f"{self.key}.means[{i}]").tolist() for i, m in enumerate(s.means)]
        s.covs = [matrix(c, d, f"{self.key}.covs[{i}]", spd=True).tolist() for i, c in enumerate(s.covs)]

    def build(self, tensor: Tensorize, t0: float) -> GaussianMixture:
        s = self.settings
        return GaussianMixture(tensor(s.weights), tensor(s.means), tensor(s.covs))
