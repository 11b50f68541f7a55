"""The BKW (Bobylev-Krook-Wu) exact solution of the Maxwell (gamma = 0) Landau equation, any d >= 2.

    f(t, v) = (2 pi K)^(-d/2) exp(-|v|^2 / (2K)) (P + Q |v|^2),
    K(t) = 1 - C exp(-2 B (d-1) t),   P = ((d+2) K - d) / (2K),   Q = (1 - K) / (2 K^2),
    grad log f = v ( -1/K + 2Q / (P + Q |v|^2) ),
    mean 0, covariance I,  E|v|^4 = P K^2 d(d+2) + Q K^3 d(d+2)(d+4).

Radial law of r = |v| (u = r^2 / K; F_k the chi-square CDF with k degrees of freedom, c_a =
2^(a/2) Gamma((d + a)/2) / Gamma(d/2) the moments E u^(a/2) of chi-square_d):

    P(r < R)        = P F_d(R^2/K) + Q K d F_(d+2)(R^2/K),
    E[r^a; r < R]   = P K^(a/2) c_a F_(d+a)(R^2/K) + Q K^(1 + a/2) c_(a+2) F_(d+a+2)(R^2/K),

since under N(0, K I), E[u^(a/2); u < U] = c_a F_(d+a)(U). Fisher information E|grad log f|^2 and
entropy -E log f are one-dimensional integrals over this radial law (adaptive quadrature).

f is a density while P >= 0, i.e. K >= d/(d+2); the first such time rounded up to 0.1 is the
customary start t0 = log((d+2) C / 2) / (2 B (d-1)) (t0 = 5.5 for d = 3, B = 1/24).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special
import torch


class BKW:
    def __init__(self, dim: int, B: float, C: float = 1.0) -> None:
        self.d, self.B, self.C = dim, B, C

    def t0(self) -> float:
        """First time with P >= 0, rounded up to 0.1."""
        t = math.log((self.d + 2) * self.C / 2) / (2 * self.B * (self.d - 1))
        return math.ceil(round(t, 9) * 10) / 10

    def K(self, t: float) -> float:
        return 1.0 - self.C * math.exp(-2 * self.B * (self.d - 1) * t)

    def PQ(self, t: float) -> tuple[float, float]:
        K = self.K(t)
        return ((self.d + 2) * K - self.d) / (2 * K), (1 - K) / (2 * K**2)

    def log_density(self, v: torch.Tensor, t: float) -> torch.Tensor:
        K = self.K(t)
        P, Q = self.PQ(t)
        r2 = (v * v).sum(1)
        return -0.5 * self.d * math.log(2 * math.pi * K) - r2 / (2 * K) + torch.log(P + Q * r2)

    def score(self, v: torch.Tensor, t: float) -> torch.Tensor:
        K = self.K(t)
        P, Q = self.PQ(t)
        r2 = (v * v).sum(1, keepdim=True)
        return v * (-1.0 / K + 2 * Q / (P + Q * r2))

    def fourth_moment(self, t: float) -> float:
        """E|v|^4."""
        K = self.K(t)
        P, Q = self.PQ(t)
        d = self.d
        return P * K**2 * d * (d + 2) + Q * K**3 * d * (d + 2) * (d + 4)

    def radial_partial_moment(self, R: np.ndarray, a: float, t: float) -> np.ndarray:
        """E[r^a; r < R] of r = |v| (a = 0: the radial CDF), elementwise for R >= 0 (numpy)."""
        K, d = self.K(t), self.d
        P, Q = self.PQ(t)
        u = np.asarray(R, dtype=float) ** 2 / K
        c = lambda b: 2 ** (b / 2) * math.exp(math.lgamma((d + b) / 2) - math.lgamma(d / 2))  # noqa: E731
        F = lambda k: scipy.special.gammainc(k / 2, u / 2)  # noqa: E731  chi-square_k CDF at u
        return P * K ** (a / 2) * c(a) * F(d + a) + Q * K ** (1 + a / 2) * c(a + 2) * F(d + a + 2)

    def radial_cdf(self, R: np.ndarray, t: float) -> np.ndarray:
        return self.radial_partial_moment(R, 0.0, t)

    def _radial_expectation(self, g, t: float) -> float:
        """E g(r) by adaptive quadrature over the radial density S_(d-1) r^(d-1) f(r)."""
        K, d = self.K(t), self.d
        P, Q = self.PQ(t)
        log_c = math.log(2) + 0.5 * d * math.log(math.pi) - math.lgamma(d / 2) - 0.5 * d * math.log(2 * math.pi * K)
        dens = lambda r: math.exp(log_c + (d - 1) * math.log(r) - r * r / (2 * K)) * (P + Q * r * r)  # noqa: E731
        import scipy.integrate  # deferred: ~1 s of start-up that most runs never need
        return scipy.integrate.quad(lambda r: g(r) * dens(r) if r > 0 else 0.0, 0, math.inf,
                                    epsabs=1e-13, epsrel=1e-12, limit=200)[0]

    def fisher_information(self, t: float) -> float:
        """E |grad log f|^2 = E[r^2 (-1/K + 2Q/(P + Q r^2))^2]."""
        K = self.K(t)
        P, Q = self.PQ(t)
        return self._radial_expectation(lambda r: (r * (-1 / K + 2 * Q / (P + Q * r * r))) ** 2, t)

    def entropy(self, t: float) -> float:
        """-E log f (Boltzmann entropy; Landau makes it grow)."""
        K, d = self.K(t), self.d
        P, Q = self.PQ(t)
        return self._radial_expectation(
            lambda r: 0.5 * d * math.log(2 * math.pi * K) + r * r / (2 * K) - math.log(P + Q * r * r), t)

    def sample(self, n: int, t: float, generator: torch.Generator,
               dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> torch.Tensor:
        """Rejection sampling from the proposal N(0, 1.5 K I).

        f/g = 1.5^(d/2) exp(-r^2/(6K)) (P + Q r^2) is largest at r^2 = max(0, 6K - P/Q).
        """
        K = self.K(t)
        P, Q = self.PQ(t)
        if P < 0:
            raise ValueError(f"BKW is not a density at t = {t} (P = {P:.3g} < 0); start at t >= {self.t0()}")
        r2max = max(0.0, 6 * K - P / Q) if Q > 0 else 0.0
        bound = 1.5 ** (self.d / 2) * math.exp(-r2max / (6 * K)) * (P + Q * r2max)
        out: list[torch.Tensor] = []
        have = 0
        while have < n:
            v = torch.randn(2 * (n - have) + 16, self.d, generator=generator, dtype=dtype) * math.sqrt(1.5 * K)
            r2 = (v * v).sum(1)
            ratio = 1.5 ** (self.d / 2) * torch.exp(-r2 / (6 * K)) * (P + Q * r2) / bound
            keep = v[torch.rand(len(v), generator=generator, dtype=dtype) < ratio]
            out.append(keep)
            have += len(keep)
        return torch.cat(out)[:n].to(device)
