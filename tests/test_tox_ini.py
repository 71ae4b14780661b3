"""tox.ini: every environment says what it is for (``tox l`` lists the descriptions), and none installs a torch
other than the pinned CPU build."""

from __future__ import annotations

import configparser
from pathlib import Path

TOX_INI = Path(__file__).resolve().parents[1] / "tox.ini"


def test_every_tox_environment_has_a_description():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(TOX_INI)
    base = dict(ini["testenv"]) if ini.has_section("testenv") else {}
    envs = [s for s in ini.sections() if s == "testenv" or s.startswith("testenv:")]
    assert {"testenv:accuracy", "testenv:lint"} <= set(envs)
    missing = [s for s in envs if not (ini[s].get("description") or base.get("description"))]
    assert not missing, f"tox environments without a description: {missing}"
    assert all(ini[s].get("description") for s in envs if s != "testenv"), "each named env describes itself"
    assert base.get("deps", "").strip() == "torch==2.13.0"  # the CPU wheel; never a CUDA download
