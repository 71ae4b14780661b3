"""Driving the CANN tools of an Ascend 310/310P host: ATC, ais_bench, the legacy benchmark, npu-smi (SPEC §5).

Pure functions build commands and locate outputs; small classes carry results and failures. Nothing here holds
global state or touches a device at import time, so a runner can wrap these adapters later and every piece can
be tested on a machine without CANN (with stand-in executables for the process handling).
"""
