"""Evaluate shipped DiScoFormer weights against Gaussian KDE; print Markdown tables.

    python -m oracles.discoformer.evaluate oracles/discoformer/weights/discoformer_d3.pt

Accuracy, with the sample itself as the queries (the particle-method use, Y = X; the KDE keeps
its self term), averaged over independent trials, for held-out random GMMs (the training family,
fresh seeds), the standard Laplace (log f = -sum |x_k| - d log 2, s = -sign x) and the isotropic
Student t with nu = 3 (s = -(nu + d) x / (nu + |x|^2)):

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

from oracles.discoformer.data import held_out, random_rotation, relative_score_mse
from oracles.discoformer.model import DiScoFormer
from oracles.discoformer.oracle import load_model
from oracles.discoformer.ttt import adapt_at_test_time
from oracles.kde import bandwidth, kde_log_density, kde_score

Sample = tuple[Tensor, Tensor, Tensor]  # x (n, d), exact log f (n,), exact score (n, d)


def gmm_sample(dim: int, n: int, seed: int) -> Sample:
    gmm, x = held_out(1, dim, n, seed)
    return x[0], gmm.log_density(x)[0], gmm.score(x)[0]


def laplace_sample(dim: int, n: int, seed: int) -> Sample:
    g = torch.Generator().manual_seed(seed)
    e = -torch.log(torch.rand(2, n, dim, generator=g))  # Laplace = difference of two Exp(1)
    x = e[0] - e[1]
    return x, -x.abs().sum(1) - dim * math.log(2), -torch.sign(x)


def student_t_sample(dim: int, n: int, seed: int, nu: int = 3) -> Sample:
    g = torch.Generator().manual_seed(seed)
    chi2 = torch.randn(n, nu, generator=g).pow(2).sum(1)
    x = torch.randn(n, dim, generator=g) / torch.sqrt(chi2 / nu)[:, None]
    r2 = x.pow(2).sum(1)
    log_norm = math.lgamma((nu + dim) / 2) - math.lgamma(nu / 2) - dim / 2 * math.log(nu * math.pi)
    return x, log_norm - (nu + dim) / 2 * torch.log1p(r2 / nu), -(nu + dim) * x / (nu + r2)[:, None]


DISTRIBUTIONS = {"GMM (held out)": gmm_sample, "Laplace": laplace_sample, "Student-t (nu=3)": student_t_sample}


def estimators(model: DiScoFormer, ttt: int, ttt_lr: float, context: int | None) -> dict:
    """name -> function x -> (log f, score) at the points of x."""
    def kde(rule: str):
        def run(x: Tensor) -> tuple[Tensor, Tensor]:
            h = bandwidth(x, rule)
            return kde_log_density(x, x, h), kde_score(x, x, h)
        return run

    def net(x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return model(x)

    out = {"DiScoFormer": net}
    if context:
        g = torch.Generator().manual_seed(0)

        def net_sub(x: Tensor) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                return model(x, context_size=context, generator=g)
        out[f"DiScoFormer (context {context})"] = net_sub
    if ttt:
        def net_ttt(x: Tensor) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                return adapt_at_test_time(model, x, ttt, ttt_lr)(x)
        out[f"DiScoFormer+TTT{ttt}"] = net_ttt
    return {**out, "Scott KDE": kde("scott"), "Silverman KDE": kde("silverman")}


def accuracy_tables(model: DiScoFormer, dim: int, ns: list[int], trials: int, seed: int,
                    ttt: int, ttt_lr: float, context: int | None) -> str:
    """Three Markdown tables (score %, log-density MSE, seconds per call), rows = distribution x n."""
    methods = estimators(model, ttt, ttt_lr, context)
    metrics = {"relative score MSE (%)": ("{:.2f}", []), "log-density MSE": ("{:.4f}", []),
               "seconds per call (score + log f)": ("{:.3f}", [])}
    labels = []
    for dist, draw in DISTRIBUTIONS.items():
        for n in ns:
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
    p.add_argument("weights")
    p.add_argument("--n", type=int, nargs="+", default=[256, 1024, 4096], help="sample sizes")
    p.add_argument("--trials", type=int, default=20, help="samples per distribution and n")
    p.add_argument("--equivariance-trials", type=int, default=50, help="0 skips the check")
    p.add_argument("--equivariance-n", type=int, default=512)
    p.add_argument("--ttt", type=int, default=0, help="also report the model after this many TTT steps")
    p.add_argument("--ttt-lr", type=float, default=1e-5)
    p.add_argument("--context", type=int, help="also report the model attending to a random subset "
                   "of this many points (the oracle's context setting)")
    p.add_argument("--seed", type=int, default=2_000_000)
    p.add_argument("--threads", type=int)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = torch.load(args.weights, map_location="cpu", weights_only=True)
    model = load_model(args.weights, meta["dim"])
    dim = meta["dim"]
    print(f"## DiScoFormer d={dim}: `{args.weights}`\n")
    print(f"{meta['parameters']} parameters, architecture {meta['config']}, {meta['steps']} training steps "
          f"({meta['wall_s'] / 60:.1f} min), training validation {meta['validation']}.\n")
    print(f"### Accuracy (queries = the sample; mean over {args.trials} trials per row)\n")
    print(accuracy_tables(model, dim, args.n, args.trials, args.seed, args.ttt, args.ttt_lr,
                          args.context))
    if args.equivariance_trials:
        print(f"### Equivariance (relative MSE, {args.equivariance_trials} trials, held-out GMMs, "
              f"n = {args.equivariance_n}, float32)\n")
        print(equivariance_table(model, dim, args.equivariance_trials, args.equivariance_n, args.seed) + "\n")


if __name__ == "__main__":
    main()
