"""The workspace's own plumbing: packaging, environment files, notebooks, command line."""

import json
import logging
import re
import subprocess
import sys
import tomllib

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.paths import project_root
from helpers.reports.runner import discover_notebooks

NOTEBOOKS = discover_notebooks(project_root() / "notebooks")

#: Notebooks other engineers are fixing on their own branches (issue 14). Their checks are
#: expected to fail until those branches are merged; non-strict, so a fix shows as XPASS.
#: Remove an entry once its notebook is merged.
FIXED_ELSEWHERE: dict[str, str] = {}


def _per_notebook(check: str):
    """Parametrize over the notebooks; those fixed on other branches are expected to fail."""
    params = []
    for path in NOTEBOOKS:
        marks = ()
        if path.stem in FIXED_ELSEWHERE:
            marks = pytest.mark.xfail(reason=f"{FIXED_ELSEWHERE[path.stem]}: {check}",
                                      strict=False)
        params.append(pytest.param(path, id=path.stem[:2], marks=marks))
    return pytest.mark.parametrize("notebook", params)

# conda-forge names that differ from the PyPI names in pyproject.toml
CONDA_TO_PYPI = {"pysoundfile": "soundfile", "vadersentiment": "vadersentiment",
                 "soxr-python": "soxr"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].strip().lower()


def test_environment_yml_lists_the_same_packages_as_pyproject(root):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pypi = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    conda -= {"python", "pip", "distributed"}  # distributed is dask[distributed]'s extra
    assert conda == pypi
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def _project_requirements(root) -> list[Requirement]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def _lock_pins(root) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of requirements.lock."""
    text = (root / "requirements.lock").read_text()
    return {canonicalize_name(name): version
            for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^ \\;]+)", text, re.M)}


def test_lock_pins_every_dependency_of_pyproject_with_hashes(root):
    pins = _lock_pins(root)
    assert len(pins) > 50, "requirements.lock looks empty"
    for requirement in _project_requirements(root):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: run `make lock`")
    assert "distributed" in pins, "dask[distributed]'s extra is not pinned"
    text = (root / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text.split("\n", 2)[-1])
    unhashed = [e.split()[0] for e in entries if "==" in e and "--hash=sha256:" not in e]
    assert not unhashed, f"pinned without a hash: {unhashed[:5]}"


def test_make_installs_from_the_lock_and_can_refresh_it(root):
    makefile = (root / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in makefile and "--no-deps -e ." in makefile
    assert re.search(r"^lock:", makefile, re.M) and "--generate-hashes" in makefile
    assert re.search(r"^\$\(STAMP\): pyproject.toml \$\(LOCK\)", makefile, re.M)
    assert re.search(r"^(report|test): \$\(STAMP\)", makefile, re.M)


@_per_notebook("papermill must parse its parameters cell")
def test_papermill_parses_every_parameter_without_warnings(notebook, caplog):
    import papermill

    cell = next(c for c in nbformat.read(str(notebook), as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))
    assigned = re.findall(r"^([A-Za-z_]\w*)\s*=", cell.source, re.M)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        parsed = papermill.inspect_notebook(str(notebook))
    assert not [r.getMessage() for r in caplog.records], notebook.name
    assert sorted(parsed) == sorted(assigned), f"{notebook.name}: parameters papermill misses"


def _logic_lines(source: str) -> int:
    """Lines of a code cell that do something: not blank, not comments, not imports."""
    return sum(1 for line in source.splitlines()
               if line.strip() and not line.strip().startswith(("#", "import ", "from ")))


@_per_notebook("code cells longer than 20 lines of logic belong in helpers")
def test_no_code_cell_is_longer_than_twenty_lines_of_logic(notebook):
    cells = nbformat.read(str(notebook), as_version=4).cells
    long = [(i, _logic_lines(c.source)) for i, c in enumerate(cells)
            if c.cell_type == "code" and _logic_lines(c.source) > 20]
    assert not long, f"{notebook.name}: (cell, lines) {long}: move the logic into helpers"


def test_every_notebook_has_a_parameters_cell_and_no_outputs(root):
    notebooks = discover_notebooks(root / "notebooks")
    assert notebooks, "no numbered notebooks found"
    for path in notebooks:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        for cell in code:
            assert not cell.get("outputs"), f"{path.name}: committed outputs (strip them)"
            assert cell.get("execution_count") is None, f"{path.name}: committed execution counts"


def test_command_line_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "helpers", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ["extract", "evaluate", "predict", "tags", "recommend", "lyrics", "serve",
                    "report"]:
        assert command in result.stdout


def test_console_script_is_declared(root):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["music-study"] == "helpers.cli:main"
    assert project["name"] == "music-recommendation-study"


def test_ci_script_requires_shared_data_and_calls_make_test(root):
    ci = (root / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert "MUSIC_STUDY_REQUIRE_SHARED_DATA=1" in ci
    assert "make test" in ci
    readme = (root / "README.md").read_text()
    assert "make test" in readme and "make report" in readme


def test_ruff_is_clean(root):
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks",
                             "tools"],
                            cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
