"""``ais_bench`` (and its predecessor ``ais_infer``) performance output (SPEC §5).

Formats read:

* the summary JSON: ``<output>/<dirname>_summary.json`` (ais_bench) or ``<output>/<timestamp>/sumary.json``
  (ais_infer). Keys ``NPU_compute_time``/``H2D_latency``/``D2H_latency`` (``min``, ``max``, ``mean``, ``median``,
  ``percentile(99%)`` — ``P99`` in newer versions — and ``count`` in newer ones), ``throughput``, ``args`` (the
  command line as a list), ``filesinfo``, ``npu_compute_time_list``. Fragments that lost their opening brace in
  a README are read with a note;
* the console summary: ``NPU_compute_time (ms): min = …, mean = …`` then
  ``throughput 1000*batchsize(16)/NPU_compute_time.mean(X): Y`` (``batchsize.mean(16)`` and ``Throughput`` in
  newer versions, which may print the statistics as a table), several of them for ``--device 1,2`` followed by
  ``i:0 device_1 throughput:…`` lines, and ais_infer's ``--dymShape_range`` summary.

Throughput is ``1000 · batch size / NPU_compute_time.mean`` per chip (the device id given); with the median
selected it is computed from ``NPU_compute_time.median`` instead.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from vnet_accept.perf.measurement import (
    LatencyStats,
    PerfFileError,
    PerfMeasurement,
    fps_from_latency,
    resolve_statistic,
)
from vnet_accept.perf.text import NUMBER, BatchSize, Line, batch_size_from_name, choose_batch_size, parse_shape
from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_INPUT_SAMPLE_SHAPE

JSON_FORMAT = "ais_bench summary JSON"
CONSOLE_FORMAT = "ais_bench console summary"
DYMSHAPE_FORMAT = "ais_infer dymShape_range console summary"
#: Relative difference above which a printed throughput is not 1000·bs/mean of the same run.
_CONSISTENCY_RTOL = 1e-4

_STATS_LINE = re.compile(r"^(?P<metric>NPU_compute_time|H2D_latency|D2H_latency)\s*\(ms\)\s*:\s*(?P<body>.+)$")
_STAT_PAIR = re.compile(rf"(?P<key>[A-Za-z]+(?:\(\d+(?:\.\d+)?%\))?)\s*=\s*(?P<value>{NUMBER})")
_TABLE_ROW = re.compile(r"^[│|]\s*(?P<metric>NPU_compute_time|H2D_latency|D2H_latency)\s*\(ms\)\s*[│|](?P<rest>.*)$")
_THROUGHPUT = re.compile(
    rf"^throughput\s+1000\s*\*\s*batchsize(?:\.mean)?\((?P<bs>{NUMBER})\)\s*/\s*"
    rf"NPU_compute_time\.mean\((?P<mean>{NUMBER})\)\s*:\s*(?P<fps>{NUMBER})", re.IGNORECASE)
_OPEN_DEVICE = re.compile(r"^open device (?P<device>\d+) success", re.IGNORECASE)
_MODEL_BS = re.compile(r"^try get model batchsize:\s*(?P<bs>\d+)", re.IGNORECASE)
_MULTI_DEVICE = re.compile(rf"^i:(?P<i>\d+)\s+device_(?P<device>\d+)\s+throughput:\s*(?P<fps>{NUMBER})")
_SUMMARY_THROUGHPUT = re.compile(rf"^summary throughput:\s*(?P<fps>{NUMBER})")
_DYM_RUN = re.compile(rf"^run_count:(?P<runs>\d+)\s+success_count:(?P<ok>\d+)\s+avg_throughput:(?P<fps>{NUMBER})")
_DYM_LINE = re.compile(
    rf"^(?P<i>\d+)\s+dymshape:(?P<name>[^:\s]+):(?P<shape>[\d,x]+)\s+bs:(?P<bs>\d+)\s+result:(?P<result>\w+)"
    rf"\s+throughput:(?P<fps>{NUMBER})")
_PERCENTILE_KEY = re.compile(r"^(?:percentile\((?P<a>\d+(?:\.\d+)?)%\)|P(?P<b>\d+(?:\.\d+)?))$", re.IGNORECASE)


def looks_like_json(text: str) -> bool:
    head = text.lstrip()
    return head.startswith("{") or head.startswith('"NPU_compute_time"')


def looks_like_console(lines: list[Line]) -> bool:
    return any(_STATS_LINE.match(line.payload) or _THROUGHPUT.match(line.payload) or _TABLE_ROW.match(line.payload)
               or _DYM_RUN.match(line.payload) for line in lines)


# --- summary JSON ---------------------------------------------------------------------------------------------
def _load_json(text: str, source: str) -> tuple[dict[str, Any], list[str]]:
    try:
        data = json.loads(text)
        notes: list[str] = []
    except ValueError as first:
        # README authors re-wrap the file and drop its opening brace: '"NPU_compute_time": {...}, ... }'.
        stripped = text.strip()
        if not stripped.startswith('"'):
            raise PerfFileError(source, f"not valid JSON ({first}): truncated or damaged (an ais_bench summary is one "
                                "JSON object); copy it again") from None
        try:
            data = json.loads("{" + stripped)
        except ValueError:
            raise PerfFileError(source, f"not valid JSON ({first}), also not with an opening brace added") from None
        notes = ["a fragment without its opening brace (re-wrapped excerpt); read with one added"]
    if not isinstance(data, dict) or not isinstance(data.get("NPU_compute_time"), dict):
        raise PerfFileError(source, "JSON without an NPU_compute_time object: not an ais_bench summary")
    return data, notes


def _stats_from_mapping(stats: Mapping[str, Any], source: str, what: str) -> LatencyStats:
    values: dict[str, float] = {}
    p99 = None
    for key, value in stats.items():
        if key == "count":
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise PerfFileError(source, f"{what}.{key} is {value!r}, not a number")
        match = _PERCENTILE_KEY.match(key)
        if match:
            if float(match.group("a") or match.group("b")) == 99.0:
                p99 = float(value)
        else:
            values[key] = float(value)
    count = stats.get("count")
    return LatencyStats(min_ms=values.get("min"), max_ms=values.get("max"), mean_ms=values.get("mean"),
                        median_ms=values.get("median"), p99_ms=p99,
                        count=int(count) if isinstance(count, (int, float)) else None,
                        count_source="tool" if count is not None else None)


def _argv(args: Any) -> list[str]:
    """ais_bench stores ``sys.argv``; tolerate a dict (``vars(args)``) or one string too."""
    if isinstance(args, list):
        return [str(a) for a in args]
    if isinstance(args, str):
        return shlex.split(args)
    if isinstance(args, dict):
        argv = []
        for key, value in args.items():
            argv += [f"--{key}", str(value)]
        return argv
    return []


def argv_option(argv: list[str], *names: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` (last one wins, as argparse does)."""
    value = None
    for i, token in enumerate(argv):
        for name in names:
            if token == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif token.startswith(name + "="):
                value = token.split("=", 1)[1]
    return value


