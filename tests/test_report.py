"""The report runner: the front page and index.json, the reader's version, quick mode over
every notebook, and failure handling."""

import json
import re
import warnings

import nbformat
import pytest

from helpers.errors import InputError
from helpers.paths import project_root
from helpers.reports import runner as report

NARRATING_CELLS = [
    "from helpers.reports.narrate import headline, not_run, say",
    "say('doubled: **{v}**', v=value * 2)",
    "not_run('Audio section', needs='the GTZAN audio', parameter='audio_dir')",
    "headline(doubled=value * 2, ratio=0.5)",
]


def _write_notebook(path, source_lines):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("value = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(s) for s in source_lines]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def test_a_failing_notebook_is_marked_and_the_others_still_run(tmp_path):
    """Two at a time (``jobs=2``): the slow first notebook finishes last, the index keeps
    notebook order (one at a time is what every other report test runs)."""
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_fine.ipynb", ["import time; time.sleep(2)", "print(value * 2)"])
    _write_notebook(notebooks / "02_broken.ipynb", ["raise RuntimeError('deliberate failure')"])
    _write_notebook(notebooks / "03_after.ipynb", ["print('still ran')"])
    out = tmp_path / "out"
    runs = report.run_reports(output_dir=out, notebook_dir=notebooks, overrides={"01": {"value": 21}},
                              jobs=2)
    assert [r.name for r in runs] == ["01_fine", "02_broken", "03_after"]
    assert [r["name"] for r in json.loads((out / "index.json").read_text())["runs"]] == \
        ["01_fine", "02_broken", "03_after"]
    assert [r.status for r in runs] == ["ok", "failed", "ok"]
    assert "deliberate failure" in runs[1].error
    assert runs[0].parameters == {"value": 21}
    assert runs[0].effective == {"value": 21} and runs[2].effective == {"value": "1"}
    index = (out / "index.html").read_text()
    assert "failed" in index and "deliberate failure" in index and "03_after.html" in index
    assert re.search(r'<b class="passed"[^>]*>value=21</b>', index)  # passed: marked
    assert re.search(r"<span[^>]*>value=1</span>", index)  # the notebook's default: plain
    assert json.loads((out / "index.json").read_text())["runs"][2]["status"] == "ok"
    assert "42" in (out / "01_fine.html").read_text()
    with pytest.raises(InputError, match="--jobs 0: use a positive number"):
        report.run_reports(output_dir=out, notebook_dir=notebooks, jobs=0)


def test_index_records_headline_skipped_commit_and_environment(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_narrates.ipynb", NARRATING_CELLS)
    out = tmp_path / "out"
    runs = report.run_reports(output_dir=out, notebook_dir=notebooks,
                              overrides={"01": {"value": 21}})
    assert runs[0].status == "ok", runs[0].error
    index = json.loads((out / "index.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", index["commit"])
    for package in ["python", "numpy", "scipy", "librosa", "scikit-learn", "pandas", "papermill"]:
        assert index["environment"][package], package
    assert index["total_seconds"] >= 0 and index["machine"]["cpus"] >= 1
    run = index["runs"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", run["started"])
    assert {"name", "status", "seconds", "parameters", "headline", "skipped", "html"} <= set(run)
    assert run["headline"] == {"doubled": 42, "ratio": 0.5}
    assert run["skipped"] == [{"section": "Audio section",
                               "reason": "needs the GTZAN audio (set parameter `audio_dir`)"}]
    assert run["html"] == "01_narrates.html" and run["ipynb"] == "01_narrates.ipynb"
    front = (out / "index.html").read_text()
    for shown in ["doubled", "Audio section", "needs the GTZAN audio", 'href="01_narrates.ipynb"',
                  index["environment"]["numpy"], index["commit"][:12]]:
        assert shown in front, shown
    page = (out / "01_narrates.html").read_text()
    assert "Not run: Audio section" in page and "doubled: <strong>42</strong>" in page
    assert "vnd.music-study" not in page  # the raw records feed the index only


def test_commit_and_versions_are_read_once_per_run(tmp_path, monkeypatch):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_one.ipynb", ["print(value)"])
    _write_notebook(notebooks / "02_two.ipynb", ["print(value)"])
    calls = []
    for name in ("source_commit", "environment_versions"):
        real = getattr(report, name)
        monkeypatch.setattr(report, name, lambda real=real, name=name: calls.append(name) or real())
    out = tmp_path / "out"
    report.run_reports(output_dir=out, notebook_dir=notebooks)
    assert sorted(calls) == ["environment_versions", "source_commit"]  # three indexes written
    index = json.loads((out / "index.json").read_text())
    assert index["commit_detail"] == report.source_commit()
    assert index["environment"] == report.environment_versions()
    # the index of a caller that passes neither still reads both itself
    record = report.index_record([], quick=False)
    assert record["commit_detail"] == index["commit_detail"]
    assert record["environment"] == index["environment"]


def _unrepresentable_warnings(render):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render()
    return [w for w in caught if "not able to be represented" in str(w.message)]


def test_rendering_is_quiet_about_the_narrate_records(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_narrates.ipynb", NARRATING_CELLS)
    out = tmp_path / "out"
    report.run_reports(output_dir=out, notebook_dir=notebooks)
    executed = out / "01_narrates.ipynb"
    assert not _unrepresentable_warnings(lambda: report.render_html(executed, tmp_path / "a.html"))

    def plain_nbconvert():  # the control: without the filter nbconvert warns once per record
        from nbconvert import HTMLExporter
        HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    assert len(_unrepresentable_warnings(plain_nbconvert)) == 2
    # a notebook already read renders the same page as its file
    report.render_html(nbformat.read(str(executed), as_version=4), tmp_path / "b.html")
    assert (tmp_path / "b.html").read_text() == (tmp_path / "a.html").read_text()
    assert (tmp_path / "a.html").read_text() == (out / "01_narrates.html").read_text()


def test_no_input_leaves_code_out_of_the_html(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_narrates.ipynb", NARRATING_CELLS)
    out = tmp_path / "out"
    report.run_reports(output_dir=out, notebook_dir=notebooks, no_input=True)
    page = (out / "01_narrates.html").read_text()
    assert "doubled: <strong>2</strong>" in page
    assert "from helpers.reports.narrate import" not in page and "not_run(" not in page
    assert json.loads((out / "index.json").read_text())["no_input"] is True


def test_report_command_accepts_no_input():
    from helpers.cli import build_parser

    args = build_parser().parse_args(["report", "--no-input", "--only", "01"])
    assert args.no_input is True


def test_source_commit_marks_a_dirty_tree():
    commit = report.source_commit(project_root())
    if commit["sha"] == "unknown":
        pytest.skip("not a git checkout")
    assert commit["label"] == commit["sha"] + ("-dirty" if commit["dirty"] else "")


def test_long_parameter_values_are_shortened_on_the_front_page():
    assert report._short("/tmp/pytest-of-root/pytest-12/some/long/folder/clips.csv") == "…/clips.csv"
    shipped = '{"wesnoth_heroes_rite": "classical", "singularity_coherence": "electronic"}'
    assert report._short(shipped) == shipped  # text is shown whole; the page wraps it
    assert len(report._short("x" * 1000)) == 400


@pytest.mark.slow
def test_quick_report_renders_every_notebook_without_errors(quick_reports):
    runs = [report.NotebookRun(**run) for run in json.loads((quick_reports / "index.json").read_text())["runs"]]
    assert runs and all(r.status == "ok" for r in runs), [(r.name, r.error) for r in runs]
    for run in runs:
        page = (quick_reports / f"{run.name}.html").read_text()
        assert "Traceback (most recent call last)" not in page
        executed = nbformat.read(str(quick_reports / f"{run.name}.ipynb"), as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{run.name}: {errors[:1]}"
    assert (quick_reports / "index.html").is_file()
    index = json.loads((quick_reports / "index.json").read_text())
    for run in index["runs"]:
        assert isinstance(run["headline"], dict) and isinstance(run["skipped"], list), run["name"]
        if run["name"][:2] in OWN_NOTEBOOKS:
            assert run["headline"], f"{run['name']} records no headline result"


#: The notebooks this file checks page by page (the others are checked in their own tests).
OWN_NOTEBOOKS = ("01", "02", "04")
PROGRESS_OR_WARNING = re.compile(r"\r|\d+%\||it/s|file/s|Warning|warn\(|Traceback", re.I)


@pytest.mark.slow
def test_quick_reports_of_01_02_04_are_clean_pages(quick_reports):
    """No stderr output (progress bars, warnings), no temporary paths, no raw records; a
    headline, and one not-run line per skipped section."""
    import tempfile

    out = quick_reports
    runs = [report.NotebookRun(**run) for run in json.loads((out / "index.json").read_text())["runs"]
            if run["name"][:2] in OWN_NOTEBOOKS]
    assert [r.status for r in runs] == ["ok"] * 3, [(r.name, r.error) for r in runs]
    temporary = {str(out.parent), tempfile.gettempdir() + "/"}
    for run in runs:
        executed = nbformat.read(str(out / f"{run.name}.ipynb"), as_version=4)
        for number, cell in enumerate(executed.cells):
            for output in cell.get("outputs", []):
                where = f"{run.name} cell {number}"
                if output.get("output_type") == "stream":
                    assert output["name"] == "stdout", f"{where}: stderr {output['text'][:200]!r}"
                    assert not PROGRESS_OR_WARNING.search(output["text"]), where
                shown = json.dumps({k: v for k, v in output.get("data", {}).items()
                                    if not k.startswith("image/")})
                assert not any(t in shown for t in temporary), f"{where}: a temporary path"
        assert run.headline, f"{run.name}: no headline"
        page = (out / f"{run.name}.html").read_text()
        for record in run.skipped:
            assert f"Not run: {record['section']}" in page
        assert "vnd.music-study" not in page
    assert [s["section"] for s in runs[2].skipped] == ["Your liked songs"]  # 04 without a CSV


def test_extraction_draws_no_progress_bar_off_a_terminal(shipped_songs, capfd):
    from helpers.features import batch

    batch.extract_table(shipped_songs[:1], duration=2.0, cache=False, progress=True)
    assert "extracting" not in capfd.readouterr().err  # stderr is not a terminal under pytest


def test_index_shows_each_input_used_with_its_fingerprint_and_estimates_with_n(tmp_path, monkeypatch):
    import hashlib

    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    monkeypatch.setenv("MUSIC_STUDY_EXTRA_ROWS", str(rows))
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_inputs.ipynb", [
        "from helpers.reports.narrate import find_input, headline, share",
        "path = find_input('extra_rows', None, shared='seed/none.csv')",
        "headline(acc=share(171, 290, split='fault-filtered test'), few=share(2, 2))"])
    out = tmp_path / "out"
    runs = report.run_reports(output_dir=out, notebook_dir=notebooks)
    assert runs[0].status == "ok", runs[0].error
    digest = hashlib.sha256(rows.read_bytes()).hexdigest()[:12]
    run = json.loads((out / "index.json").read_text())["runs"][0]
    assert run["inputs"] == [{"name": "extra_rows", "path": "rows.csv",
                              "source": "$MUSIC_STUDY_EXTRA_ROWS", "sha256": digest}]
    front = (out / "index.html").read_text()
    assert digest in front and "rows.csv" in front
    assert "0.59 [0.531, 0.647] (n=290, fault-filtered test)" in front
    assert "too few to say (n=2)" in front
