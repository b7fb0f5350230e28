"""Reading flow files as data: positions, and hostile files rejected with a typed error, quickly and in
little memory (nothing constructed, aliases counted as they expand, size and depth bounded)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from flowkernel.errors import FileProblem, FlowFileError, FlowKernelError
from flowkernel.files import Limits
from flowkernel.files.source import DEFAULT_LIMITS, read_document


def rejected(path: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[FlowFileError, float, int]:
    """The error reading ``path`` gives, the seconds it took and the peak of memory allocated."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(FlowFileError) as caught:
            read_document(path, limits)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(caught.value, FlowKernelError)
    assert all(isinstance(p, FileProblem) and p.file == str(path) for p in caught.value.problems)
    return caught.value, seconds, peak


def test_positions_of_values_count_from_one(write: Callable[..., Path]) -> None:
    path = write("f.yaml", "name: f\nsteps:\n  - id: a\n    tool: t\n")
    document = read_document(path)
    assert document.data == {"name": "f", "steps": [{"id": "a", "tool": "t"}]}
    assert document.positions[("steps", 0, "tool")] == (4, 11)
    assert document.position(("steps", 0, "missing")) == (3, 5)  # the mapping holding it


def test_scalars_are_plain_json_values_and_dates_stay_text(write: Callable[..., Path]) -> None:
    path = write("f.yaml", "a: 1\nb: 2.5\nc: true\nd: null\ne: 2024-01-01\nf: '3'\n")
    assert read_document(path).data == {"a": 1, "b": 2.5, "c": True, "d": None, "e": "2024-01-01", "f": "3"}


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['touch /tmp/flowkernel-pwned']\n",
        "a: !!python/object/new:os.system ['echo']\n",
        "a: !!python/name:os.system\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x, y}\n",
        "a: !custom 3\n",
    ],
)
def test_tags_that_construct_objects_are_refused_at_their_position(write: Callable[..., Path], text: str) -> None:
    error, _, _ = rejected(write("f.yaml", text))
    (problem,) = error.problems
    assert isinstance(problem, FileProblem)
    assert (problem.line, problem.column) == (1, 4)
    assert "is not allowed" in problem.message
    assert not Path("/tmp/flowkernel-pwned").exists()


def test_a_billion_laughs_stops_at_the_limit_quickly_and_small(write: Callable[..., Path]) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{','.join(['*' + previous] * 9)}]")
    error, seconds, peak = rejected(write("bomb.yaml", "\n".join(lines) + "\n"))
    assert "aliases are expanded" in str(error)
    assert seconds < 5
    assert peak < 64 * 2**20


def test_a_recursive_alias_is_refused(write: Callable[..., Path]) -> None:
    error, seconds, _ = rejected(write("loop.yaml", "a: &a [*a]\n"))
    assert "nested deeper" in str(error)
    assert seconds < 5


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_deep_nesting_is_refused_before_anything_is_built(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000)
    error, seconds, peak = rejected(path)
    assert "nest" in str(error)
    assert seconds < 5
    assert peak < 64 * 2**20


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as handle:
        handle.write("a: ")
        handle.seek(50 * 2**20)
        handle.write("x\n")  # a sparse 50 MiB file
    error, seconds, peak = rejected(path)
    assert f"larger than {Limits().max_bytes} bytes" in str(error)
    assert seconds < 1
    assert peak < 4 * 2**20


def test_many_values_within_the_size_limit_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("[" + ",".join(["1"] * 30_000) + "]")
    error, seconds, _ = rejected(path, Limits(max_nodes=10_000))
    assert "more than 10000 values" in str(error)
    assert seconds < 10


@pytest.mark.parametrize(
    ("text", "message", "place"),
    [
        ("a: 1\na: 2\n", "duplicate key 'a'", (2, 1)),
        ("a: [1\n", "not valid YAML", (2, 1)),
        ("a: 1\n---\nb: 2\n", "not valid YAML", (2, 1)),
        ("? [1, 2]\n: x\n", "keys must be strings", (1, 3)),
        ("base: &b {x: 1}\nc:\n  <<: *b\n", "merge keys", (3, 3)),
        ("a: .nan\n", "NaN", (1, 4)),
        ("", "the file is empty", (0, 0)),
    ],
)
def test_malformed_yaml_names_the_place(
    write: Callable[..., Path], text: str, message: str, place: tuple[int, int]
) -> None:
    error, _, _ = rejected(write("f.yaml", text))
    problem = error.problems[0]
    assert isinstance(problem, FileProblem)
    assert message in problem.message
    assert (problem.line, problem.column) == place


def test_json_files_must_be_json(write: Callable[..., Path]) -> None:
    error, _, _ = rejected(write("f.json", '{"name": "f",\n "steps": [1,]}'))
    problem = error.problems[0]
    assert isinstance(problem, FileProblem)
    assert "not valid JSON" in problem.message
    assert problem.line == 2
    error, _, _ = rejected(write("g.json", '{"a": NaN}'))
    assert "NaN is not JSON" in str(error)
    document = read_document(write("h.json", '{"name": "f",\n "steps": [{"id": "a"}]}'))
    assert document.positions[("steps", 0, "id")] == (2, 19)


def test_a_file_that_is_not_utf8_or_missing_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: \xe9t\xe9\n")
    assert "not UTF-8" in str(rejected(path)[0])
    assert "cannot read" in str(rejected(tmp_path / "absent.yaml")[0])


def test_json_that_yaml_cannot_read_is_read_without_positions_but_within_the_limits(write: Callable[..., Path]) -> None:
    document = read_document(write("f.json", '{"a": "\\ud83d\\ude00"}'))
    assert document.data == {"a": "\U0001f600"}
    assert document.positions == {}
    deep = '{"x": "\\ud83d\\ude00", "y": ' + "[" * 70 + "]" * 70 + "}"
    assert "nested deeper than 64" in str(rejected(write("g.json", deep))[0])


def test_json_text_is_read_as_json_says_even_where_yaml_reads_it_otherwise(write: Callable[..., Path]) -> None:
    """YAML folds a raw NEL (U+0085) inside a string to a space; the values of a JSON file are JSON's, and
    YAML gives only the positions. Found by the generated round trip of a dumped JSON flow."""
    document = read_document(write("f.json", '{"name": "f",\n "steps": [{"id": "a\x85b", "note": "\x85"}]}'))
    assert document.data == {"name": "f", "steps": [{"id": "a\x85b", "note": "\x85"}]}
    assert document.positions[("steps", 0)] == (2, 12)  # the "{" of the step


def test_a_fifo_or_a_directory_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in str(rejected(fifo)[0])
    (tmp_path / "dir.yaml").mkdir()
    assert "not a regular file" in str(rejected(tmp_path / "dir.yaml")[0])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("numbers.json", '{"tiny": 5e-324, "big": 1E3, "signed": -2.5e+3, "text": "1e3"}'),
        ("numbers.yaml", "tiny: 5e-324\nbig: 1E3\nsigned: -2.5e+3\ntext: '1e3'\n"),
    ],
)
def test_exponent_floats_are_numbers_as_in_json(tmp_path: Path, name: str, text: str) -> None:
    """PyYAML's YAML 1.1 resolver reads ``5e-324`` as a string; JSON (and YAML 1.2) say float. A generated
    round trip wrote a float literal to a JSON file and read back a string."""
    path = tmp_path / name
    path.write_text(text)
    assert read_document(path).data == {"tiny": 5e-324, "big": 1000.0, "signed": -2500.0, "text": "1e3"}
