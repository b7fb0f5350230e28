"""The journal's codec: tagged JSON that cannot run code when read; pickles only when trusted.

A crafted journal (checksums recomputed, so only the codec stands between the file and the process)
must not construct objects it was not told of: ``load``, ``show`` and ``resume`` refuse it, and the
side effect its payload asks for never happens.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import pickle
import sqlite3
import uuid
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict

from flowkernel import Flow, Input, Step, tool
from flowkernel.cli.app import cli
from flowkernel.errors import CorruptJournalError, JournalError
from flowkernel.host import load_driver
from flowkernel.host.journal import (
    Entry,
    JsonCodec,
    RunHeader,
    SqliteJournal,
    UnstorableValueError,
    UntrustedJournalError,
    replay,
)
from flowkernel.protocol import Cancelled, Raised, Returned, TimerFired
from flowkernel.result import ErrorInfo, ErrorKind

SIDE_EFFECTS: list[str] = []


def mark(what: str) -> str:
    """What a crafted payload calls when it is unpickled: proof that the file ran code."""
    SIDE_EFFECTS.append(what)
    return what


class Payload:
    """An object whose unpickling calls ``mark`` (any function could be there: os.system, ...)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (mark, ("code from the journal ran",))


class Colour(enum.Enum):
    RED = "red"


class Inner(BaseModel):
    label: str
    when: dt.date


class Outer(BaseModel):
    model_config = ConfigDict(extra="allow")

    inner: Inner
    items: tuple[int, ...] = ()
    colour: Colour = Colour.RED
    note: str = "default"


@tool
def echo(v: Any) -> Any:
    return v


@tool
def make_outer(v: int) -> Outer:
    return Outer(inner=Inner(label=f"n{v}", when=dt.date(2026, 1, v)), items=(v, v))


FLOW = Flow(name="echo", steps=[Step(id="a", tool=echo, arguments={"v": Input("v")})])
MODEL_FLOW = Flow(name="models", steps=[Step(id="m", tool=make_outer, arguments={"v": Input("v")})])

EVERY_TYPE: list[Any] = [
    None,
    True,
    False,
    0,
    -(2**80),
    1.5,
    -0.0,
    float("inf"),
    float("-inf"),
    "text, with ünïcode and a \x00",
    "$tuple",
    b"\x00\xffbytes",
    (1, (2, "x")),
    (),
    [1, [2, (3,)]],
    {1, 2, "3"},
    frozenset({(1, 2)}),
    {"plain": 1, "nested": {"k": [1]}},
    {"$tuple": "a key that looks like a tag"},
    {1: "int key", (2, 3): "tuple key", None: "none key"},
    dt.datetime(2026, 11, 22, 10, 0, 5, 123, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 22, 10, 0),
    dt.date(2026, 1, 2),
    dt.time(23, 59, 1),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    Decimal("1.10"),
    uuid.UUID(int=7),
    Colour.RED,
    Inner(label="x", when=dt.date(2026, 3, 4)),
    Outer(inner=Inner(label="y", when=dt.date(2026, 3, 4)), items=(1, 2), surplus=(9,)),  # type: ignore[call-arg]
    ErrorInfo(ErrorKind.TOOL, "ValueError", "bad", "a", "Traceback ...", {"code": 7}),
]


def test_every_supported_type_round_trips_exactly(tmp_path: Path) -> None:
    header = RunHeader("r", "f", "1", "h", {"values": tuple(EVERY_TYPE)}, 3, float("inf"), True, "f.py:flow")
    error = ErrorInfo(ErrorKind.TIMEOUT, "TimeoutError", "slow", "b", None, None)
    completions = (
        *(Returned(f"a{k}@1", value, 0.25, 1.5) for k, value in enumerate(EVERY_TYPE)),
        Raised("b@1", error, 2.0, 3.0),
        TimerFired("b@1/timeout"),
        Cancelled("c@1"),
    )
    with SqliteJournal(tmp_path / "j.db", models=[Outer]) as journal:
        journal.begin(header)
        journal.append("r", Entry(0, ("a0@1 echo",), completions), 0)
    with SqliteJournal(tmp_path / "j.db", models=[Outer]) as reopened:
        recorded = reopened.load("r")
    assert recorded.header == header
    [entry] = recorded.entries
    assert entry.completions == completions
    for value, back in zip(EVERY_TYPE, entry.completions, strict=False):
        got = back.value  # type: ignore[union-attr]
        assert type(got) is type(value)
        assert got == value or (isinstance(value, float) and math.isnan(value) and math.isnan(got))
    outer = entry.completions[EVERY_TYPE.index(EVERY_TYPE[-2])].value  # type: ignore[union-attr]
    assert outer.__pydantic_fields_set__ == {"inner", "items", "surplus"}
    assert outer.__pydantic_extra__ == {"surplus": (9,)}
    assert type(outer.inner) is Inner
    details = entry.completions[-4].value.details  # type: ignore[union-attr]
    assert details == {"code": 7}


