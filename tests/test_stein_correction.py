"""The score-matching (Stein) correction of the DiScoFormer oracle (oracles/discoformer/stein.py)."""
from __future__ import annotations

import pytest
import torch

import oracles.discoformer  # noqa: F401  (registers the oracle)
from oracles.discoformer.stein import stein_corrected
from oracles.registry import OracleContext, build_oracle
from oracles.settings import SettingsError


def sample(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A skewed, anisotropic, shifted sample and a rough score for it (the exact one plus noise)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    x = (z + 0.3 * z**2) @ torch.randn(d, d, generator=g, dtype=torch.float64) + 2.0
    return x, -(x - x.mean(0)) + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)


def affine_part(x: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares fit delta ~ (x - m) A^T + b: (A, residual)."""
    design = torch.cat([x - x.mean(0), torch.ones(len(x), 1, dtype=x.dtype)], 1)
    coef = torch.linalg.lstsq(design, delta).solution
    return coef[:-1].T, delta - design @ coef


def stein_defect(x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean_p s_p, N + N^T + 2I) with N = (1/n) sum_p s_p (X_p - m)^T: both zero for a score that
    meets the sample's Euclidean Stein identities of degree <= 2."""
    xc = x - x.mean(0)
    N = s.T @ xc / len(x)
    return s.mean(0), N + N.T + 2 * torch.eye(x.shape[1], dtype=x.dtype)


def random_spd(d: int, g: torch.Generator) -> torch.Tensor:
    """A random SPD matrix with eigenvalues spread over [0.1, 10] in a random frame."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = torch.logspace(-1, 1, d, dtype=torch.float64)
    return (q * lam) @ q.T


def test_degree_2_adds_a_symmetric_affine_field_that_meets_the_sample_stein_identities() -> None:
    """s' = s + A (x - m) + b with A = A^T (a gradient field), and (1/n) sum s'_p = 0,
    N + N^T = -2I for N = (1/n) sum s'_p (X_p - m)^T to rounding on an anisotropic, skewed sample:
    the normal equations of the score-matching fit in the Euclidean metric."""
    x, s = sample(3000, 4, 0)
    s2 = stein_corrected(x, s, x, s, 2)
    A, residual = affine_part(x, s2 - s)
    assert residual.abs().max() < 1e-9
    torch.testing.assert_close(A, A.T, rtol=0, atol=1e-9)
    mean, defect = stein_defect(x, s2)
    torch.testing.assert_close(mean, torch.zeros(4, dtype=x.dtype), rtol=0, atol=1e-10)
    torch.testing.assert_close(defect, torch.zeros(4, 4, dtype=x.dtype), rtol=0, atol=1e-10)
    assert (s2 - s).abs().max() > 0.1                                  # it did correct something


def test_a_non_gradient_error_on_an_anisotropic_sample_leaves_no_euclidean_defect() -> None:
    """Issue 20's check: C = diag(4, 1), the exact score plus a small rotation field (not a
    gradient). The off-diagonal defect of N + N^T + 2I is 0.33; the correction fitted in the
    whitened metric left 0.30 of it, the Euclidean one removes it to rounding."""
    g = torch.Generator().manual_seed(0)
    C = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64) @ C.sqrt()
    W = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    s = -x @ torch.linalg.inv(C) + 0.1 * x @ W.T
    assert stein_defect(x, s)[1][0, 1].abs() > 0.3
    mean, defect = stein_defect(x, stein_corrected(x, s, x, s, 2))
    assert mean.abs().max() < 1e-12 and defect.abs().max() < 1e-12


def test_the_correction_at_other_queries_is_the_same_field() -> None:
    x, s = sample(2000, 3, 1)
    y = torch.randn(50, 3, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    s_y = torch.randn(50, 3, dtype=x.dtype, generator=torch.Generator().manual_seed(3))
    delta = stein_corrected(x, s, y, s_y, 2) - s_y
    expected = (stein_corrected(x, s, x, s, 2) - s)
    A, _ = affine_part(x, expected)
    b = expected.mean(0)                                               # x - m has mean zero
    torch.testing.assert_close(delta, (y - x.mean(0)) @ A.T + b, rtol=1e-8, atol=1e-9)


def test_the_correction_commutes_with_rotations_translations_and_scalings() -> None:
    """x -> a x Q + c (Q orthogonal, a > 0) maps scores s -> s Q / a; the corrected score maps the
    same way. A general linear map changes the Euclidean metric of the fit, so it does not."""
    x, s = sample(1500, 3, 2)
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    a, c = 2.5, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    xt, st = a * x @ Q + c, s @ Q / a
    s2, s2t = stein_corrected(x, s, x, s, 2), stein_corrected(xt, st, xt, st, 2)
    torch.testing.assert_close(s2t, s2 @ Q / a, rtol=1e-9, atol=1e-10)
    M = torch.randn(3, 3, generator=g, dtype=torch.float64) + 2 * torch.eye(3, dtype=torch.float64)
    xm, sm = x @ M, s @ torch.linalg.inv(M).T
    assert (stein_corrected(xm, sm, xm, sm, 2) - s2 @ torch.linalg.inv(M).T).abs().max() > 1e-3


@pytest.mark.parametrize("d", [2, 3, 5, 10])
def test_the_default_transformer_meets_the_euclidean_identities_on_anisotropic_rotated_samples(d: int) -> None:
    """The default oracle (shipped weights, stein_degree 2), float64, on a Gaussian and a skewed
    sample with covariance diag(4, 1) (d = 2) or a random SPD one with condition number 100, and
    the same samples rotated and shifted: mean(s) = 0 and sym(N) = -I to 1e-8."""
    g = torch.Generator().manual_seed(10 + d)
    C = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64)) if d == 2 else random_spd(d, g)
    root = torch.linalg.cholesky(C).T
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    z = torch.randn(1000, d, generator=g, dtype=torch.float64)
    oracle = build_oracle("discoformer", OracleContext(dim=d, dtype=torch.float64,
                                                       generator=torch.Generator().manual_seed(0)))
    for base in (z @ root, (z + 0.3 * z**2) @ root):
        for x in (base, base @ Q + 3.0):
            mean, defect = stein_defect(x, oracle.score(x, 0.0))
            assert mean.abs().max() < 1e-8 and defect.abs().max() < 1e-8, (mean, defect)


def test_a_zero_score_is_corrected_to_the_fitted_gaussian() -> None:
    x, _ = sample(1000, 3, 4)
    zero = torch.zeros_like(x)
    gaussian = build_oracle("gaussian", OracleContext(dim=3, dtype=torch.float64)).score(x, 0.0)
    torch.testing.assert_close(stein_corrected(x, zero, x, zero, 2), gaussian, rtol=1e-7, atol=1e-8)


def test_the_oracle_applies_it_by_default_at_the_particles_and_at_other_queries() -> None:
    make = lambda **kw: build_oracle({"kind": "discoformer", "context": None, **kw},
                                     OracleContext(dim=2, dtype=torch.float64))
    x = torch.randn(400, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * torch.tensor([2.0, 0.5])
    raw, corrected = make(stein_degree=0), make()
    logf, s = raw.evaluate(x)
    got = corrected.evaluate(x)
    torch.testing.assert_close(got[0], logf, rtol=0, atol=0)                # log f: the network's
    torch.testing.assert_close(got[1], stein_corrected(x, s, x, s, 2), rtol=1e-12, atol=1e-12)
    queries = corrected.evaluate(x, x[:50])                     # queries other than the sample: same field
    for a, b in zip(queries, got):
        torch.testing.assert_close(a, b[:50], rtol=1e-5, atol=1e-5)
    with pytest.raises(SettingsError, match="stein_degree"):
        make(stein_degree=-1)


def test_the_gradient_head_is_the_query_derivative_of_log_f_and_mean_averages_the_heads(tmp_path) -> None:
    """``heads``: gradient = d log f / d y by central differences (float64, context fixed), mean =
    (S + gradient) / 2; the oracle's default is the rule stored in the weights file (``inference``
    entry; the score head for a file without one): checked on the scores it returns, with copies of
    the shipped file that store each rule."""
    from oracles.discoformer.oracle import WEIGHTS_DIR, load_model
    model = load_model(None, 2).double()
    x = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    y = x[:7]
    logf, s = model(x, y)
    _, grad = model.predict(x, y, heads="gradient")
    h = 1e-5
    for axis in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[axis] = h
        fd = (model(x, y + step)[0] - model(x, y - step)[0]) / (2 * h)
        torch.testing.assert_close(grad[:, axis], fd, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(model.predict(x, y, heads="mean")[1], (s + grad) / 2)
    assert (grad - s).abs().max() > 1e-3                               # two different estimates
    blob = torch.load(WEIGHTS_DIR / "discoformer_d2.pt", weights_only=True)
    blob.pop("inference", None)
    torch.save(blob, tmp_path / "plain.pt")
    for rule in ("gradient", "mean"):
        torch.save({**blob, "inference": {"heads": rule}}, tmp_path / f"{rule}.pt")
    make = lambda path, **kw: build_oracle({"kind": "discoformer", "weights": str(path), "context": None,
                                            "stein_degree": 0, **kw}, OracleContext(dim=2, dtype=torch.float64))
    net = load_model(tmp_path / "plain.pt", 2)                                   # float32, as the oracle runs
    head = {rule: net.predict(x.float(), None, heads=rule)[1].double() for rule in ("score", "gradient", "mean")}
    for path, rule in (("plain.pt", "score"), ("gradient.pt", "gradient"), ("mean.pt", "mean")):
        torch.testing.assert_close(make(tmp_path / path).score(x, 0.0), head[rule], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(make(tmp_path / "gradient.pt", heads="score").score(x, 0.0), head["score"],
                               rtol=1e-6, atol=1e-6)                            # a given rule wins
    assert (head["gradient"] - head["score"]).abs().max() > 1e-3                # the checks can tell them apart
    make = lambda **kw: build_oracle({"kind": "discoformer", **kw}, OracleContext(dim=2, dtype=torch.float64))
    with pytest.raises(SettingsError, match="oracle.heads"):
        make(heads="both")
