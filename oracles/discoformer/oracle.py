"""The DiScoFormer as a score oracle: a pretrained network, no training during the run.

At each call the particles are both the context and the queries (Y = X): one forward pass gives
s(X_p) and log f(X_p). Settings (case file ``oracle: {kind: discoformer, ...}``):

* ``weights``: path of a weights file; null = the shipped ``weights/discoformer_d{dim}.pt``;
* ``context``: attend to a random subset of m particles (drawn from the context's generator at
  every call; cost O(n m) instead of O(n^2)). ``trained`` (default) = the largest context size
  the weights were trained on (``train.n_max`` of the file), so the network stays in its
  training range; null = all particles;
* ``subsets`` (default 1): with a subsampled context, average log f and score over this many
  independent random subsets (cost x subsets);
* ``rotations`` (default 1): also average over this many frames, the identity and random
  orthogonal maps of the whitened sample (``averaging.py``; cost x rotations). The network's
  rotation equivariance is learned, not exact, so the frames disagree and their mean is more
  accurate: measured in results/discoformer_eval.md;
* ``heads``: where the score comes from: ``score`` (the score head S), ``gradient`` (grad_y log f
  of the log-density head, by autograd with the context fixed; a backward pass, about 3-5x the
  cost of the forward pass), ``mean`` ((S + grad_y log f) / 2) or ``auto`` (default): the rule
  stored with the weights (``inference.heads``; ``score`` if none). The shipped d = 10 weights
  store ``mean``: in d = 10 the gradient head is the more accurate one and the mean beats both;
  in d = 2 and 3 the score head is clearly better (results/discoformer_eval.md);
* ``stein_degree`` (default 2; 0: off): add the score-matching correction of this degree
  (``stein.py``): the gradient of the polynomial potential that makes the score satisfy the
  sample's Stein identities of that degree, fitted in closed form (0.09 s in d = 10 at n = 4096;
  log f stays the network's). Degree 2 (an affine correction) lowers the held-out GMM error in
  d = 10 by 13-14 % and raised no error on the evaluation's families by more than 0.01 %
  (results/discoformer_eval.md);
* ``kernel_correction`` (default true): add the kernel correction of ``kernel_correction.py``
  before the Stein correction: around each point the affine score correction that minimises
  score matching localised by a Gaussian kernel (local-linear; local-constant where a point has
  few neighbours), bandwidth and ridge chosen per call by leave-one-out score matching, the
  network alone kept unless a correction is measurably better. It keeps the error falling with
  n beyond the context, where the network alone stops, and lowers it at n <= context too (d = 10
  GMMs at n = 4096: -38 % against the network with the Stein correction). Cost: O(n^2) kernel
  passes carrying O(d^2) columns (results/discoformer_eval.md);
* ``kernel_refresh`` (default 1): score calls between two choices of the kernel correction's
  bandwidth and ridge; in between, the correction reuses the last choice (one kernel pass
  instead of the choice's several: the choice is most of the cost). The choice made at a call
  is part of the oracle's state (saved in checkpoints); only ``score`` calls count and refresh
  it, so diagnostics (``log_density``) leave it alone. Per cell (phase space) the choice is
  made at every call;
* ``ttt_steps`` (default 0: off), ``ttt_lr``, ``ttt_queries``, ``ttt_warm``: test-time training
  on the consistency loss (see ``ttt.py``) on a copy of the model. ``ttt_warm: true`` (default)
  keeps the adapted copy and its Adam state from call to call, so every call adds ``ttt_steps``
  steps to the previous adaptation; ``false`` redoes it from the shipped weights at every call.
  ``ttt_queries``: the loss uses a random subset of this many particles (null: all). Measured on
  BKW at t0 (d = 3, n = 2000, v2 weights, full context): 8 warm-started steps at lr 1e-5 lower the
  relative score error from 0.078 to 0.072, but a step costs 2.1 s against 0.12 s for the forward
  pass: meant for offline density estimation (results/discoformer_eval.md);
* ``query_batch``: queries go through the network in chunks of this many points.

**Per cell** (phase space, :meth:`DiScoFormerOracle.score_groups`): the velocities of every cell
are one sample, and the cells go through the network in batched passes: sorted by size into
buckets whose largest cell is at most ``BUCKET_SPREAD`` = 1.05 times the smallest, each bucket one
pass padded to its largest cell with a key-padding mask (attention costs the padded n^2, so one
pass over all cells would spend (n_max / n_c)^2 - 1, about 25 % at 5e4 particles in 32 cells, on
padding); each cell is whitened with its own moments and gets its own Stein correction, so the
scores equal those of a separate call per cell (to float32 rounding where no random draw is involved: ``rotations: 1`` and ``subsets: 1``; the context subsets are drawn in the
same order as by separate calls). The settings keep their meaning per cell: ``context: trained``
(4096 points for the shipped d = 2 weights) means all particles of a cell of up to 4096, and
the kernel correction is fitted to each cell on its own sample.
A cell with fewer particles than the smallest sample the weights were trained on (``train.n_min``
of the file, 512 for d = 2; 2 (d + 1) for files without one) is scored with its neighbouring
cells as the sample (cells g - r .. g + r for the smallest r that reaches the minimum; the Stein
correction is fitted on that sample, the scores are read at the cell's own particles), with a
warning. ``ttt_steps`` > 0 adapts one network to one sample: it is applied with one oracle per
cell instead (``score_groups`` returns None).

The network runs in float32; results come back in the dtype of the particles.

**Observers do not touch the run.** One pass of the network gives log f and the score together, so
:meth:`score` keeps the log-density of its last call with the particles it was asked about, and
:meth:`log_density` at those particles (the frame diagnostics: entropy) returns it: no new pass,
no random draw, no training. At any other points it runs the inference rule with a private
generator (seeded afresh at every call, so the answer depends on the points only) and the
test-time-trained copy as it stands, never training it. The kept log-density is part of
:meth:`state_dict`, so a resumed run writes the same frames.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from oracles.base import ScoreOracle
from oracles.discoformer.averaging import Chooser, corrected, inference_rule
from oracles.discoformer.data import random_rotation
from oracles.discoformer.kernel_correction import Choice, best_choice
from oracles.discoformer.model import FORMAT_VERSION, HEADS, DiScoFormer, ModelConfig, subsample
from oracles.discoformer.ttt import Adapter
from oracles.registry import OracleContext, register
from oracles.serialization import file_sha256, load_file
from oracles.settings import SettingsError

WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_dims() -> list[int]:
    """Dimensions with shipped weights (``weights/discoformer_d{D}.pt``)."""
    return sorted(int(p.stem.removeprefix("discoformer_d")) for p in WEIGHTS_DIR.glob("discoformer_d*.pt"))


def load_model(path: str | Path | None, dim: int | None = None) -> DiScoFormer:
    """Read a weights file written by ``train.py``; any problem is a :class:`SettingsError`.
    ``path`` None: the shipped file for ``dim``; ``dim`` None: whatever dimension the file has."""
    shipped = f"shipped DiScoFormer weights exist for dim {shipped_dims() or 'none'}"
    path = Path(path) if path is not None else WEIGHTS_DIR / f"discoformer_d{dim}.pt"
    blob = load_file(path, "oracle.weights", f" for dim={dim}; {shipped}")
    if blob.get("format_version") != FORMAT_VERSION:
        raise SettingsError(f"oracle.weights: {path} has format version {blob.get('format_version')!r}, "
                            f"expected {FORMAT_VERSION} (a DiScoFormer weights file written by train.py)")
    if dim is not None and blob["dim"] != dim:
        raise SettingsError(f"oracle.weights: {path} was trained for dim={blob['dim']}, "
                            f"the problem has dim={dim}; {shipped}")
    model = DiScoFormer(ModelConfig(**blob["config"]))
    model.trained_context = blob.get("train", {}).get("n_max")
    model.trained_min = blob.get("train", {}).get("n_min")
    model.inference = blob.get("inference", {})
    model.weights_sha256 = file_sha256(path)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as err:
        raise SettingsError(f"oracle.weights: {path} does not match its architecture: {err}") from err
    return model.eval().requires_grad_(False)


def default_heads(model: DiScoFormer) -> str:
    """The score rule shipped with the weights (``inference.heads`` of the file, chosen by
    measurement on held-out samples); ``score`` for files without one."""
    return model.inference.get("heads", "score")


def size_buckets(sizes: list[int], spread: float) -> list[list[int]]:
    """Indices of ``sizes`` grouped by size, each group's largest at most ``spread`` times its smallest."""
    buckets: list[list[int]] = []
    for b in sorted(range(len(sizes)), key=sizes.__getitem__):
        if buckets and sizes[b] <= spread * sizes[buckets[-1][0]]:
            buckets[-1].append(b)
        else:
            buckets.append([b])
    return buckets


