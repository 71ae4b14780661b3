"""NVIDIA ``trtexec`` logs: the T4 baseline (SPEC §5, §7).

T4 fps = 1000 · batch size / GPU-compute time (ms). Which statistic of the GPU-compute time is used is the
caller's choice and is always recorded: the port's table took the median at bs1 and the mean elsewhere.

* TensorRT 7 prints blocks: a header line (``[I] GPU Compute``) followed by ``min: X ms``, ``max``, ``mean``,
  ``median``, ``percentile: X ms at 99%``, ``total compute time: X s``. Other blocks (Host Latency, Enqueue Time,
  H2D/D2H Latency) have the same shape; only the block headed ``GPU Compute`` is read.
* TensorRT >= 8 prints one line per metric — ``GPU Compute Time: min = a ms, max = b ms, mean = c ms,
  median = d ms, percentile(99%) = e ms`` — and ``Throughput: X qps`` (inferences, i.e. batches, per second);
  ``Total GPU Compute Time: X s`` is a different line.

The batch size comes from the command line in the log (``--shapes=actual_input_1:16x1x64x80x80`` or the implicit
``--batch=16``) or an input-binding line, else from the file name. When the log shows the input shape it is
checked against VNet's (the port printed a bs16 command for another model).
"""

from __future__ import annotations

import re
import shlex

from vnet_accept.perf.measurement import LatencyStats, PerfFileError, PerfMeasurement, resolve_statistic
from vnet_accept.perf.text import NUMBER, Line, choose_batch_size, parse_shape, to_float
from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_INPUT_SAMPLE_SHAPE

TRT7_FORMAT = "trtexec log (TensorRT 7 blocks)"
TRT8_FORMAT = "trtexec log (TensorRT >= 8 summary lines)"
_GPU_COMPUTE_NAMES = ("GPU Compute", "GPU Compute Time")
_TO_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "": 1.0}

_BLOCK_STAT = re.compile(
    rf"^(?P<key>min|max|mean|median|percentile|total compute time)\s*:\s*(?P<value>{NUMBER})\s*(?P<unit>ms|s|us)?"
    rf"(?:\s+at\s+(?P<pct>{NUMBER})%)?$")
_BLOCK_HEADER = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9 \-]*[A-Za-z])$")
_ONE_LINE = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9 \-]*?)\s*:\s*(?P<body>min\s*=.+)$")
_PAIR = re.compile(rf"(?P<key>[A-Za-z]+(?:\((?P<pct>{NUMBER})%\))?)\s*=\s*(?P<value>{NUMBER})\s*(?P<unit>ms|s|us)?")
_QPS = re.compile(rf"^throughput:\s*(?P<qps>{NUMBER})\s*qps$", re.IGNORECASE)
_TOTAL_GPU = re.compile(rf"^Total GPU Compute Time:\s*(?P<value>{NUMBER})\s*(?P<unit>ms|s)$")
_COMMAND = re.compile(r"^&&&&\s+(?P<status>RUNNING|PASSED|FAILED|WAIVED)\s+TensorRT\.trtexec\b.*?#\s*(?P<cmd>.+)$")
_VERSION_LINE = re.compile(r"^TensorRT version:\s*(?P<version>\d+(?:\.\d+)+)")
_VERSION_TAG = re.compile(r"\[TensorRT v(?P<code>\d+)\]")
_DEVICE = re.compile(r"^Selected Device:\s*(?P<name>.+)$")
_PRECISION = re.compile(r"^Precision:\s*(?P<precision>\S.*)$")
_BINDING = re.compile(r"input binding for (?P<name>\S+) with dimensions (?P<dims>[\dx]+)", re.IGNORECASE)


def looks_like_trtexec(lines: list[Line]) -> bool:
    for line in lines:
        p = line.payload
        if p in _GPU_COMPUTE_NAMES or p.startswith("GPU Compute Time:") or _COMMAND.match(line.text) \
                or p == "=== Performance summary ===" or _VERSION_LINE.match(p):
            return True
    return False


