"""Test-time training (paper Sec. 4.1, eq. 11): adapt to one sample without labels.

The two heads should agree, S = grad log f, so with the context X held fixed the consistency loss

    L(theta) = (1/|Y|) sum_(y in Y) |S(y) - grad_y T(y)|^2        (grad_y by autograd w.r.t. the queries)

needs no ground truth. A few Adam steps on it (the paper: 4-8) improve out-of-distribution
samples. The steps act on a copy, so the shipped weights are never changed.

For a particle solver, ``Adapter`` keeps the adapted copy and its Adam state between calls: the
particles move little per time step, so each call continues from the previous adaptation
(warm start) instead of redoing it from the shipped weights; and the loss may use a random subset
of ``queries`` points Y of the sample (the context stays whole).
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from oracles.discoformer.model import DiScoFormer, subsample


def consistency_loss(model: DiScoFormer, x: Tensor, y: Tensor) -> Tensor:
    """(1/n) sum_i |S(y_i) - grad_y T(y_i)|^2 for context x and queries y (both (n, d) or (B, n, d))."""
    _, score, grad = model.with_density_gradient(x, y, create_graph=True)
    return (score - grad).pow(2).sum(-1).mean()


class Adapter:
    """A copy of ``model`` and its Adam optimiser, adapted by :meth:`adapt` (eval mode: no dropout;
    math attention kernel, which supports the double backward that the loss needs)."""

    def __init__(self, model: DiScoFormer, lr: float, queries: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.queries, self.generator = queries, generator

    def adapt(self, x: Tensor, steps: int) -> DiScoFormer:
        """``steps`` Adam steps on the consistency loss with context x (queries: x, or a random
        subset of ``queries`` of its points per step); returns the adapted model."""
        with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
            for _ in range(steps):
                y = x if self.queries is None or self.queries >= x.shape[-2] else \
                    subsample(x, self.queries, self.generator)
                loss = consistency_loss(self.model, x, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        return self.model

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


def adapt_at_test_time(model: DiScoFormer, x: Tensor, steps: int, lr: float) -> DiScoFormer:
    """A copy of ``model`` after ``steps`` Adam steps on the consistency loss (queries = x)."""
    return Adapter(model, lr).adapt(x, steps).requires_grad_(False)
