"""Performance files of every tool the port used, read into one result type and judged by SPEC §7's rules.

* :mod:`~vnet_accept.perf.parsers` — ``parse_perf_file``/``parse_perf_paths``: legacy benchmark, ais_bench, trtexec;
* :mod:`~vnet_accept.perf.measurement` — ``PerfMeasurement``, the basis vocabulary, ``PerfFileError``;
* :mod:`~vnet_accept.perf.rules` — card fps vs T4, placement tier, the 310P rule, PerfStatus, run validity;
* :mod:`~vnet_accept.perf.card_basis` — is the card figure built on the right number of chips.

The judgement over all of it is :func:`vnet_accept.judge.perf.throughput` (``vnet-accept perf``, the gate's
``perf.*`` criteria and the self-test).
"""
