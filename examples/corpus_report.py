"""A real flow over local data: analyse a directory of text files into SQLite and a Markdown report.

Run it with ``flowkernel run examples/corpus_report.py:flow`` (see ``examples/README.md``). The shape::

    find_documents --+--> word_counts ---+
                     +--> line_counts ---+  (wc -l)
                     +--> checksums -----+--> store --> top_words --> report
                     +--> longest_words -+  (sha256sum)   (SQLite)    (async SQL)   (Markdown)

Outputs hold file *names* relative to ``out``, never absolute paths or times, so every driver gives the
same canonical result for the same inputs.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, DirectoryPath, Field

from flowkernel import Flow, Input, Ref, Step, tool

__all__ = (
    "DEFAULT_CORPUS",
    "DEFAULT_OUT",
    "STOP_WORDS",
    "DocumentList",
    "FindDocumentsArgs",
    "ReportInputs",
    "StoreArgs",
    "StoreResult",
    "build_flow",
    "flow",
)

DEFAULT_CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "flowkernel-corpus-report"
DATABASE_NAME = "corpus.sqlite"
REPORT_NAME = "report.md"

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
STOP_WORDS = frozenset(
    (  # noqa: SIM905 (one string reads better than 60 quoted words)
        "a all an and are as at be been before but by did do each every for from had has have he her him his i if "
        "in into is it its like my no not of on one or our over she so than that the their them then there they "
        "this to up us was we went were what when where which who will with would you your"
    ).split()
)
"""Words too common to be interesting: stored in the database and left out of the top words."""


class ReportInputs(BaseModel):
    """The flow's inputs: where the text files are, where to write, how many top words to list."""

    model_config = ConfigDict(extra="forbid")

    corpus: DirectoryPath = Field(default=DEFAULT_CORPUS, description="directory of .txt files")
    out: Path = Field(default=DEFAULT_OUT, description="directory for corpus.sqlite and report.md")
    top: int = Field(default=10, ge=1, le=100, description="how many top words to report")


def _words(path: Path) -> list[str]:
    return WORD.findall(path.read_text(encoding="utf-8").lower())


