"""Evaluate shipped DiScoFormer weights against Gaussian KDE; print Markdown tables.

    python -m oracles.discoformer.evaluate oracles/discoformer/weights/discoformer_d3.pt
    python -m oracles.discoformer.evaluate --paper oracles/discoformer/weights/*.pt

``--paper``: one table for all the given weights, held-out GMMs only (the paper's protocol: fresh
random GMMs of the training prior, queries = the sample), the oracle's default inference rule
(a random subset of the trained context size when n is larger, then the score-matching correction
of ``stein.py``), beside Scott and Silverman KDE and
the paper's published relative score MSE (Table 2; d = 2 and 10 at n = 2^8 and 2^14).

Accuracy, with the sample itself as the queries (the particle-method use, Y = X; the KDE keeps
its self term), averaged over independent trials, for held-out random GMMs (the paper's prior,
fresh seeds) at ``--n``, and at ``--other-n`` for the kinetic families (BKW at t0 and t0 + 3,
B = 1/24; a bi-Maxwellian with temperature ratio 10; the standard Laplace; the Student t with
nu = 3) and two shapes held out of the training prior (the flat-top super-Gaussian exp(-|x|^4)
and a bump-on-tail mixture with a cold beam):

    relative score MSE (%) = sum_i |s_i - s*_i|^2 / sum_i |s*_i|^2 * 100      (zero predictor: 100)
    log-density MSE        = (1/n) sum_i (log f_i - log f*_i)^2

Equivariance (paper Table 1): for x' = x M + b the exact answers transform as
log f'(x') = log f(x) - log|det M| and s'(x') = s(x) M^-T (and permute with the points); the table
gives sum |pred(x') - transformed pred(x)|^2 / sum |transformed pred(x)|^2 for the score and the
log-density, mean over trials, float32. Permutation, translation and isotropic scaling are exact by
construction (rounding only); anisotropic scaling, rotation and full affine maps rely on what the
network learned from randomly rotated mixtures.
"""
from __future__ import annotations

import argparse
import math
import time

import torch
from torch import Tensor

from landau import BKW
from landau.densities import FAMILIES, GaussianMixture, Mixture
from oracles.discoformer.averaging import inference_rule
from oracles.discoformer.data import held_out, random_rotation, relative_score_mse
from oracles.discoformer.model import HEADS, DiScoFormer
from oracles.discoformer.oracle import default_heads, load_model
from oracles.discoformer.ttt import adapt_at_test_time
from oracles.kde import bandwidth, kde_log_density, kde_score

Sample = tuple[Tensor, Tensor, Tensor]  # x (n, d), exact log f (n,), exact score (n, d)


def gmm_sample(dim: int, n: int, seed: int) -> Sample:
    gmm, x = held_out(1, dim, n, seed)
    return x[0], gmm.log_density(x)[0], gmm.score(x)[0]


def mixture_sample(density: Mixture | GaussianMixture, n: int, seed: int) -> Sample:
    x = density.sample(n, torch.Generator().manual_seed(seed))
    if isinstance(density, Mixture):
        return x[0], density.log_density(x)[0], density.score(x)[0]
    return x, density.log_density(x), density.score(x)


def family(name: str, theta: float, dim: int, ratio: float = 1.0) -> Mixture:
    """One base density of ``landau.densities`` with the first axis stretched to variance-like
    scale ``ratio`` (a bi-Maxwellian with temperature ratio ``ratio`` for the Gaussian)."""
    scale = torch.ones(dim)
    scale[0] = math.sqrt(ratio)
    return Mixture(torch.zeros(1, 1), torch.tensor([[FAMILIES.index(name)]]), torch.tensor([[theta]]),
                   torch.diag(scale)[None, None], torch.zeros(1, 1, dim))


def bkw_sample(dt: float):
    def draw(dim: int, n: int, seed: int) -> Sample:
        bkw = BKW(dim, 1 / 24)
        t = bkw.t0() + dt
        x = bkw.sample(n, t, torch.Generator().manual_seed(seed), dtype=torch.float32)
        return x, bkw.log_density(x, t), bkw.score(x, t)
    return draw


