"""``npu-smi info``: which NPUs this host has, and the ``--soc_version`` ATC needs for them (SPEC §5).

The table pairs a row ``| <NPU id>  <Name> | <Health> | …`` with one row per chip below it,
``| <Chip> [<Device>] | <Bus-Id> | …``; ``Name`` is ``310``, ``310P3``, ``910B4`` …, and ATC's SoC version is
``Ascend`` + name (``Ascend310``, ``Ascend310P3``). A process table may follow; it is not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vnet_accept.ascend.process import run_tool
from vnet_accept.ascend.tools import ToolCommand
from vnet_accept.errors import ToolError

_NAME_CELL = re.compile(r"^(?P<npu>\d+)\s+(?P<name>[0-9]{3}[A-Za-z0-9]*)$")
_CHIP_CELL = re.compile(r"^(?P<chip>\d+)(?:\s+(?P<device>\d+))?$")
_BUS_ID = re.compile(r"^(?:[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]|NA)$")
NPU_SMI_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class NpuChip:
    npu_id: int
    name: str  # "310", "310P3" …
    health: str
    chip_id: int
    device_id: int  # the logical id tools take (--device, -device_id)
    bus_id: str | None

    @property
    def soc_version(self) -> str:
        return soc_version_for_name(self.name)


def soc_version_for_name(name: str) -> str:
    return name if name.lower().startswith("ascend") else f"Ascend{name}"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_npu_smi_info(text: str) -> list[NpuChip]:
    """Every chip in an ``npu-smi info`` table; :class:`ToolError` if the text is not such a table."""
    chips: list[NpuChip] = []
    current: tuple[int, str, str] | None = None  # (npu id, name, health) of the row above
    for raw in text.splitlines():
        line = raw.strip()
        if "Process id" in line or "Process name" in line:
            break  # the process table reuses the "NPU Chip" layout
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if len(cells) < 2:
            continue
        if m := _NAME_CELL.match(cells[0]):
            current = (int(m.group("npu")), m.group("name"), cells[1].split()[0] if cells[1] else "")
        elif (m := _CHIP_CELL.match(cells[0])) and current is not None:
            bus = cells[1].split()[0] if cells[1] else ""
            device = m.group("device")
            chips.append(NpuChip(current[0], current[1], current[2], int(m.group("chip")),
                                 int(device) if device is not None else current[0],
                                 bus if _BUS_ID.match(bus) and bus != "NA" else None))
    if not chips:
        raise ToolError("npu-smi info printed no NPU table (no '| <id> <name> | <health> |' rows); is the driver "
                        "loaded? Pass --soc-version (e.g. Ascend310, Ascend310P3) to go without it")
    return chips


def soc_version_of(chips: list[NpuChip], device_ids: tuple[int, ...] | None = None) -> str:
    """The one SoC version of the chips in use (all of them when ``device_ids`` is None)."""
    used = [c for c in chips if device_ids is None or c.device_id in device_ids]
    if device_ids is not None:
        absent = sorted(set(device_ids) - {c.device_id for c in used})
        if absent:
            present = ", ".join(str(c.device_id) for c in chips)
            raise ToolError(f"device id(s) {absent} not in npu-smi info (present: {present}); fix --device-ids")
    names = sorted({c.name for c in used})
    if len(names) != 1:
        raise ToolError(f"the devices in use are of different kinds ({', '.join(names)}); choose --device-ids "
                        "of one kind or pass --soc-version")
    unhealthy = [c for c in used if c.health.upper() not in ("OK", "")]
    if unhealthy:
        raise ToolError(f"device {unhealthy[0].device_id} health is {unhealthy[0].health}, not OK; pick other "
                        "--device-ids or repair it")
    return soc_version_for_name(names[0])


def query_npu_smi(npu_smi: ToolCommand, timeout_s: float = NPU_SMI_TIMEOUT_S) -> list[NpuChip]:
    result = run_tool(npu_smi("info"), timeout_s=timeout_s, tool="npu-smi")
    if result.returncode != 0:
        raise ToolError(f"npu-smi info failed ({result.describe_exit()}); is the driver loaded? Output:\n"
                        f"{result.tail()}")
    return parse_npu_smi_info(result.output)
