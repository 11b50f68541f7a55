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

With p coefficients (p = d (d + 3) / 2 at k = 2) it costs O(n d p^2) on top of the network: 0.09 s in
d = 10 at n = 4096. Measured in results/discoformer_eval.md.
"""
from __future__ import annotations

from torch import Tensor

from oracles.expfam import score_matching_fit


def stein_corrected(x: Tensor, score_x: Tensor, y: Tensor, score: Tensor, degree: int,
                    ridge: float = 1e-10, refine: int = 2) -> Tensor:
    """s' = s + grad phi at the queries y, from the network's score s there and at the sample x."""
    fit = score_matching_fit(x, degree, ridge, base=score_x, isotropic=True, refine=refine)
    return score + fit.gradient(y)
