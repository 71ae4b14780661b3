"""``vnet-accept --help`` and every sub-command's ``--help`` answer without importing PyTorch or ONNX Runtime (which
take seconds to import): parsers are built from light modules, handlers import on use."""

from __future__ import annotations

import json
import subprocess
import sys

#: Imports that cost seconds; none may happen while only the parsers are built and help is printed.
HEAVY = ("torch", "onnxruntime", "onnx", "matplotlib", "scipy", "SimpleITK")

PROBE = r"""
import argparse, contextlib, io, json, sys
from vnet_accept.cli import build_parser, main

def commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from commands(sub, (*prefix, name))

found = {}
for command in [(), *commands(build_parser())]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*command, "--help"])
        except SystemExit as exc:
            code = exc.code
    found[" ".join(command) or "(top)"] = [code, "usage:" in out.getvalue()]
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"commands": found, "heavy": heavy}))
"""


def test_help_of_every_command_imports_neither_torch_nor_onnxruntime():
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY)], capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"(top)", "gate", "report", "checkpoint train", "infer", "inspect"} <= set(result["commands"])
    bad = {name: v for name, v in result["commands"].items() if v != [0, True]}
    assert not bad, f"--help did not print usage and exit 0: {bad}"
    assert result["heavy"] == [], f"--help imported {result['heavy']}: move those imports into the handlers"
