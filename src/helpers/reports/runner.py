"""Run every numbered notebook headless with papermill and render HTML reports.

``music-study report`` executes each ``notebooks/NN_*.ipynb`` into ``reports/NN_*.ipynb``,
renders ``reports/NN_*.html`` and writes the front page ``reports/index.html`` with its
machine-readable twin ``reports/index.json``: per notebook its status, run time, headline
results and the sections that did not run (both recorded by the notebook through
:mod:`helpers.reports.narrate`), its parameters and links; for the whole run the total time, the commit
and the versions of Python and the key packages. A failing notebook is recorded with its error;
the others still run. ``--no-input`` renders a reader's version without code cells.

Quick mode passes the small-data parameters a notebook declares in its metadata::

    "metadata": {"music_study": {"quick_parameters": {"n_seeds": 2}}}
"""

from __future__ import annotations

import concurrent.futures
import html
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from helpers.reports import narrate
from helpers.errors import InputError
from helpers.paths import notebooks_dir, project_root, reports_dir
import nbformat
import papermill
from nbconvert import HTMLExporter

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")

#: Distributions whose versions the index records (besides Python itself).
KEY_PACKAGES = ("numpy", "scipy", "librosa", "scikit-learn", "pandas", "matplotlib", "seaborn",
                "vaderSentiment", "wordcloud", "skops", "papermill", "nbconvert")


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    name: str
    status: str = "pending"  # "ok" or "failed"
    seconds: float = 0.0
    parameters: dict = field(default_factory=dict)  # what was passed (overrides)
    effective: dict = field(default_factory=dict)  # every parameter as the notebook ran with it
    error: str = ""
    html: str = ""
    ipynb: str = ""  # the executed notebook, next to the HTML
    headline: dict = field(default_factory=dict)  # named results the notebook recorded
    skipped: list = field(default_factory=list)  # [{"section", "reason"}] the notebook did not run
    inputs: list = field(default_factory=list)  # [{"name", "path", "source", "sha256"}] it used
    started: str = ""  # local time the run began (YYYY-MM-DD HH:MM:SS)


def discover_notebooks(folder: str | Path | None = None) -> list[Path]:
    """Return the ``NN_*.ipynb`` notebooks of *folder* in number order."""
    folder = Path(folder) if folder else notebooks_dir()
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))


def quick_parameters(notebook: str | Path) -> dict:
    """Return the small-data parameters a notebook declares for quick runs (may be empty)."""

    nb = nbformat.read(str(notebook), as_version=4)
    return dict(nb.metadata.get("music_study", {}).get("quick_parameters", {}))


def effective_parameters(notebook: str | Path, parameters: dict) -> dict:
    """Return every parameter of *notebook* as it runs: its defaults updated by *parameters*.

    Defaults are the source text of each assignment in the ``parameters`` cell, as papermill
    reads them.
    """

    defaults = {name: spec["default"] for name, spec in papermill.inspect_notebook(str(notebook)).items()}
    return {**defaults, **parameters}


def _one_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))  # strip terminal colours from tracebacks
    return " ".join(text.split())[:500]


def without_records(notebook):
    """Return *notebook* without the outputs that only carry :mod:`helpers.reports.narrate` records.

    Headline and not-run records are raw JSON for the index, not for the page; nbconvert has no
    way to show them and would warn once per record.
    """
    records = {narrate.HEADLINE_MIME, narrate.SKIPPED_MIME, narrate.INPUT_MIME}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("data") and set(o["data"]) <= records)]
    return notebook


def render_html(executed, target: Path, no_input: bool = False) -> None:
    """Render an executed notebook to a standalone HTML file.

    Parameters
    ----------
    executed : pathlib.Path or nbformat.NotebookNode
        The executed notebook: its file, or the notebook already read from it (version 4),
        whose record outputs are then removed in place (:func:`without_records`).
    target : pathlib.Path
        The HTML file to write.
    no_input : bool
        Leave out code cells and prompts: the reader's version (nbconvert's ``exclude_input``).
    """

    exporter = HTMLExporter(exclude_input=no_input, exclude_input_prompt=no_input,
                            exclude_output_prompt=no_input)
    if isinstance(executed, (str, os.PathLike)):
        executed = nbformat.read(str(executed), as_version=4)
    notebook = without_records(executed)
    body, _ = exporter.from_notebook_node(notebook)
    target.write_text(body, encoding="utf-8")


