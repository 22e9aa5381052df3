"""The report runner: quick mode over every notebook, and failure handling."""

import json

import nbformat
import pytest

from helpers import report


def _write_notebook(path, source_lines):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("value = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(s) for s in source_lines]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def test_a_failing_notebook_is_marked_and_the_others_still_run(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_fine.ipynb", ["print(value * 2)"])
    _write_notebook(notebooks / "02_broken.ipynb", ["raise RuntimeError('deliberate failure')"])
    _write_notebook(notebooks / "03_after.ipynb", ["print('still ran')"])
    out = tmp_path / "out"
    runs = report.run_reports(output_dir=out, notebook_dir=notebooks, overrides={"01": {"value": 21}})
    assert [r.status for r in runs] == ["ok", "failed", "ok"]
    assert "deliberate failure" in runs[1].error
    assert runs[0].parameters == {"value": 21}
    assert runs[0].effective == {"value": 21} and runs[2].effective == {"value": "1"}
    index = (out / "index.html").read_text()
    assert "failed" in index and "deliberate failure" in index and "03_after.html" in index
    assert "<b>value = 21</b>" in index and "value = 1<" in index
    assert json.loads((out / "index.json").read_text())["runs"][2]["status"] == "ok"
    assert "42" in (out / "01_fine.html").read_text()


@pytest.mark.slow
def test_quick_report_renders_every_notebook_without_errors(tmp_path, gtzan_audio_dir, shared_data):
    overrides = {"01": {"audio_dir": str(gtzan_audio_dir)},
                 "02": {"gtzan_audio_dir": str(gtzan_audio_dir)},
                 "03": {"extra_rows": str(shared_data / "seed" / "features_30_secActive.csv")},
                 "07": {"liked_file": str(shared_data / "seed" / "ytmusic_liked_songs.txt")}}
    runs = report.run_reports(quick=True, output_dir=tmp_path, overrides=overrides)
    assert runs and all(r.status == "ok" for r in runs), [(r.name, r.error) for r in runs]
    for run in runs:
        page = (tmp_path / f"{run.name}.html").read_text()
        assert "Traceback (most recent call last)" not in page
        executed = nbformat.read(str(tmp_path / f"{run.name}.ipynb"), as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{run.name}: {errors[:1]}"
    assert (tmp_path / "index.html").is_file()