def test_nan_round_trips() -> None:
    codec = JsonCodec()
    back = codec.loads(codec.dumps((float("nan"), [float("nan")]), "x"), "x")
    assert math.isnan(back[0])
    assert math.isnan(back[1][0])


def test_models_a_flow_declares_are_allowed_without_being_named(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        ran = load_driver("sync").run(MODEL_FLOW, {"v": 3}, journal=journal, run_id="r")
    with SqliteJournal(tmp_path / "j.db") as reopened:
        assert replay(MODEL_FLOW, reopened, "r") == ran
        assert reopened.load("r").entries[0].completions[0].value == ran.outputs["m"]  # type: ignore[union-attr]


def test_a_value_the_codec_cannot_store_is_a_typed_error_naming_it() -> None:
    codec = JsonCodec()
    with pytest.raises(UnstorableValueError, match=r"cannot store x\[1\]\['k'\]: the journal's codec has no tag for"):
        codec.dumps([1, {"k": object()}], "x")
    with pytest.raises(UnstorableValueError, match=r"Inner is not in the journal's allowlist"):
        codec.dumps(Inner(label="x", when=dt.date(2026, 1, 1)), "x")


def test_an_input_the_journal_cannot_store_is_a_journal_error_and_records_nothing(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        with pytest.raises(UnstorableValueError, match=r"cannot store the run's inputs\['v'\]: ") as raised:
            load_driver("sync").run(FLOW, {"v": object()}, journal=journal, run_id="r")
        assert isinstance(raised.value, JournalError)
        assert journal.runs() == []


# ---- crafted journals -------------------------------------------------------------------------------


def rewrite_entry(path: Path, blob: bytes, seq: int = 0) -> None:
    """Replace entry ``seq``'s stored completions with ``blob``, its checksum recomputed."""
    with sqlite3.connect(path) as db:
        (issued,) = db.execute("SELECT issued FROM entries WHERE seq = ?", (seq,)).fetchone()
        crc = zlib.crc32(blob, zlib.crc32(issued.encode()))
        db.execute("UPDATE entries SET completions = ?, crc = ? WHERE seq = ?", (blob, crc, seq))
    db.close()


def journal_of_one_run(path: Path, **options: Any) -> None:
    with SqliteJournal(path, **options) as journal:
        load_driver("sync").run(FLOW, {"v": 1}, journal=journal, run_id="r", flow_source=f"{__file__}:FLOW")


@pytest.fixture
def side_effects() -> list[str]:
    SIDE_EFFECTS.clear()
    return SIDE_EFFECTS


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps((Returned("a@1", Payload(), 0.0, 0.0),)),
        json.dumps({"$tuple": [{"$returned": ["a@1", {"$model": [f"{__name__}:mark", {}, [], None]}, 0, 0]}]}),
        json.dumps({"$tuple": [{"$returned": ["a@1", {"$enum": ["os:system", "touch /tmp/x"]}, 0, 0]}]}),
        json.dumps({"$tuple": [{"$returned": ["a@1", {"$object": "builtins:eval"}, 0, 0]}]}),
    ],
    ids=["pickle", "model-tag", "enum-tag", "unknown-tag"],
)
def test_a_crafted_entry_runs_no_code_on_load_show_or_resume(
    payload: bytes | str, tmp_path: Path, side_effects: list[str]
) -> None:
    path = tmp_path / "j.db"
    journal_of_one_run(path)
    rewrite_entry(path, payload.encode() if isinstance(payload, str) else payload)
    with SqliteJournal(path) as journal:
        with pytest.raises(CorruptJournalError) as refused:
            journal.load("r")
        assert "\n" not in str(refused.value)
        assert str(refused.value).startswith(f"{path}: cannot read run 'r', entry 0: ")
        with pytest.raises(CorruptJournalError):
            load_driver("sync").run(FLOW, journal=journal, run_id="r", resume=True)
    shown = CliRunner().invoke(cli, ["show", str(path), "r"])
    resumed = CliRunner().invoke(cli, ["resume", str(path), "r"])
    assert (shown.exit_code, resumed.exit_code) == (2, 2), shown.output + resumed.output
    assert side_effects == []


