"""No module-level mutable state: the pair backend and the sharding scope are context variables,
the numba kernels configure nothing at import and never write os.environ, registries refuse a
duplicate name, importing the equations loads no oracle, and what the run needs to know about an
oracle or an equation kind is asked of its registered class."""
from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from landau import pairs
from landau.settings import Registry, SettingsError

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env: str) -> str:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    out = subprocess.run([sys.executable, "-c", code], env=environ, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


# ----------------------------------------------------------------------------- (a) context variables
def test_sharding_scope_is_restored_on_exit_and_on_error():
    assert pairs.shard_scope() == ()
    with pairs.sharded("outer"):
        with pairs.sharded("inner"):
            assert pairs.shard_scope() == ("outer", "inner")
        assert pairs.shard_scope() == ("outer",)
        with pytest.raises(RuntimeError):
            with pairs.sharded("failing"):
                raise RuntimeError
        assert pairs.shard_scope() == ("outer",)
    assert pairs.shard_scope() == () and pairs.world() == (0, 1)


def test_sharding_scope_does_not_leak_into_other_threads_or_contexts():
    seen = {}
    with pairs.sharded("group"):
        worker = threading.Thread(target=lambda: seen.setdefault("thread", pairs.shard_scope()))
        worker.start()
        worker.join()
        seen["copy"] = contextvars.copy_context().run(pairs.shard_scope)
    assert seen == {"thread": (), "copy": ("group",)}      # a copied context inherits, a thread does not


def test_backend_choice_is_scoped():
    default = pairs.backend()
    with pairs.use_backend("torch"):
        assert pairs.backend() == "torch" and pairs.kernels(torch.zeros(3, 2, dtype=torch.float64)) is None
        with pairs.use_backend("numba"):
            assert pairs.backend() == "numba"
        assert pairs.backend() == "torch"
    assert pairs.backend() == default
    ctx = contextvars.copy_context()
    ctx.run(pairs.set_backend, "torch")                     # set_backend: this context only
    assert ctx.run(pairs.backend) == "torch" and pairs.backend() == default
    with pytest.raises(ValueError):
        pairs.use_backend("keops").__enter__()
    assert pairs.backend() == default


def test_environment_backend_is_read_when_used(monkeypatch):
    monkeypatch.setenv("LANDAU_PAIR_BACKEND", "torch")
    assert pairs.backend() == "torch" and pairs.kernels(torch.zeros(3, 2, dtype=torch.float64)) is None
    with pairs.use_backend("auto"):
        assert pairs.backend() == "auto"
    monkeypatch.setenv("LANDAU_PAIR_BACKEND", "keops")
    with pytest.raises(ValueError, match="LANDAU_PAIR_BACKEND"):
        pairs.backend()


# ----------------------------------------------------------------------------- (b), (c) numba
KERNELS_IMPORT = """
import os, numba
env, layer = dict(os.environ), numba.config.THREADING_LAYER
import landau.pair_kernels_numba
import landau.pairs, landau.collision, oracles.blob
assert dict(os.environ) == env, "import wrote os.environ"
assert numba.config.THREADING_LAYER == layer, "import configured numba"
import torch
x = torch.randn(40, 3, dtype=torch.float64)
landau.collision.landau_field_direct(x, -x, -3, 1 / 24)
oracles.blob.blob_score(x, 0.5)
assert landau.pairs.kernels(x) is not None
assert dict(os.environ) == env, "first use wrote os.environ"
print("LAYER", numba.config.THREADING_LAYER, numba.threading_layer())
"""


def test_numba_is_configured_at_first_use_not_at_import_and_environ_is_untouched():
    out = run_python(KERNELS_IMPORT)
    assert "LAYER workqueue workqueue" in out
    out = run_python("import numba, torch\nfrom landau import pairs\n"          # the user's choice is kept
                     "assert pairs.kernels(torch.zeros(4, 2, dtype=torch.float64)) is not None\n"
                     "print('LAYER', numba.config.THREADING_LAYER)", NUMBA_THREADING_LAYER="omp")
    assert "LAYER omp" in out


def test_no_cache_fallback_writes_no_environment_variable():
    out = run_python("""
import os, warnings
import numba.core.dispatcher as d
def refuse(self):
    raise RuntimeError('cannot cache function: no locator available')
d.Dispatcher.enable_caching = refuse
env = dict(os.environ)
import torch
from landau import pairs
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    assert pairs.kernels(torch.zeros(4, 2, dtype=torch.float64)) is not None
    assert pairs.kernels(torch.zeros(4, 2, dtype=torch.float64)) is not None
assert dict(os.environ) == env
print("WARNINGS", [str(w.message)[:40] for w in caught])
""")
    assert out.count("numba cannot write") == 1, out


# ----------------------------------------------------------------------------- (d) imports
def test_importing_the_equations_and_initial_data_loads_no_oracle_and_oracles_load_on_first_use():
    out = run_python("import sys, solvers.equations, solvers.initial\n"
                     "print(sorted(m for m in sys.modules if m.startswith('oracles')))\n"
                     "import oracles\n"
                     "print('oracles.sbtm' in sys.modules, oracles.sbtm.__name__)\n"
                     "names = oracles.available()\nprint('oracles.discoformer.oracle' in sys.modules, names)").splitlines()
    assert out[0] == "[]", (f"importing the equations loaded {out[0]}: equations and initial data take "
                            "SettingsError and Registry from landau.settings, not from oracles")
    assert out[1] == "False oracles.sbtm"
    assert out[2] == "True ['blob', 'discoformer', 'exact', 'expfam', 'gaussian', 'kde', 'sbtm']"


def test_settings_error_is_one_class_everywhere():
    import oracles
    import oracles.settings
    assert oracles.SettingsError is oracles.settings.SettingsError is SettingsError


# ----------------------------------------------------------------------------- (e) duplicates
def _entry(name: str):
    @dataclass
    class Settings:
        a: int = 1
    return type("Entry", (), {"name": name, "Settings": Settings, "__module__": "somewhere"})


def test_registering_a_name_twice_is_an_error():
    reg = Registry("thing")
    first = reg.register(_entry("x"))
    other = type("Other", (), {"name": "x", "__module__": "elsewhere"})
    with pytest.raises(ValueError, match="already registered"):
        reg.register(other)
    assert reg.get("x", "thing") is first
    again = _entry("x")                                    # the same definition executed again (reload)
    assert reg.register(again) is again and reg.get("x", "thing") is again
    with pytest.raises(SettingsError, match="unknown thing 'y'"):
        reg.get("y", "thing")


def test_the_shipped_registries_refuse_a_duplicate():
    from oracles.registry import ORACLES
    from solvers.equations import EQUATIONS
    from solvers.initial import INITIALS
    for registry, taken in ((ORACLES, "blob"), (EQUATIONS, "landau"), (INITIALS, "gaussian")):
        registry.get(taken, "key")
        with pytest.raises(ValueError, match="already registered"):
            registry.register(type("Impostor", (), {"name": taken}))
        assert registry.get(taken, "key").__name__ != "Impostor"


# ----------------------------------------------------------------------------- (f) kinds
def test_oracle_memory_comes_from_the_registered_class():
    from oracles.registry import ORACLES
    from solvers.resources import estimate_memory
    cpu = torch.device("cpu")
    base = estimate_memory(1000, 3, 8, cpu, "euler", ["blob"])
    assert estimate_memory(1000, 3, 8, cpu, "euler", []) == base
    assert estimate_memory(1000, 3, 8, cpu, "euler", ["my_own_oracle"]) == base   # an unregistered object's name
    for kind in ("sbtm", "discoformer"):
        extra = ORACLES.get(kind, "oracle").memory_per_particle(8)
        assert extra > 0
        assert abs(estimate_memory(1000, 3, 8, cpu, "euler", ["blob", kind]) - base - 1.5 * extra * 1000) <= 2
    assert ORACLES.get("discoformer", "oracle").memory_per_particle(8) == \
        ORACLES.get("discoformer", "oracle").memory_per_particle(4)           # a float32 network


def test_maxwell_moment_law_is_asked_of_the_equation_entry():
    from solvers.equations import EQUATIONS
    landau = EQUATIONS.get("landau", "equation")
    maxwell = landau(landau.Settings(gamma=0.0, B=0.25), 3)
    coulomb = landau(landau.Settings(gamma=-3.0, B=0.25), 3)
    fp = EQUATIONS.get("fokker_planck", "equation")
    assert maxwell.maxwell_moments_B() == 0.25 and coulomb.maxwell_moments_B() is None
    assert fp.maxwell_moments_B is EQUATIONS.get("landau", "equation").__mro__[1].maxwell_moments_B


def test_no_kind_names_are_hard_coded_in_resources_or_metrics():
    for module in ("solvers/resources.py", "solvers/metrics.py"):
        text = (ROOT / module).read_text()
        for kind in ('"sbtm"', '"discoformer"', '"landau"', "'landau'"):
            assert kind not in text, (module, kind)
