"""helpers.reports.narrate: prose from the run, not-run sections, headline records and verdicts."""

import json

import nbformat
import numpy as np
import pytest

from helpers.errors import InputError
from helpers.reports import narrate


class _Shell:
    """Stands in for IPython: collects what narrate displays, as a kernel would."""

    def __init__(self, monkeypatch):
        self.outputs = []
        import IPython
        import IPython.display

        monkeypatch.setattr(IPython, "get_ipython", lambda: self)
        monkeypatch.setattr(IPython.display, "display", self._display)

    def _display(self, obj, raw=False):
        if raw:
            self.outputs.append(nbformat.v4.new_output("display_data", data=obj))
        else:
            self.outputs.append(nbformat.v4.new_output("display_data",
                                                       data={"text/markdown": obj.data}))

    def notebook(self):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("")
        cell.outputs = self.outputs
        nb.cells = [nbformat.v4.new_markdown_cell("# title"), cell]
        return nbformat.reads(nbformat.writes(nb), as_version=4)  # round trip as on disk


@pytest.fixture
def shell(monkeypatch):
    return _Shell(monkeypatch)


def test_say_renders_the_values_and_displays_markdown(shell):
    text = narrate.say("accuracy **{acc:.3f}** on the test split (n={n})", acc=np.float64(0.4216),
                       n=np.int64(290))
    assert text == "accuracy **0.422** on the test split (n=290)"
    assert shell.outputs[0]["data"]["text/markdown"] == text


def test_say_refuses_a_template_field_without_a_value():
    with pytest.raises(KeyError):
        narrate.say("accuracy {acc:.3f}")


def test_not_run_shows_one_line_and_records_section_and_reason(shell):
    reason = narrate.not_run("Parity with the GTZAN table", needs="the GTZAN audio",
                             parameter="gtzan_audio_dir")
    assert reason == "needs the GTZAN audio (set parameter `gtzan_audio_dir`)"
    markdown = [o["data"]["text/markdown"] for o in shell.outputs if "text/markdown" in o["data"]]
    assert markdown == ["**Not run: Parity with the GTZAN table** — " + reason + "."]
    assert narrate.not_run("Quick", needs="a full run") == "needs a full run"


def test_headline_converts_numpy_and_non_finite_values(shell):
    recorded = narrate.headline(acc=np.float32(0.5), n=np.int64(3), bad=float("nan"), name="knn")
    assert recorded == {"acc": 0.5, "n": 3, "bad": None, "name": "knn"}
    assert json.loads(json.dumps(recorded)) == recorded
    # nothing visible: only the raw record
    assert [set(o["data"]) for o in shell.outputs] == [{narrate.HEADLINE_MIME}]


def test_headline_needs_at_least_one_value_and_json_values():
    with pytest.raises(InputError, match="headline"):
        narrate.headline()
    with pytest.raises(InputError, match="not JSON"):
        narrate.headline(table=object())


def test_collect_reads_back_every_record_later_headlines_win(shell):
    narrate.say("text only")
    narrate.headline(acc=0.4, n=10)
    narrate.not_run("A", needs="x")
    narrate.not_run("B", needs="y", parameter="p")
    narrate.headline(acc=0.5)
    headline, skipped = narrate.collect(shell.notebook())
    assert headline == {"acc": 0.5, "n": 10}
    assert skipped == [{"section": "A", "reason": "needs x"},
                       {"section": "B", "reason": "needs y (set parameter `p`)"}]


def test_collect_of_a_notebook_without_records_is_empty():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1")]
    assert narrate.collect(nb) == ({}, [])


def test_outside_ipython_nothing_is_displayed_but_values_return():
    assert narrate.say("{x}", x=1) == "1"
    assert narrate.headline(x=1) == {"x": 1}


@pytest.mark.parametrize(("a", "b", "expected"), [
    ((0.50, 0.62), (0.37, 0.48), "logreg is higher than knn (95% intervals do not overlap)"),
    ((0.37, 0.48), (0.50, 0.62), "knn is higher than logreg (95% intervals do not overlap)"),
    ((0.40, 0.52), (0.50, 0.62),
     "no clear difference between logreg and knn (95% intervals overlap)"),
    ((0.40, 0.50), (0.50, 0.62),
     "no clear difference between logreg and knn (95% intervals overlap)"),  # touching
])
def test_interval_verdict(a, b, expected):
    assert narrate.interval_verdict("logreg", a, "knn", b) == expected


def test_gain_verdict_reads_the_sign_of_the_interval():
    assert narrate.gain_verdict("margin", (-0.033, -0.003)) == (
        "margin: gain below zero (95% interval [-0.033, -0.003])")
    assert narrate.gain_verdict("margin", (0.01, 0.05)).startswith("margin: gain above zero")
    assert "no clear gain" in narrate.gain_verdict("margin", (-0.01, 0.05))
    assert "includes 0" in narrate.gain_verdict("margin", (-0.01, 0.05))
    assert narrate.gain_verdict("x", (0.1, 0.2), level="90%", what="lift") == (
        "x: lift above zero (90% interval [+0.100, +0.200])")


def test_verdicts_refuse_an_interval_upside_down():
    with pytest.raises(InputError, match="interval"):
        narrate.gain_verdict("x", (0.2, 0.1))
    with pytest.raises(InputError, match="interval"):
        narrate.interval_verdict("a", (0.5, 0.4), "b", (0.1, 0.2))


def test_values_that_end_a_cell_are_not_shown_twice():
    text, record, reason = narrate.say("x"), narrate.headline(a=1), narrate.not_run("S", needs="n")
    assert text == "x" and isinstance(text, str) and record == {"a": 1} and reason == "needs n"
    for value in (text, record, reason):
        assert value._ipython_display_() is None  # IPython calls this instead of printing