def run_notebook(notebook: Path, output_dir: Path, parameters: dict,
                 progress_bar: bool = False, no_input: bool = False) -> NotebookRun:
    """Execute one notebook with papermill into *output_dir*, collect its records, render HTML."""

    run = NotebookRun(name=notebook.stem, parameters=parameters,
                      effective=effective_parameters(notebook, parameters))
    executed = output_dir / notebook.name
    run.started = time.strftime("%Y-%m-%d %H:%M:%S")
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(executed), parameters=parameters, cwd=str(notebook.parent),
            kernel_name="python3", progress_bar=progress_bar, log_output=False,
        )
        run.status = "ok"
    except Exception as exc:  # papermill re-raises the cell's error; record it and go on
        run.status = "failed"
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        run.error = _one_line(f"{ename}: {evalue}")
    run.seconds = time.perf_counter() - started
    if executed.is_file():
        run.ipynb = executed.name
        node = None  # read once, for the records and the page
        try:
            node = nbformat.read(str(executed), as_version=4)
            run.headline, run.skipped = narrate.collect(node)
            run.inputs = narrate.collect_inputs(node)
        except Exception as exc:  # an unreadable notebook is already a failed run
            run.error = run.error or _one_line(f"cannot read the executed notebook: {exc}")
        target = output_dir / f"{notebook.stem}.html"
        try:
            # unreadable: rendering the file fails again and marks the run failed, as before
            render_html(executed if node is None else node, target, no_input=no_input)
            run.html = target.name
        except Exception as exc:  # a rendering fault must not hide the run's own status
            run.status = "failed"
            run.error = run.error or _one_line(f"HTML rendering failed: {exc}")
    return run


def source_commit(root: str | Path | None = None) -> dict:
    """Return the commit the reports were made from.

    Returns
    -------
    dict
        ``sha`` (``git rev-parse HEAD``, ``"unknown"`` outside a git checkout), ``dirty``
        (True when tracked or untracked files differ from that commit, None when unknown) and
        ``label``: the sha, with ``-dirty`` appended when the tree is dirty.
    """
    root = Path(root) if root else project_root()

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return {"sha": "unknown", "dirty": None, "label": "unknown"}
    status = git("status", "--porcelain")
    dirty = None if status is None else bool(status)
    return {"sha": sha, "dirty": dirty, "label": sha + ("-dirty" if dirty else "")}


def environment_versions(packages=KEY_PACKAGES) -> dict:
    """Return ``{"python": "3.11.7", package: version, ...}`` of this interpreter.

    The notebooks' kernel is this interpreter (see :func:`run_reports`), so these are the
    versions the reports were computed with; a package that is not installed maps to None.
    """
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name.lower()] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name.lower()] = None
    return versions


def _short(value, limit: int = 40) -> str:
    """One parameter value for the front page: a long path by its last part, other text whole
    (the page wraps it), unless longer than ten times *limit*."""
    text = str(value)
    if ("/" in text or os.sep in text) and len(text) > limit and "\n" not in text and " " not in text:
        return "…/" + Path(text).name
    return text if len(text) <= 10 * limit else text[: 10 * limit - 1] + "…"


def _format_value(value) -> str:
    if isinstance(value, dict) and "n" in value:  # an Estimate or Verdict record (narrate)
        where = ", ".join(str(p) for p in (f"n={value['n']}", value.get("split")) if p)
        if value.get("value") is None:
            return f"too few to say ({where})"
        text = f"{value['value']:.3g}"
        if value.get("ci95"):
            text += f" [{value['ci95'][0]:.3g}, {value['ci95'][1]:.3g}]"
        if value.get("p_value") is not None:
            text += f" p={value['p_value']:.2g}"
        return f"{text} ({where})"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _short(value, 30)


