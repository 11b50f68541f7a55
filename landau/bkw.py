"""The BKW (Bobylev-Krook-Wu) exact solution of the Maxwell (gamma = 0) Landau equation, any d >= 2.

    f(t, v) = (2 pi K)^(-d/2) exp(-|v|^2 / (2K)) (P + Q |v|^2),
    K(t) = 1 - C exp(-2 B (d-1) t),   P = ((d+2) K - d) / (2K),   Q = (1 - K) / (2 K^2),
    grad log f = v ( -1/K + 2Q / (P + Q |v|^2) ),
    mean 0, covariance I,  E|v|^4 = P K^2 d(d+2) + Q K^3 d(d+2)(d+4).

f is a density while P >= 0, i.e. K >= d/(d+2); the first such time rounded up to 0.1 is the
customary start t0 = log((d+2) C / 2) / (2 B (d-1)) (t0 = 5.5 for d = 3, B = 1/24).
"""
from __future__ import annotations

import math

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
