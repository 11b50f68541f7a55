"""Plug-in density tools: what a log-density / score estimate of a sample is good for.

An :class:`Estimate` is a density known through a sample x (n, d): log f and/or the score
s = grad log f at arbitrary query points y. Build one from a Gaussian KDE (:func:`from_kde`),
from any score oracle (:func:`from_oracle`), or from closed forms (``Estimate(score_fn, logf_fn)``).

    entropy                    H(f)   ~ -(1/n) sum_i log f(x_i)
    Fisher information         I(f)   ~  (1/n) sum_i |s(x_i)|^2
    relative Fisher info       I(f|g) ~  (1/n) sum_i |s_f(x_i) - s_g(x_i)|^2,   x_i ~ f
    SD-KDE (Epstein et al.)    the KDE at bandwidth h of the shifted sample x_i + (h^2 / 2) s(x_i)

SD-KDE: with per-coordinate bandwidth h the shift is elementwise, x_ik + h_k^2 s_k(x_i) / 2; it
cancels the O(h^2) smoothing bias of the KDE, leaving O(h^4), so its best bandwidth is larger
than the KDE's: h_k = sigma_k n^(-1/(d+8)) (rule "sd-kde") instead of Scott's n^(-1/(d+4)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import torch
from torch import Tensor

from landau.diagnostics import mean_and_covariance
from oracles.base import ScoreOracle
from oracles.kde import bandwidth, kde_log_density, kde_score

Field = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Estimate:
    """score(y) (n_y, d) and log_density(y) (n_y,) at query points y (n_y, d); either may be None."""

    score: Field | None = None
    log_density: Field | None = None


@runtime_checkable
class QueryOracle(Protocol):
    """An oracle that answers at arbitrary queries y given the sample x (e.g. DiScoFormer)."""

    def evaluate(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]: ...


def from_kde(x: Tensor, rule: str | float | Tensor = "scott") -> Estimate:
    """Gaussian KDE of the sample x with bandwidth ``rule`` (Scott, Silverman, a number or h (d,))."""
    h = rule if isinstance(rule, Tensor) else bandwidth(x, rule)
    return Estimate(lambda y: kde_score(y, x, h), lambda y: kde_log_density(y, x, h))


def from_oracle(oracle: ScoreOracle, x: Tensor, t: float = 0.0) -> Estimate:
    """The oracle's estimate for the sample x at time t.

    A :class:`QueryOracle` answers anywhere; any other oracle only at the sample itself (y must be
    x), since ``score(x, t)`` evaluates at the particles.
    """
    if isinstance(oracle, QueryOracle):
        return Estimate(lambda y: oracle.evaluate(x, None if y is x else y)[1],
                        lambda y: oracle.evaluate(x, None if y is x else y)[0])

    def at_sample(method: Callable[[Tensor, float], Tensor]) -> Field:
        def field(y: Tensor) -> Tensor:
            if y is not x and not torch.equal(y, x):
                raise ValueError(f"oracle {oracle.name!r} can only be evaluated at its own sample")
            return method(x, t)
        return field

    return Estimate(at_sample(oracle.score), at_sample(oracle.log_density) if oracle.has_log_density else None)


def sd_kde(x: Tensor, score: Field | Tensor, rule: str | float | Tensor = "sd-kde") -> Estimate:
    """Score-debiased KDE: shift x_i by (h^2/2) s(x_i), then KDE at the same h.

    ``score`` is a field (e.g. ``Estimate.score``) or its values at x (n, d); h comes from ``rule``
    ("sd-kde", "scott", "silverman") applied to the unshifted sample, or is a number / tensor (d,).
    """
    n, d = x.shape
    h = (rule if isinstance(rule, Tensor) else
         torch.diagonal(mean_and_covariance(x)[1]).sqrt() * n ** (-1.0 / (d + 8)) if rule == "sd-kde" else bandwidth(x, rule))
    s = score if isinstance(score, Tensor) else score(x)
    return from_kde(x + 0.5 * h**2 * s, h)


def _need(field: Field | None, what: str) -> Field:
    if field is None:
        raise ValueError(f"this estimate has no {what}")
    return field


def entropy(f: Estimate, x: Tensor) -> Tensor:
    """H(f) ~ -(1/n) sum log f(x_i), x_i ~ f."""
    return -_need(f.log_density, "log-density")(x).mean()


def fisher_information(f: Estimate, x: Tensor) -> Tensor:
    """I(f) ~ (1/n) sum |s(x_i)|^2, x_i ~ f."""
    return _need(f.score, "score")(x).pow(2).sum(-1).mean()


def relative_fisher_information(f: Estimate, g: Estimate, x: Tensor) -> Tensor:
    """I(f|g) ~ (1/n) sum |s_f(x_i) - s_g(x_i)|^2, x_i ~ f."""
    return (_need(f.score, "score")(x) - _need(g.score, "score")(x)).pow(2).sum(-1).mean()