def _version_from_tag(code: str) -> str:
    # [TensorRT v8601] is 8.6.1, [TensorRT v101601] is 10.16.1.
    value = int(code)
    major, rest = (value // 10000, value % 10000) if value >= 10000 else (value // 1000, value % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def parse_trtexec(lines: list[Line], source: str, *, statistic: str = "port",
                  batch_size: int | None = None) -> list[PerfMeasurement]:
    blocks: list[tuple[Line, dict[str, float], float | None]] = []  # (header line, stats in ms, p99 pct)
    one_liners: list[tuple[Line, dict[str, float]]] = []
    current: tuple[Line, dict[str, float]] | None = None
    qps = total_gpu_s = None
    command = status = version = device = precision = binding = None
    for line in lines:
        p = line.payload
        if m := _BLOCK_STAT.match(p):
            if current is not None:
                key = m.group("key")
                value_ms = to_float(m.group("value"), source, f"line {line.number}") * _TO_MS[m.group("unit") or ""]
                if key == "percentile":
                    pct = float(m.group("pct")) if m.group("pct") else None
                    if pct == 99.0:
                        current[1]["p99"] = value_ms
                else:
                    current[1][key] = value_ms
            continue
        current = None
        if m := _ONE_LINE.match(p):
            if m.group("name") == "GPU Compute Time":
                one_liners.append((line, _pairs(m.group("body"), source, line)))
        elif _BLOCK_HEADER.match(p) and p in _GPU_COMPUTE_NAMES:
            current = (line, {})
            blocks.append((line, current[1], None))
        elif _BLOCK_HEADER.match(p):
            current = (line, {})  # another block (Host Latency …): its statistics are read and dropped
        elif m := _QPS.match(p):
            qps = float(m.group("qps"))
        elif m := _TOTAL_GPU.match(p):
            total_gpu_s = float(m.group("value")) * _TO_MS[m.group("unit")] / 1000.0
        elif m := _COMMAND.match(line.text):
            status, command = m.group("status"), m.group("cmd")
            if t := _VERSION_TAG.search(line.text):
                version = version or _version_from_tag(t.group("code"))
        elif m := _VERSION_LINE.match(p):
            version = m.group("version")
        elif m := _DEVICE.match(p):
            device = m.group("name").strip()
        elif m := _PRECISION.match(p):
            precision = m.group("precision").strip()
        elif m := _BINDING.search(p):
            binding = binding or (m.group("name"), m.group("dims"), line.number)

    if status == "FAILED":
        raise PerfFileError(source, "trtexec reports FAILED; the run has no valid measurement")
    found = [(line, stats, TRT7_FORMAT) for line, stats, _ in blocks] + \
            [(line, stats, TRT8_FORMAT) for line, stats in one_liners]
    if not found:
        raise PerfFileError(source, "trtexec output without a GPU Compute summary (a build-only or truncated "
                            "log?); the T4 figure needs the 'GPU Compute' statistics")
    if len(found) > 1:
        where = ", ".join(str(line.number) for line, _, _ in found)
        raise PerfFileError(source, f"{len(found)} GPU Compute summaries (lines {where}); split the log into one "
                            "file per run")
    header, stats, file_format = found[0]
    if "mean" not in stats and "median" not in stats:
        raise PerfFileError(source, f"line {header.number}: GPU Compute summary without mean or median")

    notes: list[str] = []
    warnings: list[str] = []
    input_name, shape, bs_content = _input_from_log(command, binding)
    bs = choose_batch_size(source, bs_content, batch_size, looked_for="the log has no trtexec command line "
                           "with --shapes/--batch and no input-binding line")
    warnings += bs.warnings
    if shape is not None:
        expected = (bs.value, *ONNX_INPUT_SAMPLE_SHAPE)
        if shape != expected or (input_name and input_name != ONNX_INPUT_NAME):
            warnings.append(f"the log's input {input_name or '?'}:{'x'.join(map(str, shape))} is not VNet's "
                            f"{ONNX_INPUT_NAME}:{'x'.join(map(str, expected))}: this log measured another model")
    if command:
        notes.append(f"command: {command}")
        if precision is None and "--fp16" not in command:
            warnings.append("built without --fp16; the port's T4 baseline is fp16")
    if precision is not None and "16" not in precision:
        warnings.append(f"Precision: {precision}; the port's T4 baseline is fp16")
    if device is not None and "T4" not in device:
        warnings.append(f"measured on {device}, not a T4")

    total = stats.get("total compute time")
    total_s = total / 1000.0 if total is not None else total_gpu_s
    count = count_source = None
    if total_s is not None and stats.get("mean"):
        count = round(total_s * 1000.0 / stats["mean"])
        count_source = "derived: total GPU compute time / mean"
    latency = LatencyStats(min_ms=stats.get("min"), max_ms=stats.get("max"), mean_ms=stats.get("mean"),
                           median_ms=stats.get("median"), p99_ms=stats.get("p99"), count=count,
                           count_source=count_source)
    alternatives = {name: 1000.0 * bs.value / value for name in ("mean", "median")
                    if (value := latency.get(name)) is not None and value > 0}
    if not alternatives:
        raise PerfFileError(source, f"line {header.number}: GPU Compute times are not positive; the run timed "
                            "nothing")
    basis = resolve_statistic(statistic, "trtexec", bs.value)
    if basis not in alternatives:
        notes.append(f"no {basis} GPU Compute time in this log; the {next(iter(alternatives))} is used")
        basis = next(iter(alternatives))
    if qps is not None:
        notes.append(f"trtexec throughput {qps:g} qps × bs{bs.value} = {qps * bs.value:.6g} fps (wall-clock, "
                     "not the judged GPU-compute figure)" if qps > 0 else
                     "the log's own throughput line reads 0 qps; fps computed from GPU Compute")
    return [PerfMeasurement(
        tool="trtexec", file_format=file_format, source_file=source, batch_size=bs.value,
        batch_size_source=bs.source, fps=alternatives[basis], basis=basis, scope="gpu",
        metric=f"1000·bs / GPU Compute {basis}", latency=latency, input_name=input_name, input_shape=shape,
        tool_version=version, device_name=device, line=header.number, alternatives=alternatives,
        notes=tuple(notes), warnings=tuple(warnings))]