def parse_summary_json(text: str, source: str, *, statistic: str = "port",
                       batch_size: int | None = None) -> list[PerfMeasurement]:
    data, notes = _load_json(text, source)
    stats = _stats_from_mapping(data["NPU_compute_time"], source, "NPU_compute_time")
    if stats.mean_ms is None or not stats.mean_ms > 0:
        raise PerfFileError(source, "NPU_compute_time has no positive mean; the run timed nothing")
    warnings: list[str] = []
    timings = data.get("npu_compute_time_list")
    if isinstance(timings, list) and timings:
        if stats.count is None:
            stats = replace(stats, count=len(timings), count_source="len(npu_compute_time_list)")
        if isinstance(timings[0], (int, float)):  # multi-thread runs list [start, end] pairs instead
            stats = replace(stats, first_ms=float(timings[0]))

    argv = _argv(data.get("args"))
    bs = _json_batch_size(data, argv, stats, source, batch_size)
    warnings += bs.warnings
    throughput = data.get("throughput")
    if isinstance(throughput, (int, float)) and throughput > 0:
        expected = fps_from_latency(bs.value, stats.mean_ms)
        if abs(throughput - expected) > _CONSISTENCY_RTOL * expected:
            warnings.append(f"the summary's throughput {throughput:.6g} is not 1000·bs/mean = {expected:.6g} at "
                            f"bs{bs.value}; the batch size may be wrong")
    device = argv_option(argv, "--device")
    device_id = int(device) if device is not None and device.isdigit() else None
    if device is not None and device_id is None:
        notes.append(f"--device {device}: several devices in one run; this summary is one of them")
    files = data.get("filesinfo")
    if isinstance(files, dict) and files:
        inputs = sum(len(v.get("infiles", [])) for v in files.values() if isinstance(v, dict))
        notes.append(f"filesinfo: {len(files)} batches, {inputs} input files")
    return [_measurement(JSON_FORMAT, source, bs, stats, statistic, device_id, line=None, notes=notes,
                         warnings=warnings, metric_prefix="NPU_compute_time")]


