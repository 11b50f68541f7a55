"""Train DiScoFormer on fresh random Gaussian mixtures (one file, one plain loop, nanoGPT style).

    python -m oracles.discoformer.train --dim 3 --steps 8000 --width 64 --layers 3 --heads 4 \
        --ffn 256 --dropout 0                        # writes training/discoformer/d3.pt + d3.jsonl
    python -m oracles.discoformer.train --resume training/discoformer/d3.pt --threads 1   # continue
    python -m oracles.discoformer.train --resume training/discoformer/d3.pt --export out/d3.pt
    torchrun --standalone --nproc-per-node 4 -m oracles.discoformer.train --preset paper --dim 10 --device cuda

Distributed (torchrun; gloo on the CPU, NCCL on CUDA with one GPU per rank): the data of step t is
a function of (seed, t) alone: the context size and prior of the step from the generator seeded
by (seed, t), and sample set i of the step's B sets (its density, context and queries) from the
generator seeded by (seed, t, i) (``data.step_sets``). Rank r of K takes the contiguous sets
[rB/K, (r+1)B/K), its loss (the mean over its sets) is weighted by K B_r / B, and DDP's average
of the gradients is then the gradient of the mean over all B sets, for even and uneven splits. So
K = 1, 2, 4 ranks train the same model (same losses, same weights to rounding with dropout off;
dropout masks are drawn per rank). Every rank needs one set at the largest context (points //
n-max >= K, else a clear error). Rank 0 validates, logs and writes checkpoints; the log records
and the checkpoint carry ``world_size``; a resume may use another K. On CUDA: bf16 autocast of the
trunk (``--no-bf16`` turns it off), TF32 matmuls, and attention restricted to the fused SDPA
kernels (flash / memory-efficient / cuDNN) when they run at the model's head size.
``--preset small | paper | large`` sets the paper's architectures and batches (``PRESETS``).

Data (``data.py``): the paper's GMMs with probability ``--gmm-fraction``, else kinetic densities;
context size n_x log-uniform in [n-min, n-max] per step and B = points / n_x sample sets, so the
cost per step is about constant.

Loss (paper eq. 6-8), by default in whitened coordinates, on the context points (the oracle's
use, Y = X) and on independent query points (arbitrary Y):

    L = alpha * mean (T_w - log f_w*)^2 + (1 - alpha) * mean |S_w - s_w*|^2 / d,
    log f_w* = log f* - log|det A|,   s_w* = s* A^-T,

AdamW, linear warm-up + cosine decay, gradient clipping, an exponential moving average of the
weights (``--ema``: validated and exported); bf16 autocast of the trunk (default on CUDA; ``--bf16``
on CPUs with AVX512-BF16/AMX), never of the whitening. The key bias's gradient (identically zero:
softmax ignores a shift common to all keys) is dropped, not amplified by Adam into a random walk. ``--init`` warm-starts from a weights
file of the same architecture, or from another dimension's trunk (the attention layers work on
whitened tokens of width ``--width`` whatever d is; only the embedding and score head are d-sized). Validation: relative score MSE (%) on fixed held-out GMMs and on the
BKW zero-at-origin shell (BKW at t0), logged with the losses to ``--log`` (JSON lines).
Every ``--ckpt-interval`` steps a checkpoint (model, optimizer, scheduler, RNG states, step) is
written atomically to ``--ckpt`` together with the shippable weights ``--out``;
``--resume CKPT`` continues that run exactly (same losses bit for bit on CPU, for the same number
of ranks; checkpoints from before the per-step data stream continue their sequential stream), and
``--resume CKPT --export PATH`` writes the weights file of the checkpoint without training.

Training state lives outside the packages: by default one checkpoint per dimension,
``training/discoformer/d{dim}.pt``, and its log ``d{dim}.jsonl``; a new stage replaces the
checkpoint (once its run has finished: an unfinished one must be resumed or given another
``--ckpt``) and appends to the log after a ``{"event": "start", "stage": k, "args": ...}`` record,
so the log keeps every stage in order. Checkpoints and logs inside an importable package
(``landau/``, ``oracles/``, ``solvers/``) are refused; weights may be written into the package
only under ``oracles/discoformer/weights/`` (shipping them), never elsewhere in it.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import sys
import time
import warnings
from dataclasses import fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from oracles.discoformer.data import (PRIORS, Batch, Mixture, held_out, relative_score_mse, step_plan,
                                      step_sets, stream_seed, training_batch)
from oracles.discoformer.model import FORMAT_VERSION, DiScoFormer, ModelConfig, parameter_count
from oracles.discoformer.oracle import load_model
from oracles.serialization import load_file, save_atomic
from oracles.settings import SettingsError

# --preset: the paper's models (REFERENCE.md section 4); explicit options override a preset's values
PRESETS = {
    # the shipped CPU-trained weights' architecture (about 150k parameters)
    "small": dict(width=64, layers=3, heads=4, ffn=256, dropout=0.0, points=4096, n_min=128, n_max=2048),
    # the paper's model: 4 layers, width 128, 8 heads, FFN 512, dropout 0.1; batch 32 GMMs of 2048 points
    "paper": dict(width=128, layers=4, heads=8, ffn=512, dropout=0.1, points=32 * 2048, n_min=2048,
                  n_max=2048, gmm_fraction=1.0, lr=2e-4),
    # the paper's larger variant: width 256, 6 layers, 150k steps, contexts in [2^8, 2^14] (FFN 4 x width;
    # 2^17 points per step: at least 8 sets at n = 2^14, so up to 8 ranks)
    "large": dict(width=256, layers=6, heads=8, ffn=1024, dropout=0.1, points=2**17, n_min=2**8, n_max=2**14,
                  gmm_fraction=1.0, lr=2e-4, steps=150_000, warmup=2000, val_n=4096),
}
# command-line options that may differ when a run is resumed (everything else comes from the checkpoint)
RUNTIME_OPTIONS = ("resume", "device", "stop_after", "threads", "export")
# file options that may differ on resume; when not given, the run keeps writing where it did
PATH_OPTIONS = ("ckpt", "out", "log")
# where training state goes by default (relative to the working directory: the repository root)
TRAINING_DIR = Path("training/discoformer")
# the importable packages (never a place for training state) and the one folder of shipped weights
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("landau", "oracles", "solvers")
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--preset", choices=PRESETS, help="the architecture and batch of a paper model (small: the shipped "
      "CPU one, paper, large); options given explicitly override the preset's values")
    a("--dim", type=int, help="required unless --resume")
    a("--steps", type=int, default=8000, help="total optimizer steps (sets the schedule)")
    a("--width", type=int, default=128)
    a("--layers", type=int, default=4)
    a("--heads", type=int, default=8)
    a("--ffn", type=int, default=512)
    a("--dropout", type=float, default=0.1)
    a("--eps", type=float, default=1e-4, help="relative covariance regulariser of the whitening")
    a("--moment-head", action="store_true", help="output heads on top of an attention-weighted local "
      "Gaussian that starts as the fitted one (moments.py; for high dimension)")
    a("--moment-beta", type=float, default=0.0, help="with --moment-head (new run, after any --init): "
      "start its attention at beta u_1(y) u_1(x) on the first principal coordinate (moments.py; 0: off)")
    a("--prior", choices=PRIORS, help="draw every sample set from this prior (data.PRIORS) instead of "
      "the GMM / kinetic mix of --gmm-fraction; also adds held-out sets of it to the validation")
    a("--points", type=int, default=4096, help="context points per step (sets = points / n_x)")
    a("--n-min", type=int, default=128, help="context size n_x log-uniform in [n-min, n-max], per step")
    a("--n-max", type=int, default=2048)
    a("--n-query", type=int, default=64, help="independent query points per sample set")
    a("--gmm-fraction", type=float, default=0.5, help="probability of a paper-prior GMM batch")
    a("--alpha", type=float, default=0.2, help="weight of the log-density MSE")
    a("--loss-coords", choices=("whitened", "original"), default="whitened")
    a("--lr", type=float, default=3e-4)
    a("--min-lr-frac", type=float, default=0.1)
    a("--warmup", type=int, default=200)
    a("--weight-decay", type=float, default=1e-6)
    a("--grad-clip", type=float, default=1.0)
    a("--seed", type=int, default=0)
    a("--val-gmms", type=int, default=16)
    a("--val-n", type=int, default=1024)
    a("--val-seed", type=int, default=1_000_003)
    a("--val-bkw", type=int, default=4, help="BKW-shell sample sets of --val-bkw-n points")
    a("--val-bkw-n", type=int, default=2000)
    a("--init", help="warm start from this weights file (same width, layers, heads, FFN); from another "
      "dimension only the dimension-free trunk is copied, the embedding and score head start fresh")
    a("--bf16", action=argparse.BooleanOptionalAction, help="bf16 autocast of the trunk (default: on "
      "for CUDA, off on the CPU)")
    a("--data-stream", choices=("step", "sequential"), default="step", help="step: every sample set "
      "of the global batch drawn from a generator seeded by (seed, step, set), so any number of ranks "
      "trains the same model; sequential: one running generator (single process; checkpoints from "
      "before distributed training resume with it)")
    a("--ema", type=float, default=0.999, help="decay of the weight average that is validated and "
      "exported (0: the raw weights)")
    a("--eval-interval", type=int, default=250)
    a("--ckpt-interval", type=int, default=250)
    a("--log-interval", type=int, default=50)
    a("--ckpt", help=f"checkpoint path (default {TRAINING_DIR}/d{{dim}}.pt: one per dimension, a new "
      "stage replaces it); never inside a package")
    a("--out", help="weights path, rewritten at every checkpoint (default out/discoformer_d{dim}.pt); "
      "inside the package only under oracles/discoformer/weights/ (shipping)")
    a("--log", help="JSON-lines log, appended to (default: the checkpoint path with .jsonl); never "
      "inside a package")
    a("--resume", help="continue the run stored in this checkpoint")
    a("--export", help="with --resume: write the checkpoint's weights file (and .json) here and exit")
    a("--stop-after", type=int, help="checkpoint and stop once this many steps are done")
    a("--device", default="cpu")
    a("--threads", type=int, help="torch.set_num_threads")
    preset = p.parse_known_args(argv)[0].preset
    if preset:
        p.set_defaults(**PRESETS[preset])
    args = p.parse_args(argv)
    if args.dim is None and not args.resume:
        p.error("--dim is required (unless --resume)")
    if args.resume:  # the run's own configuration wins, except for the runtime options
        saved = load_file(args.resume, "--resume")["args"]
        saved = {"data_stream": "sequential", **saved}  # a run from before the per-step stream
        given = {k: getattr(args, k) for k in PATH_OPTIONS if getattr(args, k) is not None}
        args = argparse.Namespace(**{**vars(args), **saved, **{k: getattr(args, k) for k in RUNTIME_OPTIONS},
                                     **given})
    if args.export and not args.resume:
        p.error("--export needs --resume CKPT")
    args.ckpt = args.ckpt or str(TRAINING_DIR / f"d{args.dim}.pt")
    args.out = args.out or f"out/discoformer_d{args.dim}.pt"
    args.log = args.log or str(Path(args.ckpt).with_suffix(".jsonl"))
    for option in ("export",) if args.export else ("ckpt", "log", "out"):  # the files it writes
        check_outside_packages(option, getattr(args, option))
    return args


def check_outside_packages(option: str, path: str) -> None:
    """Training state (checkpoints, logs, stage weights) never goes into an importable package: it
    would be installed with it and grow the repository at every committed checkpoint. Weights files
    (--out, --export) may go to the shipped weights folder, nothing else inside a package may."""
    path = Path(path).resolve()
    weights = option in ("out", "export")
    if weights and path.parent == SHIPPED_WEIGHTS_DIR:
        return
    for package in PACKAGES:
        if path.is_relative_to(PACKAGE_ROOT / package):
            where = f"{TRAINING_DIR}/ or out/" + (f" (or {SHIPPED_WEIGHTS_DIR.relative_to(PACKAGE_ROOT)}/ "
                                                  "to ship weights)" if weights else "")
            raise SettingsError(f"--{option}: {path} is inside the package {package}/; training state "
                                f"belongs in {where}")


def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT); gloo on the CPU, NCCL on CUDA with rank r on GPU LOCAL_RANK.
    Without torchrun (WORLD_SIZE unset or 1): (0, 1, device), no process group."""
    dev = torch.device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, dev
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=30))
    return dist.get_rank(), dist.get_world_size(), dev


