"""Score-matching correction of the network's output: the nearest score that satisfies the
sample's Stein identities of low degree.

For any density f and test potential psi, E_f[s . grad psi] = -E_f[Laplacian psi] (Stein's
identity). The network's score S at the sample X_1..X_n breaks the sample version of it, and
the defect drives the particles' moments: the covariance of an Ornstein-Uhlenbeck or
Maxwell-molecule run drifts at the rate of the defect for psi = quadratic (see
``benchmarks/stein_defect.py``). The correction adds the gradient of the polynomial potential
phi = theta . T(x) of degree <= k (``oracles.expfam``) that minimises Hyvarinen's implicit
score-matching objective for S + grad phi in the Euclidean metric of the particles' space,

    J(theta) = (1/n) sum_p ( |S_p + grad phi(X_p)|^2 + 2 Laplacian phi(X_p) ) (+ const),

a least-squares problem in theta whose normal equations are the sample Stein identities of
degree <= k for the corrected score s' = S + grad phi: (1/n) sum_p s'_p . grad psi(X_p) =
-(1/n) sum_p Laplacian psi(X_p) for every psi of degree <= k. For k = 2 (phi = b . x +
(1/2) x^T A x, A symmetric: an affine correction, d (d + 3) / 2 numbers) the derivatives of J in b
and A are

    mean_p(s'_p) = 0,     sym(N) = (N + N^T) / 2 = -I,     N = (1/n) sum_p s'_p (X_p - m)^T,

exactly the identities that the laws use: the covariance rate of linear Fokker-Planck with
scalar diffusion, dC/dt = -2C - (N + N^T) for b(x) = -x, and the Maxwell moment laws, which are
rotation-invariant. They hold to rounding on any sample (the fit refines away its ridge).
The monomials are taken in coordinates centred at the sample mean and scaled by one number,
sigma = sqrt(tr C / d) (``score_matching_fit(..., isotropic=True)``): the rule commutes with
rotations, translations and scalings of x (the network's own affine equivariance is learned
through whitening; a general linear map changes the Euclidean metric, so the corrected score
commutes only with the similarity maps). An earlier version fitted in the whitened metric
|v|_C^2 = v^T C v, which enforces C N + (C N)^T = -2C instead: on an anisotropic sample with a
non-gradient error in S it left, or made worse, the Euclidean defect that drives the laws
(issue 20; C = diag(4, 1): off-diagonal defect of N + N^T + 2I 0.33 before, 0.30 after the
whitened correction, 1e-15 now; tests/test_stein_correction.py).
The log-density stays the network's: adding phi to it
(renormalised by a Monte Carlo estimate over the sample, log f' = T + phi - log mean_p exp
phi(X_p)) was measured and made log f far worse on heavy tails (d = 5 Student-t, log-density MSE
0.64 -> 885), where the quadratic potential grows without bound beyond the sample's bulk.

Degrees 1 and 2 are solved in closed form (:func:`affine_correction`): grad phi = b + A (x - m)
with b = -mean(S) and A the symmetric solution of the Lyapunov equation

    A C + C A = -2 I - (M + M^T),     M = (1/n) sum_p S_p (X_p - m)^T,   C the 1/n covariance

(A = 0 at degree 1), by one eigendecomposition of C: A = V [ (V^T R V)_ij / (lam_i + lam_j) ] V^T,
R the right-hand side. Cost O(n d^2 + d^3) (d = 100, n = 4096: ~0.05 s), where the general
least-squares fit of the p = d (d + 3) / 2 monomial coefficients costs O(n d p^2) time and O(n d p)
memory (0.09 s in d = 10 at n = 4096; some 17 GB in d = 100). Degree >= 3 uses that general fit
(``oracles.expfam``). Measured in results/discoformer_eval.md.
"""
from __future__ import annotations

import torch
from torch import Tensor

from landau.diagnostics import mean_and_covariance
from oracles.expfam import score_matching_fit


def affine_correction(x: Tensor, score_x: Tensor, degree: int, ridge: float = 1e-10
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """(b (d,), A (d, d) symmetric, m (d,)) of the degree-1 or -2 correction grad phi(y) = b + A (y - m)
    (module docstring); lam_i + lam_j is kept above ``ridge`` times the largest eigenvalue of C (a
    degenerate sample: its null directions get no correction beyond that bound)."""
    n, d = x.shape
    m, C = mean_and_covariance(x)
    b = -score_x.mean(0)
    if degree == 1:
        return b, torch.zeros_like(C), m
    M = score_x.T @ (x - m) / n
    R = -2 * torch.eye(d, dtype=x.dtype, device=x.device) - M - M.T
    lam, V = torch.linalg.eigh(C)
    denom = (lam[:, None] + lam[None, :]).clamp_min(ridge * lam[-1].clamp_min(torch.finfo(x.dtype).tiny))
    return b, V @ ((V.T @ R @ V) / denom) @ V.T, m


def stein_corrected(x: Tensor, score_x: Tensor, y: Tensor, score: Tensor, degree: int,
                    ridge: float = 1e-10, refine: int = 2) -> Tensor:
    """s' = s + grad phi at the queries y, from the network's score s there and at the sample x."""
    if degree <= 2:
        b, A, m = affine_correction(x, score_x, degree, ridge)
        return score + b + (y - m) @ A
    fit = score_matching_fit(x, degree, ridge, base=score_x, isotropic=True, refine=refine)
    return score + fit.gradient(y)