def super_gaussian_sample(dim: int, n: int, seed: int) -> Sample:
    """f = exp(-|x|^4) / Z, Z = 2 pi^(d/2) Gamma(d/4) / (4 Gamma(d/2)); s = -4 |x|^2 x (held out of the
    prior). Radius by inverting its CDF P(d/4, r^4) (regularised incomplete gamma) on a fine grid."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, dim, generator=g, dtype=torch.float64)
    grid = torch.linspace(0, 4, 40001, dtype=torch.float64)
    cdf = torch.special.gammainc(torch.tensor(dim / 4, dtype=torch.float64), grid**4)
    r = grid[torch.searchsorted(cdf, torch.rand(n, generator=g, dtype=torch.float64)).clamp_max(len(grid) - 1)]
    x = (z / z.norm(dim=1, keepdim=True) * r[:, None]).float()
    log_z = math.log(2) + dim / 2 * math.log(math.pi) + math.lgamma(dim / 4) - math.log(4) - math.lgamma(dim / 2)
    r2 = x.pow(2).sum(1)
    return x, -r2**2 - log_z, -4 * r2[:, None] * x


def bump_on_tail_sample(dim: int, n: int, seed: int) -> Sample:
    """0.9 N(0, I) + 0.1 N(4.5 e_1, 0.1 I): a cold beam on the tail of a Maxwellian (variance 0.1
    and weight 0.1: outside the paper's GMM prior, at the edge of the kinetic one)."""
    mean = torch.zeros(2, dim)
    mean[1, 0] = 4.5
    covs = torch.stack([torch.eye(dim), 0.1 * torch.eye(dim)])
    return mixture_sample(GaussianMixture(torch.tensor([0.9, 0.1]), mean, covs), n, seed)


def family_sample(name: str, theta: float, ratio: float = 1.0):
    return lambda dim, n, seed: mixture_sample(family(name, theta, dim, ratio), n, seed)


DISTRIBUTIONS = {
    "GMM (held out)": gmm_sample,
    "BKW t0": bkw_sample(0.0), "BKW t0+3": bkw_sample(3.0),
    "bi-Maxwellian 10:1": family_sample("gauss", 0.0, 10.0),
    "Laplace": family_sample("laplace", 0.0), "Student-t (nu=3)": family_sample("student", 3.0),
    "super-Gaussian exp(-|x|^4) (held out)": super_gaussian_sample,
    "bump-on-tail (held out)": bump_on_tail_sample,
}


def estimators(model: DiScoFormer, ttt: int, ttt_lr: float, context: int | None, subsets: int = 1,
               rotations: int = 1, stein_degree: int = 2, heads: str = "auto", kernel: bool = True) -> dict:
    """name -> function x -> (log f, score) at the points of x: the network on the whole sample,
    the oracle's inference rule (``averaging.py`` over context subsets and frames, then the
    score-matching correction of ``stein.py``), optionally test-time training, and Scott and
    Silverman KDE. ``kernel``: the kernel correction (``kernel_correction.py``; on by default, as
    in the oracle)."""
    def kde(rule: str):
        def run(x: Tensor) -> tuple[Tensor, Tensor]:
            h = bandwidth(x, rule)
            return kde_log_density(x, x, h), kde_score(x, x, h)
        return run

    def net(x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return model(x)

    g = torch.Generator().manual_seed(0)
    heads = default_heads(model) if heads == "auto" else heads

    def rule(x: Tensor) -> tuple[Tensor, Tensor]:
        """The oracle's rule; the correction is fitted in float64, as in a solver's run."""
        with torch.no_grad():
            out = inference_rule(lambda c, y, q: model.predict(c, y, heads=heads, rotation=q), x.double(), None,
                                 context=context, subsets=subsets, rotations=rotations,
                                 stein_degree=stein_degree, generator=g,
                                 kernel=kernel)
        return tuple(o.to(x.dtype) for o in out)
    label = [f"context {context}"] if context else []
    label += [f"mean of {subsets} subsets"] if context and subsets > 1 else []
    label += [f"mean of {rotations} frames"] if rotations > 1 else []
    label += [f"{heads} heads"] if heads != "score" else []
    label += ["kernel correction"] if kernel else []
    label += [f"Stein {stein_degree}"] if stein_degree else []
    out = {"DiScoFormer": net, f"DiScoFormer ({', '.join(label) or 'rule'})": rule}
    if ttt:
        def net_ttt(x: Tensor) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                return adapt_at_test_time(model, x, ttt, ttt_lr)(x)
        out[f"DiScoFormer+TTT{ttt}"] = net_ttt
    return {**out, "Scott KDE": kde("scott"), "Silverman KDE": kde("silverman")}


def accuracy_tables(model: DiScoFormer, dim: int, ns: list[int], trials: int, seed: int,
                    ttt: int, ttt_lr: float, context: int | None, subsets: int = 1,
                    other_ns: list[int] | None = None, rotations: int = 1, stein_degree: int = 2,
                    heads: str = "auto", kernel: bool = True) -> str:
    """Three Markdown tables (score %, log-density MSE, seconds per call), rows = distribution x n."""
    methods = estimators(model, ttt, ttt_lr, context, subsets, rotations, stein_degree, heads, kernel)
    metrics = {"relative score MSE (%)": ("{:.2f}", []), "log-density MSE": ("{:.4f}", []),
               "seconds per call (score + log f)": ("{:.3f}", [])}
    labels = []
    for dist, draw in DISTRIBUTIONS.items():
        for n in ns if dist.startswith("GMM") or other_ns is None else other_ns:
            labels.append(f"| {dist} | {n} |")
            sums = {m: torch.zeros(3) for m in methods}
            for trial in range(trials):
                x, logf_true, s_true = draw(dim, n, seed + 1000 * n + trial)
                for m, run in methods.items():
                    t0 = time.perf_counter()
                    logf, s = run(x)
                    sums[m] += torch.tensor([relative_score_mse(s[None], s_true[None]).item(),
                                             (logf - logf_true).pow(2).mean().item(),
                                             time.perf_counter() - t0]) / trials
            for k, (_, rows) in enumerate(metrics.values()):
                rows.append([sums[m][k].item() for m in methods])
    out = []
    for title, (fmt, rows) in metrics.items():
        out += [f"{title}:\n", "| distribution | n | " + " | ".join(methods) + " |",
                "|---|---:|" + "---:|" * len(methods)]
        out += [label + " " + " | ".join(fmt.format(v) for v in row) + " |" for label, row in zip(labels, rows)]
        out.append("")
    return "\n".join(out)


# Paper Table 2 (REFERENCE.md section 4): relative score MSE %, (DiScoFormer, Scott KDE) by (d, n)
PUBLISHED = {(2, 256): (14.67, 43.8), (2, 16384): (6.80, 17.2), (10, 256): (7.49, 65.6), (10, 16384): (2.83, 52.9)}


def paper_table(files: list[str], ns: list[int], trials: int, seed: int, rotations: int = 1,
                stein_degree: int = 2, heads: str = "auto", kernel: bool = True) -> str:
    """Held-out GMMs for every weights file: relative score MSE (%) of the oracle's default rule
    (trained context, Stein correction of degree ``stein_degree``; with ``rotations`` > 1: the mean
    over that many frames before the correction), Scott and Silverman KDE (mean over
    trials), with the published numbers where there are some. Trial k uses the same mixture at every
    n (seed + k), so that the columns show the trend in n and not the spread between mixtures."""
    rule = "rule: trained context" + (f", mean of {rotations} frames" if rotations > 1 else "") + \
        (f", heads {heads}" if heads != "auto" else ", heads of the file") + \
        (", kernel correction" if kernel else "") + (f", Stein {stein_degree}" if stein_degree else "")
    rows = [f"| d | n | DiScoFormer ({rule}) | Scott KDE | Silverman KDE | DiScoFormer / Scott "
            "| paper: DiScoFormer | paper: Scott KDE |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in files:
        model = load_model(path)
        dim = model.cfg.dim
        methods = estimators(model, 0, 0.0, model.trained_context, rotations=rotations, stein_degree=stein_degree,
                             heads=heads, kernel=kernel)
        net = next(run for name, run in methods.items() if name.startswith("DiScoFormer ("))
        runs = [net, methods["Scott KDE"], methods["Silverman KDE"]]
        for n in ns:
            err = torch.zeros(3)
            for trial in range(trials):
                x, _, s_true = gmm_sample(dim, n, seed + trial)
                err += torch.tensor([relative_score_mse(run(x)[1][None], s_true[None]).item() for run in runs])
            err /= trials
            paper = PUBLISHED.get((dim, n))
            published = " | ".join(f"{v:.2f}" for v in paper) if paper else "- | -"
            rows.append(f"| {dim} | {n} | {err[0]:.2f} | {err[1]:.2f} | {err[2]:.2f} | {err[0] / err[1]:.2f} "
                        f"| {published} |")
    return "\n".join(rows)


def transforms(dim: int, n: int, g: torch.Generator) -> dict[str, tuple[Tensor | None, Tensor, Tensor]]:
    """name -> (permutation or None, M (d, d), b (d,)) for x' = x[perm] M + b."""
    u = lambda *s: torch.rand(*s, generator=g)
    eye, zero = torch.eye(dim), torch.zeros(dim)
    scales = torch.exp(2 * u(dim) - 1)
    return {
        "permutation": (torch.randperm(n, generator=g), eye, zero),
        "translation": (None, eye, 10 * u(dim) - 5),
        "isotropic scaling": (None, math.exp(4 * u(1).item() - 2) * eye, zero),
        "anisotropic scaling": (None, torch.diag(scales), zero),
        "rotation": (None, random_rotation((), dim, g), zero),
        "affine": (None, random_rotation((), dim, g) @ torch.diag(scales) @ random_rotation((), dim, g),
                   10 * u(dim) - 5),
    }


def equivariance_table(model: DiScoFormer, dim: int, trials: int, n: int, seed: int) -> str:
    g = torch.Generator().manual_seed(seed)
    err: dict[str, list[tuple[float, float]]] = {}
    for trial in range(trials):
        x = held_out(1, dim, n, seed + trial)[1][0]
        with torch.no_grad():
            logf, s = model(x)
            for name, (perm, M, b) in transforms(dim, n, g).items():
                if perm is not None:
                    x_t, logf_e, s_e = x[perm], logf[perm], s[perm]
                else:
                    x_t = x @ M + b
                    logf_e, s_e = logf - torch.linalg.slogdet(M).logabsdet, s @ torch.linalg.inv(M).T
                logf_t, s_t = model(x_t)
                rel = lambda p, e: ((p - e).pow(2).sum() / e.pow(2).sum()).item()
                err.setdefault(name, []).append((rel(s_t, s_e), rel(logf_t, logf_e)))
    rows = ["| transform | score rel. MSE | log f rel. MSE |", "|---|---:|---:|"]
    for name, v in err.items():
        rows.append(f"| {name} | {sum(a for a, _ in v) / len(v):.2e} | {sum(b for _, b in v) / len(v):.2e} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="DiScoFormer vs KDE tables (Markdown on stdout)")
    p.add_argument("weights", nargs="+", help="one weights file (several with --paper)")
    p.add_argument("--paper", action="store_true", help="only the held-out GMM table of all the given "
                   "weights, with the paper's published numbers (--n, --trials)")
    p.add_argument("--n", type=int, nargs="+", default=[256, 1024, 4096], help="sample sizes (GMM rows)")
    p.add_argument("--other-n", type=int, nargs="+", default=[2000, 4000],
                   help="sample sizes of the kinetic and held-out-shape rows")
    p.add_argument("--trials", type=int, default=20, help="samples per distribution and n")
    p.add_argument("--equivariance-trials", type=int, default=50, help="0 skips the check")
    p.add_argument("--equivariance-n", type=int, default=512)
    p.add_argument("--ttt", type=int, default=0, help="also report the model after this many TTT steps")
    p.add_argument("--ttt-lr", type=float, default=1e-5)
    p.add_argument("--context", type=int, help="also report the model attending to a random subset "
                   "of this many points (the oracle's context setting; default: the trained maximum)")
    p.add_argument("--subsets", type=int, default=1, help="with --context: mean over this many subsets")
    p.add_argument("--rotations", type=int, default=1, help="the inference rule's mean over this many "
                   "frames (the oracle's rotations setting)")
    p.add_argument("--stein-degree", type=int, default=2, help="the inference rule's score-matching "
                   "correction (the oracle's stein_degree setting; 0: off)")
    p.add_argument("--heads", choices=("auto", *HEADS), default="auto", help="the inference rule's score "
                   "source (the oracle's heads setting; auto: the rule stored with the weights)")
    p.add_argument("--kernel-correction", action=argparse.BooleanOptionalAction, default=True,
                   help="the inference rule's kernel correction (the oracle's kernel_correction setting)")
    p.add_argument("--seed", type=int, default=2_000_000)
    p.add_argument("--threads", type=int)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.paper:
        print(paper_table(args.weights, args.n, args.trials, args.seed, args.rotations, args.stein_degree,
                          args.heads, args.kernel_correction))
        return
    if len(args.weights) > 1:
        p.error("several weights files need --paper")
    (path,) = args.weights
    model = load_model(path)
    meta = torch.load(path, map_location="cpu", weights_only=True)
    dim = model.cfg.dim
    print(f"## DiScoFormer d={dim}: `{path}`\n")
    print(f"{meta['parameters']} parameters, architecture {meta['config']}, {meta['steps']} training steps "
          f"({meta['wall_s'] / 60:.1f} min), training validation {meta['validation']}.\n")
    print(f"### Accuracy (queries = the sample; mean over {args.trials} trials per row)\n")
    print(accuracy_tables(model, dim, args.n, args.trials, args.seed, args.ttt, args.ttt_lr,
                          args.context or model.trained_context, args.subsets, args.other_n, args.rotations,
                          args.stein_degree, args.heads, args.kernel_correction))
    if args.equivariance_trials:
        print(f"### Equivariance (relative MSE, {args.equivariance_trials} trials, held-out GMMs, "
              f"n = {args.equivariance_n}, float32)\n")
        print(equivariance_table(model, dim, args.equivariance_trials, args.equivariance_n, args.seed) + "\n")


if __name__ == "__main__":
    main()
