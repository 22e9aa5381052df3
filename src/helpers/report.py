"""Run every numbered notebook headless with papermill and render HTML reports.

``music-study report`` executes each ``notebooks/NN_*.ipynb`` into ``reports/NN_*.ipynb``,
renders ``reports/NN_*.html`` and writes ``reports/index.html`` (status, run time, parameters
and a link per notebook). A failing notebook is recorded with its error; the others still run.

Quick mode passes the small-data parameters a notebook declares in its metadata::

    "metadata": {"music_study": {"quick_parameters": {"n_seeds": 2}}}
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers.errors import InputError
from helpers.paths import notebooks_dir, reports_dir

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")


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


def discover_notebooks(folder: str | Path | None = None) -> list[Path]:
    """Return the ``NN_*.ipynb`` notebooks of *folder* in number order."""
    folder = Path(folder) if folder else notebooks_dir()
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))


def quick_parameters(notebook: str | Path) -> dict:
    """Return the small-data parameters a notebook declares for quick runs (may be empty)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return dict(nb.metadata.get("music_study", {}).get("quick_parameters", {}))


def effective_parameters(notebook: str | Path, parameters: dict) -> dict:
    """Return every parameter of *notebook* as it runs: its defaults updated by *parameters*.

    Defaults are the source text of each assignment in the ``parameters`` cell, as papermill
    reads them.
    """
    import papermill

    defaults = {name: spec["default"] for name, spec in papermill.inspect_notebook(str(notebook)).items()}
    return {**defaults, **parameters}


def _one_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))  # strip terminal colours from tracebacks
    return " ".join(text.split())[:500]


def render_html(executed: Path, target: Path) -> None:
    """Render an executed notebook to a standalone HTML file."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    target.write_text(body, encoding="utf-8")


def run_notebook(notebook: Path, output_dir: Path, parameters: dict,
                 progress_bar: bool = False) -> NotebookRun:
    """Execute one notebook with papermill into *output_dir* and render its HTML."""
    import papermill

    run = NotebookRun(name=notebook.stem, parameters=parameters,
                      effective=effective_parameters(notebook, parameters))
    executed = output_dir / notebook.name
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
        target = output_dir / f"{notebook.stem}.html"
        try:
            render_html(executed, target)
            run.html = target.name
        except Exception as exc:  # a rendering fault must not hide the run's own status
            run.status = "failed"
            run.error = run.error or _one_line(f"HTML rendering failed: {exc}")
    return run


def write_index(runs: list[NotebookRun], output_dir: Path, quick: bool) -> Path:
    """Write ``index.html`` (and ``index.json``) summarising *runs*."""
    rows = []
    for run in runs:
        link = f'<a href="{html.escape(run.html)}">{html.escape(run.name)}</a>' if run.html else html.escape(run.name)
        # every parameter; the ones passed in (not the notebook's defaults) in bold
        params = "<br>".join(
            (f"<b>{html.escape(name)} = {html.escape(repr(value))}</b>" if name in run.parameters
             else f"{html.escape(name)} = {html.escape(str(value))}")
            for name, value in run.effective.items()) or "none"
        colour = "#1a7f37" if run.status == "ok" else "#cf222e"
        rows.append(
            f"<tr><td>{link}</td><td style='color:{colour};font-weight:bold'>{run.status}</td>"
            f"<td>{run.seconds:.1f} s</td><td><code>{params}</code></td>"
            f"<td>{html.escape(run.error)}</td></tr>"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Music Recommendation Study — reports</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.4em .8em;text-align:left;vertical-align:top}}</style></head>
<body><h1>Music Recommendation Study — reports</h1>
<p>Generated {stamp}{' (quick mode: small-data parameters)' if quick else ''};
{sum(r.status == 'ok' for r in runs)} of {len(runs)} notebooks ran without error.</p>
<table><tr><th>notebook</th><th>status</th><th>run time</th><th>parameters</th><th>error</th></tr>
{''.join(rows)}
</table></body></html>
"""
    index = output_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    (output_dir / "index.json").write_text(
        json.dumps({"generated": stamp, "quick": quick, "runs": [asdict(r) for r in runs]}, indent=2)
    )
    return index


def run_reports(quick: bool = False, only=None, output_dir: str | Path | None = None,
                notebook_dir: str | Path | None = None, overrides: dict | None = None,
                log=sys.stderr) -> list[NotebookRun]:
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

    Returns
    -------
    list of NotebookRun
    """
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
    runs = []
    for position, notebook in enumerate(notebooks, start=1):
        parameters = quick_parameters(notebook) if quick else {}
        parameters.update((overrides or {}).get(notebook.name[:2], {}))
        print(f"[{position}/{len(notebooks)}] {notebook.stem} ...", file=log, flush=True)
        # a per-cell progress bar only where someone watches a terminal
        run = run_notebook(notebook, output_dir, parameters, progress_bar=log.isatty())
        detail = f"  {run.error}" if run.error else ""
        print(f"[{position}/{len(notebooks)}] {notebook.stem}: {run.status} in {run.seconds:.1f} s{detail}",
              file=log, flush=True)
        runs.append(run)
        write_index(runs, output_dir, quick)  # keep the index current while later notebooks run
    write_index(runs, output_dir, quick)
    return runs


def run_report_command(args) -> int:
    """``music-study report``: exit 0 when every notebook ran, 1 otherwise."""
    runs = run_reports(quick=args.quick, only=args.only, output_dir=args.output_dir)
    failed = [r.name for r in runs if r.status != "ok"]
    where = Path(args.output_dir) if args.output_dir else reports_dir()
    print(f"reports written to {where / 'index.html'}; {len(runs) - len(failed)} ok, {len(failed)} failed",
          file=sys.stderr)
    return 1 if failed else 0