@register
class DiScoFormerOracle(ScoreOracle):
    """Score and log-density from a pretrained DiScoFormer (queries = context = particles)."""

    name = "discoformer"
    per_cell = True         # phase space: the cells in batched passes (score_groups)

    @classmethod
    def memory_per_particle(cls, itemsize: int) -> int:
        """Transformer activations, about 128 x 4 x 16 float32 values per token (the network runs in
        float32 whatever the run's dtype)."""
        return 128 * 4 * 16 * 4

    @dataclass
    class Settings:
        weights: str | None = None
        context: int | Literal["trained"] | None = "trained"
        subsets: int = 1
        rotations: int = 1
        heads: str = "auto"
        stein_degree: int = 2
        kernel_correction: bool = True
        kernel_refresh: int = 1
        ttt_steps: int = 0
        ttt_lr: float = 1e-5
        ttt_queries: int | None = 256
        ttt_warm: bool = True
        query_batch: int | None = 4096

    def __init__(self, settings: "DiScoFormerOracle.Settings | None" = None,
                 context: OracleContext | None = None) -> None:
        super().__init__(settings or self.Settings(), context)
        s = self.settings
        for key in ("context", "query_batch", "ttt_queries"):
            if isinstance(getattr(s, key), int) and getattr(s, key) < 1:
                raise SettingsError(f"oracle.{key}: must be a positive integer or null, got {getattr(s, key)}")
        for key in ("subsets", "rotations", "kernel_refresh"):
            if getattr(s, key) < 1:
                raise SettingsError(f"oracle.{key}: must be a positive integer, got {getattr(s, key)}")
        if s.heads not in ("auto", *HEADS):
            raise SettingsError(f"oracle.heads: must be one of auto, {', '.join(HEADS)}; got {s.heads!r}")
        if s.stein_degree < 0:
            raise SettingsError(f"oracle.stein_degree: must be >= 0 (0: no correction), got {s.stein_degree}")
        if s.ttt_steps < 0 or s.ttt_lr <= 0:
            raise SettingsError(f"oracle.ttt_steps must be >= 0 and oracle.ttt_lr > 0, got {s.ttt_steps}, {s.ttt_lr}")
        if context is None:
            raise SettingsError("oracle: the discoformer oracle needs an OracleContext (for dim and device)")
        self.device = torch.device(context.device)
        self.model = load_model(s.weights, context.dim).to(self.device)
        self.context_size = self.model.trained_context if s.context == "trained" else s.context
        self.heads = default_heads(self.model) if s.heads == "auto" else s.heads
        self.generator = context.generator or torch.Generator().manual_seed(0)
        self.adapter: Adapter | None = None
        self.observed: tuple[Tensor, Tensor] | None = None    # (x, log f) of the last score call
        self.kernel_choice: Choice | None = None                # the last choice of a score call
        self.kernel_calls = 0                                   # score calls with the correction

    #: seed of the private generator of :meth:`log_density` away from the last scored particles
    OBSERVER_SEED = 0

    def evaluate(self, x: Tensor, y: Tensor | None = None, *, generator: torch.Generator | None = None,
                 adapt: bool = True, choose: Chooser = best_choice, correct: bool = True) -> tuple[Tensor, Tensor]:
        """(log f, score) at queries y (default the particles x) from the sample x, in x's dtype.
        ``generator``: where random frames and subsets come from (default: the oracle's, i.e. the
        run's); ``adapt: False`` uses the test-time-trained copy as it stands, without training it;
        ``choose``: the kernel correction's choice (default: made on x, keeping no state);
        ``correct: False``: the network's score without the kernel and Stein corrections (they
        change the score only: for callers that want log f)."""
        s = self.settings
        return inference_rule(partial(self._predict, adapt=adapt), x, y, context=self.context_size,
                              subsets=s.subsets, rotations=s.rotations,
                              stein_degree=s.stein_degree if correct else 0,
                              generator=generator or self.generator, device=self.device,
                              kernel=s.kernel_correction and correct, choose=choose)

    def _choose(self, x: Tensor, score_x: Tensor) -> Choice:
        """The kernel correction's choice of a score call: made on x every ``kernel_refresh`` calls,
        else the last one (without its scores at the sample, which belong to that call's x)."""
        if self.kernel_choice is None or self.kernel_calls % self.settings.kernel_refresh == 0:
            choice = best_choice(x, score_x)
            self.kernel_choice = Choice(choice.factor, choice.ridge)
        else:
            choice = self.kernel_choice
        self.kernel_calls += 1
        return choice

    def _predict(self, x: Tensor, y: Tensor | None, frame: Tensor | None, adapt: bool = True) -> tuple[Tensor, Tensor]:
        """One pass of the (optionally test-time trained) network on context x, queries y, in frame Q."""
        s, model = self.settings, self.model
        if s.ttt_steps and adapt:
            if self.adapter is None or not s.ttt_warm:
                self.adapter = Adapter(self.model, s.ttt_lr, s.ttt_queries, self.generator)
            model = self.adapter.adapt(x, s.ttt_steps)
        elif s.ttt_steps and self.adapter is not None:
            model = self.adapter.model
        with torch.no_grad():
            return model.predict(x, y, heads=self.heads, query_batch=s.query_batch, rotation=frame)

    def state_dict(self) -> dict:
        out: dict[str, Any] = {} if self.adapter is None else {"adapter": self.adapter.state_dict()}
        if self.observed is not None:
            out["observed"] = {"x": self.observed[0], "log_density": self.observed[1]}
        if self.kernel_choice is not None:
            out["kernel_choice"] = {"factor": self.kernel_choice.factor, "ridge": self.kernel_choice.ridge,
                                    "calls": self.kernel_calls}
        return out

    def load_state_dict(self, state: dict) -> None:
        if "adapter" in state:
            s = self.settings
            self.adapter = Adapter(self.model, s.ttt_lr, s.ttt_queries, self.generator)
            self.adapter.load_state_dict(state["adapter"])
        if "observed" in state:
            self.observed = (state["observed"]["x"], state["observed"]["log_density"])
        if "kernel_choice" in state:
            kept = state["kernel_choice"]
            self.kernel_choice, self.kernel_calls = Choice(kept["factor"], kept["ridge"]), kept["calls"]

    def inputs(self) -> dict[str, str]:
        return {"weights": self.model.weights_sha256}

    def describe(self) -> dict[str, Any]:
        """The settings and what ``auto``-like values resolved to: ``context_used`` (points per
        context; none: the whole sample) and ``heads_used`` (the score rule)."""
        return {**super().describe(), "context_used": self.context_size, "heads_used": self.heads}

    def score(self, x: Tensor, t: float) -> Tensor:
        log_f, score = self.evaluate(x, choose=self._choose)
        self.observed = (x.detach().clone(), log_f.detach())
        return score

    @property
    def min_cell(self) -> int:
        """The fewest particles of a cell's sample (module docstring, per cell)."""
        return self.model.trained_min or 2 * (self.model.cfg.dim + 1)

    @property
    def batches_groups(self) -> bool:
        return not self.settings.ttt_steps          # test-time training adapts one model per sample

    def score_groups(self, x: Tensor, group: Tensor, groups: int, t: float) -> Tensor | None:
        """Scores of the velocities of every cell (``group``: the cell of each particle), the cells
        in batched passes (module docstring, per cell); None with test-time training. The log f
        of each particle in its own cell's sample is kept, as by :meth:`score`."""
        if self.settings.ttt_steps:
            return None
        log_f, score = self._groups_pass(x, group, groups, self.generator)
        self.observed = (x.detach().clone(), log_f)
        return score

    def log_density_groups(self, x: Tensor, group: Tensor, groups: int, t: float) -> Tensor:
        """log f_c(x_p) of each particle in its own cell's sample: kept from the last
        :meth:`score_groups` call if x are its particles, else a pass with a private generator."""
        if self.observed is not None and self.observed[0].shape == x.shape and torch.equal(self.observed[0], x):
            return self.observed[1].to(x).clone()
        generator = torch.Generator(self.generator.device).manual_seed(self.OBSERVER_SEED)
        return self._groups_pass(x, group, groups, generator, correct=False)[0]

    def _groups_pass(self, x: Tensor, group: Tensor, groups: int, generator: torch.Generator,
                     correct: bool = True) -> tuple[Tensor, Tensor]:
        """(log f, score) of every particle in its cell's sample (merged with neighbours below
        ``min_cell``); ``correct: False`` skips the score's corrections (for log f alone)."""
        order = torch.argsort(group, stable=True)
        counts = torch.bincount(group, minlength=groups).tolist()
        cells = torch.split(x[order], counts)
        samples, own, merged = [], [], 0
        for g in range(groups):
            if counts[g] == 0:
                continue
            r = 0
            while sum(counts[(g + j) % groups] for j in range(-r, r + 1)) < self.min_cell and 2 * r + 1 < groups:
                r += 1
            members = list(dict.fromkeys((g + j) % groups for j in range(-r, r + 1)))
            samples.append(torch.cat([cells[c] for c in members]))
            offset = sum(counts[c] for c in members[:members.index(g)])
            own.append((g, offset))
            merged += r > 0
        if merged:
            warnings.warn(f"discoformer per cell: {merged} of {groups} cells hold fewer than {self.min_cell} "
                          "particles (the smallest sample the weights were trained on) and are scored with "
                          "their neighbouring cells as the sample", RuntimeWarning, stacklevel=2)
        log_fs, scores = self._score_samples(samples, generator, correct)
        starts = [0, *torch.cumsum(torch.tensor(counts), 0).tolist()]
        out, log_f = torch.empty_like(x), torch.empty_like(x[:, 0])
        for (g, offset), lf, score in zip(own, log_fs, scores):
            mine = order[starts[g]:starts[g + 1]]
            out[mine], log_f[mine] = score[offset:offset + counts[g]], lf[offset:offset + counts[g]]
        return log_f, out

    #: largest ratio of the largest to the smallest cell in one batched pass (module docstring)
    BUCKET_SPREAD = 1.05

    def _score_samples(self, samples: list[Tensor], generator: torch.Generator,
                       correct: bool = True) -> tuple[list[Tensor], list[Tensor]]:
        """(log f, score) by the inference rule (``averaging.inference_rule``) on each sample, in
        batched passes per frame and context subset: by buckets of similar size, padded, masked,
        each sample whitened on its own points. Frames and context subsets are drawn from
        ``generator`` in the order of separate calls."""
        s, m = self.settings, self.context_size
        x32 = [v.to(self.device, torch.float32) for v in samples]
        whole = m is None or m >= max(len(v) for v in x32)
        out = [torch.zeros_like(v) for v in x32]
        log_f = [torch.zeros_like(v[:, 0]) for v in x32]
        passes = 0
        for i in range(s.rotations):
            frame = None if i == 0 else random_rotation((), x32[0].shape[1], generator).to(self.device)
            for _ in range(1 if whole else s.subsets):
                context = x32 if whole else [v if len(v) <= m else subsample(v, m, generator) for v in x32]
                for bucket in size_buckets([len(v) for v in x32], self.BUCKET_SPREAD):
                    queries = None if whole else pad_sequence([x32[b] for b in bucket], batch_first=True)
                    with torch.no_grad():
                        lf, score = self.model.predict(
                            pad_sequence([context[b] for b in bucket], batch_first=True), queries,
                            heads=self.heads, query_batch=s.query_batch, rotation=frame,
                            lengths=torch.tensor([len(context[b]) for b in bucket]))
                    for row, b in enumerate(bucket):
                        out[b] += score[row, :len(x32[b])]
                        log_f[b] += lf[row, :len(x32[b])]
                passes += 1
        out = [(o / passes).to(v) for o, v in zip(out, samples)]
        log_f = [(lf / passes).to(v) for lf, v in zip(log_f, samples)]
        if correct:
            out = [corrected(v, sc, v, sc, s.stein_degree, s.kernel_correction) for v, sc in zip(samples, out)]
        return log_f, out

    def log_density(self, x: Tensor, t: float) -> Tensor:
        """log f at x: the value of the last :meth:`score` call if x are its particles, else the
        inference rule with a private generator and no test-time training (module docstring)."""
        if self.observed is not None:
            seen, log_f = self.observed
            if seen.shape == x.shape and seen.dtype == x.dtype and torch.equal(seen.to(x.device), x):
                return log_f.to(x).clone()
        generator = torch.Generator(self.generator.device).manual_seed(self.OBSERVER_SEED)
        return self.evaluate(x, generator=generator, adapt=False, correct=False)[0]
