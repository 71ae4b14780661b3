"""Running ``vnet-accept gate`` in this process on a tiny inner suite (the real criteria take minutes).

``gate_cli(*args, suite="tiny")`` runs ``vnet_accept.cli.main(["gate", *args])`` in a fresh working directory
with ``vnet_accept.gate.cmdline.DEFAULT_SUITE`` pointing at a test file written there, and returns
``(exit status, stdout, stderr)``. The inner suite records criteria through ``gate_record`` like the real
ones; ``tolerance_pp``/``parity_atol`` from the gate's options decide its verdicts, so a failing configuration is
an option away. ``sys.modules``/``sys.path`` are restored afterwards (pytest imports the inner test module).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TINY_SUITE = '''
import pytest

from vnet_accept.judge.criterion import judged


def test_parity(gate_record, gate_options):
    limit = gate_options.parity_atol
    gate_record.record(judged("parity.onnxrt_vs_torch.running.bs1_tiny", "tiny parity", 2e-06 <= limit,
                              measured=2e-06, units="max |Δ log-prob|", threshold=f"max|Δ| <= {limit:g}",
                              basis="onnxrt [bn_mode=running, fp32] vs torch", reason="flips 0/100",
                              comparison={"max_abs": 2e-06, "flips": 0, "voxels": 100,
                                          "tolerance": {"max_abs": limit}}))


def test_accuracy(gate_record, gate_options):
    ref, tol = gate_options.reference_error, gate_options.tolerance_pp
    gate_record.record(judged("accuracy.error_rate.onnxrt", "tiny accuracy", abs(0.5646 - ref) <= tol, measured=0.5646,
                              units="%", threshold=f"|error − {ref}| ≤ {tol} pp",
                              reason=f"|Δ| {abs(0.5646 - ref):.4f} pp vs {tol} pp"))


def test_npu(gate_record):
    gate_record.skip("accuracy.error_rate.om_bs1", "OM accuracy",
                     "no --npu-results DIR: pass a folder of results copied from an Ascend host")
'''


@pytest.fixture
def gate_workdir(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("VNET_ACCEPT_SHARED", "VNET_ACCEPT_CACHE", "VNET_ACCEPT_NPU_RESULTS", "VNET_ACCEPT_ONNX",
                 "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    return work


@pytest.fixture
def gate_cli(gate_workdir, tmp_path, monkeypatch, capsys):
    """The inner suite is a package reached with ``--pyargs``, as the real criteria are, so pytest finds its
    rootdir and ini file from the working directory."""
    from vnet_accept.cli import main
    from vnet_accept.gate import cmdline

    suites = tmp_path / "suites"
    monkeypatch.syspath_prepend(str(suites))
    package = f"tiny_suite_{abs(hash(str(tmp_path))) % 10**8}"

    def run(*args: str, suite: str | None = TINY_SUITE, name: str = "test_tiny_suite.py"):
        if suite is not None:
            folder = suites / package
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "__init__.py").write_text("")
            for old in folder.glob("test_*.py"):
                old.unlink()
            (folder / name).write_text(suite)
            # Seconds saved per inner run: unraisableexception's gc.collect() x5 at exit in a process holding torch,
            # hypothesis' terminal summary importing hypothesis.
            monkeypatch.setattr(cmdline, "DEFAULT_SUITE", ("--pyargs", package, "-p", "no:unraisableexception",
                                                        "-p", "no:hypothesispytest"))
        modules, syspath = set(sys.modules), list(sys.path)
        try:
            try:
                code = main(["gate", *args])
            except SystemExit as exc:  # argparse errors
                code = exc.code
        finally:
            for added in set(sys.modules) - modules:
                if "tiny_suite" in added or "test_tiny" in added or added.startswith("conftest"):
                    del sys.modules[added]
            sys.path[:] = syspath
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def no_figures(monkeypatch):
    """Skip drawing (figures have their own tests; matplotlib costs a second per run here)."""
    monkeypatch.setattr("vnet_accept.report.figures.render_figures",
                        lambda report, directory: {"parity_margins": {"reason": "not drawn in this test"}})


@pytest.fixture
def report_dir(gate_workdir) -> Path:
    return gate_workdir / "gate-report"
