"""DiScoFormer: a sample X (n_x, d) in, log-density T(Y) (n_y,) and score S(Y) (n_y, d) out.

Affine equivariance by whitening (paper Sec. 3.1, ``oracles/whitening.py``). With the context
mean m and regularised covariance C = cov(X) + eps (tr cov(X) / d) I, A = C^(-1/2) (symmetric),
the network sees

    X_w = (X - m) A,   Y_w = (Y - m) A

and its outputs are un-whitened with the change-of-variables rule

    log f(Y) = log f_w(Y_w) + log|det A|,   s(Y) = s_w(Y_w) A^T.

The regulariser is relative (proportional to the mean variance), so translation x -> x + b and
isotropic scaling x -> c x leave X_w unchanged: those equivariances hold to rounding. A rotation
x -> x R rotates X_w -> X_w R, so rotation (and hence general affine) equivariance is learned
from randomly rotated training mixtures. No positional encodings: permutation equivariant.

Trunk: a linear embedding d -> width, then pre-norm transformer layers. Context tokens
self-attend; query tokens cross-attend to the context tokens of the same layer with the *same*
weights, so a query placed at a context point gets exactly that point's output (the oracle's
use, Y = X, needs only the context pass). A final LayerNorm feeds two linear heads (log f_w and
s_w). With ``moment_head`` (for high dimension, d = 100) the linear heads, started at zero, give
the correction to the attention-weighted local Gaussian g of ``moments.py``,

    log f_w(y) = log g(y) + T_head(y),   s_w(y) = s_g(y) + S_head(y),

so the network starts as the fitted Gaussian. Attention is ``scaled_dot_product_attention``
(fused kernels: memory linear in n); queries can be processed in chunks and the context can be a
random subsample of m <= n points.

Many samples at once (the cells of a phase-space run): a batch (B, n, d) padded to a common n,
``lengths`` (B,) the number of real context points of each entry. Each entry is whitened with the
moments of its own points and its padding is masked out of the attention (a key-padding mask), so
an entry's outputs equal those of the entry alone up to float32 rounding; the outputs at padding
rows are meaningless.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from oracles.discoformer.moments import MomentHead
from oracles.whitening import Whitening, whiten


FORMAT_VERSION = 1  # of the weights file written by train.py and read by oracle.py


@dataclass
class ModelConfig:
    dim: int
    width: int = 128
    layers: int = 4
    heads: int = 8
    ffn: int = 512
    dropout: float = 0.1
    eps: float = 1e-4  # relative covariance regulariser
    moment_head: bool = False  # heads = correction to the local Gaussian of moments.py (module docstring)

    def to_dict(self) -> dict:
        return asdict(self)


def subsample(x: Tensor, m: int, generator: torch.Generator | None) -> Tensor:
    """m points of x (…, n, d) drawn without replacement (the same subset for every batch entry)."""
    dev = generator.device if generator is not None else x.device
    idx = torch.randperm(x.shape[-2], generator=generator, device=dev)[:m]
    return x[..., idx.to(x.device), :]


def whiten_padded(x: Tensor, lengths: Tensor, eps: float) -> Whitening:
    """The whitening of each entry of the padded batch x (B, n, d) from its first lengths[b] points."""
    parts = [whiten(xb[:k], eps) for xb, k in zip(x, lengths.tolist())]
    return Whitening(*(torch.stack(field) for field in zip(*parts)))


def key_padding_mask(lengths: Tensor, n: int) -> Tensor:
    """(B, 1, 1, n) boolean: True at the real points of each padded entry (attention's keys)."""
    return (torch.arange(n, device=lengths.device) < lengths[:, None])[:, None, None, :]


class Layer(nn.Module):
    """Pre-norm block: h += Attn(LN(h), LN(context)); h += FFN(LN(h))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        self.heads = cfg.heads
        self.ln1, self.ln2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.q, self.kv, self.out = nn.Linear(w, w), nn.Linear(w, 2 * w), nn.Linear(w, w)
        self.ffn = nn.Sequential(nn.Linear(w, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, w))
        self.drop = nn.Dropout(cfg.dropout)

    def _split(self, t: Tensor) -> Tensor:  # (B, n, w) -> (B, heads, n, w / heads)
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def _attend(self, h: Tensor, kv: tuple[Tensor, Tensor], mask: Tensor | None) -> Tensor:
        a = F.scaled_dot_product_attention(self._split(self.q(self.ln1(h))), *kv, attn_mask=mask)
        h = h + self.drop(self.out(a.transpose(1, 2).flatten(-2)))
        return h + self.drop(self.ffn(self.ln2(h)))

    def context(self, h: Tensor, mask: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Self-attention over the context; also returns this layer's keys/values for queries.
        ``mask`` (B, 1, 1, n) boolean: the context points that may be attended to (None: all)."""
        k, v = self.kv(self.ln1(h)).chunk(2, dim=-1)
        kv = (self._split(k), self._split(v))
        return self._attend(h, kv, mask), kv

    def query(self, h: Tensor, kv: tuple[Tensor, Tensor], mask: Tensor | None = None) -> Tensor:
        """Cross-attention of query tokens to the context keys/values."""
        return self._attend(h, kv, mask)


class DiScoFormer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.trained_context: int | None = None  # largest training context size (set by the loader)
        self.trained_min: int | None = None      # smallest training sample size (set by the loader)
        self.embed = nn.Linear(cfg.dim, cfg.width)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.width)
        self.head_logf = nn.Linear(cfg.width, 1)
        self.head_score = nn.Linear(cfg.width, cfg.dim)
        self.moments = MomentHead(cfg.width, cfg.dim) if cfg.moment_head else None
        if cfg.moment_head:  # start as the fitted Gaussian
            for head in (self.head_logf, self.head_score):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def encode(self, xw: Tensor, mask: Tensor | None = None) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Context pass: final context tokens and the per-layer keys/values (``mask``: see
        :meth:`Layer.context`)."""
        h, kvs = self.embed(xw), []
        for layer in self.layers:
            h, kv = layer.context(h, mask)
            kvs.append(kv)
        return h, kvs

    def decode(self, yw: Tensor, kvs: list[tuple[Tensor, Tensor]], mask: Tensor | None = None) -> Tensor:
        """Query pass: query tokens after cross-attending to the context at every layer."""
        h = self.embed(yw)
        for layer, kv in zip(self.layers, kvs):
            h = layer.query(h, kv, mask)
        return h

    def heads(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens -> (log f_w (B, n), s_w (B, n, d)) in whitened coordinates."""
        h = self.ln_f(h)
        return self.head_logf(h).squeeze(-1), self.head_score(h)

    def whitened(self, x: Tensor, y: Tensor | None = None, *, with_context: bool = False,
                 query_batch: int | None = None, rotation: Tensor | None = None,
                 lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Whitening]:
        """(log f_w, s_w, whitening) in whitened coordinates, x (B, n, d): at the queries y (default
        the context x); ``with_context``: at the context points followed by the queries.

        ``rotation`` Q (d, d) orthogonal: the network sees X_w Q^T and Y_w Q^T and its score is
        rotated back, s_w = s'_w Q (log f_w is unchanged, |det Q| = 1); an exactly equivariant
        network would give the same outputs for every Q. ``lengths`` (B,): padded samples, entry b
        holds lengths[b] real context points (module docstring).
        The whitening (and its eigendecomposition) runs in full precision even under autocast.
        """
        with torch.autocast(x.device.type, enabled=False):
            w = whiten(x, self.cfg.eps) if lengths is None else whiten_padded(x, lengths, self.cfg.eps)
            xw, yw = w.apply(x), None if y is None else w.apply(y)
            # the principal frame of the moment head: eigenvectors of A = C^(-1/2) by increasing
            # eigenvalue, i.e. of C by decreasing variance (taken before any rotation: it rotates along)
            frame = torch.linalg.eigh(w.A).eigenvectors if self.moments is not None else None
            if rotation is not None:
                rotation = rotation.to(xw)
                xw, yw = xw @ rotation.mT, None if yw is None else yw @ rotation.mT
                frame = None if frame is None else rotation @ frame  # (x_w Q^T) (Q V) = x_w V
        mask = None if lengths is None else key_padding_mask(lengths.to(x.device), x.shape[1])
        h, kvs = self.encode(xw, mask)
        h_x = h
        if yw is not None:
            h_y = torch.cat([self.decode(c, kvs, mask) for c in yw.split(query_batch or yw.shape[1], dim=1)], dim=1)
            h = torch.cat([h, h_y], dim=1) if with_context else h_y
        logf_w, s_w = self.heads(h)
        if self.moments is not None:  # the local Gaussian at the tokens' whitened positions
            z = xw if yw is None else torch.cat([xw, yw], dim=1) if with_context else yw
            log_g, s_g = self.moments(self.ln_f(h), z, self.ln_f(h_x), xw, frame, mask)
            logf_w, s_w = logf_w + log_g, s_w + s_g
        return logf_w, s_w if rotation is None else s_w @ rotation.to(s_w.dtype), w

    def forward(self, x: Tensor, y: Tensor | None = None, *, context_size: int | None = None,
                generator: torch.Generator | None = None, query_batch: int | None = None,
                rotation: Tensor | None = None, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """log f (…, n_y) and score (…, n_y, d) at the queries y (default y = x).

        x: context (n, d) or (B, n, d). ``context_size`` m < n: attend to a random subset of m
        context points (drawn with ``generator``); all of y (default all of x) is still queried.
        ``query_batch``: push queries through in chunks of this many points. ``rotation``,
        ``lengths`` (padded samples, no ``context_size`` then): see :meth:`whitened`.
        """
        batched = x.dim() == 3
        if not batched:
            x, y = x[None], None if y is None else y[None]
        if context_size is not None and context_size < x.shape[1]:
            if lengths is not None:
                raise ValueError("DiScoFormer: subsample padded samples before the call (context_size with lengths)")
            x, y = subsample(x, context_size, generator), x if y is None else y
        logf_w, s_w, w = self.whitened(x, y, query_batch=query_batch, rotation=rotation, lengths=lengths)
        logf, score = logf_w.to(w.A.dtype) + w.logdet[:, None], s_w.to(w.A.dtype) @ w.A.mT
        return (logf, score) if batched else (logf[0], score[0])

    def with_density_gradient(self, x: Tensor, y: Tensor | None = None, *, create_graph: bool = False,
                              **kwargs) -> tuple[Tensor, Tensor, Tensor]:
        """(log f, S, grad_y log f) at the queries y (default the points of x): the second score
        estimate, the gradient of the log-density head with respect to the query positions, with
        the context x held fixed (autograd; ``create_graph`` keeps it differentiable, for
        test-time training). ``kwargs`` go to :meth:`forward`."""
        queries = (x if y is None else y).detach().requires_grad_(True)
        with torch.enable_grad():
            logf, score = self(x.detach(), queries, **kwargs)
            (grad,) = torch.autograd.grad(logf.sum(), queries, create_graph=create_graph)
        return logf, score, grad

    def predict(self, x: Tensor, y: Tensor | None = None, *, heads: str = "score",
                **kwargs) -> tuple[Tensor, Tensor]:
        """(log f, score) at the queries with the score taken from ``heads``: ``score`` the score
        head S, ``gradient`` grad_y log f of the log-density head, ``mean`` (S + grad_y log f) / 2.
        The heads are two estimates of one field; their errors are partly independent, so the mean
        can beat both (measured per weights file: results/discoformer_eval.md)."""
        if heads == "score":
            return self(x, y, **kwargs)
        logf, score, grad = self.with_density_gradient(x, y, **kwargs)
        return logf.detach(), (grad if heads == "gradient" else (score.detach() + grad) / 2)


HEADS = ("score", "gradient", "mean")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
