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
Since the correction is a gradient, log f gets the matching potential, renormalised by a Monte
Carlo estimate over the sample itself (X_p ~ f):

    s' = S + grad phi,     log f' = T + phi - log( (1/n) sum_p exp phi(X_p) ).

The potentials of degree <= k are closed under affine maps, so the rule commutes with them; it costs O(n d^2 k) on top of the network. Measured in results/discoformer_eval.md.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from oracles.expfam import score_matching_fit


def stein_corrected(x: Tensor, score_x: Tensor, y: Tensor, log_f: Tensor, score: Tensor, degree: int,
                    ridge: float = 1e-10) -> tuple[Tensor, Tensor]:
    """(log f', s') at the queries y from the network's (log f, s) there and its score at the sample x."""
    phi = score_matching_fit(x, degree, ridge, base=score_x, whitened=True)
    log_z = torch.logsumexp(phi(x), 0) - math.log(x.shape[0])
    return log_f + phi(y) - log_z, score + phi.gradient(y)