def _pairs(body: str, source: str, line: Line) -> dict[str, float]:
    stats: dict[str, float] = {}
    for m in _PAIR.finditer(body):
        value_ms = to_float(m.group("value"), source, f"line {line.number}") * _TO_MS[m.group("unit") or ""]
        key = m.group("key")
        if key.startswith("percentile"):
            if m.group("pct") and float(m.group("pct")) == 99.0:
                stats["p99"] = value_ms
        else:
            stats[key] = value_ms
    return stats


def _input_from_log(command: str | None,
                    binding: tuple[str, str, int] | None) -> tuple[str | None, tuple[int, ...] | None,
                                                                   tuple[int, str] | None]:
    """(input name, input shape, (batch size, where)) from the command line, else from an input binding."""
    if command:
        try:
            argv = shlex.split(command)
        except ValueError:
            argv = command.split()
        for token in argv:
            if token.startswith("--shapes="):
                entries = [e.rsplit(":", 1) for e in token.split("=", 1)[1].split(",") if ":" in e]
                chosen = next((e for e in entries if e[0] == ONNX_INPUT_NAME), entries[0] if entries else None)
                if chosen and (shape := parse_shape(chosen[1])):
                    return chosen[0], shape, (shape[0], f"--shapes {chosen[0]}:{chosen[1]} in the command")
            if token.startswith("--batch="):
                value = token.split("=", 1)[1]
                if value.isdigit() and int(value) >= 1:
                    return None, None, (int(value), f"--batch={value} in the command")
    if binding and (shape := parse_shape(binding[1])):
        return binding[0], shape, (shape[0], f"input binding on line {binding[2]}")
    return None, None, None
