"""Per-frame metrics that rank score oracles: the diagnostics a run writes beside the covariance.

:class:`FrameMetrics` is a small observer: built from the problem, it declares its NetCDF
variables (:meth:`FrameMetrics.variables`) and returns the values of one frame when called with
the particles, their scores and the oracle. Its only state, the initial centred moments that the
Maxwell fourth-moment law starts from, is saved and restored for exact resumption.

Variables (formulas in :mod:`landau.metrics`):

* ``score_error`` -- sum |s - s*|^2 / sum |s*|^2 against the exact score s*(x, t) where the case has
  one (BKW, Gaussian solutions of linear Fokker-Planck), and at the first frame against the closed-form
  initial density (gaussian, gaussian_mixture); NaN elsewhere.
* ``moment4`` -- (1/n) sum |X - m|^4; ``moment4_exact`` where the law is known: Maxwell molecules
  from the particles' own initial centred moments (:mod:`landau.maxwell_moments`; BKW included),
  Gaussian linear Fokker-Planck solutions in closed form.
* ``radial_w1`` -- BKW only: W1 between the law of |X - m| and the exact radial law.
* ``fisher_information`` -- (1/n) sum |s|^2; ``entropy`` -- -(1/n) sum log f(X) for oracles with a
  log-density (NaN otherwise); ``fisher_information_exact`` and ``entropy_exact`` where the exact
  solution has them (BKW, Gaussian Fokker-Planck).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from landau import metrics
from landau.maxwell_moments import MaxwellMoments, centred_moments
from solvers.output import Variable

class FrameMetrics:
    def __init__(self, problem: Any) -> None:
        self.exact, self.initial, self.t0 = problem.exact, problem.initial_density, problem.t0
        self.maxwell_B = problem.entry.maxwell_moments_B()   # None unless Maxwell molecules
        self.law: MaxwellMoments | None = None
        self.names = self.variables()
        self.first = True

    def _exact_has(self, name: str) -> bool:
        return self.exact is not None and hasattr(self.exact, name)

    def variables(self) -> dict[str, Variable]:
        """The output variables this observer writes."""
        out: dict[str, Variable] = {
            "score_error": Variable(("time",), "relative squared score error sum|s - s*|^2 / sum|s*|^2 "
                            "against the exact score (NaN where none)"),
            "moment4": Variable(("time",), "fourth centred moment (1/n) sum |x - m|^4"),
            "fisher_information": Variable(("time",), "Fisher information estimate (1/n) sum |s|^2"),
            "entropy": Variable(("time",), "entropy estimate -(1/n) sum log f(x) from the oracle's "
                        "log-density (NaN where it has none)"),
        }
        if self.maxwell_B is not None or self._exact_has("fourth_moment"):
            out["moment4_exact"] = Variable(("time",), "exact fourth centred moment E|x - m|^4 (Maxwell: "
                                    "closed moment equations from the particles' own initial moments)")
        if self._exact_has("radial_partial_moment"):
            out["radial_w1"] = Variable(("time",), "Wasserstein-1 distance of the law of |x - m| to the "
                                "exact radial law")
        if self._exact_has("fisher_information"):
            out["fisher_information_exact"] = Variable(("time",), "exact Fisher information E|grad log f|^2")
            out["entropy_exact"] = Variable(("time",), "exact entropy -E log f")
        return out

    def state_dict(self) -> dict[str, Any]:
        """The initial centred moments of the Maxwell law (None before the first frame)."""
        return {"first": self.first,
                "moments0": None if self.law is None else [torch.from_numpy(m) for m in self.law.initial]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first = state["first"]
        if state["moments0"] is not None:
            self.law = MaxwellMoments(*(m.numpy() for m in state["moments0"]), self.maxwell_B, self.t0)

    def __call__(self, state: Any) -> dict[str, Any]:
        t, x, s, oracle, first = state.t, state.x, state.s, state.oracle, self.first
        self.first = False
        names = self.names
        reference = self.exact or (self.initial if first else None)
        scored = s.shape[-1] == x.shape[-1]          # a method without a score (binary collisions): NaN
        frame: dict[str, Any] = {
            "score_error": metrics.score_error(s, reference.score(x, t))
            if reference is not None and scored else math.nan,
            "moment4": metrics.moment4(x),
            "fisher_information": metrics.fisher_information(s) if scored else math.nan,
            "entropy": metrics.entropy(oracle.log_density(x, t)) if oracle.has_log_density else math.nan,
        }
        if "moment4_exact" in names:
            if self.maxwell_B is not None:
                if first:
                    self.law = MaxwellMoments(*centred_moments(x), self.maxwell_B, self.t0)
                frame["moment4_exact"] = self.law.moment4(t)
            else:
                frame["moment4_exact"] = self.exact.fourth_moment(t)
        if "radial_w1" in names:
            r = (x - x.mean(0)).norm(dim=1).double().cpu().numpy()
            frame["radial_w1"] = metrics.radial_w1(r, lambda R, a: self.exact.radial_partial_moment(R, a, t))
        if "fisher_information_exact" in names:
            frame["fisher_information_exact"] = self.exact.fisher_information(t)
            frame["entropy_exact"] = self.exact.entropy(t)
        return frame
