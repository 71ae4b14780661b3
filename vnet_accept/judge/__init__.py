"""The judgements: one function per criterion, each returning a :class:`~vnet_accept.judge.criterion.Criterion`.

A judgement takes what was measured (arrays, parsed files, a post-processing report, an inspected graph) and says
pass, fail or "not judged", with the measured value, the threshold in force, the basis of the number and a message
whose first line holds the verdict and the cause. It runs nothing heavy itself: the caller measures, the judgement
judges. The gate's criteria (:mod:`vnet_accept.checks`), the CLI commands that print the same verdict
(``vnet-accept perf``, ``postprocess``, ``inspect``) and the self-test (:mod:`vnet_accept.selftest`) all call these
functions, so a defect the self-test catches is caught by the gate's own code.

* :mod:`~vnet_accept.judge.checkpoint` - ``checkpoint.loads_strictly``;
* :mod:`~vnet_accept.judge.export` - ``export.*`` (contract, BN semantics, batch invariance, hygiene);
* :mod:`~vnet_accept.judge.parity` - ``parity.*``, ``batch_invariance.*``, ``batch_dependence_detected.*``;
* :mod:`~vnet_accept.judge.data` - ``data.inputs_match_manifest``, ``data.uid_coverage``;
* :mod:`~vnet_accept.judge.accuracy` - ``accuracy.error_rate.*``, ``*.tiles_in_place``;
* :mod:`~vnet_accept.judge.om` - ``om.*`` (ATC, inputs, parity, batch invariance, BN semantics);
* :mod:`~vnet_accept.judge.perf` - ``perf.throughput.bs<N>``, ``perf.tier``, ``perf.rule_310p``.
"""