def _json_batch_size(data: dict[str, Any], argv: list[str], stats: LatencyStats, source: str,
                     explicit: int | None) -> BatchSize:
    content = None
    value = argv_option(argv, "--batchsize", "--batch_size")
    if value is not None and value.isdigit():
        content = (int(value), f"args --batchsize {value}")
    else:
        model = argv_option(argv, "--model", "--om-model", "--om_model")
        if model and batch_size_from_name(model):
            content = (batch_size_from_name(model), f"model name {model} in args")
    try:
        return choose_batch_size(source, content, explicit,
                                 looked_for="args has no --batchsize and no model name with _bs<N>")
    except PerfFileError:
        # Last resort, still from the content: the tool's own throughput = 1000·bs/mean.
        throughput = data.get("throughput")
        if isinstance(throughput, (int, float)) and throughput > 0:
            derived = throughput * stats.mean_ms / 1000.0
            if round(derived) >= 1 and abs(derived - round(derived)) < 1e-3 * derived:
                return BatchSize(round(derived), "content (derived: throughput × NPU_compute_time.mean / 1000)")
        raise


# --- console ----------------------------------------------------------------------------------------------
def _stats_from_line(body: str, source: str, line: Line) -> LatencyStats:
    pairs = {m.group("key"): m.group("value") for m in _STAT_PAIR.finditer(body)}
    if "mean" not in pairs:
        raise PerfFileError(source, f"line {line.number}: NPU_compute_time without a mean")
    return _stats_from_mapping({k: float(v) for k, v in pairs.items()}, source, f"line {line.number}")


def _stats_from_table(rest: str, source: str, line: Line) -> LatencyStats:
    # Newer ais_bench prints a table with columns Metric | min | max | mean | median | P99.
    cells = [c.strip() for c in re.split(r"[│|]", rest) if c.strip()]
    if len(cells) < 5 or not all(re.fullmatch(NUMBER, c) for c in cells[:5]):
        raise PerfFileError(source, f"line {line.number}: table row without min/max/mean/median/P99 numbers")
    mn, mx, mean, median, p99 = (float(c) for c in cells[:5])
    return LatencyStats(min_ms=mn, max_ms=mx, mean_ms=mean, median_ms=median, p99_ms=p99)


