"""The layers contract in pyproject.toml holds: no module imports from a layer above its own (issue 13).

Runs import-linter's ``lint-imports`` on the installed package, so a wrong-way import fails the default test run
(and CI) as well as ``tox -e lint``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_layers_contract_is_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed: pip install -e '.[test]' installs it (lint-imports)")
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    broken = [line for line in done.stdout.splitlines() if "not allowed to import" in line or "->" in line]
    assert done.returncode == 0, "lint-imports: the layers contract is broken:\n" + "\n".join(broken or [done.stdout])
    assert "1 kept, 0 broken" in done.stdout, done.stdout


def test_the_contract_covers_every_subpackage():
    """``exhaustive = true`` makes import-linter refuse a package missing from the layers; check it stays so."""
    import tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    assert contract["type"] == "layers" and contract["exhaustive"] is True and contract["containers"] == ["vnet_accept"]
    listed = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    present = {p.stem if p.is_file() else p.name for p in (ROOT / "vnet_accept").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert listed == present, f"in the package but not the contract: {sorted(present - listed)}; " \
                              f"in the contract but not the package: {sorted(listed - present)}"