def test_a_pickle_journal_is_refused_unless_trusted_and_runs_no_code_then(
    tmp_path: Path, side_effects: list[str]
) -> None:
    path = tmp_path / "j.db"
    journal_of_one_run(path, trusted=True, codec="pickle")
    rewrite_entry(path, pickle.dumps((Returned("a@1", Payload(), 0.0, 0.0),)))
    with SqliteJournal(path) as journal:
        assert journal.pickles
        for attempt in (lambda: journal.load("r"), lambda: journal.header("r")):
            with pytest.raises(
                UntrustedJournalError, match=r"stores pickles .* open it with SqliteJournal\(path, trusted=True\)"
            ):
                attempt()
        assert [run.status for run in journal.runs()] == ["succeeded"]  # listing reads no value
    for command in ("show", "resume"):
        refused = CliRunner().invoke(cli, [command, str(path), "r"])
        assert refused.exit_code == 2
        assert "stores pickles" in refused.output
        assert "--trusted" in refused.output
    assert side_effects == []
    with SqliteJournal(path, trusted=True) as trusting:  # the owner's own file: trusted, the pickle loads
        trusting.load("r")
    assert side_effects == ["code from the journal ran"]


def test_pickles_need_the_trusted_flag_and_then_store_any_picklable_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="codec='pickle' needs trusted=True"):
        SqliteJournal(tmp_path / "j.db", codec="pickle")
    value = Decimal("3.5"), Colour.RED, Payload
    with SqliteJournal(tmp_path / "j.db", trusted=True, codec="pickle") as journal:
        journal.begin(RunHeader("r", "f", "1", "h", {}))
        journal.append("r", Entry(0, (), (Returned("a@1", value, 0.0, 0.0),)), 0)
        with pytest.raises(UnstorableValueError, match=r"cannot store entry 1 of run 'r': \w+Error: "):
            journal.append("r", Entry(1, (), (Returned("b@1", lambda: None, 0.0, 0.0),)), 0)
    with SqliteJournal(tmp_path / "j.db", trusted=True) as reopened:
        assert reopened.load("r").entries[0].completions[0].value == value  # type: ignore[union-attr]


