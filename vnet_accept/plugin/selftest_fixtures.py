"""Fixtures of the gate's self-test (issue 8): the clean chain, built once per session from the cache, and every
planted defect judged once, shared by the per-defect tests and the mutation score.

* ``selftest_chain`` - :class:`~vnet_accept.selftest.chain.CleanChain`: the trained narrow VNet (the weights
  shipped with the package; trained, with progress on the terminal, only when they belong to another recipe),
  held-out synthetic scans, exports, a results folder, a reference run and the port's perf files;
* ``selftest_runs`` - :class:`SelftestRuns`: each defect planted and judged on first use, the clean chain judged
  once, and the :class:`~vnet_accept.selftest.defects.MutationScore`.

The terminal summary gets a "vnet-accept self-test" section with the score and one line per defect when the
``selftest.mutation_score`` criterion was recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

MUTATION_SCORE_ID = "selftest.mutation_score"


class SelftestRuns:
    """Every defect's outcome and the clean chain's judgements, each computed once per session."""

    def __init__(self, chain: Any, workdir: Path) -> None:
        self.chain, self.workdir = chain, workdir
        self._outcomes: dict[str, Any] = {}
        self._clean: list | None = None

    def outcome(self, defect_id: str):
        from vnet_accept.selftest.defects import DEFECTS, run_defect

        if defect_id not in self._outcomes:
            self._outcomes[defect_id] = run_defect(DEFECTS[defect_id], self.chain, self.workdir / defect_id)
        return self._outcomes[defect_id]

    def clean(self) -> list:
        from vnet_accept.selftest.defects import judge_clean

        if self._clean is None:
            self._clean = judge_clean(self.chain, self.workdir / "clean")
        return self._clean

    def score(self):
        from vnet_accept.selftest.defects import CATALOGUE, MutationScore

        return MutationScore([self.outcome(d.id) for d in CATALOGUE], self.clean())


@pytest.fixture(scope="session")
def selftest_chain(pytestconfig: pytest.Config, artifact_cache: Any, tmp_path_factory: pytest.TempPathFactory):
    from vnet_accept.plugin.progress import progress
    from vnet_accept.selftest.chain import SELFTEST_RECIPE, build_clean_chain
    from vnet_accept.selftest.weights import load_shipped

    shipped = load_shipped()
    if shipped is not None and shipped.problem(SELFTEST_RECIPE) is None:
        label, total = f"self-test: clean chain (the shipped width-{SELFTEST_RECIPE.width} VNet weights)", None
    else:  # trained_checkpoint warns why, once
        label, total = (f"self-test: clean chain (the shipped weights are for another recipe: trains a width-"
                        f"{SELFTEST_RECIPE.width} VNet for {SELFTEST_RECIPE.steps} steps unless cached)",
                        SELFTEST_RECIPE.steps)
    with progress(pytestconfig, label, total=total, unit="step" if total else "") as bar, \
            bar.running("data, exports, ONNX Runtime and PyTorch over its tiles"):
        return build_clean_chain(artifact_cache, tmp_path_factory.mktemp("selftest-chain"),
                                 progress=lambda step, total, loss: bar.update(detail=f"loss {loss:.3f}"))


@pytest.fixture(scope="session")
def selftest_runs(selftest_chain: Any, tmp_path_factory: pytest.TempPathFactory) -> SelftestRuns:
    return SelftestRuns(selftest_chain, tmp_path_factory.mktemp("selftest-defects"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from vnet_accept.plugin.records import collected_criteria

    score = next((c for c in collected_criteria(config) if c.id == MUTATION_SCORE_ID), None)
    if score is None:
        return
    terminalreporter.section("vnet-accept self-test")
    terminalreporter.write_line(f"{score.verdict.upper()} {score.id}: {score.measured} ({score.threshold})"
                                # a pass's reason repeats the score; a failure's names what was missed
                                + (f" — {score.reason}" if score.reason and score.verdict != "pass" else ""))
    verbose = config.get_verbosity() >= 1 if hasattr(config, "get_verbosity") else config.option.verbose >= 1
    for row in score.details.get("defects", []):
        caught = bool(row.get("caught"))
        if caught and not verbose:  # one line per defect with -v (and in the report); a missed one always
            continue
        mark = "caught" if caught else "MISSED"
        for criterion, line in (row.get("messages") or {}).items():
            terminalreporter.write_line(f"  {row['defect']:<58} -> {criterion:<27} {mark}: {(line or '')[:110]}")
    for alarm in score.details.get("false_alarms", []):
        terminalreporter.write_line(f"  FALSE ALARM on the clean chain: {alarm}")
