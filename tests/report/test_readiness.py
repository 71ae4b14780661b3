"""Honest verdicts (report/readiness.py): PASS only when the port was gated; the headline, the Markdown, the
not-judged hints and modelzoo_level.txt say the same."""

from __future__ import annotations

import pytest

from vnet_accept.report.modelzoo import modelzoo_statuses
from vnet_accept.report.notjudged import classify, not_judged
from vnet_accept.report.readiness import REQUIRED_CRITERIA, readiness

WEIGHTS = {"vnet_weights": "vnet_model_best.pth.tar"}


def _required(build, verdict="pass"):
    return [build.criterion(cid, verdict, 1.0) for cid in REQUIRED_CRITERIA]


@pytest.mark.parametrize(("case", "settings", "verdict", "headline"), [
    ("all required judged", WEIGHTS, "ready", "PASS"),
    ("stand-in weights", {}, "not gated", "NOT READY TO FILE"),
    ("bs16 accuracy skipped", WEIGHTS, "not gated", "NOT READY TO FILE"),
    ("one failed", WEIGHTS, "fail", "FAIL"),
    ("nothing judged", WEIGHTS, "no verdict", "NO VERDICT"),
])
def test_the_verdict_on_the_port(build, case, settings, verdict, headline):
    criteria = _required(build) + [build.criterion("export.contract", "pass", 0)]
    if case == "bs16 accuracy skipped":
        criteria[1] = build.criterion("accuracy.error_rate.om_bs16", "skip", reason="no bs16 results")
    if case == "one failed":
        criteria.append(build.criterion("parity.x", "fail", 1.0))
    if case == "nothing judged":
        criteria = [build.criterion(cid, "skip", reason="no NPU") for cid in REQUIRED_CRITERIA]
    r = readiness(criteria, settings)
    assert (r.verdict, r.headline) == (verdict, headline)
    assert r.summary().startswith(headline)
    assert r.gated == (verdict in ("ready", "fail") and bool(settings))
    if case == "bs16 accuracy skipped":
        assert r.required_not_judged == (("accuracy.error_rate.om_bs16", "no bs16 results"),)


def test_not_gated_says_why_and_asks_only_for_what_is_missing(build):
    r = readiness([build.criterion("export.contract", "pass", 0)], {})
    assert r.counts_text() == "1 of 1 criterion passed, none failed, 0 not judged"
    assert "seeded stand-in (no --weights)" in r.reasons[0]
    assert "6 of 6 required criteria not judged" in r.reasons[1] and "--npu-results DIR" in r.reasons[1]
    given = readiness([build.criterion("export.contract", "pass", 0)], {**WEIGHTS, "npu_results": "res/"})
    assert len(given.reasons) == 1 and "--npu-results" not in given.reasons[0]  # it was given


def test_modelzoo_level_agrees_with_a_run_that_was_not_gated(build):
    """What the criteria alone would call OK is NOK, not judged, when the port was not gated."""
    criteria = _required(build)
    assert [s.value for s in modelzoo_statuses(criteria)][:2] == ["OK", "OK"]
    statuses = modelzoo_statuses(criteria, {})  # stand-in weights
    assert [s.value for s in statuses] == ["NOK", "NOK", "NOK"]
    assert all(not s.judged and s.reason.startswith("not gated (stand-in weights; see the verdict)")
               for s in statuses)
    assert "the criteria alone give OK" in statuses[0].reason
    # One sentence a reader can follow, not colons stacked three deep ("… give NOK: not judged: NO PLACEMENT: …").
    perf = modelzoo_statuses([build.criterion("export.contract", "pass", 0)], {}).pop()
    assert perf.reason == ("not gated (stand-in weights; see the verdict), so NOK; the criteria alone give NOK (not "
                           "judged: no card/T4 ratio at bs1, bs16 (the tier is decided at bs1 and bs16))")
    assert [s.value for s in modelzoo_statuses(criteria, WEIGHTS)][:2] == ["OK", "OK"]


def test_a_not_judged_hint_never_asks_for_an_option_that_was_given(build):
    reason = ("results copied from an Ascend host are judged against the tiles they were computed from: pass "
              "--luna16-root (the LUNA16 the host's tiles were cut from) and --test-uids")
    assert classify(reason).key == "npu"  # read alone, "Ascend" comes first
    assert classify(reason, given={"npu"}).key == "luna16"  # --npu-results was given: the tiles are missing
    c = build.criterion("om.inputs_match", "skip", reason=reason)
    groups = not_judged([c], {"npu_results": "res/"})
    assert [g.missing.key for g in groups] == ["luna16"] and "--npu-results" not in groups[0].missing.provide
    everything = {"npu_results": "res/", "luna16_root": "/data", "vnet_weights": "w.pth.tar"}
    group = not_judged([c], everything)[0]  # both given: the input lacks something, the reason says what
    assert group.missing.key == "npu-incomplete" and "given (--npu-results)" in group.missing.label
    chips = build.criterion("perf.tier", "skip",
                            reason="chips per card unknown: pass --soc-version or --chips-per-card")
    group = not_judged([chips], {"npu_results": "res/"})[0]
    from vnet_accept.report.notjudged import summary_line

    assert "--npu-results DIR" not in summary_line(group) and "chips per card unknown" in summary_line(group)


def test_the_error_rate_hint_asks_only_for_what_is_missing():
    from vnet_accept.judge.accuracy import not_judged_reason

    assert "--luna16-root" in not_judged_reason(False, synthetic=True)
    assert "--luna16-root" not in not_judged_reason(False, synthetic=False)  # LUNA16 was given
    assert "--vnet-weights" not in not_judged_reason(True, synthetic=True)  # the weights were given
    assert not_judged_reason(True, synthetic=False) is None


def test_the_markdown_header_says_not_ready_to_file(build):
    from vnet_accept.report.markdown import header_section

    report = build.report_of(_required(build))
    text = "\n".join(header_section(report, modelzoo_statuses(report["criteria"], report["settings"])))
    assert "**Verdict: NOT READY TO FILE** — 6 of 6 criteria passed, none failed, 0 not judged." in text
    assert "The port was **not gated**" in text and "seeded stand-in" in text
    report["settings"]["vnet_weights"] = "w.pth.tar"
    text = "\n".join(header_section(report, modelzoo_statuses(report["criteria"], report["settings"])))
    assert "**Verdict: PASS**" in text and "Gated:" in text
