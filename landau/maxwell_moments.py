"""Closed moment equations of the Maxwell-molecule (gamma = 0) Landau equation, orders 2 to 4.

Weak form: for a test function phi, with A(z) = B (|z|^2 I - z z^T) and (div A)(z) = -B (d-1) z,

    d/dt Int phi f = Int Int f(v) f(w) [ A(v - w) : Hess phi(v) + 2 (div A)(v - w) . grad phi(v) ] dv dw.

For polynomial phi of degree k the right-hand side only involves moments of degree <= k, so the
moments close order by order. The mean is conserved; with it at 0, the centred moment tensors
M2_ab = E v_a v_b, M3_abc = E v_a v_b v_c, M4_abcd = E v_a v_b v_c v_d obey

    dM2/dt = 4B ( tr(M2) I - d M2 )                                   (the covariance law),
    dM3/dt = B [ 2 (delta_ab T_c + delta_ac T_b + delta_bc T_a) - 6 d M3 ],        T_c = M3_eec,
    dM4/dt = B [ 2 sum_6 delta_ab N_cd - 4 (M2_ab M2_cd + M2_ac M2_bd + M2_ad M2_bc) - (8d + 4) M4 ],
             N_cd = M4_eecd + tr(M2) M2_cd,

where sum_6 runs over the six ways of splitting (a, b, c, d) into a pair and the rest. (Each
follows from E[A_ab(v - w) v_c v_d] = B [delta_ab (E|v|^2 v_c v_d + tr M2 M2_cd) - M4_abcd -
M2_ab M2_cd] and E[(v - w)_a v_b v_c v_d] = M4_abcd for independent centred v, w.) Any Maxwellian
M4 = sigma^4 (delta delta + 2 perms), M2 = sigma^2 I is a fixed point, and the BKW solution's
E|v|^4 = P K^2 d(d+2) + Q K^3 d(d+2)(d+4) is reproduced (tests). The system is integrated
numerically (DOP853, rtol 1e-12) from the initial moments of the particles themselves, so a
comparison measures the solver, not the initial draw.
"""
from __future__ import annotations

import numpy as np
import torch


def centred_moments(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M2, M3, M4 of the empirical measure of x (n, d) about its mean (float64 numpy)."""
    y = (x - x.mean(0)).double()
    n = len(y)
    m2 = torch.einsum("pa,pb->ab", y, y) / n
    m3 = torch.einsum("pa,pb,pc->abc", y, y, y) / n
    yy = torch.einsum("pa,pb->pab", y, y)
    m4 = torch.einsum("pab,pcd->abcd", yy, yy) / n
    return m2.cpu().numpy(), m3.cpu().numpy(), m4.cpu().numpy()


def moment_rates(m2: np.ndarray, m3: np.ndarray, m4: np.ndarray, B: float) -> tuple[np.ndarray, ...]:
    """(dM2/dt, dM3/dt, dM4/dt) of the Maxwell Landau equation (see module docstring)."""
    d = len(m2)
    eye = np.eye(d)
    tr = np.trace(m2)
    r2 = 4 * B * (tr * eye - d * m2)
    T = np.einsum("eec->c", m3)
    sym3 = np.einsum("ab,c->abc", eye, T)
    r3 = B * (2 * (sym3 + sym3.transpose(0, 2, 1) + sym3.transpose(2, 1, 0)) - 6 * d * m3)
    N = np.einsum("eecd->cd", m4) + tr * m2
    dn = np.einsum("ab,cd->abcd", eye, N)
    sym6 = (dn + dn.transpose(0, 2, 1, 3) + dn.transpose(0, 3, 2, 1)          # delta_ab N_cd, delta_ac N_bd, delta_ad N_cb
            + dn.transpose(2, 3, 0, 1) + dn.transpose(2, 1, 0, 3) + dn.transpose(3, 1, 2, 0))  # delta_cd N_ab, delta_bc N_ad, delta_bd N_ca
    pp = np.einsum("ab,cd->abcd", m2, m2)
    pairs = pp + pp.transpose(0, 2, 1, 3) + pp.transpose(0, 3, 2, 1)
    r4 = B * (2 * sym6 - 4 * pairs - (8 * d + 4) * m4)
    return r2, r3, r4


class MaxwellMoments:
    """Centred moments of order 2-4 of a Maxwell (gamma = 0) Landau solution from given M2, M3, M4 at t0."""

    def __init__(self, m2: np.ndarray, m3: np.ndarray, m4: np.ndarray, B: float, t0: float) -> None:
        self.d, self.B, self.t0 = len(m2), B, t0
        self.initial = tuple(np.asarray(m, dtype=float) for m in (m2, m3, m4))
        self.y0 = np.concatenate([m.ravel() for m in self.initial])

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.d
        return y[:d**2].reshape(d, d), y[d**2:d**2 + d**3].reshape(d, d, d), y[d**2 + d**3:].reshape(d, d, d, d)

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M2, M3, M4) at time t."""
        if t == self.t0:
            return self._split(self.y0)
        rhs = lambda _, y: np.concatenate([r.ravel() for r in moment_rates(*self._split(y), self.B)])  # noqa: E731
        scale = np.abs(self.y0).max()
        import scipy.integrate  # deferred: ~1 s of start-up that most runs never need
        sol = scipy.integrate.solve_ivp(rhs, (self.t0, t), self.y0, method="DOP853", rtol=1e-12,
                                        atol=1e-14 * scale)
        return self._split(sol.y[:, -1])

    def moment4(self, t: float) -> float:
        """E|v - m|^4 = sum_ab M4_aabb."""
        return float(np.einsum("aabb->", self.at(t)[2]))