def fused_attention(dev: torch.device, head_dim: int, dtype: torch.dtype):
    """The context in which training and validation run: on CUDA, attention restricted to the fused
    kernels (flash, memory-efficient, cuDNN: memory linear in n), once a tiny forward and backward at
    the model's head size and dtype shows one of them runs here; otherwise (with a warning) the
    default choice, which may fall back to the n^2-memory math kernel. On the CPU: unchanged."""
    if dev.type != "cuda":
        return contextlib.nullcontext
    from torch.nn.attention import SDPBackend, sdpa_kernel
    fused = [getattr(SDPBackend, k) for k in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")
             if hasattr(SDPBackend, k)]
    try:
        with sdpa_kernel(fused):
            q = torch.randn(2, 2, 8, head_dim, device=dev, dtype=dtype, requires_grad=True)
            F.scaled_dot_product_attention(q, q[:, :, :5], q[:, :, :5]).sum().backward()
    except RuntimeError as exc:
        warnings.warn(f"no fused attention kernel for head size {head_dim} in {dtype} on {dev} ({exc}); "
                      "attention may use the math kernel (memory n^2)")
        return contextlib.nullcontext
    return lambda: sdpa_kernel(fused)


def check_split(args: argparse.Namespace, world: int) -> None:
    """Every rank needs at least one sample set at every step: B = points // n_x >= world for the
    largest context n_x = n-max (uneven splits are fine: the loss is weighted by each rank's share)."""
    if world == 1:
        return
    if args.data_stream != "step":
        raise SettingsError("--data-stream sequential (a run from before distributed training) runs in one "
                            "process only: resume it without torchrun, or start a new stage")
    fewest = max(1, args.points // args.n_max)
    if fewest < world:
        raise SettingsError(f"--points {args.points} / --n-max {args.n_max} gives {fewest} sample set(s) per step "
                            f"at the largest context, fewer than the {world} ranks (each needs one): give --points "
                            f">= {world * args.n_max}, a smaller --n-max, or fewer ranks")


def loss_fn(model: DiScoFormer, b: Batch, alpha: float, coords: str, bf16: bool = False) -> torch.Tensor:
    """alpha * MSE(log f) + (1 - alpha) * MSE(score) at context and query points (model.whitened)."""
    with torch.autocast(b.x.device.type, torch.bfloat16, enabled=bf16):
        logf, score, w = model.whitened(b.x, b.y, with_context=True)
    logf, score = logf.float(), score.float()
    logf_t, score_t = torch.cat([b.logf_x, b.logf_y], 1), torch.cat([b.score_x, b.score_y], 1)
    if coords == "whitened":
        logf_t, score_t = logf_t - w.logdet[:, None], score_t @ w.A_inv.mT
    else:
        logf, score = logf + w.logdet[:, None], score @ w.A.mT
    return alpha * (logf - logf_t).pow(2).mean() + (1 - alpha) * (score - score_t).pow(2).mean()


class Objective(nn.Module):
    """The training loss as a module (DistributedDataParallel hooks in through forward)."""

    def __init__(self, model: DiScoFormer, alpha: float, coords: str, bf16: bool) -> None:
        super().__init__()
        self.model, self.alpha, self.coords, self.bf16 = model, alpha, coords, bf16

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return loss_fn(self.model, Batch(*tensors), self.alpha, self.coords, self.bf16)


def validation_sets(args: argparse.Namespace) -> dict[str, tuple[Mixture, torch.Tensor]]:
    """Fixed held-out sets: paper-prior GMMs, and the BKW shell g = N(0, I) |x|^2 / d (BKW at t0)."""
    g = torch.Generator().manual_seed(args.val_seed)
    one = torch.ones(args.val_bkw, 1)
    shell = Mixture(one.log(), one.long(), 0 * one, torch.eye(args.dim).expand(args.val_bkw, 1, -1, -1),
                    torch.zeros(args.val_bkw, 1, args.dim))
    sets = {"gmm": held_out(args.val_gmms, args.dim, args.val_n, args.val_seed),
            "bkw": (shell, shell.sample(args.val_bkw_n, g))}
    if args.prior not in (None, "gmm"):
        sets[args.prior] = held_out(args.val_gmms, args.dim, args.val_n, args.val_seed, args.prior)
    return sets


@torch.no_grad()
def validate(model: DiScoFormer, val: dict, chunk: int = 4) -> dict[str, float]:
    """Relative score MSE (%) and log-density MSE at the context points of the fixed sets."""
    dev, out = model.embed.weight.device, {}
    model.eval()
    for name, (density, x) in val.items():  # on the CPU, like the targets
        logf, score = map(torch.cat, zip(*(model(c.to(dev)) for c in x.split(chunk))))
        out[f"{name}_score_pct"] = relative_score_mse(score.cpu(), density.score(x)).mean().item()
        out[f"{name}_logf_mse"] = (logf.cpu() - density.log_density(x)).pow(2).mean().item()
    model.train()
    return out


def warm_start(model: DiScoFormer, path: str) -> None:
    """Copy the weights of ``path`` into ``model``: all of them for the same dimension; for another
    dimension every tensor of the trunk (attention, FFN, norms, log-density head), whose shapes do
    not depend on d, while the d-sized embedding and score head keep their fresh initialisation.
    Into a model with a moment head (``--moment-head``) from a file without one, or the reverse,
    the two linear heads are not copied (they are corrections to another baseline there) and the
    moment head keeps its fresh initialisation."""
    source_model = load_model(path)
    source, target = source_model.state_dict(), model.state_dict()
    fresh = () if source_model.cfg.dim == model.cfg.dim else ("embed.", "head_score.")
    if source_model.cfg.moment_head != model.cfg.moment_head:  # heads of another meaning: start at zero
        fresh += ("head_logf.", "head_score.")
    trunk = {k: v for k, v in source.items() if not k.startswith(fresh)}
    mismatch = [k for k, v in trunk.items() if k not in target or target[k].shape != v.shape]
    if mismatch:
        raise SettingsError(f"--init: {path} has another architecture ({', '.join(mismatch[:3])} ...)")
    model.load_state_dict({**target, **trunk})


def drop_key_bias_gradients(model: DiScoFormer) -> None:
    """Zero the gradient of the key bias (the first ``width`` entries of every ``kv.bias``). Attention
    is exactly invariant to it (it adds q . b to every key's logit alike, and softmax ignores a
    common shift), so its gradient is rounding noise, which Adam would scale up to steps of size lr:
    a random walk of a parameter that does nothing, and the one place where runs that agree to
    rounding (another number of ranks) would differ by O(lr)."""
    for layer in model.layers:
        if layer.kv.bias is not None and layer.kv.bias.grad is not None:
            layer.kv.bias.grad[:model.cfg.width].zero_()


def lr_factor(step: int, warmup: int, steps: int, min_frac: float) -> float:
    """Linear warm-up to 1, then cosine decay to min_frac at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * progress))


def weights_dict(model: DiScoFormer, args: argparse.Namespace, step: int, history: list,
                 wall_s: float) -> dict:
    """The shippable file: float32 weights and plain metadata (loads with weights_only=True)."""
    train = {k: getattr(args, k) for k in ("steps", "points", "n_min", "n_max", "n_query", "gmm_fraction",
                                           "alpha", "loss_coords", "lr", "seed", "init", "ema", "prior", "moment_beta")}
    return {"format_version": FORMAT_VERSION, "dim": args.dim, "config": model.cfg.to_dict(),
            "state_dict": {k: v.detach().float().cpu() for k, v in model.state_dict().items()},
            "steps": step, "wall_s": round(wall_s, 1), "train": train,
            "validation": history[-1] if history else {}, "parameters": parameter_count(model)}


def export(model: DiScoFormer, args: argparse.Namespace, path: str, step: int, history: list,
           wall_s: float) -> None:
    """Write the shippable weights file ``path`` and its metadata ``path`` with .json."""
    weights = weights_dict(model, args, step, history, wall_s)
    save_atomic(weights, path)
    meta = {k: v for k, v in weights.items() if k != "state_dict"}
    Path(path).with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def log_until(path: Path, step: int) -> list[str]:
    """The log's records up to ``step`` of its last run: the earlier stages' records (before the
    last ``start`` record) are all kept, whatever their step numbers."""
    lines = log_lines(path)
    starts = [i for i, r in enumerate(lines) if json.loads(r).get("event") == "start"]
    first = starts[-1] + 1 if starts else 0
    return lines[:first] + [r for r in lines[first:] if json.loads(r)["step"] <= step]


def check_replaceable(ckpt: Path) -> None:
    """A new run (stage) writes over the dimension's checkpoint only once that run has finished:
    an unfinished one is resumed (``--resume``), or the new run is given another ``--ckpt``."""
    if ckpt.is_file():
        old = load_file(ckpt, "--ckpt")
        step, steps = old.get("step", 0), old.get("args", {}).get("steps", 0)
        if step < steps:
            raise SettingsError(f"--ckpt: {ckpt} holds an unfinished run (step {step} of {steps}); continue "
                                f"it with --resume {ckpt}, or give the new run another --ckpt")


def train(args: argparse.Namespace) -> list[float]:
    """Run (or continue) training; returns the losses of the steps taken in this call (the loss of
    the global batch: the same on every rank and for every number of ranks).

    Under torchrun every rank builds the same model, draws its share of each step's sample sets
    (``data.step_sets``) and DistributedDataParallel averages the gradients; rank 0 alone
    validates, logs and writes checkpoints and weights."""
    rank, world, dev = init_distributed(args.device)
    writer = rank == 0
    if not args.resume:
        check_replaceable(Path(args.ckpt))
    check_split(args, world)
    if args.threads:
        torch.set_num_threads(args.threads)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    bf16 = dev.type == "cuda" if args.bf16 is None else args.bf16
    torch.manual_seed(args.seed)
    gen = torch.Generator(dev).manual_seed(args.seed)
    cfg = ModelConfig(args.dim, args.width, args.layers, args.heads, args.ffn, args.dropout, args.eps,
                      args.moment_head)
    model = DiScoFormer(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, args.warmup, args.steps, args.min_lr_frac))
    val = validation_sets(args) if writer else None
    step, history, wall, ema_state = 0, [], 0.0, None
    if args.init and not args.resume:
        warm_start(model, args.init)
    if args.moment_beta and not args.resume:
        if model.moments is None:
            raise SettingsError("--moment-beta needs --moment-head")
        model.moments.init_principal(args.moment_beta)
    if args.resume:
        ck = load_file(args.resume, "--resume")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if args.data_stream == "sequential":  # (the step stream is a function of the step)
            gen.set_state(ck["rng_data"].cpu())
        torch.set_rng_state(ck["rng_torch"].cpu())
        if dev.type == "cuda" and "rng_cuda" in ck:
            torch.cuda.set_rng_state(ck["rng_cuda"].cpu())
        step, history, wall = ck["step"], ck["history"], ck["wall_s"]
        if "ema" in ck:
            ema_state = ck["ema"]
        if writer and Path(args.log).is_file() and not args.export:  # drop records after the checkpoint
            Path(args.log).write_text("".join(r + "\n" for r in log_until(Path(args.log), step)))

    # exponential moving average of the weights, p_ema <- ema p_ema + (1 - ema) p (what is validated
    # and exported); a checkpoint without one starts it from the current weights
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema)) if args.ema else None
    if ema is not None and ema_state is not None:
        ema.load_state_dict(ema_state)
    final = ema.module if ema is not None else model
    if args.export:  # the checkpoint's weights file, no training
        if writer:
            export(final, args, args.export, step, history, wall)
            tqdm.write(f"wrote {args.export} (step {step})")
        return []

    def checkpoint() -> None:
        ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
              "rng_data": gen.get_state(), "rng_torch": torch.get_rng_state(), "step": step,
              "history": history, "wall_s": wall, "args": vars(args), "world_size": world}
        if dev.type == "cuda":
            ck["rng_cuda"] = torch.cuda.get_rng_state()
        if ema is not None:
            ck["ema"] = ema.state_dict()
        save_atomic(ck, args.ckpt)
        export(final, args, args.out, step, history, wall)

    def write_log(record: dict) -> None:
        with open(args.log, "a") as log:
            log.write(json.dumps(record) + "\n")

    if writer and not args.resume:  # a new run (stage): its configuration opens its part of the log
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        stage = 1 + sum(json.loads(r).get("event") == "start" for r in log_lines(Path(args.log)))
        write_log({"event": "start", "stage": stage, "step": 0, "world_size": world, "args": vars(args)})
    objective = Objective(model, args.alpha, args.loss_coords, bf16)
    if world > 1:  # gradients averaged over the ranks in buckets during the backward pass
        objective = DistributedDataParallel(objective, device_ids=[dev.index] if dev.type == "cuda" else None,
                                            gradient_as_bucket_view=True)
    attention = fused_attention(dev, args.width // args.heads, torch.bfloat16 if bf16 else torch.float32)
    stop = min(args.steps, args.stop_after or args.steps)
    if writer:
        tqdm.write(f"DiScoFormer d={args.dim}: {parameter_count(model)} parameters, step {step} -> {stop}"
                   + (f", {world} ranks ({dist.get_backend()})" if world > 1 else ""))
    bar = tqdm(total=stop, initial=step, disable=not (writer and sys.stderr.isatty()), dynamic_ncols=True)
    losses: list[float] = []
    model.train()
    t0 = time.time()
    while step < stop:
        if args.data_stream == "step":  # this rank's contiguous share of the step's B sample sets
            plan = step_plan(args.points, (args.n_min, args.n_max), args.seed, step, args.gmm_fraction)
            lo, hi = plan.sets * rank // world, plan.sets * (rank + 1) // world
            batch = step_sets(plan, args.dim, args.n_query, args.seed, step, range(lo, hi), dev, args.prior)
            share = (hi - lo) / plan.sets
            torch.manual_seed(stream_seed(args.seed, step, "dropout", rank))  # dropout masks, per rank
        else:
            batch, share = training_batch(args.points, args.dim, (args.n_min, args.n_max), args.n_query, gen,
                                          args.gmm_fraction), 1.0
        with attention():
            loss = objective(*(getattr(batch, f.name) for f in fields(batch)))  # mean over this rank's sets
        opt.zero_grad(set_to_none=True)
        # DDP averages over the ranks: weighting rank r by K B_r / B makes that the mean over all B sets
        (loss if share * world == 1 else loss * (share * world)).backward()
        drop_key_bias_gradients(model)
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        sched.step()
        step += 1
        total = loss.detach() * share
        if world > 1:
            dist.all_reduce(total)
        losses.append(total.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if not writer:
            continue
        record = {}
        if step % args.log_interval == 0:
            recent = losses[-args.log_interval:]
            record = {"step": step, "loss": sum(recent) / len(recent), "lr": sched.get_last_lr()[0],
                      "wall_s": round(time.time() - t0 + wall, 1), "world_size": world}
        if step % args.eval_interval == 0 or step == stop:
            with attention():
                history.append({"step": step, **validate(final, val)})
            record = {**record, **history[-1]}
        if record:
            tqdm.write(json.dumps(record), file=sys.stdout)
            write_log(record)
        if step % args.ckpt_interval == 0 or step == stop:
            wall, t0 = wall + time.time() - t0, time.time()
            checkpoint()
        sys.stdout.flush()
    bar.close()
    if world > 1:
        dist.barrier()  # every rank returns once rank 0 has written the last checkpoint
    return losses


def main(argv: list[str] | None = None) -> None:
    try:
        train(get_args(argv))
    except SettingsError as exc:  # the same on every rank: rank 0 says it
        sys.exit(f"error: {exc}" if os.environ.get("RANK", "0") == "0" else 1)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
