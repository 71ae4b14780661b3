"""The gate proves its own teeth (issue 8): a narrow VNet trained on synthetic scans, a clean chain built from it
that passes every criterion, and a catalogue of planted defects, each failed by the criterion meant to catch it
with a message that names the cause.

Criteria recorded:

* ``selftest.trained_model.error_rate`` - the trained model's pooled error rate on held-out synthetic scans
  through the real chain (export -> preprocess -> ONNX Runtime -> post-process) is at most
  :data:`~vnet_accept.selftest.catchers.MAX_ERROR_PCT`;
* ``selftest.clean_chain`` - every criterion of the catalogue passes on the clean artifacts (no false alarm);
* ``selftest.defect.<id>`` - one per planted defect: caught, with the catching criterion's first line;
* ``selftest.mutation_score`` - caught / planted, and the false alarms (threshold: all caught, none).

The catalogue and which criterion catches what: :mod:`vnet_accept.selftest.defects`.
"""

from __future__ import annotations

import pytest

from vnet_accept.selftest.catchers import MAX_ERROR_PCT
from vnet_accept.selftest.chain import SELFTEST_BN_MODE
from vnet_accept.selftest.defects import CATALOGUE

BASIS = (f"self-test: narrow VNet trained on synthetic scans, held-out synthetic scans, ONNX Runtime CPU, "
         f"bn_mode={SELFTEST_BN_MODE}, fp32")


@pytest.mark.criterion("selftest.trained_model.error_rate", "the self-test model segments held-out scans")
def test_trained_model_segments(selftest_chain, selftest_runs, gate_record):
    error = next(j for j in selftest_runs.clean() if j.criterion == "accuracy.error_rate")
    training = selftest_chain.training
    c = gate_record.criterion("selftest.trained_model.error_rate", "pooled voxel error rate of the self-test's "
                              "trained narrow VNet on held-out synthetic scans, through export -> preprocess -> "
                              "ONNX Runtime -> post-process", units="%", threshold=f"<= {MAX_ERROR_PCT} %",
                              basis=BASIS)
    c.artifact("checkpoint", selftest_chain.checkpoint)
    c.measure(error.measured, error.passed, reason=error.first_line, recipe=training.get("recipe"),
              weights_source=training.get("source"),
              training_seconds=training.get("seconds"), training_phases=training.get("phases"),
              loss_last10_mean=training.get("loss_last10_mean"), **error.details)
    c.assert_passed()


@pytest.mark.criterion("selftest.clean_chain", "every criterion passes on the clean chain")
def test_clean_chain_passes_every_criterion(selftest_runs, gate_record):
    judgements = selftest_runs.clean()
    alarms = [j for j in judgements if not j.passed]
    c = gate_record.criterion("selftest.clean_chain", "each criterion the planted defects are judged by passes on "
                              "the clean artifacts they are planted into", units="false alarms", threshold="0",
                              basis=BASIS)
    c.measure(len(alarms), not alarms, reason="; ".join(f"{j.criterion}: {j.first_line}" for j in alarms)
              or f"{len(judgements)} criteria pass", judgements=[j.to_dict() for j in judgements])
    c.assert_passed("\n".join([f"FAIL {len(alarms)} false alarms on the clean chain",
                               *(f"  {j.criterion}: {j.first_line}" for j in alarms)]))


@pytest.mark.parametrize("defect_id", [d.id for d in CATALOGUE])
@pytest.mark.criterion("selftest.defect", "a planted defect is caught by the criterion meant to catch it")
def test_planted_defect_is_caught(defect_id, selftest_runs, gate_record):
    outcome = selftest_runs.outcome(defect_id)
    d = outcome.defect
    summary = outcome.summary()
    c = gate_record.criterion(f"selftest.defect.{d.id}", f"defect {d.number} ({d.title}) fails "
                              f"{', '.join(d.criteria)} with a message naming the cause", units="",
                              threshold="caught", basis=BASIS)
    first = next(iter(summary["messages"].values()), None) or ""
    c.measure("caught" if outcome.caught else "missed", outcome.caught,
              reason="; ".join(outcome.problems) or first, **summary)
    c.assert_passed(f"defect {d.number} {d.id} not caught: " + "; ".join(outcome.problems))


@pytest.mark.criterion("selftest.mutation_score", "every planted defect caught, no false alarm")
def test_mutation_score(selftest_runs, gate_record):
    score = selftest_runs.score()
    c = gate_record.criterion("selftest.mutation_score", "planted defects caught by the criterion meant to catch "
                              "them (defect -> criterion -> caught -> message), and false alarms on the clean chain",
                              units="caught/planted", threshold="all caught, 0 false alarms", basis=BASIS)
    c.measure(f"{score.caught}/{score.planted}", score.passed, reason=score.headline(),
              caught=score.caught, planted=score.planted, defects=[o.summary() for o in score.outcomes],
              false_alarms=[f"{j.criterion}: {j.first_line}" for j in score.false_alarms])
    c.assert_passed("\n".join([score.headline(), *score.table()]))