def _run_row(run: NotebookRun) -> str:
    esc = html.escape
    links = " · ".join(f'<a href="{esc(target)}">{kind}</a>'
                       for kind, target in (("HTML", run.html), (".ipynb", run.ipynb)) if target)
    status_class = "ok" if run.status == "ok" else "failed"
    status = f'<span class="{status_class}">{esc(run.status)}</span>'
    if run.error:
        status += f'<div class="error">{esc(run.error)}</div>'
    headline = "".join(f"<li><code>{esc(name)}</code> {esc(_format_value(value))}</li>"
                       for name, value in run.headline.items())
    headline = f'<ul class="headline">{headline}</ul>' if headline else '<span class="missing">none recorded</span>'
    skipped = "".join(f"<li><b>{esc(s.get('section', ''))}</b>: {esc(s.get('reason', ''))}</li>"
                      for s in run.skipped)
    skipped = f"<ul>{skipped}</ul>" if skipped else "—"
    inputs = "".join(f"<li><code>{esc(i.get('name', ''))}</code> {esc(i.get('path', ''))} "
                     f"<small>({esc(i.get('source', ''))}, sha256 <code>{esc(i.get('sha256', ''))}"
                     f"</code>)</small></li>" for i in run.inputs)
    skipped = (f'<p class="inputs">inputs used:</p><ul>{inputs}</ul>' if inputs else "") + skipped
    # every parameter on a few lines; the ones passed in (not the notebook's defaults) marked
    params = ", ".join(
        (f'<b class="passed" title="{esc(str(value))}">{esc(name)}={esc(_short(value))}</b>'
         if name in run.parameters
         else f'<span title="{esc(str(value))}">{esc(name)}={esc(_short(value))}</span>')
        for name, value in (run.effective or run.parameters).items()) or "—"
    started = f"<br><small>started {esc(run.started)}</small>" if run.started else ""
    return (f"<tr><td class='name'><b>{esc(run.name)}</b><br>{links}{started}</td><td>{status}</td>"
            f"<td class='num'>{run.seconds:.1f} s</td><td>{headline}</td><td>{skipped}</td>"
            f"<td class='params'>{params}</td></tr>")


def index_record(runs: list[NotebookRun], quick: bool, no_input: bool = False,
                 commit: dict | None = None, environment: dict | None = None) -> dict:
    """Return the content of ``index.json``: the run as a whole and one record per notebook.

    Parameters
    ----------
    runs : list of NotebookRun
    quick, no_input : bool
        The mode of the run.
    commit, environment : dict, optional
        :func:`source_commit` and :func:`environment_versions`, when the caller already has
        them (:func:`run_reports` writes the index after every notebook); read here otherwise.
    """
    commit = source_commit() if commit is None else commit
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "quick": quick,
        "no_input": no_input,
        "commit": commit["label"],
        "commit_detail": commit,
        "environment": environment_versions() if environment is None else environment,
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count()},
        "total_seconds": round(sum(r.seconds for r in runs), 1),
        "runs": [asdict(r) for r in runs],
    }


def write_index(runs: list[NotebookRun], output_dir: Path, quick: bool,
                no_input: bool = False, commit: dict | None = None,
                environment: dict | None = None) -> Path:
    """Write the front page ``index.html`` and ``index.json`` summarising *runs*.

    *commit* and *environment* are passed on to :func:`index_record`.
    """
    esc = html.escape
    record = index_record(runs, quick, no_input, commit, environment)
    env = record["environment"]
    versions = ", ".join(f"{esc(name)} {esc(str(version))}" for name, version in env.items())
    commit = record["commit_detail"]
    commit_text = esc(commit["sha"][:12]) + (' <b class="failed">(dirty tree)</b>'
                                             if commit["dirty"] else "")
    ok = sum(r.status == "ok" for r in runs)
    mode = " Quick mode: small-data parameters." if quick else ""
    mode += " Reader's version: code cells left out." if no_input else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Music Recommendation Study — reports</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;font-size:14px;color:#1f2328}}
