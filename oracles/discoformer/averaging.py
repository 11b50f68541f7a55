"""Inference rules: the mean of several network passes over random context subsets and frames.

A pass sees a context X' and a frame Q and returns (log f, score) at the queries Y:

    T_Q(Y) = T(Y Q^T; X' Q^T),   S_Q(Y) = S(Y Q^T; X' Q^T) Q

(in whitened coordinates, :meth:`DiScoFormer.whitened`). The exact density and score satisfy
T_Q = T and S_Q = S for every orthogonal Q; the network does only as far as training on randomly
rotated samples taught it (the equivariance table of ``evaluate.py``). The rule averages

    (T, S) = (1 / (r k)) sum_(i < r) sum_(j < k) (T_(Q_i), S_(Q_i)) on context subset X'_j,

with Q_0 = I and Q_1, ... Haar-random orthogonal (frame averaging, Puny et al., ICLR 2022), and
X'_j random subsets of m points when the sample has more than m (else X' = X, k = 1). The
spread of the passes is error of the single pass, so their mean has a smaller error, at r k times
the cost. :func:`inference_rule` then applies the corrections (:func:`corrected`: the kernel
correction of ``kernel_correction.py``, the score-matching correction of ``stein.py``): the whole
rule of the oracle, shared with ``evaluate.py``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from oracles.discoformer.data import random_rotation
from oracles.discoformer.kernel_correction import Choice, best_choice, kernel_corrected
from oracles.discoformer.model import subsample
from oracles.discoformer.stein import stein_corrected

# (context, queries or None = the context, frame or None = identity) -> (log f, score)
Pass = Callable[[Tensor, "Tensor | None", "Tensor | None"], tuple[Tensor, Tensor]]


def averaged(one_pass: Pass, x: Tensor, y: Tensor | None, *, context: int | None, subsets: int = 1,
             rotations: int = 1, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mean (log f, score) at y (default: the points of x) over ``rotations`` frames times
    ``subsets`` context subsets of ``context`` points (``context`` None or >= n: all of x, once)."""
    whole = context is None or context >= x.shape[-2]
    queries = y if whole or y is not None else x
    outs = []
    for i in range(rotations):
        frame = None if i == 0 else random_rotation((), x.shape[-1], generator, x.dtype).to(x.device)
        for _ in range(1 if whole else subsets):
            outs.append(one_pass(x if whole else subsample(x, context, generator), queries, frame))
    return tuple(sum(o) / len(o) for o in zip(*outs))


#: (sample x, network score at x) -> the kernel correction's bandwidth and ridge
Chooser = Callable[[Tensor, Tensor], Choice]


def inference_rule(one_pass: Pass, x: Tensor, y: Tensor | None, *, context: int | None, subsets: int,
                   rotations: int, stein_degree: int, generator: torch.Generator,
                   device: torch.device | str = "cpu", kernel: bool = False,
                   choose: Chooser = best_choice) -> tuple[Tensor, Tensor]:
    """(log f, score) at y (default the points of x), in x's dtype and device: the passes run in
    float32 on ``device`` and are averaged (:func:`averaged`), then the score is corrected
    (:func:`corrected`; the network's score at the sample x is one more averaged call when y is
    given and a correction is on)."""
    x32 = x.to(device, torch.float32)

    def mean(queries: Tensor | None) -> tuple[Tensor, Tensor]:
        out = averaged(one_pass, x32, None if queries is None else queries.to(device, torch.float32),
                       context=context, subsets=subsets, rotations=rotations, generator=generator)
        return tuple(o.to(x) for o in out)

    log_f, score = mean(y)
    if not (stein_degree or kernel):
        return log_f, score
    score_x = score if y is None else mean(None)[1]
    return log_f, corrected(x, score_x, x if y is None else y, score, stein_degree, kernel, choose)


def corrected(x: Tensor, score_x: Tensor, y: Tensor, score_y: Tensor, stein_degree: int, kernel: bool,
              choose: Chooser = best_choice) -> Tensor:
    """The network's score at y corrected on the sample x (network score ``score_x``): first the
    kernel correction (``kernel``; ``kernel_correction.py``, its bandwidth and ridge from ``choose``,
    by default chosen on x), then the score-matching correction of degree ``stein_degree``
    (``stein.py``; 0: none), fitted to the kernel-corrected score at x."""
    if kernel:
        choice = choose(x, score_x)
        score_y = kernel_corrected(x, score_x, y, score_y, choice)
        score_x = score_y if y is x else kernel_corrected(x, score_x, x, score_x, choice)
    if not stein_degree:
        return score_y
    return stein_corrected(x, score_x, y, score_y, stein_degree)
