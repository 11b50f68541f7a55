"""Score-matching correction of the network's output: the nearest score that satisfies the
sample's Stein identities of low degree.

For any density f and test potential psi, E_f[s . grad psi] = -E_f[Laplacian psi] (Stein's
identity). The network's score S at the sample X_1..X_n breaks the sample version of it, and
the defect drives the particles' moments: the covariance of an Ornstein-Uhlenbeck or
Maxwell-molecule run drifts at the rate of the defect for psi = quadratic (see
``benchmarks/stein_defect.py``). The correction adds the gradient of the polynomial potential
phi = theta . T(x) of degree <= k (``oracles.expfam``: monomials in whitened coordinates) that
minimises Hyvarinen's implicit score-matching objective for S + grad phi,

    J(theta) = (1/n) sum_p ( |S_p + grad phi(X_p)|_C^2 + 2 tr(C Hess phi(X_p)) ) (+ const),

in the metric of the sample covariance C (|v|_C^2 = v^T C v: the Euclidean objective in the
whitened coordinates of ``model.py``, so that the rule commutes with affine maps like the network
itself), a least-squares problem in theta whose normal equations are the sample Stein identities
of degree <= k for the corrected score, E[s . C grad psi] = -E[tr(C Hess psi)]. k = 2 (an affine
correction A (x - m) + b with A symmetric, d (d + 3) / 2 numbers): mean zero and
C M + (C M)^T = -2C with M = (1/n) sum_p s_p (X_p - m)^T.
The corrected score is s' = S + grad phi. The log-density stays the network's: adding phi to it
(renormalised by a Monte Carlo estimate over the sample, log f' = T + phi - log mean_p exp
phi(X_p)) was measured and made log f far worse on heavy tails (d = 5 Student-t, log-density MSE
0.64 -> 885), where the quadratic potential grows without bound beyond the sample's bulk.

The potentials of degree <= k are closed under affine maps, so the rule commutes with them. With
p coefficients (p = d (d + 3) / 2 at k = 2) it costs O(n d p^2) on top of the network: 0.09 s in
d = 10 at n = 4096. Measured in results/discoformer_eval.md.
"""
from __future__ import annotations

from torch import Tensor

from oracles.expfam import score_matching_fit


def stein_corrected(x: Tensor, score_x: Tensor, y: Tensor, score: Tensor, degree: int,
                    ridge: float = 1e-10) -> Tensor:
    """s' = s + grad phi at the queries y, from the network's score s there and at the sample x."""
    return score + score_matching_fit(x, degree, ridge, base=score_x, whitened=True).gradient(y)
