"""The cache file: time-to-live, upserts, stats and clearing, pickling for Dask workers, and hostile
files (another database, garbage, crafted entries, a pickle payload): a typed error or a miss, never code."""

from __future__ import annotations

import os
import pickle
import sqlite3
from pathlib import Path

import pytest

from flowkernel.errors import CacheError, CorruptCacheError, ForeignCacheError
from flowkernel.host.cache import StepCache, cache_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


KEY = cache_key("fetch", "1", {"url": "https://example.org"})


def test_a_value_is_served_until_its_ttl_runs_out(tmp_path: Path) -> None:
    clock = Clock()
    with StepCache(tmp_path / "c.db", clock=clock) as cache:
        assert cache.get(KEY) is None
        cache.put(KEY, '{"ok":true}', ttl=60)
        hit = cache.get(KEY)
        assert hit is not None
        assert hit.value == {"ok": True}
        assert hit.stored == 1_000.0
        clock.now += 59.9
        assert cache.get(KEY) is not None
        clock.now += 0.1
        assert cache.get(KEY) is None
        stats = cache.stats()
        assert (stats.entries, stats.expired, stats.hits) == (1, 1, 2)


def test_no_ttl_means_no_expiry_and_a_second_put_replaces_the_first(tmp_path: Path) -> None:
    clock = Clock()
    with StepCache(tmp_path / "c.db", clock=clock) as cache:
        cache.put(KEY, "1", ttl=None)
        cache.put(KEY, "2", ttl=None)
        clock.now += 1e9
        hit = cache.get(KEY)
        assert hit is not None
        assert hit.value == 2
        assert cache.stats().entries == 1


def test_other_versions_and_arguments_miss(tmp_path: Path) -> None:
    with StepCache(tmp_path / "c.db") as cache:
        cache.put(KEY, "1", ttl=None)
        assert cache.get(cache_key("fetch", "2", {"url": "https://example.org"})) is None
        assert cache.get(cache_key("fetch", "1", {"url": "https://example.com"})) is None
        assert cache.get(cache_key("other", "1", {"url": "https://example.org"})) is None


def test_stats_per_tool_and_clearing_by_tool_or_expiry(tmp_path: Path) -> None:
    clock = Clock()
    with StepCache(tmp_path / "c.db", clock=clock) as cache:
        for n in range(3):
            cache.put(cache_key("a", "1", {"n": n}), '"aaaa"', ttl=10 if n else None)
        cache.put(cache_key("b", "1", {"n": 0}), "[1,2]", ttl=10)
        cache.get(cache_key("b", "1", {"n": 0}))
        clock.now += 20
        stats = cache.stats()
        assert [(t.tool, t.entries, t.expired, t.hits, t.value_bytes) for t in stats.tools] == [
            ("a", 3, 2, 0, 18),
            ("b", 1, 1, 1, 5),
        ]
        assert (stats.entries, stats.expired, stats.hits) == (4, 3, 1)
        assert stats.file_bytes >= (tmp_path / "c.db").stat().st_size > 0
        assert cache.clear(tool="a", expired=True) == 2
        assert cache.clear(tool="nope") == 0
        assert [(t.tool, t.entries) for t in cache.stats().tools] == [("a", 1), ("b", 1)]
        assert cache.clear(expired=True) == 1
        assert cache.clear() == 1
        assert cache.stats().entries == 0


def test_a_pickled_cache_is_its_path_and_opens_the_same_file(tmp_path: Path) -> None:
    with StepCache(tmp_path / "c.db") as cache:
        cache.put(KEY, '"v"', ttl=None)
        copy = pickle.loads(pickle.dumps(cache))
    assert copy.path == cache.path
    hit = copy.get(KEY)
    assert hit is not None
    assert hit.value == "v"
    copy.close()


