"""DiScoFormer distributed training (issue 24 item 1) and presets (item 2), on the CPU.

The data of a step is a function of (seed, step) and each sample set has its own generator, so
torchrun with K gloo ranks trains the same model as one process: the gradients differ by the
order of floating-point sums only (DDP's all-reduce), i.e. ~1e-7 relative after a few steps.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from oracles.discoformer.data import StepPlan, step_plan, step_sets
from oracles.discoformer.model import DiScoFormer, ModelConfig, parameter_count
from oracles.discoformer.train import PRESETS, check_split, get_args, main, train
from oracles.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]
# points 96 with contexts 16..32: B = 3..6 sample sets per step, so 2 ranks also split unevenly
TINY = ("--dim 2 --steps 4 --stop-after 3 --width 16 --layers 1 --heads 2 --ffn 32 --points 96 --n-min 16 "
        "--n-max 32 --n-query 8 --val-gmms 2 --val-n 64 --val-bkw 1 --val-bkw-n 64 --warmup 2 --dropout 0 "
        "--ema 0 --threads 1 --log-interval 1 --eval-interval 3 --ckpt-interval 3").split()


def files(tmp_path: Path, name: str) -> list[str]:
    return ["--ckpt", str(tmp_path / f"{name}.pt"), "--out", str(tmp_path / f"{name}_w.pt")]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict, rtol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).norm() <= rtol * a[k].norm() + 1e-12, k


def _rank(rank: int, world: int, port: int, argv: list[str]) -> None:
    """One rank with torchrun's environment, through the command-line entry point (forked from the
    test process: no second import of torch; one thread per rank)."""
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    main(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_train_the_same_model_as_one_process_and_a_resume_may_change_k(tmp_path, capfd):
    """The same command with 2 gloo ranks (torchrun's environment, in forked processes: torchrun's
    agent and its imports would take ~20 s on a loaded 2-core machine) and in one process: same losses, same weights after 3
    steps to 1e-5 relative (dropout off, no weight average), world_size in the 2-rank log and
    checkpoint; then the 2-rank checkpoint resumed in one process continues like the 1-process run."""
    one = train(get_args(TINY + files(tmp_path, "one")))
    mp.start_processes(_rank, args=(2, free_port(), TINY + files(tmp_path, "two")), nprocs=2, join=True,
                       start_method="fork")
    assert capfd.readouterr().out.count("2 ranks (gloo)") == 1           # rank 0 alone prints
    records = [json.loads(r) for r in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "start" and all(r["world_size"] == 2 for r in records)
    assert [r["step"] for r in records[1:]] == [1, 2, 3]
    torch.testing.assert_close([r["loss"] for r in records[1:]], one, rtol=1e-6, atol=0)
    assert torch.load(tmp_path / "two.pt", weights_only=False)["world_size"] == 2
    assert_same_weights(weights(tmp_path / "one_w.pt"), weights(tmp_path / "two_w.pt"))

    last_one = train(get_args(["--resume", str(tmp_path / "one.pt")]))   # step 4, 1 process
    last_two = train(get_args(["--resume", str(tmp_path / "two.pt")]))   # step 4, 2 ranks -> 1 process
    torch.testing.assert_close(last_two, last_one, rtol=1e-6, atol=0)
    assert json.loads((tmp_path / "two.jsonl").read_text().splitlines()[-1])["world_size"] == 1
    assert_same_weights(weights(tmp_path / "one_w.pt"), weights(tmp_path / "two_w.pt"))


def test_the_global_batch_does_not_depend_on_the_split():
    """Every set has its own generator: shares of any split concatenate to the whole batch."""
    plan = step_plan(96, (16, 32), seed=5, step=7)
    whole = step_sets(plan, 3, 8, 5, 7, range(plan.sets))
    for k in (2, 3):
        parts = [step_sets(plan, 3, 8, 5, 7, range(plan.sets * r // k, plan.sets * (r + 1) // k)) for r in range(k)]
        for name in ("x", "y", "score_x", "logf_y"):
            torch.testing.assert_close(torch.cat([getattr(p, name) for p in parts]), getattr(whole, name),
                                       rtol=1e-6, atol=1e-6)
    assert step_plan(96, (16, 32), 5, 7) == plan and whole.x.shape == (plan.sets, plan.n_x, 3)
    other = step_sets(StepPlan(plan.n_x, plan.sets, plan.gmm), 3, 8, 5, 8, range(plan.sets))
    assert not torch.equal(other.x, whole.x)                             # another step, other data


def test_a_split_that_leaves_a_rank_without_sets_is_refused_with_the_fix():
    args = get_args(["--dim", "2", "--points", "4096", "--n-max", "2048"])   # B >= 2 sets per step
    check_split(args, 2)
    with pytest.raises(SettingsError, match=r"--points 4096 / --n-max 2048 gives 2 .* 3 ranks.*--points >= 6144"):
        check_split(args, 3)
    args.data_stream = "sequential"
    with pytest.raises(SettingsError, match="one process only"):
        check_split(args, 2)
    check_split(args, 1)


def test_a_checkpoint_from_before_the_step_stream_resumes_with_its_sequential_stream(tmp_path):
    saved = {"dim": 2, "ckpt": str(tmp_path / "old.pt"), "out": str(tmp_path / "w.pt"), "log": str(tmp_path / "o.jsonl")}
    torch.save({"args": saved}, tmp_path / "old.pt")
    assert get_args(["--resume", str(tmp_path / "old.pt")]).data_stream == "sequential"
    assert get_args(["--dim", "2"]).data_stream == "step"


@pytest.mark.parametrize("name, width, layers, heads, ffn, params", [
    ("small", 64, 3, 4, 256, 150_467), ("paper", 128, 4, 8, 512, 794_115), ("large", 256, 6, 8, 1024, 4_740_611)])
def test_presets_set_the_papers_models_and_explicit_options_win(name, width, layers, heads, ffn, params):
    args = get_args(["--preset", name, "--dim", "2"])
    assert (args.width, args.layers, args.heads, args.ffn) == (width, layers, heads, ffn)
    cfg = ModelConfig(2, args.width, args.layers, args.heads, args.ffn)
    assert parameter_count(DiScoFormer(cfg)) == pytest.approx(params, rel=0.01)
    assert get_args(["--preset", name, "--dim", "2", "--width", "32"]).width == 32
    assert set(PRESETS[name]) <= set(vars(args))
    if name == "large":
        assert (args.n_min, args.n_max, args.steps) == (2**8, 2**14, 150_000)
        check_split(args, 8)                                             # up to 8 ranks out of the box


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_two_nccl_ranks_under_bf16(tmp_path):
    gpu = [a for a in TINY if a not in ("--threads", "1")] + ["--device", "cuda"]
    one = train(get_args(gpu + files(tmp_path, "one")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "oracles.discoformer.train", *gpu, *files(tmp_path, "two")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "2 ranks (nccl)" in run.stdout, run.stderr[-3000:]
    records = [json.loads(r) for r in (tmp_path / "two.jsonl").read_text().splitlines()]
    torch.testing.assert_close([r["loss"] for r in records[1:]], one, rtol=2e-2, atol=0)   # bf16 autocast


def test_cost_counts_activations_affine_in_the_context_size(capsys):
    """The memory count of ``oracles.discoformer.cost``: saved bytes per set are affine in n_x (the
    attention saves O(n) per token), so the extrapolation above 512 points is exact; bf16 halves
    most of it. One timed step of the small preset prints its row."""
    from oracles.discoformer.cost import activation_bytes, main as cost, saved_bytes

    model, cpu = DiScoFormer(ModelConfig(2, 16, 2, 2, 32)), torch.device("cpu")
    b = [saved_bytes(model, n, 8, False, cpu) for n in (256, 512, 768)]
    assert b[2] - b[1] == b[1] - b[0] > 0
    assert activation_bytes(model, 768, 8, False, cpu) == b[2]
    assert saved_bytes(model, 256, 8, True, cpu) < 0.7 * b[0]
    cost(["--preset", "small", "--n", "128", "--sets", "1", "--steps", "1", "--threads", "1"])
    row = capsys.readouterr().out.splitlines()[-1].split("|")
    assert row[1].strip() == "small" and row[3].strip() == "128" and float(row[-3]) > 0
