"""The gate proves its own teeth (issue 8): a narrow VNet trained on synthetic scans, a clean chain built from it
that passes every criterion, and a catalogue of planted defects, each failed by the gate's own criterion function
(:mod:`vnet_accept.judge`) with a message that names the cause.

Criteria recorded:

* ``selftest.trained_model.error_rate`` - the trained model's pooled error rate on held-out synthetic scans
  through the real chain (export -> preprocess -> ONNX Runtime -> post-process) is at most the self-test's ceiling
  (:data:`vnet_accept.tolerances.SELFTEST_MAX_ERROR_PCT`);
* ``selftest.clean_chain`` - every criterion of the catalogue passes on the clean artifacts (no false alarm);
* ``selftest.defect.<id>`` - one per planted defect: caught, with the catching criterion's first line;
* ``selftest.mutation_score`` - caught / planted, and the false alarms (threshold: all caught, none).

The catalogue and which criterion catches what: :mod:`vnet_accept.selftest.defects`.
"""

from __future__ import annotations

import pytest

from vnet_accept.selftest.chain import SELFTEST_BN_MODE
from vnet_accept.selftest.defects import CATALOGUE, first_line, trained_model_error_rate

BASIS = (f"self-test: narrow VNet trained on synthetic scans, held-out synthetic scans, ONNX Runtime CPU, "
         f"bn_mode={SELFTEST_BN_MODE}, fp32")


@pytest.mark.criterion("selftest.trained_model.error_rate", "the self-test model segments held-out scans")
def test_trained_model_segments(selftest_chain, gate_record):
    c = trained_model_error_rate(selftest_chain)
    training = selftest_chain.training
    c.details.update(recipe=training.get("recipe"), weights_source=training.get("source"),
                     training_seconds=training.get("seconds"),
                     training_phases=training.get("phases"), loss_last10_mean=training.get("loss_last10_mean"))
    gate_record.record(c, ("checkpoint", selftest_chain.checkpoint))


@pytest.mark.criterion("selftest.clean_chain", "every criterion passes on the clean chain")
def test_clean_chain_passes_every_criterion(selftest_runs, gate_record):
    from vnet_accept.judge.criterion import judged

    clean = selftest_runs.clean()
    alarms = [c for c in clean if c.verdict != "pass"]
    gate_record.record(judged(
        "selftest.clean_chain", "each criterion the planted defects are judged by passes on the clean artifacts they "
        "are planted into", not alarms, measured=len(alarms), units="false alarms", threshold="0", basis=BASIS,
        reason="; ".join(f"{c.id}: {first_line(c)}" for c in alarms) or f"{len(clean)} criteria pass",
        message="\n".join([f"FAIL {len(alarms)} false alarms on the clean chain",
                           *(f"  {c.id}: {first_line(c)}" for c in alarms)]),
        judgements=[{"criterion": c.id, "verdict": c.verdict, "first_line": first_line(c), "measured": c.measured}
                    for c in clean]))


@pytest.mark.parametrize("defect_id", [d.id for d in CATALOGUE])
@pytest.mark.criterion("selftest.defect.{defect_id}", "a planted defect is caught by the criterion meant to catch it")
def test_planted_defect_is_caught(defect_id, selftest_runs, gate_record):
    from vnet_accept.judge.criterion import judged

    outcome = selftest_runs.outcome(defect_id)
    d = outcome.defect
    summary = outcome.summary()
    first = next(iter(summary["messages"].values()), None) or ""
    gate_record.record(judged(
        f"selftest.defect.{d.id}", f"defect {d.number} ({d.title}) fails {', '.join(d.criteria)} (the gate's "
        "own criterion functions) with a message naming the cause", outcome.caught,
        measured="caught" if outcome.caught else "missed", threshold="caught", basis=BASIS,
        reason="; ".join(outcome.problems) or first,
        message=f"defect {d.number} {d.id} not caught: " + "; ".join(outcome.problems), **summary))


@pytest.mark.criterion("selftest.mutation_score", "every planted defect caught, no false alarm")
def test_mutation_score(selftest_runs, gate_record):
    from vnet_accept.judge.criterion import judged

    score = selftest_runs.score()
    gate_record.record(judged(
        "selftest.mutation_score", "planted defects caught by the gate's own criterion functions (defect -> "
        "criterion -> caught -> message), and false alarms on the clean chain", score.passed,
        measured=f"{score.caught}/{score.planted}", units="caught/planted", threshold="all caught, 0 false alarms",
        basis=BASIS, reason=score.headline(), message="\n".join([score.headline(), *score.table()]),
        caught=score.caught, planted=score.planted, defects=[o.summary() for o in score.outcomes],
        false_alarms=[f"{c.id}: {first_line(c)}" for c in score.false_alarms]))
