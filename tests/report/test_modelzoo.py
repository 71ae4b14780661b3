"""modelzoo_level.txt from the verdicts: the mapping, table-driven (SPEC §7, report/modelzoo.py)."""

from __future__ import annotations

import pytest

from vnet_accept.report.modelzoo import Status, format_modelzoo_level, modelzoo_statuses

P, F, S, E = "pass", "fail", "skip", "error"


def _case(build, spec):
    """spec: list of ("acc", source, verdict) / ("tp", bs, chip_fps, t4, verdict|None) / ("c", id, verdict)."""
    out = []
    for item in spec:
        if item[0] == "acc":
            out.append(build.accuracy(item[1], item[2], None if item[2] == S else 0.5))
        elif item[0] == "tp":
            tp = build.throughput(item[1], item[2], item[3], item[4])
            out.append(tp)
        else:
            out.append(build.criterion(item[1], item[2], 1.0 if item[2] != S else None))
    return out


PARITY = ("c", "parity.onnxrt_vs_torch.running.bs1", P)
CASES = {
    # name: (criteria, (Func, judged), (Precision, judged), (Perf, judged))
    "nothing": ([], ("NOK", False), ("NOK", False), ("NOK", False)),
    "cpu only: parity passes, no NPU": ([PARITY], ("NOK", False), ("NOK", False), ("NOK", False)),
    "a functional failure": ([("c", "export.contract", F), ("acc", "om_bs1", P)], ("NOK", True), ("OK", True),
                             ("NOK", False)),
    "a functional error": ([("c", "parity.x", E)], ("NOK", True), ("NOK", False), ("NOK", False)),
    "OM accuracy passes": ([PARITY, ("acc", "om_bs1", P), ("acc", "om_bs16", P)], ("OK", True), ("OK", True),
                           ("NOK", False)),
    "OM accuracy mixed": ([("acc", "om_bs1", P), ("acc", "om_bs16", F)], ("OK", True), ("POK", True),
                          ("NOK", False)),
    "OM accuracy errored counts as not passed": ([("acc", "om_bs1", P), ("acc", "om_bs16", E)], ("OK", True),
                                                 ("POK", True), ("NOK", False)),
    "OM accuracy all fail": ([("acc", "om_bs1", F)], ("OK", True), ("NOK", True), ("NOK", False)),
    "OM accuracy skipped": ([("acc", "om_bs1", S), PARITY], ("NOK", False), ("NOK", False), ("NOK", False)),
    "only ONNX accuracy judged": ([("acc", "onnxrt", P)], ("NOK", False), ("NOK", False), ("NOK", False)),
    "perf: Benchmark, all beat T4": ([("tp", 1, 6.10496, 10.31899, None), ("tp", 16, 6.49396, 10.15731, None)],
                                     ("OK", True), ("NOK", False), ("PERFECT", True)),
    "perf: Official": ([("tp", 1, 2.8, 10.31899, None), ("tp", 16, 6.49396, 10.15731, None)], ("OK", True),
                       ("NOK", False), ("OK", True)),
    "perf: a non-authoritative size below T4": ([("tp", 1, 6.1, 10.3, None), ("tp", 4, 2.0, 10.95, None),
                                                 ("tp", 16, 6.5, 10.2, None)], ("OK", True), ("NOK", False),
                                                ("POK", True)),
    "perf: an errored size is not a pass": ([("tp", 1, 6.1, 10.3, None), ("tp", 8, 6.4, 10.0, E),
                                             ("tp", 16, 6.5, 10.2, None)], ("OK", True), ("NOK", False),
                                            ("POK", True)),
    "perf: Research": ([("tp", 1, 2.0, 10.31899, None), ("tp", 16, 6.49396, 10.15731, None)], ("OK", True),
                       ("NOK", False), ("NOK", True)),
    "perf: bs16 missing": ([("tp", 1, 6.1, 10.3, None)], ("OK", True), ("NOK", False), ("NOK", False)),
    "perf: bs16 skipped": ([("tp", 1, 6.1, 10.3, None), ("tp", 16, 6.5, 10.2, S)], ("OK", True), ("NOK", False),
                           ("NOK", False)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_status_mapping(name, build):
    spec, func, precision, perf = CASES[name]
    statuses = modelzoo_statuses(_case(build, spec))
    got = [(s.value, s.judged) for s in statuses]
    assert got == [func, precision, perf], "\n".join(f"{s.line()} judged={s.judged}: {s.reason}" for s in statuses)
    assert all(s.reason for s in statuses)


def test_skipped_never_makes_ok(build):
    everything_skipped = [build.accuracy(src, "skip", None) for src in ("om_bs1", "om_bs16")]
    everything_skipped += [build.criterion("perf.throughput.bs1", "skip"), build.criterion("npu.om_runs", "skip")]
    statuses = modelzoo_statuses(everything_skipped)
    assert [s.value for s in statuses] == ["NOK", "NOK", "NOK"]
    assert not any(s.judged for s in statuses)


def test_file_format_is_key_value_lines_only(build):
    spec = [("acc", "om_bs1", P), ("acc", "om_bs16", F), ("tp", 1, 6.10496, 10.31899, None),
            ("tp", 16, 6.49396, 10.15731, None)]
    statuses = modelzoo_statuses(_case(build, spec))
    assert format_modelzoo_level(statuses) == "FuncStatus:OK\nPrecisionStatus:POK\nPerfStatus:PERFECT\n"


def test_status_values_are_checked():
    with pytest.raises(ValueError, match="FuncStatus cannot be 'PERFECT'"):
        Status("FuncStatus", "PERFECT", True, "")
