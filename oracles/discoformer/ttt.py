"""Test-time training (paper Sec. 4.1, eq. 11): adapt to one sample without labels.

The two heads should agree, S = grad log f, so with the context X held fixed the consistency loss

    L(theta) = (1/n) sum_i |S(y_i) - grad_y T(y_i)|^2        (grad_y by autograd w.r.t. the queries)

needs no ground truth. A few Adam steps on it (the paper: 4-8) improve out-of-distribution
samples. The steps act on a deep copy, so the shipped weights are never changed.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from oracles.discoformer.model import DiScoFormer


def consistency_loss(model: DiScoFormer, x: Tensor, y: Tensor) -> Tensor:
    """(1/n) sum_i |S(y_i) - grad_y T(y_i)|^2 for context x and queries y (both (n, d) or (B, n, d))."""
    y = y.detach().requires_grad_(True)
    logf, score = model(x.detach(), y)
    (grad,) = torch.autograd.grad(logf.sum(), y, create_graph=True)
    return (score - grad).pow(2).sum(-1).mean()


def adapt_at_test_time(model: DiScoFormer, x: Tensor, steps: int, lr: float,
                    queries: Tensor | None = None) -> DiScoFormer:
    """A copy of ``model`` after ``steps`` Adam steps on the consistency loss (queries default x).

    Runs in eval mode (no dropout) with the math attention kernel, which supports the
    double backward that the loss needs.
    """
    adapted = copy.deepcopy(model).eval().requires_grad_(True)
    opt = torch.optim.Adam(adapted.parameters(), lr=lr)
    y = x if queries is None else queries
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        for _ in range(steps):
            loss = consistency_loss(adapted, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return adapted.requires_grad_(False)