def make_version_1_journal(path: Path) -> None:
    """A journal as flowkernel wrote it before the JSON codec: format version 1, pickles, no leases."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE flowkernel_journal (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, flow_name TEXT NOT NULL, flow_version TEXT NOT NULL,"
            " flow_hash TEXT NOT NULL, header BLOB NOT NULL, header_crc INTEGER NOT NULL, started REAL NOT NULL,"
            " status TEXT, finished REAL, steps_done INTEGER)"
        )
        db.execute(
            "CREATE TABLE entries (run_id TEXT NOT NULL, seq INTEGER NOT NULL, issued TEXT NOT NULL,"
            " completions BLOB NOT NULL, crc INTEGER NOT NULL, steps_done INTEGER NOT NULL,"
            " PRIMARY KEY (run_id, seq)) WITHOUT ROWID"
        )
        db.execute("INSERT INTO flowkernel_journal VALUES ('format', 'flowkernel journal'), ('version', '1')")
        from flowkernel.host.journal import flow_fingerprint

        header = pickle.dumps(RunHeader("old", "echo", "1", flow_fingerprint(FLOW), {"v": 5}))
        db.execute(
            "INSERT INTO runs (run_id, flow_name, flow_version, flow_hash, header, header_crc, started)"
            " VALUES ('old', 'echo', '1', ?, ?, ?, 1.0)",
            (flow_fingerprint(FLOW), header, zlib.crc32(header)),
        )
    db.close()


def test_a_journal_an_older_flowkernel_wrote_is_refused_clearly_unless_trusted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_version_1_journal(path)
    with SqliteJournal(path) as journal, pytest.raises(UntrustedJournalError, match=r"format version 1"):
        load_driver("sync").run(FLOW, journal=journal, run_id="old", resume=True)
    with SqliteJournal(path, trusted=True) as trusting:
        resumed = load_driver("sync").run(FLOW, journal=trusting, run_id="old", resume=True)
        assert resumed.outputs == {"a": 5}
        assert replay(FLOW, trusting, "old") == resumed
        assert [run.status for run in trusting.runs()] == ["succeeded"]


# ---- damaged values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blob", "why"),
    [
        (b"\xff\xfe not json", "cannot read run 'r', entry 0: "),
        (b'{"$tuple": [{"$returned": ["a@1", NaN, 0, 0]}]}', "bare NaN"),
        (b'{"$tuple": [{"$raised": ["a@1", 5, 0, 0]}]}', "a $raised record without an error"),
        (b'{"$tuple": [{"$returned": [5, 1, 0, 0]}]}', "expected text, found int"),
        (b'{"$tuple": [{"$bytes": "!!"}]}', "cannot read run 'r', entry 0: "),
        (b'{"$tuple": [1]}', "does not hold completions"),
        (b"[1, 2]", "does not hold completions"),
    ],
)
def test_a_damaged_value_with_a_good_checksum_is_a_one_line_corrupt_journal_error(
    blob: bytes, why: str, tmp_path: Path
) -> None:
    path = tmp_path / "j.db"
    journal_of_one_run(path)
    rewrite_entry(path, blob)
    with SqliteJournal(path) as journal, pytest.raises(CorruptJournalError) as refused:
        journal.load("r")
    assert why in str(refused.value)
    assert "\n" not in str(refused.value)


# ---- the step cache's mark on a completion ---------------------------------------------------------


def test_a_cached_completion_round_trips_and_older_records_read_as_not_cached() -> None:
    codec = JsonCodec()
    cached = Returned("a@1", {"v": 1}, 0.5, 0.5, True)
    text = codec.dumps(cached, "x")
    assert json.loads(text) == {"$returned": ["a@1", {"v": 1}, 0.5, 0.5, True]}
    assert codec.loads(text, "x") == cached
    assert codec.loads(text, "x").cached is True
    plain = Returned("a@1", 1, 0.5, 0.75)
    assert json.loads(codec.dumps(plain, "x")) == {"$returned": ["a@1", 1, 0.5, 0.75]}  # as before the cache
    assert codec.loads(b'{"$returned": ["a@1", 1, 0.5, 0.75]}', "x").cached is False


@pytest.mark.parametrize("fifth", ["false", "1", '"yes"', "true, true"])
def test_a_returned_record_with_a_bad_fifth_field_is_a_corrupt_journal(fifth: str) -> None:
    with pytest.raises(CorruptJournalError, match="cannot read x"):
        JsonCodec().loads(f'{{"$returned": ["a@1", 1, 0.5, 0.75, {fifth}]}}'.encode(), "x")


def test_a_journaled_run_served_from_the_cache_replays_as_cached(tmp_path: Path) -> None:
    from flowkernel import CachePolicy
    from flowkernel.host.cache import StepCache

    @tool(cache=CachePolicy())
    def slow(x: int) -> int:
        return x * 2

    flow = Flow(name="f", steps=[Step(id="s", tool=slow, arguments={"x": 2})])
    driver = load_driver("sync")
    with StepCache(tmp_path / "c.db") as cache, SqliteJournal(tmp_path / "j.db") as journal:
        driver.run_blocking(flow, run_id="first", cache=cache, journal=journal)
        live = driver.run_blocking(flow, run_id="second", cache=cache, journal=journal)
        replayed = replay(flow, journal, "second")
    assert live.steps[0].attempts[0].cached is True
    assert replayed.steps[0].attempts == live.steps[0].attempts
    assert replayed.to_dict() == live.to_dict()