def _run(command: Sequence[str], cwd: Path) -> str:
    """Run a command-line tool in ``cwd`` and return its stdout; fails clearly if it is missing."""
    if shutil.which(command[0]) is None:
        raise FileNotFoundError(f"{command[0]!r} is not installed (needed by this flow)")
    env = {**os.environ, "LC_ALL": "C"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


# ---- step 1: find the documents ------------------------------------------------------------------


class FindDocumentsArgs(BaseModel):
    """Where to look and which files count as documents."""

    corpus: DirectoryPath
    pattern: str = "*.txt"


class DocumentList(BaseModel):
    """The documents found: file names relative to the corpus directory, sorted."""

    files: list[str] = Field(min_length=1)


@tool(input_model=FindDocumentsArgs, output_model=DocumentList)
def find_documents(corpus: Path, pattern: str) -> dict[str, list[str]]:
    """List the corpus's documents, sorted, so every later step sees them in one order."""
    files = sorted(p.name for p in corpus.glob(pattern) if p.is_file())
    if not files:
        raise FileNotFoundError(f"no {pattern} files in {corpus.name!r}")
    return {"files": files}


# ---- step 2: the fan-out, four independent analyses of the same documents --------------------------


@tool
def word_counts(corpus: Path, files: list[str]) -> dict[str, dict[str, int]]:
    """Word frequencies per document (lower-cased words, sorted), computed in Python."""
    return {name: dict(sorted(Counter(_words(corpus / name)).items())) for name in files}


@tool
def line_counts(corpus: Path, files: list[str]) -> dict[str, int]:
    """Lines per document, as ``wc -l`` counts them."""
    counts: dict[str, int] = {}
    for line in _run(["wc", "-l", "--", *files], corpus).splitlines():
        number, name = line.split(maxsplit=1)
        if name in files:  # skips wc's "total" line (a document name always ends in .txt)
            counts[name] = int(number)
    return counts


@tool
def checksums(corpus: Path, files: list[str]) -> dict[str, str]:
    """SHA-256 of each document, as ``sha256sum`` computes it."""
    digests: dict[str, str] = {}
    for line in _run(["sha256sum", "--", *files], corpus).splitlines():
        digest, name = line.split(maxsplit=1)
        digests[name.removeprefix("*")] = digest
    return digests


@tool
def longest_words(corpus: Path, files: list[str], count: int = 3) -> dict[str, list[str]]:
    """The ``count`` longest distinct words of each document (ties broken alphabetically)."""
    return {name: sorted(set(_words(corpus / name)), key=lambda w: (-len(w), w))[:count] for name in files}


# ---- step 3: store everything in SQLite --------------------------------------------------------------


class StoreArgs(BaseModel):
    """Everything the analyses found, to be written into one database in ``out``."""

    out: Path
    files: list[str]
    words: dict[str, dict[str, int]]
    lines: dict[str, int]
    checksums: dict[str, str]
    longest: dict[str, list[str]]


class StoreResult(BaseModel):
    """The database written (its file name inside ``out``) and what it holds."""

    database: str
    documents: int
    words: int
    distinct_words: int


_SCHEMA = """
CREATE TABLE documents (
    name TEXT PRIMARY KEY, lines INTEGER NOT NULL, words INTEGER NOT NULL,
    distinct_words INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE word_counts (
    document TEXT NOT NULL REFERENCES documents(name), word TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (document, word)
);
CREATE TABLE longest_words (
    document TEXT NOT NULL REFERENCES documents(name), rank INTEGER NOT NULL, word TEXT NOT NULL,
    PRIMARY KEY (document, rank)
);
CREATE TABLE stop_words (word TEXT PRIMARY KEY);
"""


@tool(input_model=StoreArgs, output_model=StoreResult)
def store(
    out: Path,
    files: list[str],
    words: dict[str, dict[str, int]],
    lines: dict[str, int],
    checksums: dict[str, str],
    longest: dict[str, list[str]],
) -> dict[str, Any]:
    """Write every analysis into a fresh SQLite database in ``out``; replaces the file atomically."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / DATABASE_NAME
    partial = out / (DATABASE_NAME + ".partial")
    partial.unlink(missing_ok=True)
    with closing(sqlite3.connect(partial)) as db, db:
        db.executescript(_SCHEMA)
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
            [(f, lines[f], sum(words[f].values()), len(words[f]), checksums[f]) for f in files],
        )
        db.executemany(
            "INSERT INTO word_counts VALUES (?, ?, ?)", [(f, w, n) for f in files for w, n in words[f].items()]
        )
        db.executemany(
            "INSERT INTO longest_words VALUES (?, ?, ?)",
            [(f, rank, w) for f in files for rank, w in enumerate(longest[f], start=1)],
        )
        db.executemany("INSERT INTO stop_words VALUES (?)", [(w,) for w in sorted(STOP_WORDS)])
        total, distinct = db.execute("SELECT SUM(count), COUNT(DISTINCT word) FROM word_counts").fetchone()
    os.replace(partial, target)
    return {"database": DATABASE_NAME, "documents": len(files), "words": total, "distinct_words": distinct}


# ---- step 4: query it (an async tool: anyio runs under asyncio and trio alike) ------------------------

_TOP_WORDS_SQL = """
SELECT word, SUM(count) AS total, COUNT(*) AS documents
FROM word_counts
WHERE word NOT IN (SELECT word FROM stop_words)
GROUP BY word
ORDER BY total DESC, word ASC
LIMIT ?
"""


@tool
async def top_words(out: Path, database: str, limit: int) -> list[dict[str, Any]]:
    """The most frequent words across the corpus, stop words excluded, queried in a worker thread."""

    def query() -> list[tuple[str, int, int]]:
        with closing(sqlite3.connect(out / database)) as db:
            return db.execute(_TOP_WORDS_SQL, (limit,)).fetchall()

    rows = await anyio.to_thread.run_sync(query)
    return [{"word": word, "count": total, "documents": documents} for word, total, documents in rows]


# ---- step 5: the report ----------------------------------------------------------------------------


@tool
def report(out: Path, database: str, top: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Write ``report.md`` from the database and the top words; return its name and a summary."""
    with closing(sqlite3.connect(out / database)) as db:
        documents = db.execute(
            "SELECT d.name, d.lines, d.words, d.distinct_words, d.sha256, "
            "(SELECT group_concat(word, ', ') FROM (SELECT word FROM longest_words l "
            " WHERE l.document = d.name ORDER BY rank)) FROM documents d ORDER BY d.name"
        ).fetchall()
        (distinct,) = db.execute("SELECT COUNT(DISTINCT word) FROM word_counts").fetchone()
    lines = sum(row[1] for row in documents)
    words = sum(row[2] for row in documents)
    text = [
        "# Corpus report",
        "",
        f"{len(documents)} documents, {lines} lines, {words} words ({distinct} distinct).",
        "",
        "## Documents",
        "",
        "| document | lines | words | distinct | sha256 | longest words |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *(f"| {n} | {ln} | {w} | {d} | `{sha[:12]}` | {longest} |" for n, ln, w, d, sha, longest in documents),
        "",
        "## Top words",
        "",
        "Common words such as *the* and *and* are left out.",
        "",
        "| rank | word | count | documents |",
        "| ---: | --- | ---: | ---: |",
        *(f"| {i} | {t['word']} | {t['count']} | {t['documents']} |" for i, t in enumerate(top, start=1)),
        "",
    ]
    (out / REPORT_NAME).write_text("\n".join(text), encoding="utf-8")
    summary = {
        "documents": len(documents),
        "lines": lines,
        "words": words,
        "distinct_words": distinct,
        "top_word": top[0]["word"] if top else None,
    }
    return {"report": REPORT_NAME, "summary": summary}


# ---- the flow ----------------------------------------------------------------------------------------


def build_flow() -> Flow:
    """Build the corpus-report flow (a function too, to show that ``MODULE:FUNCTION`` works)."""
    corpus, out = Input("corpus"), Input("out")
    files = Ref("find_documents", "files")
    return Flow(
        name="corpus-report",
        version="1",
        input_model=ReportInputs,
        steps=(
            Step(id="find_documents", tool=find_documents, arguments={"corpus": corpus}),
            Step(id="word_counts", tool=word_counts, arguments={"corpus": corpus, "files": files}),
            Step(id="line_counts", tool=line_counts, arguments={"corpus": corpus, "files": files}),
            Step(id="checksums", tool=checksums, arguments={"corpus": corpus, "files": files}),
            Step(id="longest_words", tool=longest_words, arguments={"corpus": corpus, "files": files}),
            Step(
                id="store",
                tool=store,
                arguments={
                    "out": out,
                    "files": files,
                    "words": Ref("word_counts"),
                    "lines": Ref("line_counts"),
                    "checksums": Ref("checksums"),
                    "longest": Ref("longest_words"),
                },
            ),
            Step(
                id="top_words",
                tool=top_words,
                arguments={"out": out, "database": Ref("store", "database"), "limit": Input("top")},
            ),
            Step(
                id="report",
                tool=report,
                arguments={"out": out, "database": Ref("store", "database"), "top": Ref("top_words")},
            ),
        ),
        outputs={
            "report": Ref("report", "report"),
            "database": Ref("store", "database"),
            "summary": Ref("report", "summary"),
            "top_words": Ref("top_words"),
        },
    )


flow = build_flow()
