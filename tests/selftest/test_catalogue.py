"""The self-test's bookkeeping: when a planted defect counts as caught, and the mutation score."""

from __future__ import annotations

from vnet_accept.judge.criterion import judged
from vnet_accept.selftest.defects import CATALOGUE, DEFECTS, Defect, MutationScore, assess

DEFECT = Defect("0", "demo", "a demo defect", {"a.crit": ("cause", "detail")}, lambda chain, work: [])


def Judgement(cid: str, passed: bool, message: str):  # noqa: N802 - reads like the record it builds
    return judged(cid, cid, passed, message=message)


def test_caught_needs_a_failure_whose_first_line_names_the_cause():
    caught = assess(DEFECT, [Judgement("a.crit", False, "FAIL the cause\n  the detail")])
    assert caught.caught and caught.summary()["messages"] == {"a.crit": "FAIL the cause"}
    passed = assess(DEFECT, [Judgement("a.crit", True, "PASS all fine")])
    assert not passed.caught and passed.problems == ["a.crit passed: PASS all fine"]
    vague = assess(DEFECT, [Judgement("a.crit", False, "FAIL something\n  the cause, the detail")])
    assert not vague.caught and "first line does not name the cause" in vague.problems[0]
    thin = assess(DEFECT, [Judgement("a.crit", False, "FAIL the cause")])
    assert not thin.caught and "message lacks ['detail']" in thin.problems[0]
    other = assess(DEFECT, [Judgement("b.crit", False, "FAIL the cause, the detail")])
    assert not other.caught and other.problems == ["a.crit was not judged"]


def test_every_issue_defect_is_catalogued_once_with_a_catching_criterion():
    numbers = [d.number.rstrip("ab") for d in CATALOGUE]
    assert sorted(set(numbers), key=int) == [str(n) for n in range(1, 11)]
    assert len(DEFECTS) == len(CATALOGUE) == 13
    assert all(d.expect and all(fragments for fragments in d.expect.values()) for d in CATALOGUE)


def test_the_score_counts_misses_and_false_alarms():
    caught = assess(DEFECT, [Judgement("a.crit", False, "FAIL the cause, the detail")])
    missed = assess(DEFECT, [Judgement("a.crit", True, "PASS")])
    clean = [Judgement("a.crit", True, "PASS"), Judgement("c.crit", False, "FAIL on clean data")]
    score = MutationScore([caught, missed], clean)
    assert (score.caught, score.planted, len(score.false_alarms), score.passed) == (1, 2, 1, False)
    assert score.headline() == ("FAIL mutation score 1/2 planted defects caught, 1 false alarms on the clean chain; "
                                "missed: demo; false alarms: c.crit")
    assert MutationScore([caught], clean[:1]).passed
