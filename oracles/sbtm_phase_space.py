"""SBTM in phase space: one network s(x, v) ~ grad_v log f(x, v) for all cells of a
Vlasov-Poisson-Landau run, trained online by score matching in v on all particles.

The anchor (Ilin et al., arXiv 2603.25832, Vilin97/Vlasov-Landau-SBTM) fits one MLP of the
phase-space point [x, v] to the velocity score. Here the position enters through periodic
features of the box [0, L),

    phi(x) = (cos(2 pi k x / L), sin(2 pi k x / L))_(k = 1..K),     K = ``modes`` (default 4),

so the field is periodic in x by construction and smooth on the scale L / K (the local
distribution changes on the scale of the perturbation, k x with the box holding a few of its
periods, and its harmonics). With ``normalize: true`` (the default of ``sbtm``) the field is the
Gaussian score of all particles' velocities plus the network in whitened velocities,

    s(x, v) = -C^(-1) (v - m) + C^(-1/2) r(phi(x), (v - m) C^(-1/2)),

m, C the mean and covariance of all velocities at the call: r learns the x dependence and the
non-Gaussian part. It has no cells: a cell with few particles (or none) is scored by the field
fitted to all particles, and its x dependence is limited to K modes, so there is no minimum count
per cell and no warning.

Training: the score-matching loss of ``sbtm`` (``settings.loss``) in v with x held fixed, on all
particles: its minimiser over fields is grad_v log f(x, v), since for every x
E_(v ~ f(.|x)) |s - grad_v log f|^2 = E[|s|^2 + 2 div_v s] + const, and the expectation over x only
weights the positions. ``ism_exact`` (implicit score matching, exact divergence by d backward
passes, cheap in d = 2) is the anchor's loss and has no bias; ``denoising`` (the homogeneous
default) has a bias of order a^2 (its minimiser is grad(f *_v G_a) / f, not grad f / f).
Measured on v | x ~ N(u(x), T(x) I) (T = 1 + 0.4 cos, u_1 = 0.5 sin of 2 pi x / L; relative L2
error of the score on held-out particles; Adam lr 1e-3, width 100, one hidden layer, float32;
the Gaussian of all particles, where training starts, has 0.37):

    n = 4000:  ism_exact 0.21 / 0.15 / 0.23 after 100 / 200 / 400 steps; denoising 0.24 / 0.15 / 0.18
    n = 2e4:   ism_exact 0.18 / 0.085 / 0.098 after 100 / 200 / 500 steps; denoising 0.21 / 0.105 / 0.15

(local Maxwellians in 16 cells: 0.14 at n = 4000). The error falls for about 200 steps, then rises
again as the network fits the sample's fluctuations (train and held-out errors alike): the empirical
score-matching loss keeps falling while the error grows. Hence the initial fit
(``init_fit: auto`` = ``score_matching``; the phase-space initial density carries no velocity score,
so ``supervised`` is not available) takes ``init_max_steps`` = 200 steps by default (not the 2000
of ``sbtm``), from the network's output layer at zero (with ``normalize``: the field starts as the
Gaussian of all particles), and every time step adds ``steps`` more on the moved particles.

Settings are those of ``sbtm`` (``oracle: {kind: sbtm, ...}``), with other defaults in phase
space (``SBTMOracle.PhaseSpaceSettings``, chosen by these measurements): ``loss: ism_exact``,
``batch_size: 4096`` (minibatches of all particles), ``net_dtype: float32``; the rest as ``sbtm``
(width 100, one hidden layer of tanh units, 25 Adam steps per score call at lr 2e-4). The anchor's
network (256 x 256 softsign, 100 AdamW steps per time step) is for a GPU. Collisional Landau
damping (``cases/vpl_landau_damping.yaml`` at n = 1e4, 16 cells, t = 0..1, 2 cores shared with
other jobs at load about 15; relative squared score error at t0 against grad_v log f0, and the
entropy production, which is 0 for exact scores of the initial Maxwellian):

    oracle                                   score error t0   entropy production t = 0 / 1   wall
    gaussian (local Maxwellians)             7.9e-5           -2.0e-5 / -1.1e-3               3 s
    sbtm, phase-space defaults               2.6e-4           -3e-5 / -1.0e-4                 45 s
    sbtm, homogeneous defaults (denoising)   7.3e-3           -2.2e-3 / -6.2e-3              199 s
    same, no initial fit                     2.4e-7           0 / -3.3e-3                     92 s
    discoformer (per cell, 625 per cell)     6.2e-3           -2.3e-3 / -6.8e-3               29 s

The denoising loss's bias pulls the field off the Maxwellian within a few calls (the last two rows);
implicit score matching does not. Cost per score call at n = 5e4 (one thread, load about 15):
0.84 s with the phase-space defaults (initial fit 6.9 s), 27 s with the homogeneous ones (full
batch in float64, initial fit 200 s).

State (network, optimiser, generator, normalisation) as ``sbtm``: a resumed run continues bit for bit.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from oracles.registry import OracleContext
from oracles.sbtm import SBTMOracle
from oracles.settings import SettingsError


class PhaseSpaceSBTM(SBTMOracle):
    """SBTM on phase-space points z = (x, v) (n, 1 + d); scores (n, d) in v."""

    def __init__(self, settings: SBTMOracle.Settings, context: OracleContext, length: float, modes: int = 4) -> None:
        if context is None:
            raise SettingsError("oracle: sbtm in phase space needs an OracleContext (for dim and device)")
        self.length, self.modes = length, modes
        # the phase-space initial density has no velocity score: hide it (no supervised fit)
        super().__init__(settings, dataclasses.replace(context, initial=None))

    def network_inputs(self, dim: int) -> int:
        return 2 * self.modes + dim

    def initialize_network(self) -> None:
        """Random weights, with the output layer at zero under ``normalize``: the field starts as the
        Gaussian score of all particles and the network learns from there."""
        super().initialize_network()
        if self.settings.normalize:
            with torch.no_grad():
                for p in self.net.layers[-1].parameters():
                    p.zero_()

    def init_cap(self, mode: str) -> int:
        """``init_max_steps``, default 200 score-matching steps (module docstring)."""
        cap = self.settings.init_max_steps
        return cap if cap is not None else 200

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) (n, 2K): cos and sin of 2 pi k x / L, k = 1..K."""
        angle = (2 * math.pi / self.length) * x[:, None] * torch.arange(1, self.modes + 1, dtype=x.dtype, device=x.device)
        return torch.cat([torch.cos(angle), torch.sin(angle)], dim=1)

    def field(self, phi: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """s at velocities v (n, d) given the position features phi (n, 2K) (module docstring)."""
        if self.norm is None:
            return self.net(torch.cat([phi, v], dim=1))
        m, a, p = self.norm
        vc = v - m
        return self.net(torch.cat([phi, vc @ a], dim=1)) @ a - vc @ p

    def model(self, z: torch.Tensor) -> torch.Tensor:
        return self.field(self.features(z[:, 0]), z[:, 1:])

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        """The configured loss in v at fixed positions (the loss may evaluate the field at several
        copies of the velocities stacked, as the denoising loss does: the features are repeated)."""
        phi = self.features(z[:, 0])
        return self.loss_of(lambda v: self.field(phi.repeat(len(v) // len(phi), 1), v), z[:, 1:])

    def set_normalization(self, z: torch.Tensor) -> None:
        super().set_normalization(z[:, 1:])

    def _start(self, z: torch.Tensor, t: float) -> None:
        super()._start(z[:, 1:], t)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "modes": self.modes, "phase_space": "one network s(x, v)"}
