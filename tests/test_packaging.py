"""The workspace's own plumbing: packaging, environment files, notebooks, command line."""

import json
import re
import subprocess
import sys
import tomllib

import yaml

from helpers.report import discover_notebooks

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
    for command in ["extract", "evaluate", "predict", "recommend", "lyrics", "serve", "report"]:
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
