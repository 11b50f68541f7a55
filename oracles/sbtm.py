"""SBTM: score-based transport modelling -- a small network trained online on the particles.

Boffi & Vanden-Eijnden (2023); the learned baseline of Ilin, Hu & Wang (2025). A multilayer
perceptron s_theta: R^d -> R^d is fitted to the score of the current particles X_k at every time
step by score matching, so no kernel bandwidth is needed and a step costs O(n) (times the number
of optimiser steps) instead of the O(n^2) of blob/KDE.

Score-matching losses (pure functions below; the minimiser of each over all vector fields is the
score of the sampled density, since E|s - grad log f|^2 = E[|s|^2 + 2 div s] + const):

* ``denoising`` (default; Ilin et al.), antithetic noise z ~ N(0, I), scale a:
      L = (1/n) sum_i |s(x_i)|^2 + (s(x_i + a z_i) - s(x_i - a z_i)) . z_i / a
  (the second term is a finite-difference, unbiased-in-z estimate of 2 div s; exact for linear s);
* ``ism_exact``: implicit score matching with the exact divergence by d backward passes
      L = (1/n) sum_i |s(x_i)|^2 + 2 div s(x_i)          (small d; Huang & Wang);
* ``ism_hutchinson``: the same with Hutchinson's estimator div s ~ v^T (grad s) v, v Rademacher.

The score field (``normalize: true``, default) is the Gaussian score of the particles plus the MLP
r in whitened coordinates,

    s_theta(x) = -C^(-1) (x - m) + C^(-1/2) r((x - m) C^(-1/2)),     m, C: mean, covariance of X_k,

with m, C recomputed at every ``score`` call: changes of scale and shape of the cloud (the
Fokker-Planck cases spread fivefold) need no training, and r only learns the non-Gaussian part.
``normalize: false`` is the plain MLP s_theta = r of the references.

Time stepping (``score(x, t)`` at the start of every step): ``steps`` optimiser steps on X_k
(full batch, or random minibatches of ``batch_size``), then s(X_k) from the network *after*
training on X_k -- never the values fitted on X_(k-1). The optimiser (Adam by default) and its
state persist across time steps. ``last_loss`` is the loss of the last optimiser step of the call.
Defaults: 25 full-batch Adam steps per time step as in Ilin et al., at lr 2e-4 (theirs: 4e-4) and
with tanh units (theirs: softsign). Measured on BKW (d = 3, n = 2000, t 5.5 -> 8.5; results/sbtm.md,
section 0): the error is mostly a lag where the score changes fastest (the
outward score in the hole at v = 0 that fills in after t0), which a smaller step size makes worse;
a larger one moves the network faster towards the minimiser of the empirical denoising loss, which
is biased (a > 0: its minimiser is grad(f * G_a) / f, not grad f / f) and overfits n particles, so
each optimiser step also costs accuracy. lr 2e-4 balances the two; 1e-4 and 4e-4 are worse. Softsign
units, which saturate like 1/|x|, carried a larger error in the bulk and tails late in the run.

Intermediate stages of Heun/RK4 (``stage_score``): with ``train_stages: false`` (default) the
network fitted at X_k (and its m, C) is evaluated at the stage points without training (one forward pass; the
network is a smooth function of x, so it is a valid score field near X_k); with
``train_stages: true`` each stage first recomputes m, C and takes ``steps`` optimiser steps on
the stage points (``steps`` times the cost per stage).

Initial fit (in ``prepare(x0, t0)``), ``init_fit``:
* ``supervised``: L-BFGS on |s_theta(x0) - s*(x0)|^2 against the case's known initial score
  (Gaussian, mixture, BKW: ``context.initial``) until the relative error
  sum|s - s*|^2 / sum|s*|^2 <= ``init_tol`` (default 1e-4) or ``init_max_steps`` loss evaluations
  (default 200; a Gaussian takes about 40-70). The cap matters for scores that are nearly
  singular, like BKW at its start time (the density vanishes like |v|^2 at v = 0, score 2v/|v|^2):
  the fit cannot reach 1e-4 and, given 2000 evaluations (the old default), spends them building a
  steep outward feature for the few particles nearest v = 0. That feature is a transient of the
  solution (gone within 0.1 time units), but the online score matching can only unlearn it through
  the handful of particles in that region, so it persisted for about two time units and was the
  largest error term of the run on unlucky seeds (results/sbtm.md);
* ``score_matching``: ``init_max_steps`` (default 2000) steps of the training loss on x0 (no target
  needed);
* ``none``: keep the initial (random or loaded) weights;
* ``auto`` (default): ``none`` when ``init_weights`` is given, else ``supervised`` when the initial
  score is known, else ``score_matching``.
The score-matching initial fit uses its own Adam optimiser at ``init_lr``; the first ``score(x0, t0)`` after it
does not train again (the network was just fitted on these particles).

Warm start: ``init_weights`` is a file written by :meth:`SBTMOracle.save` (network weights and
architecture); a missing or mismatched file is a :class:`SettingsError` at construction.

Randomness (weight initialisation, noise, probes, minibatches) comes from a generator of the
oracle seeded in ``prepare`` by one draw from ``context.generator`` (after the initial particles
were sampled, so the particles are the same as with any other oracle): CPU runs are deterministic.
The network is built in ``net_dtype`` (``auto``: the problem's dtype) on the context's device; the
returned scores have the dtype of the particles.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

from oracles.base import ScoreOracle
from oracles.registry import OracleContext, register
from oracles.serialization import file_sha256, load_file, save_atomic
from oracles.settings import SettingsError
from oracles.whitening import whiten

FORMAT = "landau-particles/sbtm"
FORMAT_VERSION = 1

ScoreFn = Callable[[torch.Tensor], torch.Tensor]

class _Softsign(torch.autograd.Function):
    """softsign(x) = x / (1 + |x|) with a two-kernel backward g / (1 + |x|)^2 (autograd's generic
    one takes about eight; this halves the cost of a training step in float64). Under
    ``create_graph`` (ISM losses differentiate the network twice) the backward is recomputed with
    differentiable operations."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        a = x.abs().add_(1.0)
        ctx.save_for_backward(x, a)
        return x / a

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        x, a = ctx.saved_tensors
        if torch.is_grad_enabled():
            a = x.abs() + 1.0
            return g / (a * a)
        return g.div(a).div_(a)