h1{{font-size:1.5em;margin:0 0 .3em}} p.meta{{margin:.2em 0;color:#444}}
table{{border-collapse:collapse;width:100%;margin-top:1em}}
th,td{{border:1px solid #d0d7de;padding:.35em .6em;text-align:left;vertical-align:top}}
th{{background:#f6f8fa}} td.num{{white-space:nowrap;text-align:right}}
td.name{{white-space:nowrap}} td.params span,td.params b{{overflow-wrap:anywhere}} p.inputs{{margin:.3em 0 0;color:#444}} td.params{{font-size:12px;max-width:28em;color:#444}}
b.passed{{color:#0550ae}} ul{{margin:0;padding-left:1.1em}} li{{margin:0}}
ul.headline{{columns:2 16em;column-gap:1.6em}} ul.headline li{{break-inside:avoid}}
.ok{{color:#1a7f37;font-weight:bold}} .failed{{color:#cf222e;font-weight:bold}}
.error{{color:#cf222e;font-size:12px;max-width:30em}} .missing{{color:#cf222e}}
</style></head>
<body><h1>Music Recommendation Study — reports</h1>
<p class="meta">Generated {esc(record['generated'])}: {ok} of {len(runs)} notebooks ran without
error in {record['total_seconds']:.1f} s in total.{mode}</p>
<p class="meta">Commit <code>{commit_text}</code> · {versions}</p>
<p class="meta">Machine: {esc(record['machine']['platform'])}, {esc(str(record['machine']['processor']))}, {record['machine']['cpus']} CPUs</p>
<table><tr><th>notebook</th><th>status</th><th>time</th><th>headline results</th>
<th>inputs used · not run (why)</th><th>parameters (<b class="passed">passed</b>, others default)</th></tr>
{''.join(_run_row(run) for run in runs)}
</table></body></html>
"""
    index = output_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    (output_dir / "index.json").write_text(json.dumps(record, indent=2, default=str),
                                           encoding="utf-8")
    return index


def run_reports(quick: bool = False, only=None, output_dir: str | Path | None = None,
                notebook_dir: str | Path | None = None, overrides: dict | None = None,
                log=sys.stderr, no_input: bool = False, jobs: int = 1) -> list[NotebookRun]:
    """Execute every numbered notebook and write the HTML reports and the index.

    Parameters
    ----------
    quick : bool
        Pass each notebook's ``quick_parameters`` (small data, for tests).
    only : iterable of str, optional
        Notebook numbers or stems to run (e.g. ``["01"]``); default all.
    output_dir : path-like, optional
        Where reports go (default ``reports/``).
    notebook_dir : path-like, optional
        Where notebooks are (default ``notebooks/``).
    overrides : dict, optional
        ``{"01": {"param": value}}``: parameters that win over the defaults for a notebook.
    log : file-like
        Where progress lines go.
    no_input : bool
        Render the reader's version: HTML without code cells.
    jobs : int
        Notebooks run at once, each in its own process (papermill changes the working directory
        of the process it runs in, so two notebooks never share one). The notebooks do not read
        each other's results; each one's own caches are written whole. Default 1.

    Returns
    -------
    list of NotebookRun
        In notebook order, whatever order they finished in.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"--jobs {jobs}", "use a positive number of notebooks to run at once")
    output_dir = Path(output_dir) if output_dir else reports_dir()
    output_dir.mkdir(parents=True, exist_ok=True)
    notebooks = discover_notebooks(notebook_dir)
    if only:
        wanted = {str(x) for x in only}
        notebooks = [nb for nb in notebooks if nb.name[:2] in wanted or nb.stem in wanted]
        if not notebooks:
            raise InputError(" ".join(wanted), "no notebook matches")
    # The kernel must be this interpreter, whatever python is first on PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # read once for every index written below: git runs two subprocesses per reading
    commit, environment = source_commit(), environment_versions()
    planned = []
    for notebook in notebooks:
        parameters = quick_parameters(notebook) if quick else {}
        parameters.update((overrides or {}).get(notebook.name[:2], {}))
        planned.append((notebook, parameters))
    finished: dict[int, NotebookRun] = {}

    def started(position: int) -> None:
        print(f"[{position}/{len(notebooks)}] {notebooks[position - 1].stem} ...", file=log, flush=True)

    def done(position: int, run: NotebookRun) -> None:
        detail = f"  {run.error}" if run.error else ""
        print(f"[{position}/{len(notebooks)}] {run.name}: {run.status} in {run.seconds:.1f} s{detail}",
              file=log, flush=True)
        finished[position] = run
        # current while later notebooks run
        write_index([finished[k] for k in sorted(finished)], output_dir, quick, no_input, commit,
                    environment)

    if jobs == 1 or len(planned) == 1:
        for position, (notebook, parameters) in enumerate(planned, start=1):
            started(position)
            # a per-cell progress bar only where someone watches a terminal
            done(position, run_notebook(notebook, output_dir, parameters, progress_bar=log.isatty(),
                                        no_input=no_input))
    else:
        spawn = multiprocessing.get_context("spawn")  # no forked copies of this process's threads
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            futures = {}
            for position, (notebook, parameters) in enumerate(planned, start=1):
                started(position)
                futures[pool.submit(run_notebook, notebook, output_dir, parameters, False,
                                    no_input)] = position
            for future in concurrent.futures.as_completed(futures):
                position = futures[future]
                try:
                    run = future.result()
                except Exception as exc:  # the worker process itself died
                    run = NotebookRun(name=notebooks[position - 1].stem, status="failed",
                                      error=_one_line(f"the notebook's process failed: {exc}"))
                done(position, run)
    runs = [finished[k] for k in sorted(finished)]
    write_index(runs, output_dir, quick, no_input, commit, environment)
    return runs