def test_threads_use_connections_of_their_own(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with StepCache(tmp_path / "c.db") as cache:

        def work(n: int) -> object:
            key = cache_key("t", "1", {"n": n % 5})
            cache.put(key, str(n % 5), ttl=None)
            hit = cache.get(key)
            return None if hit is None else hit.value

        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(work, range(200)))
        assert got == [n % 5 for n in range(200)]
        assert cache.stats().entries == 5


# ---- hostile and damaged files ----------------------------------------------------------------------


def test_another_applications_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    before = path.read_bytes()
    with pytest.raises(ForeignCacheError, match="not a flowkernel step cache"):
        StepCache(path)
    assert path.read_bytes() == before  # not switched to WAL, nothing written


@pytest.mark.parametrize("content", [b"x", b"hello, this is not a database at all" * 100, b"\x00" * 4096])
def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(content)
    with pytest.raises(CacheError):
        StepCache(path)


def test_a_journal_file_is_not_a_cache(tmp_path: Path) -> None:
    from flowkernel.host.journal import SqliteJournal

    SqliteJournal(tmp_path / "j.db").close()
    with pytest.raises(ForeignCacheError, match="has tables"):
        StepCache(tmp_path / "j.db")


@pytest.mark.parametrize(
    ("statements", "error", "says"),
    [
        (["UPDATE flowkernel_cache SET value = '99' WHERE key = 'version'"], ForeignCacheError, "version '99'"),
        (["UPDATE flowkernel_cache SET value = 'x' WHERE key = 'format'"], ForeignCacheError, "format 'x'"),
        (["DROP TABLE entries", "CREATE TABLE entries (digest TEXT)"], CorruptCacheError, "lack the columns"),
    ],
    ids=["another version", "another format", "a changed schema"],
)
def test_a_cache_of_another_format_or_schema_is_refused(
    tmp_path: Path, statements: list[str], error: type[CacheError], says: str
) -> None:
    StepCache(tmp_path / "c.db").close()
    with sqlite3.connect(tmp_path / "c.db") as db:
        for statement in statements:
            db.execute(statement)
    with pytest.raises(error, match=says):
        StepCache(tmp_path / "c.db")


def test_a_cut_file_is_a_typed_error(tmp_path: Path) -> None:
    with StepCache(tmp_path / "c.db") as cache:
        for n in range(200):
            cache.put(cache_key("t", "1", {"n": n}), '"' + "x" * 500 + '"', ttl=None)
        with sqlite3.connect(tmp_path / "c.db") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = (tmp_path / "c.db").read_bytes()
    (tmp_path / "c.db").write_bytes(data[: len(data) // 2])
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"c.db{suffix}").unlink(missing_ok=True)

    def read_everything() -> None:
        with StepCache(tmp_path / "c.db") as cut:
            for n in range(200):
                cut.get(cache_key("t", "1", {"n": n}))
            cut.stats()

    with pytest.raises(CacheError):
        read_everything()


def test_crafted_entries_are_misses_and_never_run_code(tmp_path: Path) -> None:
    """Entries written by hand: a pickle that would run code, bytes, text that is not JSON, a value nested
    past the parser's limit, a row whose key columns do not match its digest. Each is a miss."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, (f"touch {marker}",))

    keys = [cache_key("t", "1", {"n": n}) for n in range(6)]
    with StepCache(tmp_path / "c.db") as cache:
        for key in keys:
            cache.put(key, "0", ttl=None)
    crafted = [
        pickle.dumps(Payload()),  # a BLOB
        pickle.dumps(Payload()).decode("latin-1"),  # as text
        "{not json",
        "[" * 100_000 + "]" * 100_000,
        "NaN",
    ]
    with sqlite3.connect(tmp_path / "c.db") as db:
        for key, value in zip(keys, crafted, strict=False):
            db.execute("UPDATE entries SET value = ? WHERE digest = ?", (value, key.digest))
        db.execute("UPDATE entries SET arguments = '{\"n\":99}' WHERE digest = ?", (keys[5].digest,))
    with StepCache(tmp_path / "c.db") as cache:
        assert [cache.get(key) for key in keys] == [None] * 6
    assert not marker.exists()