def softsign(x: torch.Tensor) -> torch.Tensor:
    return _Softsign.apply(x)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softsign": softsign, "tanh": torch.tanh, "silu": F.silu, "gelu": F.gelu, "softplus": F.softplus,
}


# ----------------------------------------------------------------------------- losses (pure)
def denoising_loss(s: ScoreFn, x: torch.Tensor, z: torch.Tensor, a: float) -> torch.Tensor:
    """(1/n) sum_i |s(x_i)|^2 + (s(x_i + a z_i) - s(x_i - a z_i)) . z_i / a  (one batched pass)."""
    n = len(x)
    out = s(torch.cat([x, x + a * z, x - a * z]))
    s0, sp, sm = out[:n], out[n:2 * n], out[2 * n:]
    return ((s0 * s0).sum(1) + ((sp - sm) * z).sum(1) / a).mean()


def divergence(s: ScoreFn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(s(x), div s(x)) with the exact divergence by d backward passes (graph kept for training)."""
    x = x.detach().requires_grad_(True)
    out = s(x)
    div = torch.zeros(len(x), dtype=out.dtype, device=out.device)
    for k in range(x.shape[1]):
        (g,) = torch.autograd.grad(out[:, k].sum(), x, create_graph=True)
        div = div + g[:, k]
    return out, div


def ism_exact_loss(s: ScoreFn, x: torch.Tensor) -> torch.Tensor:
    """(1/n) sum_i |s(x_i)|^2 + 2 div s(x_i), exact divergence."""
    out, div = divergence(s, x)
    return ((out * out).sum(1) + 2.0 * div).mean()


def ism_hutchinson_loss(s: ScoreFn, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(1/n) sum_i |s(x_i)|^2 + 2 mean_j v_ij^T (grad s)(x_i) v_ij, probes v (m, n, d) (or (n, d))."""
    if v.dim() == 2:
        v = v[None]
    x = x.detach().requires_grad_(True)
    out = s(x)
    est = torch.zeros(len(x), dtype=out.dtype, device=out.device)
    for j in range(len(v)):
        (g,) = torch.autograd.grad((out * v[j]).sum(), x, create_graph=True)  # (grad s)^T v
        est = est + (g * v[j]).sum(1)
    return ((out * out).sum(1) + 2.0 * est / len(v)).mean()


# ----------------------------------------------------------------------------- network
class MLP(torch.nn.Module):
    """x (n, inputs) -> s (n, d): ``depth`` hidden layers of ``width`` units and an activation
    (``inputs`` None: d)."""

    def __init__(self, dim: int, width: int, depth: int, activation: str,
                 dtype: torch.dtype, device: torch.device, inputs: int | None = None) -> None:
        super().__init__()
        sizes = [inputs or dim] + [width] * depth + [dim]
        # built on the meta device (no global RNG draws), then allocated; see :meth:`initialize`
        layers = [torch.nn.Linear(a, b, device="meta", dtype=dtype) for a, b in zip(sizes, sizes[1:])]
        self.layers = torch.nn.ModuleList(layers).to_empty(device=device)
        self.act = ACTIVATIONS[activation]
        self.dim, self.width, self.depth, self.activation = dim, width, depth, activation

    def initialize(self, generator: torch.Generator) -> None:
        """PyTorch's default law U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from ``generator``
        (on the CPU in float64, so float32 and float64 networks start from the same weights)."""
        with torch.no_grad():
            for lin in self.layers:
                bound = 1.0 / math.sqrt(lin.in_features)
                for p in (lin.weight, lin.bias):
                    u = torch.rand(p.shape, generator=generator, dtype=torch.float64)
                    p.copy_((2.0 * u - 1.0) * bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lin in self.layers[:-1]:
            x = self.act(lin(x))
        return self.layers[-1](x)


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax,
              "sgd": torch.optim.SGD}


def _cpu_generator(context: OracleContext | None) -> torch.Generator:
    """A private CPU generator seeded by one draw from the context's generator."""
    seed = 0
    if context is not None and context.generator is not None:
        seed = int(torch.randint(0, 2**62, (1,), generator=context.generator))
    return torch.Generator(device="cpu").manual_seed(seed)


# ----------------------------------------------------------------------------- the oracle
@register
class SBTMOracle(ScoreOracle):
    """An MLP (tanh units by default) trained online by score matching on the particles at every time step."""

    name = "sbtm"
    per_cell = True         # phase space: one network s(x, v) for all cells (in_phase_space)

    @classmethod
    def memory_per_particle(cls, itemsize: int) -> int:
        """Activations and gradients of the score network: about 100 x 2 x 8 values per particle."""
        return 100 * 2 * 8 * itemsize

    @dataclass
    class Settings:
        width: int = 100
        depth: int = 1                        # hidden layers
        activation: Literal["softsign", "tanh", "silu", "gelu", "softplus"] = "tanh"
        loss: Literal["denoising", "ism_exact", "ism_hutchinson"] = "denoising"
        noise_scale: float = 0.4              # a of the denoising loss
        probes: int = 1                       # Hutchinson probe vectors per step
        steps: int = 25                       # optimiser steps per time step
        optimizer: Literal["adam", "adamw", "adamax", "sgd"] = "adam"
        lr: float = 2e-4
        batch_size: int | None = None         # null: full batch
        train_stages: bool = False            # train at the Heun/RK4 stage points too
        init_fit: Literal["auto", "supervised", "score_matching", "none"] = "auto"
        init_tol: float = 1e-4                # relative squared score error of the supervised fit
        init_max_steps: int | None = None     # L-BFGS evaluations (supervised) / Adam steps (score
                                              # matching); null: 200 / 2000
        init_lr: float = 1e-3                 # Adam, score-matching initial fit
        init_weights: str | None = None       # warm start from a file written by save()
        net_dtype: Literal["auto", "float32", "float64"] = "auto"
        normalize: bool = True                # Gaussian part + whitened coordinates (see model())

    @dataclass
    class PhaseSpaceSettings(Settings):
        """The defaults in phase space (``oracles/sbtm_phase_space.py``, measured there): implicit
        score matching (the denoising loss's bias drives a spurious relaxation), minibatches of
        4096 and float32 (32x cheaper per call than the homogeneous defaults at n = 5e4)."""
        loss: Literal["denoising", "ism_exact", "ism_hutchinson"] = "ism_exact"
        batch_size: int | None = 4096
        net_dtype: Literal["auto", "float32", "float64"] = "float32"

    def __init__(self, settings: "SBTMOracle.Settings | None" = None,
                 context: OracleContext | None = None) -> None:
        super().__init__(settings or self.Settings(), context)
        s = self.settings
        for key in ("width", "depth", "probes"):
            if getattr(s, key) < 1:
                raise SettingsError(f"oracle.{key}: must be >= 1, got {getattr(s, key)}")
        for key in ("steps", "init_max_steps"):
            if getattr(s, key) is not None and getattr(s, key) < 0:
                raise SettingsError(f"oracle.{key}: must be >= 0, got {getattr(s, key)}")
        for key in ("noise_scale", "lr", "init_tol", "init_lr"):
            if getattr(s, key) <= 0:
                raise SettingsError(f"oracle.{key}: must be positive, got {getattr(s, key)}")
        if s.batch_size is not None and s.batch_size < 1:
            raise SettingsError(f"oracle.batch_size: must be >= 1 or null (full batch), got {s.batch_size}")
        if s.init_fit == "none" and s.init_weights is None:
            raise SettingsError("oracle.init_fit: 'none' keeps the initial weights, so it needs oracle.init_weights "
                                "(otherwise the network at t0 would be untrained); use auto, supervised or score_matching")
        if s.init_fit == "supervised" and (context is None or context.initial is None):
            raise SettingsError("oracle.init_fit: 'supervised' needs a case whose initial density has a "
                                "known score (gaussian, gaussian_mixture, bkw)")
        self.net: MLP | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.gen: torch.Generator | None = None
        self.prepared = False
        self.calls = 0                      # score() calls so far
        self._fresh: torch.Tensor | None = None  # particles the network was just fitted on
        self.init_info: dict[str, Any] = {}
        self.norm: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._loaded: dict[str, torch.Tensor] | None = None
        self._inputs: dict[str, str] = {}
        if s.init_weights is not None:
            self._loaded = self.read_weights(s.init_weights, context.dim if context else None)
            self._inputs = {"init_weights": file_sha256(s.init_weights)}
        if context is not None:
            self._build(context.dim, context.dtype, torch.device(context.device))

    # ------------------------------------------------------------------ construction
    def _build(self, dim: int, dtype: torch.dtype, device: torch.device) -> None:
        s = self.settings
        net_dtype = {"auto": dtype, "float32": torch.float32, "float64": torch.float64}[s.net_dtype]
        self.net = MLP(dim, s.width, s.depth, s.activation, net_dtype, device, self.network_inputs(dim))
        if self._loaded is not None:
            self._load_weights(self._loaded)
        kwargs = {"momentum": 0.9} if s.optimizer == "sgd" else {}
        self.optimizer = OPTIMIZERS[s.optimizer](self.net.parameters(), lr=s.lr, **kwargs)

    def initialize_network(self) -> None:
        """Random initial weights (:meth:`MLP.initialize`) from the oracle's generator."""
        self.net.initialize(self.gen)

    def network_inputs(self, dim: int) -> int:
        """Inputs of the network for points of dimension ``dim`` (phase space adds position features)."""
        return dim

    def _load_weights(self, state: dict[str, torch.Tensor]) -> None:
        path = self.settings.init_weights
        try:
            with torch.no_grad():
                self.net.load_state_dict({k: v.to(self.net_dtype) for k, v in state.items()})
        except RuntimeError as err:
            raise SettingsError(f"oracle.init_weights: {path} does not match the network "
                                f"(width {self.settings.width}, depth {self.settings.depth}): {err}") from None

    @property
    def net_dtype(self) -> torch.dtype:
        return self.net.layers[0].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.net.layers[0].weight.device

    def read_weights(self, path: str | Path, dim: int | None) -> dict[str, torch.Tensor]:
        """Read and check a file written by :meth:`save`; problems are :class:`SettingsError`."""
        s = self.settings
        blob = load_file(path, "oracle.init_weights")
        if blob.get("format") != FORMAT:
            raise SettingsError(f"oracle.init_weights: {path} is not an SBTM network file (write one "
                                f"with SBTMOracle.save)")
        if blob.get("version") != FORMAT_VERSION:
            raise SettingsError(f"oracle.init_weights: {path} has format version {blob.get('version')!r}, "
                                f"expected {FORMAT_VERSION}")
        arch = blob.get("architecture", {})
        want = {"width": s.width, "depth": s.depth, "activation": s.activation, "normalize": s.normalize}
        if dim is not None:
            want["dim"] = dim
        diff = {k: (arch.get(k), v) for k, v in want.items() if arch.get(k) != v}
        if diff:
            what = ", ".join(f"{k} {a!r} in the file, {b!r} here" for k, (a, b) in diff.items())
            raise SettingsError(f"oracle.init_weights: {path} holds a different network ({what})")
        return blob["state_dict"]

    def save(self, path: str | Path) -> None:
        """Write the network (weights and architecture) for ``init_weights``."""
        if self.net is None:
            raise RuntimeError("SBTM: nothing to save before the network is built (call prepare)")
        n = self.net
        save_atomic({"format": FORMAT, "version": FORMAT_VERSION,
                    "architecture": {"dim": n.dim, "width": n.width, "depth": n.depth, "activation": n.activation,
                                     "normalize": self.settings.normalize},
                    "dtype": str(self.net_dtype).removeprefix("torch."),
                    "state_dict": {k: v.detach().cpu() for k, v in n.state_dict().items()}}, path)

    # ------------------------------------------------------------------ the score field
    def set_normalization(self, x: torch.Tensor) -> None:
        """Mean m, A = C^(-1/2) and P = C^(-1) of the particles x (``normalize``; else nothing)."""
        if not self.settings.normalize:
            self.norm = None
            return
        w = whiten(x.detach(), 1e-12)
        self.norm = (w.mean, w.A, w.A @ w.A)

    def model(self, x: torch.Tensor) -> torch.Tensor:
        """s_theta(x). With ``normalize``: s = -C^(-1) (x - m) + C^(-1/2) r((x - m) C^(-1/2)), the
        score of the particles' Gaussian plus the MLP r in whitened coordinates (m, C of the
        particles at the last score() call), so a change of scale needs no training."""
        if self.norm is None:
            return self.net(x)
        m, a, p = self.norm
        xc = x - m
        return self.net(xc @ a) @ a - xc @ p

    # ------------------------------------------------------------------ training
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The configured score-matching loss of the current network on x (fresh noise/probes)."""
        return self.loss_of(self.model, x)

    def loss_of(self, field: ScoreFn, x: torch.Tensor) -> torch.Tensor:
        """The configured score-matching loss of the score field ``field`` on x (fresh noise/probes)."""
        s = self.settings
        if s.loss == "denoising":
            z = self._randn(x.shape)
            return denoising_loss(field, x, z, s.noise_scale)
        if s.loss == "ism_exact":
            return ism_exact_loss(field, x)
        v = torch.randint(0, 2, (s.probes, *x.shape), generator=self.gen).to(x.device, x.dtype) * 2 - 1
        return ism_hutchinson_loss(field, x, v)

    def _randn(self, shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen, dtype=self.net_dtype).to(self.device)

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        b = self.settings.batch_size
        if b is None or b >= len(x):
            return x
        return x[torch.randperm(len(x), generator=self.gen)[:b].to(x.device)]

    def train(self, x: torch.Tensor, steps: int, optimizer: torch.optim.Optimizer | None = None) -> float:
        """``steps`` optimiser steps of the score-matching loss on x; return the last loss value."""
        opt = optimizer or self.optimizer
        last = math.nan
        for _ in range(steps):
            loss = self.loss(self._batch(x))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = float(loss.detach())
        return last

    def fit_supervised(self, x: torch.Tensor, target: torch.Tensor) -> tuple[int, float]:
        """L-BFGS (strong Wolfe line search) on sum|s(x) - target|^2 / sum|target|^2 until this
        relative error is <= init_tol, checked every 20 iterations, or ``init_max_steps`` loss
        evaluations were spent; return (evaluations, relative error)."""
        s = self.settings
        cap = self.init_cap("supervised")
        ref = float((target * target).sum())
        ref = ref if ref > 0 else 1.0
        opt = torch.optim.LBFGS(self.net.parameters(), lr=1.0, max_iter=20, history_size=50,
                                tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
        evals = 0

        def closure() -> torch.Tensor:
            nonlocal evals
            evals += 1
            opt.zero_grad(set_to_none=True)
            err = ((self.model(x) - target) ** 2).sum() / ref
            err.backward()
            return err

        def error() -> float:
            with torch.no_grad():
                return float(((self.model(x) - target) ** 2).sum()) / ref

        rel = error()
        while rel > s.init_tol and evals < cap and math.isfinite(rel):
            opt.param_groups[0]["max_eval"] = max(1, min(25, cap - evals))
            opt.step(closure)
            rel = error()
        return evals, rel

    def init_cap(self, mode: str) -> int:
        """``init_max_steps``, or its default for ``mode``: 200 L-BFGS evaluations (supervised),
        2000 Adam steps (score matching)."""
        cap = self.settings.init_max_steps
        return cap if cap is not None else (200 if mode == "supervised" else 2000)

    def _start(self, x: torch.Tensor, t: float) -> None:
        if self.net is None:  # used standalone, without a context
            self._build(x.shape[1], x.dtype, x.device)
        if x.shape[1] != self.net.dim:
            raise ValueError(f"SBTM: network built for dim {self.net.dim}, particles have dim {x.shape[1]}")
        if self.gen is None:
            self.gen = _cpu_generator(self.context)

    # ------------------------------------------------------------------ protocol
    def prepare(self, x0: torch.Tensor, t0: float) -> None:
        s = self.settings
        self._start(x0, t0)
        if self._loaded is None:
            self.initialize_network()
        x = x0.detach().to(self.device, self.net_dtype)
        self.set_normalization(x)
        mode = s.init_fit
        initial = self.context.initial if self.context is not None else None
        if mode == "auto":
            mode = "none" if s.init_weights else ("supervised" if initial is not None else "score_matching")
        info: dict[str, Any] = {"init_fit_used": mode}
        if mode == "supervised":
            target = initial.score(x0, t0).detach().to(self.device, self.net_dtype)
            steps, rel = self.fit_supervised(x, target)
            info.update(init_fit_steps=steps, init_fit_rel_error=rel)
        elif mode == "score_matching":
            opt = torch.optim.Adam(self.net.parameters(), lr=s.init_lr)
            cap = self.init_cap(mode)
            info.update(init_fit_steps=cap, init_fit_loss=self.train(x, cap, opt))
        if mode in ("supervised", "score_matching"):
            info["init_max_steps_used"] = self.init_cap(mode)
        self.init_info = info
        self.prepared = True
        self._fresh = x0

    def in_phase_space(self, length: float) -> ScoreOracle:
        """This oracle for a phase-space run in a box of ``length``: one network s(x, v) of the
        points z = (x, v) for all cells, with these settings (``oracles/sbtm_phase_space.py``)."""
        from oracles.sbtm_phase_space import PhaseSpaceSBTM
        return PhaseSpaceSBTM(self.settings, self.context, length)

    def _evaluate(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x.detach().to(self.device, self.net_dtype)).to(x.device, x.dtype)

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        if not self.prepared:
            self.prepare(x, t)
        xn = x.detach().to(self.device, self.net_dtype)
        fresh, self._fresh = self._fresh, None
        if fresh is not None and (fresh is x or (fresh.shape == x.shape and torch.equal(fresh, x))):
            # just fitted on these particles in prepare(): report the loss, do not train again
            self.last_loss = float(self.loss(xn).detach())
        else:
            self.set_normalization(xn)
            self.last_loss = self.train(xn, self.settings.steps)
        self.calls += 1
        return self._evaluate(x)

    def stage_score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        if self.settings.train_stages:
            xn = x.detach().to(self.device, self.net_dtype)
            self.set_normalization(xn)
            self.train(xn, self.settings.steps)
        return self._evaluate(x)

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy({
            "net": self.net.state_dict() if self.net is not None else None,
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "generator": self.gen.get_state() if self.gen is not None else None,
            "prepared": self.prepared, "calls": self.calls, "last_loss": self.last_loss,
            "init_info": self.init_info, "fresh": self._fresh, "norm": self.norm,
        })

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = copy.deepcopy(state)
        if self.net is None:
            w = state["net"]["layers.0.weight"]
            self._build(w.shape[1], w.dtype, w.device)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["generator"] is not None:
            self.gen = torch.Generator(device="cpu")
            self.gen.set_state(state["generator"])
        self.prepared, self.calls, self.last_loss = state["prepared"], state["calls"], state["last_loss"]
        self.init_info, self._fresh = state["init_info"], state["fresh"]
        self.norm = None if state["norm"] is None else tuple(t.to(self.device) for t in state["norm"])

    def inputs(self) -> dict[str, str]:
        return self._inputs

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.net is not None:
            out["parameters"] = sum(p.numel() for p in self.net.parameters())
            out["net_dtype_used"] = str(self.net_dtype).removeprefix("torch.")
        out.update(self.init_info)
        return out
