"""The contributor's ini file holds whatever form an option's value takes: ``pytest -m npu --npu-results DIR`` with
``DIR`` outside the project used to lose the rootdir and so ``pytest.ini`` (pytest searched for it from ``DIR``,
read as a test path before the plugin's options were known); ``--npu-results=DIR`` and ``vnet-accept gate``
(which passes ``--flag=value``) never did. ``tox -e npu -- --npu-results DIR`` runs the same pytest command from the
project folder."""

from __future__ import annotations

import pytest

PROBE = """
def test_probe(gate_options, pytestconfig):
    print("LUNA16=%s WEIGHTS=%s NPU=%s INI=%s" % (gate_options.luna16_root, gate_options.vnet_weights,
                                                 gate_options.npu_results, pytestconfig.inipath.name
                                                 if pytestconfig.inipath else None))
"""

SETTINGS = "luna16_root = /data/luna16\nvnet_weights = vnet_model_best.pth.tar\n"


@pytest.fixture
def outside(tmp_path_factory):
    """A results folder outside the project (pytester's folder): a sibling, as a copy from the Ascend host is."""
    folder = tmp_path_factory.mktemp("copied-from-ascend") / "npu-results"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("ini", ["pytest.ini", "tox.ini"])
@pytest.mark.parametrize("form", ["space", "equals"])
def test_the_ini_settings_survive_a_space_separated_folder_outside_the_project(ini, form, gate_pytester, run_inner,
                                                                               outside):
    assert gate_pytester.path not in outside.parents
    gate_pytester.makefile(".ini", **{ini[:-4]: "[pytest]\n" + SETTINGS})
    gate_pytester.makepyfile(test_probe=PROBE)
    where = ["--npu-results", str(outside)] if form == "space" else [f"--npu-results={outside}"]
    result = run_inner("-s", "-m", "not absent", *where)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*LUNA16=/data/luna16 WEIGHTS=vnet_model_best.pth.tar NPU={outside} INI={ini}"])
    result.stdout.fnmatch_lines([f"rootdir: {gate_pytester.path}", f"configfile: {ini}"])


def test_the_ini_addopts_and_test_paths_apply_again(gate_pytester, run_inner, outside):
    """The ini's addopts (here: a marker filter) and testpaths are what pytest uses once the ini is found."""
    gate_pytester.makeini("[pytest]\ntestpaths = checks\naddopts = -m \"not slow\"\nmarkers =\n    slow: slow\n")
    checks = gate_pytester.mkdir("checks")
    (checks / "test_a.py").write_text("import pytest\n\ndef test_quick():\n    pass\n\n@pytest.mark.slow\n"
                                      "def test_slow():\n    pass\n")
    gate_pytester.makepyfile(test_elsewhere="def test_not_in_testpaths():\n    pass\n")
    result = run_inner("--npu-results", str(outside), "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*checks/test_a.py::test_quick PASSED*"])
