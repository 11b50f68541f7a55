"""Moments and Gaussian solutions of the linear Fokker-Planck equation.

For b(x) = -A x + c and constant diffusion D, mean and covariance of ANY solution obey

    m' = -A m + c,      Sigma' = -A Sigma - Sigma A^T + 2 D,

and a Gaussian initial density stays Gaussian, f(t) = N(m(t), Sigma(t)). The linear system for
y = (m, vec Sigma, 1) is solved in closed form with one matrix exponential (exact up to rounding).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch


def linear_fp_moments(A: np.ndarray, c: np.ndarray, D: np.ndarray, m0: np.ndarray,
                      S0: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """(m, Sigma) after time tau, from m0, S0 (float64 numpy)."""
    d = len(m0)
    eye = np.eye(d)
    n = d + d * d + 1
    M = np.zeros((n, n))
    M[:d, :d] = -A
    M[:d, -1] = c
    # vec (row-major) of -A S - S A^T  =  -(A (x) I + I (x) A) vec S
    M[d:-1, d:-1] = -(np.kron(A, eye) + np.kron(eye, A))
    M[d:-1, -1] = 2 * D.reshape(-1)
    y = scipy.linalg.expm(M * tau) @ np.concatenate([m0, S0.reshape(-1), [1.0]])
    S = y[d:-1].reshape(d, d)
    return y[:d], 0.5 * (S + S.T)


class GaussianFPSolution:
    """f(t) = N(m(t), Sigma(t)) for linear FP started from N(m0, S0) at t0."""

    def __init__(self, A: torch.Tensor, c: torch.Tensor, D: torch.Tensor, m0: torch.Tensor,
                 S0: torch.Tensor, t0: float) -> None:
        self._np = [a.detach().cpu().double().numpy() for a in (A, c, D, m0, S0)]
        self.t0, self.dtype, self.device = t0, m0.dtype, m0.device
        self._cache: dict[float, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def moments(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        return self._at(t)[:2]

    def _at(self, t: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if t not in self._cache:
            m, S = linear_fp_moments(*self._np, tau=t - self.t0)
            as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)  # noqa: E731
            self._cache = {t: (as_t(m), as_t(S), as_t(np.linalg.inv(S)), as_t(np.linalg.slogdet(S)[1]))}
        return self._cache[t]

    def fourth_moment(self, t: float) -> float:
        """E|x - m|^4 = (tr Sigma)^2 + 2 tr(Sigma^2) of N(m, Sigma)."""
        S = self._at(t)[1]
        return float(torch.trace(S) ** 2 + 2 * (S * S).sum())

    def fisher_information(self, t: float) -> float:
        """E|grad log f|^2 = tr Sigma^-1."""
        return float(torch.trace(self._at(t)[2]))

    def entropy(self, t: float) -> float:
        """-E log f = (1/2) log det(2 pi e Sigma)."""
        d = self._np[3].shape[0]
        return float(0.5 * self._at(t)[3] + 0.5 * d * math.log(2 * math.pi * math.e))

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        m, _, P, _ = self._at(t)
        return -(x - m) @ P

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        m, _, P, logdet = self._at(t)
        dx = x - m
        return -0.5 * ((dx @ P) * dx).sum(1) - 0.5 * logdet - 0.5 * x.shape[1] * math.log(2 * math.pi)
