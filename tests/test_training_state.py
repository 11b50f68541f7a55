"""Training state stays out of the packages: train.py refuses it there, one checkpoint and one log
per dimension (stages appended to the log, never lost on resume), weights exported from a
checkpoint without training, and nothing under oracles/ but source and shipped weights."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from oracles.discoformer.train import get_args, log_until, train
from oracles.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--dim 2 --steps 4 --width 16 --layers 1 --heads 2 --ffn 32 --points 64 --n-min 16 --n-max 32 "
        "--n-query 8 --val-gmms 2 --val-n 64 --val-bkw 1 --val-bkw-n 64 --warmup 2 --dropout 0 "
        "--threads 1 --log-interval 1 --eval-interval 2 --ckpt-interval 2").split()


def test_default_paths_are_one_checkpoint_and_log_per_dimension_outside_the_packages():
    args = get_args(["--dim", "7"])
    assert (args.ckpt, args.log) == ("training/discoformer/d7.pt", "training/discoformer/d7.jsonl")
    assert args.out == "out/discoformer_d7.pt"


@pytest.mark.parametrize("option, path", [
    ("--ckpt", "oracles/discoformer/checkpoints/d3_ckpt.pt"),
    ("--log", "oracles/discoformer/d3.jsonl"),
    ("--ckpt", "landau/d3.pt"),
    ("--out", "oracles/discoformer/checkpoints/discoformer_d3.pt"),
    ("--out", "solvers/w.pt"),
])
def test_training_state_inside_a_package_is_refused(option, path):
    with pytest.raises(SettingsError, match="inside the package"):
        get_args(["--dim", "3", option, str(ROOT / path)])


def test_weights_may_be_shipped_into_the_weights_folder(tmp_path):
    out = ROOT / "oracles/discoformer/weights/discoformer_d3.pt"
    args = get_args(["--dim", "3", "--out", str(out), "--ckpt", str(tmp_path / "c.pt")])
    assert args.out == str(out)                      # accepted (nothing is written by get_args)


def test_a_resumed_checkpoint_that_points_into_the_package_is_refused(tmp_path):
    saved = {"dim": 3, "ckpt": str(ROOT / "oracles/discoformer/checkpoints/d3_ckpt.pt"),
             "out": str(tmp_path / "w.pt"), "log": str(tmp_path / "run.jsonl")}
    torch.save({"args": saved}, tmp_path / "run.pt")
    with pytest.raises(SettingsError, match="--ckpt"):
        get_args(["--resume", str(tmp_path / "run.pt")])
    assert get_args(["--resume", str(tmp_path / "run.pt"), "--ckpt", str(tmp_path / "run.pt")])


def test_stages_share_one_log_and_a_resume_keeps_the_earlier_stages(tmp_path):
    ckpt, log = tmp_path / "d2.pt", tmp_path / "d2.jsonl"
    files = ["--ckpt", str(ckpt), "--out", str(tmp_path / "w.pt")]
    train(get_args(TINY + files))                                        # stage 1: steps 1..4
    train(get_args(TINY + files + ["--init", str(tmp_path / "w.pt"), "--stop-after", "2"]))  # stage 2
    with open(log, "a") as f:                                            # killed after step 2's checkpoint
        f.write('{"step": 3, "loss": 1.0}\n')
    train(get_args(["--resume", str(ckpt)]))
    records = [json.loads(r) for r in log.read_text().splitlines()]
    starts = [i for i, r in enumerate(records) if r.get("event") == "start"]
    assert [records[i]["stage"] for i in starts] == [1, 2] and starts[0] == 0
    assert records[starts[1]]["args"]["init"] == str(tmp_path / "w.pt")
    stage1 = [r["step"] for r in records[1:starts[1]]]
    stage2 = [r["step"] for r in records[starts[1] + 1:]]
    assert stage1[-1] == 4 and stage2 == sorted(set(stage2)) and stage2[-1] == 4   # step 3 once, stage 1 whole
    assert log_until(log, 1)[:starts[1] + 1] == log.read_text().splitlines()[:starts[1] + 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d2.jsonl", "d2.pt", "w.json", "w.pt"]


def test_a_new_run_never_overwrites_an_unfinished_one(tmp_path):
    files = ["--ckpt", str(tmp_path / "d2.pt"), "--out", str(tmp_path / "w.pt")]
    train(get_args(TINY + files + ["--stop-after", "2"]))
    before = (tmp_path / "d2.pt").read_bytes()
    with pytest.raises(SettingsError, match="unfinished run .step 2 of 4.*--resume"):
        train(get_args(TINY + files))
    assert (tmp_path / "d2.pt").read_bytes() == before
    train(get_args(["--resume", str(tmp_path / "d2.pt")]))       # finished: a new stage may replace it
    assert train(get_args(TINY + files + ["--stop-after", "1"]))


def test_export_writes_the_checkpoints_weights_without_training(tmp_path):
    files = ["--ckpt", str(tmp_path / "c.pt"), "--out", str(tmp_path / "w.pt")]
    train(get_args(TINY + files))
    log_before = (tmp_path / "c.jsonl").read_text()
    assert train(get_args(["--resume", str(tmp_path / "c.pt"), "--export", str(tmp_path / "e.pt")])) == []
    a, b = (torch.load(tmp_path / n, weights_only=True) for n in ("w.pt", "e.pt"))
    assert a.keys() == b.keys() and a["steps"] == b["steps"] == 4
    assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())
    assert (tmp_path / "e.json").is_file() and (tmp_path / "c.jsonl").read_text() == log_before
    with pytest.raises(SystemExit):
        get_args(["--dim", "2", "--export", str(tmp_path / "x.pt")])   # --export needs --resume


def _tracked(*paths: str) -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", *paths], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.stdout.decode().split("\0") if p]


def test_oracles_holds_only_source_and_shipped_weights():
    stray = [p for p in _tracked("oracles") if not p.endswith(".py")
             and not (p.startswith("oracles/discoformer/weights/") and p.endswith((".pt", ".json")))]
    assert stray == []


def test_tracked_torch_files_stay_small():
    sizes = {p: (ROOT / p).stat().st_size for p in _tracked("*.pt") if (ROOT / p).is_file()}
    assert sum(sizes.values()) <= 15 * 2**20, sizes
    dims = [p for p in sizes if p.startswith("training/")]
    assert len(dims) == len({Path(p).stem for p in dims})          # at most one checkpoint per dimension
