"""The self-test judges each planted defect with the gate's own criterion function, not a sibling path (issue 13).

:data:`vnet_accept.selftest.defects.JUDGED_BY` names, per criterion family, the judge function the self-test calls
(and ``run_defect`` counts its calls while planting). Here each one is held against the gate: the gate's criterion
for that family (a test in :mod:`vnet_accept.checks`, or the fixture it records from) must call the very same
function object.
"""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

from vnet_accept.selftest.defects import CATALOGUE, JUDGED_BY

#: Where the gate judges each family: (check module, the test or fixture that calls the judge function).
GATE_CALLS = {
    "om.tiles_in_place": ("vnet_accept.checks.test_npu", "test_om_tiles_in_place"),
    "om.parity": ("vnet_accept.checks.test_npu", "test_om_parity"),
    "accuracy.error_rate": ("vnet_accept.checks.test_npu", "test_om_error_rate"),
    "data.inputs_match_manifest": ("vnet_accept.checks.test_data_inputs", "test_inputs_match_the_normalised_volumes"),
    "data.uid_coverage": ("vnet_accept.checks.test_data_inputs", "test_every_uid_of_the_split_is_prepared"),
    "export.batch_invariant": ("vnet_accept.checks.test_export", "test_export_is_batch_invariant"),
    "parity.onnxrt_vs_torch": ("vnet_accept.checks.test_parity", "test_parity_full_tile"),
    "perf.throughput": ("vnet_accept.checks.test_npu", "perf_judgement"),
    "checkpoint.loads_strictly": ("vnet_accept.checks.test_export", "test_checkpoint_loads_strictly"),
}


def _called_objects(module, function) -> list[object]:
    """The objects the function calls, resolved in its module's namespace and its own ``from X import Y`` lines."""
    tree = ast.parse(inspect.getsource(function))
    names = dict(vars(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported = importlib.import_module(node.module)
            names.update({a.asname or a.name: getattr(imported, a.name) for a in node.names})
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain, expr = [], node.func
        while isinstance(expr, ast.Attribute):
            chain.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name) or expr.id not in names:
            continue
        obj = names[expr.id]
        try:
            for attr in reversed(chain):
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        found.append(obj)
    return found


def test_every_family_the_catalogue_expects_has_a_gate_function():
    families = {f for d in CATALOGUE for f in d.expect}
    assert families == set(JUDGED_BY) == set(GATE_CALLS)


@pytest.mark.parametrize("family", sorted(GATE_CALLS))
def test_the_gate_calls_the_function_the_self_test_calls(family):
    module_name, name = GATE_CALLS[family]
    module = importlib.import_module(module_name)
    function = getattr(module, name)
    function = getattr(function, "__wrapped__", function)  # a fixture's function
    called = _called_objects(module, function)
    assert any(obj is JUDGED_BY[family] for obj in called), (
        f"{module_name}.{name} does not call {JUDGED_BY[family].__module__}.{JUDGED_BY[family].__qualname__}, the "
        f"function the self-test judges {family} with")
    if name.startswith("test_"):  # the gate's criterion of that family
        marks = [m.args[0] for m in getattr(function, "pytestmark", []) if m.name == "criterion"]
        assert marks and marks[0].startswith(family.split(".")[0]), marks
