"""Every ``monkeypatch.setattr`` on a helpers module patches the module that uses the name.

A test that patched a package face or a module that merely re-exports a name would pass while
patching nothing, so each target must be a module (not a package ``__init__``) that defines
the name or imports it and uses it.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

TESTS = Path(__file__).parent


def _aliases(tree: ast.Module) -> dict[str, str]:
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("helpers"):
                    names[alias.asname or alias.name] = alias.name
    return names


def patch_targets(source: str) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of each ``monkeypatch.setattr`` on a helpers module in *source*."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "setattr" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "monkeypatch" and node.args):
            continue
        target = node.args[0]
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            module, _, name = target.value.rpartition(".")
        elif (isinstance(target, ast.Name) and target.id in aliases and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant)):
            module, name = aliases[target.id], node.args[1].value
        else:
            continue  # an object's attribute, or a module outside helpers
        if module.startswith("helpers"):
            found.append((node.lineno, module, name))
    return found


def problem(module: str, name: str) -> str | None:
    """Why patching *module*.*name* would patch nothing, or None when it is the place of use."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return f"{module} is not a module"
    if spec.origin.endswith("__init__.py"):
        return f"{module} is a package face: patch the module that uses {name}"
    source = Path(spec.origin).read_text(encoding="utf-8")
    defined = re.search(rf"^(?:def|class) {name}\b|^{name}\s*[:=]", source, re.M)
    uses = len(re.findall(rf"\b{re.escape(name)}\b", source))
    if defined or uses > 1:
        return None
    return f"{module} does not use {name}"


def test_every_patch_targets_the_module_that_uses_the_name():
    sites = [(path.name, line, module, name) for path in sorted(TESTS.glob("*.py"))
             for line, module, name in patch_targets(path.read_text(encoding="utf-8"))]
    assert len(sites) > 30  # the suite's patches are found at all
    bad = [f"{f}:{line} {module}.{name}: {problem(module, name)}"
           for f, line, module, name in sites if problem(module, name)]
    assert not bad, "\n".join(bad)


def test_the_check_tells_a_face_and_an_unused_name():
    source = ("from helpers import audio\nfrom helpers.audio import decode\n"
              "def test(monkeypatch):\n"
              "    monkeypatch.setattr(audio, 'load_audio', None)\n"
              "    monkeypatch.setattr(decode, 'probe_audio', None)\n"
              "    monkeypatch.setattr('helpers.stats.no_such_name', None)\n")
    verdicts = [problem(module, name) for _, module, name in patch_targets(source)]
    assert "package face" in verdicts[0]
    assert verdicts[1] is None
    assert "does not use" in verdicts[2]
