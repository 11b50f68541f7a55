"""Every shipped case file resolves: its settings parse and validate (``--print-case``, no run)."""
from __future__ import annotations

import pytest
import yaml

from conftest import CASES, run_main


@pytest.mark.parametrize("path", sorted(CASES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_case_resolves(path, capsys) -> None:
    code, out, err = run_main([path, "--print-case"], capsys)
    assert code == 0, err
    assert yaml.safe_load(out)["name"] == path.stem
