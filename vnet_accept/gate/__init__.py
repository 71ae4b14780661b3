"""``vnet-accept gate``: run every criterion (pytest underneath), decide, and write what a contributor files.

* :mod:`~vnet_accept.gate.cmdline` - the gate's command line (the options table's flags, aliases, ``--`` pytest
  arguments) and the pytest arguments built from it;
* :mod:`~vnet_accept.gate.inputs` - the resolved inputs checked before any criterion runs;
* :mod:`~vnet_accept.gate.session` - the pytest plugin object that watches the in-process session;
* :mod:`~vnet_accept.gate.outcome` - the exit status from pytest's and the criteria's verdicts;
* :mod:`~vnet_accept.gate.finalise` - the report's gate section, evidence copied into the folder;
* :mod:`~vnet_accept.gate.terminal` - the verdict block the gate ends with;
* :mod:`~vnet_accept.gate.run` - the whole run: staging folder, ``pytest.main``, decide, render, publish.

Exit status: 0 every applicable criterion passed; 1 a criterion (or a test) failed; 2 a usage or environment
error - bad input (one line saying what and what to do, no report), nothing judged, no tests collected, an
interrupted run or a pytest error (the report, if any, is marked incomplete).
"""
