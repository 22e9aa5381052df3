"""The documentation (README.md, docs/*.md) holds together and speaks of the product.

Plain Markdown, checked here: every relative link and ``#anchor`` resolves (GitHub's heading
slugs), every page is linked from the README or the index, no product doc names work items,
the README stays short, and the commands, options, environment variables, ``helpers`` names
and numbers it states exist in the code.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

import pytest

from helpers.audio.checks import SILENCE_THRESHOLD_DB
from helpers.audio.files import AUDIO_SUFFIXES
from helpers.audio.windows import MIN_WINDOW_SECONDS, WINDOW_SECONDS_RANGE
from helpers.cli import build_parser
from helpers.paths import project_root

ROOT = project_root()
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"
SRC = ROOT / "src"

#: Longest README allowed: a newcomer reads it in two minutes.
README_MAX_LINES = 160

#: Work-tracking words that have no place in product docs.
WORK_ITEM = re.compile(r"issue\s*#?\d+|\(issue", re.IGNORECASE)

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
COMMAND = re.compile(r"(?:music-study|python -m helpers)[ \t]+([a-z][\w-]*)")
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
ENV_VAR = re.compile(r"\bMUSIC_STUDY_[A-Z_]*[A-Z]\b")
HELPERS_NAME = re.compile(r"(?<![\w.])helpers(?:\.[A-Za-z_]\w*)+")


def doc_pages() -> list[Path]:
    """The product docs in Markdown: the README and every page under docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def split_markdown(text: str) -> tuple[list[str], list[str]]:
    """Return (lines outside fenced code, code blocks joined per block)."""
    prose, blocks, current, fence = [], [], [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence, current = match.group(1), []
        elif fence is not None and line.strip().startswith(fence):
            blocks.append("\n".join(current))
            fence = None
        elif fence is not None:
            current.append(line)
        else:
            prose.append(line)
    return prose, blocks


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, punctuation dropped,
    spaces as hyphens."""
    text = LINK.sub(lambda m: m.group(1), heading)
    text = INLINE_CODE.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text).replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown page (repeated headings get -1, -2, ... as on GitHub)."""
    prose, _ = split_markdown(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for line in prose:
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The link targets of a page's prose (code blocks and inline code are not links)."""
    prose, _ = split_markdown(path.read_text(encoding="utf-8"))
    text = INLINE_CODE.sub("", "\n".join(prose))
    return [match.group(2) for match in LINK.finditer(text)]


def shown(path: Path) -> str:
    """A page's name in messages: relative to the checkout when it is in it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE))


def link_problems(path: Path) -> list[str]:
    """Each broken relative link or anchor of *path*, as 'page: target (why)'."""
    problems = []
    for target in links(path):
        if is_external(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{shown(path)}: {target}"
        if not resolved.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where} (no heading with anchor #{anchor})")
    return problems


def code_texts(path: Path) -> list[str]:
    """Code as written in a page: each fenced block's logical lines and each inline code span.

    A command continued on the next line (a trailing backslash, or an indented line starting
    with ``[`` or ``-``, as in a synopsis) is one logical line.
    """
    prose, blocks = split_markdown(path.read_text(encoding="utf-8"))
    texts = [m.group(2) for line in prose for m in INLINE_CODE.finditer(line)]
    for block in blocks:
        logical: list[str] = []
        for line in block.splitlines():
            continued = logical and (logical[-1].endswith("\\") or re.match(r"^\s+[\[-]", line))
            if continued:
                logical[-1] = logical[-1].rstrip("\\") + " " + line.strip()
            else:
                logical.append(line)
        texts.extend(logical)
    return texts


def subcommand_actions() -> dict[str, list[tuple[str, ...]]]:
    """Sub-command name -> the option strings of each of its options (``-o``/``--output`` is
    one option), from the real parser; ``--help`` left out."""
    parser = build_parser()
    subparsers = next(action for action in parser._actions
                      if isinstance(action, argparse._SubParsersAction))
    return {name: [tuple(action.option_strings) for action in sub._actions
                   if action.option_strings and not isinstance(action, argparse._HelpAction)]
            for name, sub in subparsers.choices.items()}


def subcommand_options() -> dict[str, set[str]]:
    """Sub-command name -> every option string it accepts (``-h``/``--help`` included)."""
    return {name: {"-h", "--help", *(s for strings in actions for s in strings)}
            for name, actions in subcommand_actions().items()}


def command_problems(path: Path, known: dict[str, set[str]]) -> list[str]:
    """Each unknown sub-command, or option written after a sub-command, in *path*'s code."""
    problems = []
    for text in code_texts(path):
        for match in COMMAND.finditer(text):
            name = match.group(1)
            where = f"{shown(path)}: {text.strip()[:80]!r}"
            if name not in known:
                problems.append(f"{where}: no sub-command {name!r}")
                continue
            rest = text[match.end():]
            rest = re.split(r"\s#\s|\s#$", rest)[0]  # a trailing shell comment is not options
            for option in OPTION.findall(rest):
                if option not in known[name]:
                    problems.append(f"{where}: {name} has no option {option}")
    return problems


def _module_file(parts: list[str]) -> Path | None:
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined_names(tree: ast.Module) -> tuple[set[str], dict[str, ast.ClassDef]]:
    """Top-level names of a module, lazily attached names included; and its classes."""
    names, classes = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
        elif isinstance(node, ast.Assign):
            targets = {t.id for t in node.targets if isinstance(t, ast.Name)}
            names.update(targets)
            if "_LAZY" in targets and isinstance(node.value, ast.Dict):  # a hand-written lazy face
                names.update(ast.literal_eval(key) for key in node.value.keys)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    for node in ast.walk(tree):  # lazy_loader.attach(__name__, submodules=[...], submod_attrs={...})
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "attach":
            for keyword in node.keywords:
                value = ast.literal_eval(keyword.value)
                if keyword.arg == "submodules":
                    names.update(value)
                elif keyword.arg == "submod_attrs":
                    names.update(name for attrs in value.values() for name in attrs)
    return names, classes


def resolve_helpers_name(dotted: str) -> bool:
    """Whether a dotted ``helpers...`` name names a module, or a name defined in one.

    Read from the source (no import), so the check costs milliseconds.
    """
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module = _module_file(parts[:split])
        if module is not None:
            break
    else:
        return False
    rest = parts[split:]
    if not rest:
        return True
    names, classes = _defined_names(ast.parse(module.read_text(encoding="utf-8")))
    if rest[0] not in names:
        return False
    if len(rest) > 1 and rest[0] in classes:
        members, _ = _defined_names(ast.Module(body=classes[rest[0]].body, type_ignores=[]))
        members.update(node.attr for node in ast.walk(classes[rest[0]])  # self.x = ...
                       if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store))
        return rest[1] in members
    return True


def notebook_markdown() -> dict[str, str]:
    """Notebook name -> its markdown cells' text."""
    texts = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts[path.name] = "\n".join("".join(c["source"]) for c in cells
                                     if c["cell_type"] == "markdown")
    return texts


# --- the checks -------------------------------------------------------------------------------

def test_the_docs_exist():
    assert README.is_file() and INDEX.is_file()
    assert len(doc_pages()) > 2


def test_every_relative_link_and_anchor_resolves():
    problems = [problem for page in doc_pages() for problem in link_problems(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme_or_the_index():
    linked = set()
    for page in (README, INDEX):
        for target in links(page):
            file_part = target.partition("#")[0]
            if file_part and not is_external(target):
                linked.add((page.parent / file_part).resolve())
    orphans = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked | {INDEX}]
    assert not orphans, f"pages no link from README.md or docs/index.md reaches: {orphans}"


def test_no_product_doc_names_work_items():
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in doc_pages()}
    texts.update({f"notebooks/{name} (markdown)": text for name, text in notebook_markdown().items()})
    found = {name: sorted(set(WORK_ITEM.findall(text))) for name, text in texts.items()
             if WORK_ITEM.search(text)}
    assert not found, f"work-tracking words in product docs: {found}"


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "make report" in text and "make test" in text


def test_every_command_and_option_in_the_docs_exists():
    known = subcommand_options()
    named = [m.group(1) for page in doc_pages() for text in code_texts(page)
             for m in COMMAND.finditer(text)]
    assert {"predict", "recommend", "serve"} <= set(named)  # the check sees the tour
    problems = [problem for page in doc_pages() for problem in command_problems(page, known)]
    assert not problems, "\n".join(problems)


def notebook_parameters() -> set[str]:
    """The names assigned in the cell tagged ``parameters`` of each numbered notebook."""
    names = set()
    for notebook in (ROOT / "notebooks").glob("[0-9]*.ipynb"):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                source = "".join(cell["source"])
                names |= set(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=", source, re.M))
    return names


def test_every_environment_variable_in_the_docs_is_read_by_the_code():
    sources = [path for folder in (SRC, ROOT / "tests") for path in folder.rglob("*.py")
               if path.resolve() != Path(__file__).resolve()]  # naming a variable here reads nothing
    code = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    code += (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    named = {var for page in doc_pages() for var in ENV_VAR.findall(page.read_text(encoding="utf-8"))}
    assert "MUSIC_STUDY_DATA_DIR" in named
    # a notebook parameter is also read as MUSIC_STUDY_<PARAMETER> (helpers.paths.optional_input)
    code += "\n".join(f"MUSIC_STUDY_{name.upper()}" for name in notebook_parameters())
    unread = sorted(var for var in named if var not in code)
    assert not unread, f"environment variables the docs name but no code reads: {unread}"


def test_every_helpers_name_in_the_docs_exists():
    named = {name for page in doc_pages()
             for name in HELPERS_NAME.findall(page.read_text(encoding="utf-8"))}
    assert "helpers.predict.predict_song" in named
    missing = sorted(name for name in named if not resolve_helpers_name(name))
    assert not missing, f"names the docs promise but the package lacks: {missing}"


@pytest.mark.parametrize("name, exists", [
    ("helpers.audio.AUDIO_SUFFIXES", True),       # lazily attached
    ("helpers.store.LabelStore.read_only", True),  # a class member
    ("helpers.labeling.widget", True),
    ("helpers.audio.NO_SUCH_NAME", False),
    ("helpers.no_such_module", False),
    ("helpers.store.LabelStore.no_such_member", False),
])
def test_the_name_check_can_tell(name, exists):
    assert resolve_helpers_name(name) is exists


def test_the_audio_input_page_states_the_code_s_suffixes_and_window_rule():
    text = (DOCS / "audio-input.md").read_text(encoding="utf-8")
    section = text.split("## Accepted suffixes", 1)[1].split("\n## ", 1)[0]
    assert tuple(re.findall(r"`(\.\w+)`", section)) == AUDIO_SUFFIXES
    assert f"min({MIN_WINDOW_SECONDS:g} s, window_seconds)" in text
    low, high = WINDOW_SECONDS_RANGE
    assert f"from {low:g} to {high:g}" in text
    assert f"RMS below {SILENCE_THRESHOLD_DB:g} dBFS" in text


def test_slugs_follow_github():
    assert github_slug('"None of the genres the model knows", validated') == \
        "none-of-the-genres-the-model-knows-validated"
    assert github_slug("Many files: `music-study extract`") == "many-files-music-study-extract"
    assert github_slug("`reports/index.json`") == "reportsindexjson"
    assert github_slug("Windows: one policy for every consumer") == \
        "windows-one-policy-for-every-consumer"


def test_the_checks_catch_a_broken_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad anchor](#nowhere)\n\n"
                    "```\nmusic-study predict song.mp3 --no-such-option\nmusic-study nosuch\n```\n",
                    encoding="utf-8")
    problems = link_problems(page)
    commands = command_problems(page, subcommand_options())
    assert len(problems) == 2 and "missing.md" in problems[0] and "#nowhere" in problems[1]
    assert any("--no-such-option" in p for p in commands) and any("nosuch" in p for p in commands)


def test_the_command_line_page_names_every_option():
    page = DOCS / "cli.md"
    written: dict[str, set[str]] = {}
    for text in code_texts(page):
        for match in COMMAND.finditer(text):
            written.setdefault(match.group(1), set()).update(OPTION.findall(text[match.end():]))
    missing = {name: [strings[-1] for strings in actions
                      if not set(strings) & written.get(name, set())]
               for name, actions in subcommand_actions().items()}
    missing = {name: options for name, options in missing.items() if options}
    assert not missing, f"options docs/cli.md's synopsis does not show: {missing}"