def parse_console(lines: list[Line], source: str, *, statistic: str = "port",
                  batch_size: int | None = None) -> list[PerfMeasurement]:
    if any(_DYM_RUN.match(line.payload) for line in lines):
        return parse_dymshape(lines, source, batch_size=batch_size)
    blocks: list[tuple[LatencyStats, Line, re.Match[str] | None]] = []
    pending: tuple[LatencyStats, Line] | None = None
    opened: list[int] = []
    model_bs: tuple[int, Line] | None = None
    per_device: list[re.Match[str]] = []
    summary = None
    for line in lines:
        text = line.payload
        if m := _STATS_LINE.match(text):
            if m.group("metric") == "NPU_compute_time":
                pending = _flush(blocks, pending, (_stats_from_line(m.group("body"), source, line), line))
        elif m := _TABLE_ROW.match(text):
            if m.group("metric") == "NPU_compute_time":
                pending = _flush(blocks, pending, (_stats_from_table(m.group("rest"), source, line), line))
        elif m := _THROUGHPUT.match(text):
            if pending is None:
                # The throughput line repeats the mean; stand-alone it is still a complete figure.
                stats = LatencyStats(mean_ms=float(m.group("mean")))
                blocks.append((stats, line, m))
            else:
                blocks.append((pending[0], line, m))
                pending = None
        elif m := _OPEN_DEVICE.match(text):
            opened.append(int(m.group("device")))
        elif m := _MODEL_BS.match(text):
            model_bs = (int(m.group("bs")), line)
        elif m := _MULTI_DEVICE.match(text):
            per_device.append(m)
        elif m := _SUMMARY_THROUGHPUT.match(text):
            summary = float(m.group("fps"))
    if pending is not None:
        blocks.append((pending[0], pending[1], None))
    if not blocks:
        raise PerfFileError(source, "no NPU_compute_time or throughput line: an ais_bench console log without its "
                            "Performance Summary")

    measurements = []
    for index, (stats, line, match) in enumerate(blocks):
        warnings: list[str] = []
        notes: list[str] = []
        if match is not None:
            printed_bs = float(match.group("bs"))
            if printed_bs != round(printed_bs) or printed_bs < 1:
                raise PerfFileError(source, f"line {line.number}: batch size {printed_bs:g} is not a whole number "
                                    "(dynamic batch?); pass --batch-size for a fixed-batch run")
            bs = choose_batch_size(source, (round(printed_bs), f"throughput line {line.number}"), batch_size)
            if not float(match.group("mean")) > 0:
                raise PerfFileError(source, f"line {line.number}: NPU_compute_time.mean is not positive; the run "
                                    "timed nothing")
            expected = fps_from_latency(bs.value, float(match.group("mean")))
            printed = float(match.group("fps"))
            if abs(printed - expected) > _CONSISTENCY_RTOL * expected:
                warnings.append(f"line {line.number}: printed throughput {printed:.6g} is not "
                                f"1000·bs/mean = {expected:.6g}")
        else:
            content = (model_bs[0], f"'try get model batchsize' on line {model_bs[1].number}") if model_bs else None
            bs = choose_batch_size(source, content, batch_size, looked_for="the summary has no throughput line")
            notes.append("summary without its throughput line (truncated log); fps computed from the mean")
        warnings += bs.warnings
        device_id = _device_for_block(index, len(blocks), match, opened, per_device, notes)
        measurements.append(_measurement(CONSOLE_FORMAT, source, bs, stats, statistic, device_id, line=line.number,
                                         notes=notes, warnings=warnings, metric_prefix="NPU_compute_time"))
    if summary is not None:
        total = sum(m.alternatives["mean"] for m in measurements)
        note = (f"summary throughput {summary:.6g} = sum over {len(measurements)} devices "
                f"(per-device figures are judged, not the sum)")
        if abs(total - summary) > _CONSISTENCY_RTOL * summary:
            note += f"; the per-device figures sum to {total:.6g}"
        measurements = [_with_note(m, note) for m in measurements]
    return measurements


def _flush(blocks: list, pending: tuple[LatencyStats, Line] | None,
           new: tuple[LatencyStats, Line]) -> tuple[LatencyStats, Line]:
    """A second NPU_compute_time line before any throughput line closes the first block without one."""
    if pending is not None:
        blocks.append((pending[0], pending[1], None))
    return new


