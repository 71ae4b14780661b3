"""Driving the CANN tools of an Ascend 310/310P host and judging what they produce (SPEC §5, §7; issue 5).

* tools, process, npu_smi, atc, inference - finding and running ATC, ais_bench, the legacy benchmark, npu-smi;
* results_folder - the ``--npu-results DIR`` layout: finding outputs, batch composition, ATC consoles, inputs check;
* collect, evidence - filling that layout on this host (live) or reading a copied one (replay), same questions;
* references, judge - ONNX Runtime references in the OM's batch company; parity, batch invariance, BN semantics,
  card fps against the T4;
* runner - :class:`~vnet_accept.ascend.runner.OmRunner`, the OM behind the runner interface (backend ``om-npu``).

Pure functions build commands and locate outputs; small classes carry results and failures. Nothing here holds
global state or touches a device at import time, so every piece can be tested on a machine without CANN (with
stand-in executables for the process handling).
"""
