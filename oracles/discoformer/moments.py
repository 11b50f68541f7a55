"""Attention-weighted local Gaussian: the high-dimensional output head of DiScoFormer (model.py).

For query tokens h_y at whitened positions y and the context tokens h_j at whitened positions x_j
(the trunk's final tokens), one attention head over the context,

    a_j(y) = softmax_j( (W_q LN h_y + U_q u(y)) . (W_k LN h_j + U_k u(x_j)) / sqrt(k) ),
    mu(y) = sum_j a_j x_j,   v(y) = sum_j a_j x_j^2 - mu(y)^2 + v_min      (per coordinate),

where u(z) = z V are the whitened coordinates in the principal frame of the sample: V the
eigenvectors of its covariance C, by decreasing eigenvalue. The frame rotates with the sample
(u is invariant under rotations of x, up to the signs of the eigenvectors, which the product
q . k does not see when U_q, U_k read the same coordinates), so the logits stay rotation-invariant
(up to the choice of a basis inside a degenerate eigenspace). It is what makes the modes
separable: whitening squeezes the direction that separates two distant modes to the scale of the
others, but it is C's leading eigenvector, so in u it is the first coordinate, where a fixed U_q,
U_k can read it (in z itself it points anywhere). The moments (mu, v) are taken in the whitened
coordinates z themselves: N(mu, diag v) is the diagonal Gaussian of the context points the query
attends to, and

    log g(y) = -1/2 sum_i [ (y_i - mu_i)^2 / v_i + log(2 pi v_i) ],   s_g(y) = -(y - mu) / v

(s_g: the score of that Gaussian, the weights a_j held fixed). W_q and U_q start at zero: the
attention is uniform, mu = 0 and v = 1 + v_min (the context is whitened), so the head starts as
the fitted Gaussian. A mixture of well separated axis-aligned modes (the paper's d = 100 test) is
nearly exact once the attention stays inside the query's mode (whitening by the symmetric
C^(-1/2) keeps such modes close to axis-aligned): the per-mode, per-coordinate means and
variances then come from the sample itself, where linear heads on a trunk of width ~ d would have
to carry 2 d moments per token. The diagonal is a property of the frame: a rotated copy of such a
mixture gets the same attention but non-diagonal mode covariances, and this head then does about
as well as the fitted Gaussian (tests/test_high_dim.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

V_MIN = 1e-3  # variance floor in whitened units (the smallest mode variance there is ~1e-2 at d = 100)


class MomentHead(nn.Module):
    """(log g (B, n_y), s_g (B, n_y, d)) at whitened queries from tokens, see the module docstring."""

    def __init__(self, width: int, dim: int, key_dim: int = 32) -> None:
        super().__init__()
        self.q, self.k = nn.Linear(width, key_dim), nn.Linear(width, key_dim)
        self.q_frame, self.k_frame = nn.Linear(dim, key_dim, bias=False), nn.Linear(dim, key_dim, bias=False)
        for zero in (self.q.weight, self.q.bias, self.q_frame.weight):
            nn.init.zeros_(zero)

    @torch.no_grad()
    def init_principal(self, beta: float) -> None:
        """Start the logits at beta u_1(y) u_1(x_j): attention along the first principal coordinate
        only (the tokens' part of q and k switched off in that key dimension). beta = 2 halves the
        fitted Gaussian's score error on 2-mode diagonal GMMs in d = 100 before any training
        (tests/test_high_dim.py); larger beta tilts the weights inside a mode along u_1."""
        c = math.sqrt(beta * math.sqrt(self.q.out_features))
        for lin in (self.q, self.k):
            lin.weight[0].zero_()
            lin.bias[0].zero_()
        for lin in (self.q_frame, self.k_frame):
            lin.weight[0].zero_()
            lin.weight[0, 0] = c

    def forward(self, h_y: Tensor, y: Tensor, h_x: Tensor, x: Tensor, frame: Tensor,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """h_y (B, n_y, w) query tokens (after the final LayerNorm) at whitened y (B, n_y, d); h_x,
        x the same for the context; ``frame`` V (B, d, d) the principal frame (columns);
        ``mask`` (B, 1, 1, n_x) boolean: the real context points."""
        d = x.shape[-1]
        values = torch.cat([x, x * x], dim=-1).to(h_x.dtype)[:, None]
        frame = frame.to(h_x.dtype)
        q = self.q(h_y) + self.q_frame(y.to(h_x.dtype) @ frame)
        k = self.k(h_x) + self.k_frame(x.to(h_x.dtype) @ frame)
        m = F.scaled_dot_product_attention(q[:, None], k[:, None], values, attn_mask=mask)[:, 0].to(y.dtype)
        mu, m2 = m[..., :d], m[..., d:]
        v = (m2 - mu * mu).clamp_min(0) + V_MIN
        r = y - mu
        log_g = -0.5 * (r * r / v + torch.log(2 * math.pi * v)).sum(-1)
        return log_g, -r / v
