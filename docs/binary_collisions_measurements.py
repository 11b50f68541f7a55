"""The step bias of binary collisions against dt (docs/binary_collisions.md, section 3).

    python docs/binary_collisions_measurements.py      # about 1 min; prints the Markdown table

Bi-Maxwellian N(0, diag(0.5, 0.5, 1)), gamma = -3, B = 1/24, n = 1e5, seeds 0, 1, 2: the expected dS_zz/dt of
one step (``BinaryCollisions.expected_covariance_rate``, no random numbers) at several dt, on the same
particles, against its dt -> 0 limit on those particles (dt = 1e-6: the sampling error of the draw cancels,
what is left is the step bias alone), and against the exact rate of the initial density (the sum of both).
nu_th dt is the angle variance <theta^2> = 8 (d - 1) B |u|^gamma dt at the thermal relative speed
|u| = (E|v - w|^2)^(1/2) = (2 tr S)^(1/2) = 2; "wide" is the fraction of pairs with <theta^2> > 1.
"""
from __future__ import annotations

import numpy as np
import torch

from landau.binary_collisions import BinaryCollisions
from landau.gaussian_rates import mixture_covariance_rate

S, B, GAMMA, N = np.diag([0.5, 0.5, 1.0]), 1 / 24, -3.0, 100_000
DTS = (1.0, 0.5, 0.25, 0.1, 0.05, 0.02, 0.01)


def main() -> None:
    exact = mixture_covariance_rate([1.0], np.zeros((1, 3)), S[None], GAMMA, B)[2, 2]
    nu_th = 8 * 2 * B * (2 * np.trace(S)) ** (GAMMA / 2)
    res = {}
    for seed in (0, 1, 2):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(N, 3, generator=g, dtype=torch.float64) * torch.tensor(np.sqrt(np.diag(S)))
        u2 = ((x - torch.roll(x, -1, 0)) ** 2).sum(1)
        for scheme in ("takizuka_abe", "nanbu"):
            eq = BinaryCollisions(GAMMA, B, scheme)
            limit = float(eq.expected_covariance_rate(x, 1e-6)[2, 2])
            for dt in DTS:
                r = float(eq.expected_covariance_rate(x, dt)[2, 2])
                wide = float((8 * 2 * B * dt * u2 ** (GAMMA / 2) > 1).double().mean())
                res.setdefault((scheme, dt), []).append((r / limit - 1, r / exact - 1, wide))
    print("| dt | nu_th dt | wide pairs | TA: bias | TA: vs exact | Nanbu: bias | Nanbu: vs exact |")
    print("|---|---|---|---|---|---|---|")
    for dt in DTS:
        ta, nb = np.array(res["takizuka_abe", dt]), np.array(res["nanbu", dt])
        print(f"| {dt} | {nu_th * dt:.4f} | {ta[:, 2].mean():.1e} | {ta[:, 0].mean():+.4f} | "
              f"{', '.join(f'{v:+.3f}' for v in ta[:, 1])} | {nb[:, 0].mean():+.4f} | "
              f"{', '.join(f'{v:+.3f}' for v in nb[:, 1])} |")


if __name__ == "__main__":
    main()
