"""npu-smi info: chips, device ids, health and the SoC version ATC needs."""

from __future__ import annotations

import pytest

from vnet_accept.ascend.npu_smi import parse_npu_smi_info, query_npu_smi, soc_version_of
from vnet_accept.ascend.tools import find_npu_smi
from vnet_accept.errors import ToolError

# The 910B layout prints the chip id alone; the logical device id is then the NPU id.
NPU_SMI_910B = """\
| npu-smi 25.5.2                   Version: 25.5.2                                               |
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 5     910B4               | OK            | 89.9        39                0    / 0             |
| 0                         | 0000:41:00.0  | 0           0    / 0          2922 / 32768         |
"""


def test_310_card_with_four_chips(ascend_fixtures):
    chips = parse_npu_smi_info((ascend_fixtures / "npu_smi_info_310_card.txt").read_text())
    assert [c.device_id for c in chips] == [0, 1, 2, 3]
    assert {c.soc_version for c in chips} == {"Ascend310"}
    assert chips[0].bus_id == "0000:3B:00.0"
    assert soc_version_of(chips, (0, 1, 2)) == "Ascend310"


def test_unhealthy_and_absent_devices_are_refused(ascend_fixtures):
    chips = parse_npu_smi_info((ascend_fixtures / "npu_smi_info_310_card.txt").read_text())
    with pytest.raises(ToolError, match="device 3 health is Warning"):
        soc_version_of(chips, (0, 3))
    with pytest.raises(ToolError, match=r"device id\(s\) \[7\] not in npu-smi info"):
        soc_version_of(chips, (0, 7))


def test_process_table_is_not_read_as_chips(ascend_fixtures):
    text = (ascend_fixtures / "npu_smi_info_310p3_with_processes.txt").read_text()
    chips = parse_npu_smi_info(text)
    assert [(c.npu_id, c.device_id) for c in chips] == [(0, 0), (1, 1)]
    assert soc_version_of(chips) == "Ascend310P3"


def test_chip_rows_without_a_device_column():
    (chip,) = parse_npu_smi_info(NPU_SMI_910B)
    assert (chip.npu_id, chip.chip_id, chip.device_id, chip.soc_version) == (5, 0, 5, "Ascend910B4")


def test_mixed_kinds_need_a_choice(ascend_fixtures):
    chips = parse_npu_smi_info((ascend_fixtures / "npu_smi_info_310_card.txt").read_text() + NPU_SMI_910B)
    with pytest.raises(ToolError, match="different kinds .*310, 910B4"):
        soc_version_of(chips, (0, 5))


def test_text_without_a_table():
    with pytest.raises(ToolError, match="no NPU table.*--soc-version"):
        parse_npu_smi_info("dcmi model initialized failed, because the device is used. ret is -8020\n")


def test_query_through_a_stand_in(stand_in, ascend_fixtures):
    good = stand_in("npu-smi", output=ascend_fixtures / "npu_smi_info_310p3_with_processes.txt")
    assert soc_version_of(query_npu_smi(find_npu_smi(good.path))) == "Ascend310P3"
    assert good.calls == [["info"]]
    bad = stand_in("npu-smi-broken", output="dcmi module initialize failed. ret is -8005\n", exit_code=8)
    with pytest.raises(ToolError, match="(?s)npu-smi info failed \\(exit status 8\\).*-8005"):
        query_npu_smi(find_npu_smi(bad.path))
