"""helpers.reports.narrate: prose from the run, not-run sections, headline records and verdicts."""

import json

import nbformat
import numpy as np
import pytest

from helpers import stats
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


def test_a_verdict_comes_with_its_statistic():
    diff = np.full(50, 0.028)
    diff[::2] += 0.026
    diff[1::2] -= 0.026
    verdict = narrate.compare_folds("tuned", 0.6 + diff, "default", np.full(50, 0.6),
                                    n_train=800, n_test=200)
    assert verdict.clear and str(verdict).startswith("tuned is better than default")
    assert "t = 2.05" in str(verdict) and verdict.comparison.test == "corrected resampled t-test"
    same = narrate.compare_folds("a", [0.5, 0.6, 0.55, 0.6, 0.5], "b", [0.55, 0.5, 0.6, 0.55, 0.55],
                                 n_train=80, n_test=20)
    assert str(same).startswith("no clear difference between a and b") and not same.clear
    record = narrate.headline(gain=verdict)["gain"]
    assert record["method"] == "corrected resampled t-test" and record["n"] == 50
    assert record["p_value"] == pytest.approx(0.0456, abs=1e-3)


def test_mcnemar_verdict_on_a_shared_test_split():
    truth = np.array(["a"] * 40)
    better = np.array(["a"] * 30 + ["b"] * 10)
    worse = np.array(["a"] * 18 + ["b"] * 22)
    verdict = narrate.compare_on_test("m1", truth, better, "m2", worse, split="fault-filtered")
    assert str(verdict).startswith("m1 is better than m2 on accuracy (McNemar exact over 40 "
                                   "fault-filtered test clips")
    assert verdict.comparison.p_value == pytest.approx(2 * 0.5 ** 12)  # 12 discordant, all one way


def test_small_n_is_too_few_to_say():
    assert str(narrate.share(2, 2)) == "too few to say (2 of 2)"
    assert narrate.share(2, 2).record()["value"] is None
    text = str(narrate.share(3, 10, split="songs"))
    assert text == "0.300 [95% CI 0.067–0.652] (3 of 10, songs)"
    few = narrate.compare_paired("x", [1, 2, 3], "y", [0, 1, 1])
    assert str(few).startswith("too few to say whether x differs from y")


def test_headline_carries_n_and_interval(shell):
    recorded = narrate.headline(acc=narrate.share(171, 290, split="fault-filtered test"),
                                mean=narrate.estimate(0.5, (0.4, 0.6), 30, "folds"))
    assert recorded["acc"]["n"] == 290 and recorded["acc"]["split"] == "fault-filtered test"
    assert recorded["acc"]["ci95"] == [round(v, 4) for v in stats.binomial_interval(171, 290)]
    assert recorded["mean"] == {"value": 0.5, "ci95": [0.4, 0.6], "n": 30, "split": "folds",
                                "method": "bootstrap 95%"}
    headline, _ = narrate.collect(shell.notebook())
    assert headline["acc"]["value"] == pytest.approx(0.5897, abs=1e-4)


def test_find_input_prefers_parameter_then_environment_then_shared(tmp_path, monkeypatch, shell):
    shared = tmp_path / "shared"
    (shared / "seed").mkdir(parents=True)
    (shared / "seed" / "rows.csv").write_text("a\n1\n")
    mine = tmp_path / "mine.csv"
    mine.write_text("b\n2\n")
    monkeypatch.setenv("MUSIC_STUDY_SHARED_DATA", str(shared))
    monkeypatch.delenv("MUSIC_STUDY_EXTRA_ROWS", raising=False)
    assert narrate.find_input("extra_rows", None, shared="seed/rows.csv") == shared / "seed" / "rows.csv"
    monkeypatch.setenv("MUSIC_STUDY_EXTRA_ROWS", str(mine))
    assert narrate.find_input("extra_rows", None, shared="seed/rows.csv") == mine
    assert narrate.find_input("extra_rows", str(shared / "seed" / "rows.csv")).name == "rows.csv"
    monkeypatch.delenv("MUSIC_STUDY_EXTRA_ROWS")
    assert narrate.find_input("extra_rows", None, shared="seed/absent.csv", needs="the rows",
                              section="Extra rows") is None
    with pytest.raises(InputError, match="extra_rows"):
        narrate.find_input("extra_rows", str(tmp_path / "missing.csv"))
    inputs = narrate.collect_inputs(shell.notebook())
    assert [(i["source"], i["path"]) for i in inputs] == [
        ("shared data", "rows.csv"), ("$MUSIC_STUDY_EXTRA_ROWS", "mine.csv"), ("parameter", "rows.csv")]
    import hashlib
    assert inputs[1]["sha256"] == hashlib.sha256(b"b\n2\n").hexdigest()[:12]
    _, skipped = narrate.collect(shell.notebook())
    assert skipped == [{"section": "Extra rows",
                        "reason": "needs the rows (set parameter `extra_rows`)"}]


def test_groups_are_compared_by_the_difference_of_their_means():
    high, low = np.full(20, 0.5) + np.linspace(-0.1, 0.1, 20), np.full(30, 0.1) + np.linspace(-0.1, 0.1, 30)
    assert str(narrate.compare_groups("hymns", high, "folk", low, unit="songs")).startswith(
        "hymns is higher than folk (bootstrap difference of means over 20 songs in the smaller group")
    assert str(narrate.compare_groups("a", [0.1, 0.2, 0.3], "b", [0.2, 0.1, 0.3])).startswith("too few to say")