def _device_for_block(index: int, count: int, match: re.Match[str] | None, opened: list[int],
                      per_device: list[re.Match[str]], notes: list[str]) -> int | None:
    if per_device and match is not None:
        # Multi-device runs print one summary per device in completion order; match them by throughput.
        printed = float(match.group("fps"))
        for candidate in per_device:
            if math.isclose(float(candidate.group("fps")), printed, rel_tol=1e-9):
                return int(candidate.group("device"))
        notes.append("no 'i:N device_D throughput' line matches this summary; device unknown")
        return None
    if count == 1 and len(set(opened)) == 1:
        return opened[0]
    return None


def _with_note(m: PerfMeasurement, note: str) -> PerfMeasurement:
    return replace(m, notes=m.notes + (note,))


def _measurement(file_format: str, source: str, bs: BatchSize, stats: LatencyStats, statistic: str,
                 device_id: int | None, *, line: int | None, notes: list[str], warnings: list[str],
                 metric_prefix: str) -> PerfMeasurement:
    alternatives = {name: fps_from_latency(bs.value, value) for name in ("mean", "median")
                    if (value := stats.get(name)) is not None and value > 0}
    if not alternatives:
        where = f"line {line}: " if line else ""
        raise PerfFileError(source, f"{where}NPU_compute_time has no positive mean or median; the run timed nothing")
    basis = resolve_statistic(statistic, "ais_bench", bs.value)
    if basis not in alternatives:
        notes = notes + [f"no {basis} in this summary; the mean is used"]
        basis = "mean"
    return PerfMeasurement(
        tool="ais_bench", file_format=file_format, source_file=source, batch_size=bs.value,
        batch_size_source=bs.source, fps=alternatives[basis], basis=basis, scope="chip",
        metric=f"1000·bs / {metric_prefix}.{basis}", latency=stats, device_id=device_id, line=line,
        alternatives=alternatives, notes=tuple(notes), warnings=tuple(warnings))


def parse_dymshape(lines: list[Line], source: str, *, batch_size: int | None = None) -> list[PerfMeasurement]:
    """ais_infer ``--dymShape_range``: one throughput per shape; each is a separate figure with its shape."""
    header = next(m for line in lines if (m := _DYM_RUN.match(line.payload)))
    measurements = []
    for line in lines:
        m = _DYM_LINE.match(line.payload)
        if not m:
            continue
        if m.group("result") != "OK":
            continue
        bs = choose_batch_size(source, (int(m.group("bs")), f"line {line.number}"), batch_size)
        fps = float(m.group("fps"))
        shape = parse_shape(m.group("shape"))
        expected = (bs.value, *ONNX_INPUT_SAMPLE_SHAPE)
        warnings = list(bs.warnings)
        if shape != expected or m.group("name") != ONNX_INPUT_NAME:
            warnings.append(f"input {m.group('name')}:{m.group('shape')} is not VNet's {ONNX_INPUT_NAME}:"
                            f"{','.join(map(str, expected))}: this run measured another model")
        measurements.append(PerfMeasurement(
            tool="ais_bench", file_format=DYMSHAPE_FORMAT, source_file=source, batch_size=bs.value,
            batch_size_source=bs.source, fps=fps, basis="mean", scope="chip",
            metric="throughput of one dymShape_range shape (1000·bs / mean)", line=line.number,
            input_name=m.group("name"), input_shape=shape, alternatives={"mean": fps},
            notes=(f"dymShape_range run: {header.group('ok')}/{header.group('runs')} shapes succeeded, "
                   f"avg_throughput {float(header.group('fps')):.6g}",), warnings=tuple(warnings)))
    failed = [line.number for line in lines if (m := _DYM_LINE.match(line.payload)) and m.group("result") != "OK"]
    if not measurements:
        raise PerfFileError(source, "dymShape_range summary without any shape that ran OK")
    if failed:
        measurements = [_with_note(m, f"shapes on lines {failed} did not run OK and are left out")
                        for m in measurements]
    return measurements
