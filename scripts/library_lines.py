"""Library size at a commit: physical lines and code-only lines (no blanks, comments or docstrings) of every
``vnet_accept/**/*.py`` as committed at REV, to compare revisions for the same features.

    python scripts/library_lines.py REV [REV ...]
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize

SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def code_lines(source: str) -> int:
    """Lines holding a token other than a comment, excluding module/class/function docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                   str):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in SKIPPED:
            lines.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in docstrings)
    return len(lines)


def count(rev: str) -> tuple[int, int]:
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "vnet_accept"], check=True,
                           capture_output=True, text=True).stdout.split()
    physical = code = 0
    for path in (f for f in files if f.endswith(".py")):
        source = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
        physical += len(source.splitlines())
        code += code_lines(source)
    return physical, code


if __name__ == "__main__":
    for rev in sys.argv[1:] or ["HEAD"]:
        physical, code = count(rev)
        print(f"{rev}: {physical:,} physical lines, {code:,} code lines")
