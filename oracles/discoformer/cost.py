"""Cost of a training step of the presets: measured step time, and memory from a count.

    python -m oracles.discoformer.cost --preset small paper --dim 2 --threads 1      # CPU, full steps
    python -m oracles.discoformer.cost --preset large --dim 2 --threads 1 --sets 1 --n 256 4096
    python -m oracles.discoformer.cost --preset paper large --dim 10 --device cuda   # on a GPU

Time: ``--steps`` training steps (after one untimed warm-up step) of exactly what ``train.py``
does per step (loss through ``Objective``, backward, key-bias gradient dropped, clipping, AdamW,
the weight average), at context size n_x = each ``--n`` with the preset's B = points // n_x sample
sets, or ``--sets`` sets when given (to time one slice of a step too large for the machine). The
data (``step_sets``) is timed apart. The time of a step is a * tokens + b * B n_x^2 (the linear
layers and the attention): the table also extrapolates each measurement to the preset's full B.

Memory (per rank, for a global batch split over K ranks): 20 bytes per parameter (fp32 weights,
gradients, two AdamW moments, the EMA copy), plus the activations saved for the backward pass,
counted (``saved_tensors_hooks``, distinct storages) for one set of n_x context points and the
queries, with and without bf16 autocast; the fused attention saves O(n) per token (q, k, v,
output, log-sum-exp), so the count is affine in n_x (counted at 256 and 512 points, extrapolated
above) and scales with the B sets of a step. Allocator slack, the CUDA context (~0.5 GB) and workspaces come on top.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from oracles.discoformer.data import StepPlan, step_sets
from oracles.discoformer.model import DiScoFormer, ModelConfig, parameter_count
from oracles.discoformer.train import PRESETS, Objective, drop_key_bias_gradients, fused_attention, get_args

STATE_BYTES_PER_PARAMETER = 4 + 4 + 8 + 4  # weights, gradients, AdamW moments, EMA


def activation_bytes(model: DiScoFormer, n_x: int, n_query: int, bf16: bool, dev: torch.device) -> float:
    """Bytes saved for the backward pass by the loss on one sample set of n_x context points and
    n_query queries: counted at n_x <= 512; above, from the counts at 256 and 512 (they are exactly
    affine in n_x: the attention saves O(n) per token)."""
    if n_x <= 512:
        return saved_bytes(model, n_x, n_query, bf16, dev)
    low, high = (saved_bytes(model, n, n_query, bf16, dev) for n in (256, 512))
    return low + (n_x - 256) * (high - low) / 256


def saved_bytes(model: DiScoFormer, n_x: int, n_query: int, bf16: bool, dev: torch.device) -> int:
    """Bytes of the distinct storages saved for backward by the loss on one set (counted)."""
    batch = step_sets(StepPlan(n_x, 1, True), model.cfg.dim, n_query, 0, 0, range(1), dev)
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    objective = Objective(model, 0.2, "whitened", bf16)
    with saved_tensors_hooks(pack, lambda t: t):
        objective(batch.x, batch.y, batch.logf_x, batch.score_x, batch.logf_y, batch.score_y)
    return sum(storages.values())


def time_steps(args: argparse.Namespace, n_x: int, sets: int, steps: int, dev: torch.device,
               bf16: bool) -> tuple[float, float]:
    """(seconds per training step, seconds of data per step) at context size n_x with ``sets`` sets."""
    torch.manual_seed(0)
    cfg = ModelConfig(args.dim, args.width, args.layers, args.heads, args.ffn, args.dropout, args.eps)
    model = DiScoFormer(cfg).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema)) if args.ema else None
    objective = Objective(model, args.alpha, args.loss_coords, bf16)
    attention = fused_attention(dev, args.width // args.heads, torch.bfloat16 if bf16 else torch.float32)
    plan = StepPlan(n_x, sets, True)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    t_step = t_data = 0.0
    for step in range(steps + 1):  # step 0: warm-up, not timed
        t0 = time.perf_counter()
        batch = step_sets(plan, args.dim, args.n_query, args.seed, step, range(sets), dev)
        sync()
        t1 = time.perf_counter()
        with attention():
            loss = objective(batch.x, batch.y, batch.logf_x, batch.score_x, batch.logf_y, batch.score_y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        drop_key_bias_gradients(model)
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        sync()
        if step:
            t_data, t_step = t_data + t1 - t0, t_step + time.perf_counter() - t1
    return t_step / steps, t_data / steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", nargs="+", choices=PRESETS, default=list(PRESETS))
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--n", type=int, nargs="*", help="context sizes (default: the preset's n-min and n-max)")
    p.add_argument("--sets", type=int, help="sample sets per timed step (default: the preset's points // n_x)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per row (after one warm-up step)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, help="default: on for CUDA")
    p.add_argument("--threads", type=int)
    p.add_argument("--no-time", action="store_true", help="memory count only")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    bf16 = dev.type == "cuda" if a.bf16 is None else a.bf16
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {dev}, threads {torch.get_num_threads()}, bf16 {bf16}, d = {a.dim}, load average {load:.2f}\n")
    print("| preset | parameters | n_x | B (timed / full) | tokens per full step | activations (fp32 / bf16), "
          "bytes per token | memory per full step, 1 rank (fp32 / bf16) | data s / step | step s (timed) "
          "| step s (full B) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.preset:
        args = get_args(["--preset", name, "--dim", str(a.dim)])
        cfg = ModelConfig(args.dim, args.width, args.layers, args.heads, args.ffn, args.dropout, args.eps)
        model = DiScoFormer(cfg).to(dev)
        params = parameter_count(model)
        for n_x in a.n or sorted({args.n_min, args.n_max}):
            full = max(1, args.points // n_x)
            tokens = full * (n_x + args.n_query)
            per_token = [activation_bytes(model, n_x, args.n_query, b, dev) / (n_x + args.n_query)
                         for b in (False, True)]
            memory = [(STATE_BYTES_PER_PARAMETER * params + tokens * t) / 2**30 for t in per_token]
            sets = min(a.sets or full, full)
            step = data = float("nan")
            if not a.no_time:
                step, data = time_steps(args, n_x, sets, a.steps, dev, bf16)
            print(f"| {name} | {params} | {n_x} | {sets} / {full} | {tokens} | {per_token[0]:.0f} / "
                  f"{per_token[1]:.0f} | {memory[0]:.2f} / {memory[1]:.2f} GiB | {data * full / sets:.2f} | "
                  f"{step:.2f} | {step * full / sets:.1f} |", flush=True)
    if dev.type == "cuda":
        print(f"\npeak CUDA memory allocated: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
