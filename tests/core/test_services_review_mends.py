"""Shared services used as a plugin author and a user would: each failure a user or a plugin can
cause is one clear error (naming the file where there is one), and nothing committed is lost."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import tunesmith
from tunesmith.errors import UserInputError
from tunesmith.events import (
    OUTBOX_MIGRATIONS,
    RetryPolicy,
    emit,
    list_deliveries,
    make_sink,
    retry,
)
from tunesmith.hooktypes import Event
from tunesmith.plugins import plugin_records
from tunesmith.retrieval.index import VectorIndex
from tunesmith.store import Store, StoreError, StoreLockedError

FAST = RetryPolicy(tries=1, base_delay=0, send_timeout=5)


def small_index(tmp_path) -> VectorIndex:
    index = VectorIndex.create(tmp_path / "ix", dim=4, encoder_name="e")
    index.add(["a", "b"], vectors=np.eye(4, dtype=np.float32)[:2], payloads=[{"g": 1}, {}])
    return index


# ------------------------------------------------------------------ vector index


def test_index_lone_surrogates_in_ids_texts_payloads_or_filters_are_one_user_error(tmp_path):
    index = small_index(tmp_path)
    one = np.eye(4, dtype=np.float32)[2:3]
    with pytest.raises(UserInputError, match=r"id '\\ud800' holds U\+D800"):
        index.add(["\ud800"], vectors=one)
    with pytest.raises(UserInputError, match=r"payload for id 'c' holds U\+DC80"):
        index.add(["c"], vectors=one, payloads=[{"note": "\udc80"}])
    with pytest.raises(UserInputError, match=r"text for id 'c' holds U\+DC00"):
        index.upsert(["c"], texts=["\udc00"], vectors=one)
    with pytest.raises(UserInputError, match="lone surrogate"):
        index.search(np.ones(4), k=2, where={"g": "\ud800"})
    # Lookups of such an id find nothing, as for any absent id, instead of raising.
    assert "\ud800" not in index and index.get("\ud800") is None
    assert index.vector("\ud800") is None and index.delete(["\ud800"]) == 0
    assert index.ids() == ["a", "b"] and len(index) == 2


def test_index_filter_on_a_field_name_json_escapes_is_refused_not_silently_empty(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=4, encoder_name="e")
    index.add(["a"], vectors=np.eye(4, dtype=np.float32)[:1], payloads=[{"dir\\name": 1}])
    # SQLite's JSON path compared the name with the key as JSON writes it ("dir\\\\name"),
    # so this filter matched nothing although the item has the field.
    for name in ("dir\\name", "tab\there", 'quote"d'):
        with pytest.raises(UserInputError, match="without quotes, backslashes or control"):
            index.search(np.ones(4), k=1, where={name: 1})
    assert [h.id for h in index.search(np.ones(4), k=1, where={"x]": None})] == ["a"]


def test_index_filter_with_a_non_string_field_among_names_is_a_user_error(tmp_path):
    index = small_index(tmp_path)
    with pytest.raises(UserInputError, match="where field must be a non-empty name, got 1"):
        index.search(np.ones(4), k=1, where={1: "x", "g": 1})


def test_index_search_batch_of_no_texts_is_no_results_even_without_an_encoder(tmp_path):
    index = small_index(tmp_path)
    assert index.search_batch([], k=3) == []


# ------------------------------------------------------------------ events


@pytest.mark.parametrize(
    "url",
    [
        "webhook:http://",
        "webhook:https://exa mple.com/hook",
        "webhook:http://[::1/hook",
        "webhook:http://example.com:99999/hook",
    ],
)
def test_a_malformed_webhook_url_is_refused_before_anything_is_recorded(tmp_path, url):
    outbox = tmp_path / "outbox.sqlite"
    with pytest.raises(UserInputError, match="webhook sink URL .* is malformed"):
        emit(Event(kind="alert", message="m"), [url], outbox=outbox, retry=FAST)
    # Not kept as a failed delivery that `events retry` could never deliver.
    assert list_deliveries(outbox) == []


def test_a_retry_policy_without_attempts_is_refused_not_reported_as_delivered(tmp_path):
    for bad in ({"tries": 0}, {"tries": 2.5}, {"base_delay": -1}, {"send_timeout": 0}):
        with pytest.raises(UserInputError, match="RetryPolicy"):
            RetryPolicy(**bad)


class _FlakyFactoryPlugin:
    """A sink scheme whose factory has a bug (raises something other than UserInputError)."""

    @tunesmith.hookimpl
    def tunesmith_event_sinks(self):
        def factory(rest: str):
            raise KeyError(rest)

        return {"flaky": factory}


def test_retry_goes_on_past_a_sink_whose_factory_raises(tmp_path, register_plugin):
    outbox = tmp_path / "outbox.sqlite"
    out = tmp_path / "alerts.jsonl"

    class Down:
        sink_url = "flaky:x"

        def send(self, event):
            raise ConnectionError("down")

    class DownToo:
        sink_url = f"jsonl:{out}"

        def send(self, event):
            raise ConnectionError("down")

    first = emit(Event(kind="a", message="1"), [Down()], outbox=outbox, retry=FAST)
    second = emit(Event(kind="b", message="2"), [DownToo()], outbox=outbox, retry=FAST)
    assert first.failed and second.failed
    register_plugin(_FlakyFactoryPlugin(), "flaky-factory")
    with pytest.raises(UserInputError, match="event sink 'flaky:x' could not be built: KeyError"):
        make_sink("flaky:x")
    reports = {r.event_id: r for r in retry(outbox, policy=FAST)}
    # The broken factory is that delivery's failure; the other event is still re-sent.
    assert "could not be built: KeyError" in reports[first.event_id].errors["flaky:x"]
    assert reports[second.event_id].delivered == [f"jsonl:{out}"]
    assert json.loads(out.read_text(encoding="utf-8"))["id"] == second.event_id


def test_emit_with_sinks_not_a_list_or_a_sink_url_with_a_surrogate_is_a_user_error(tmp_path):
    outbox = tmp_path / "outbox.sqlite"
    with pytest.raises(UserInputError, match="sinks must be a list"):
        emit(Event(kind="a", message="m"), None, outbox=outbox)  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="lone surrogate"):
        emit(Event(kind="a", message="m"), [f"jsonl:{tmp_path}/\udc80.jsonl"], outbox=outbox)
    assert list_deliveries(outbox) == []


# ------------------------------------------------------------------ store


def test_a_migration_function_that_raises_is_a_store_error_naming_it_and_rolled_back(tmp_path):
    path = tmp_path / "db.sqlite"

    def broken(tx):
        tx.execute("CREATE TABLE half (a)")
        raise ValueError("cannot convert row 3")

    with pytest.raises(StoreError, match=r"migration 2 of namespace 'p' failed.*ValueError"):
        Store.open(path, namespace="p", migrations=["CREATE TABLE t (a)", broken])
    with Store.open(path, namespace="p", migrations=["CREATE TABLE t (a)"]) as db:
        assert db.schema_version("p") == 1
        tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master")}
        assert "t" in tables and "half" not in tables


def test_sql_errors_naming_a_locked_or_busy_table_are_not_reported_as_a_lock(tmp_path):
    with Store.open(tmp_path / "db.sqlite", migrations=["CREATE TABLE t (a)"]) as db:
        for sql in ("SELECT * FROM locked_rows", "SELECT busy FROM t"):
            with pytest.raises(sqlite3.OperationalError) as caught:
                db.query(sql)
            assert not isinstance(caught.value, StoreLockedError)


def test_a_full_disk_is_one_store_error_naming_the_file_and_earlier_commits_stay(tmp_path):
    path = tmp_path / "db.sqlite"
    with Store.open(path, migrations=["CREATE TABLE t (a TEXT)"]) as db:
        db.execute("INSERT INTO t VALUES ('kept')")
        db.query("PRAGMA max_page_count = 8")  # a disk with room for 8 pages
        rows = [("x" * 1000,) for _ in range(100)]
        with (
            pytest.raises(StoreError, match=rf"{path}: the disk is full") as caught,
            db.transaction() as tx,
        ):
            tx.executemany("INSERT INTO t VALUES (?)", rows)
        assert "\n" not in str(caught.value)
        assert [r["a"] for r in db.query("SELECT a FROM t")] == ["kept"]


def test_a_schema_version_table_another_program_made_is_one_error_naming_the_file(tmp_path, cli):
    path = tmp_path / "other.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE schema_version (v INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=rf"{path}: its schema_version table was not made"):
        Store.open(path, migrations=["CREATE TABLE t (a)"])
    # Listing it reads no store: it holds no outbox, so there are no events (and nothing is
    # written into another program's file).
    before = path.read_bytes()
    result = cli("events", "list", "--outbox", str(path))
    assert result.exit_code == 0 and "no events" in result.output
    assert path.read_bytes() == before


def test_a_schema_version_that_is_not_a_number_is_one_store_error(tmp_path):
    path = tmp_path / "db.sqlite"
    Store.open(path, namespace="p", migrations=["CREATE TABLE t (a)"]).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = 'two' WHERE namespace = 'p'")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="schema version 'two' of namespace 'p'"):
        Store.open(path, namespace="p", migrations=["CREATE TABLE t (a)"])


# ------------------------------------------------------------------ plugins


class _WrongTypes:
    @tunesmith.hookimpl
    def tunesmith_event_sinks(self):
        return ["memory"]  # a list where a dict of scheme -> factory belongs

    @tunesmith.hookimpl
    def tunesmith_sample_data(self):
        return "support_intents"  # a string: each character would become an item

    @tunesmith.hookimpl
    def tunesmith_augmenters(self):
        return [object()]  # no name


def test_a_plugin_hook_returning_the_wrong_type_is_skipped_and_shown_by_plugins(
    fresh_plugins, register_plugin, tmp_path, cli, capsys
):
    from tunesmith.plugins import collect_by_name, collect_list

    fresh_plugins.delenv("TUNESMITH_STRICT_PLUGINS", raising=False)
    register_plugin(_WrongTypes(), "wrong-types")
    # Every other sink, sample set and augmenter keeps working.
    report = emit(Event(kind="a", message="m"), ["stdout"], outbox=tmp_path / "o.sqlite")
    assert report.delivered == ["stdout"]
    assert all(hasattr(s, "paths") for s in collect_list("tunesmith_sample_data"))
    assert "token_edits" in collect_by_name("tunesmith_augmenters")
    err = capsys.readouterr().err
    assert "plugin 'wrong-types' skipped: tunesmith_event_sinks must return a dict, got list" in err
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    error = {r["name"]: r for r in json.loads(result.stdout)}["wrong-types"]["error"]
    assert "tunesmith_sample_data must return a list, got str" in error
    assert "tunesmith_augmenters returned object without a name" in error
    records = {r.name: r for r in plugin_records()}
    assert records["support"].error is None


def test_strict_mode_raises_for_a_hook_returning_the_wrong_type(fresh_plugins, register_plugin):
    from tunesmith.errors import PluginError
    from tunesmith.plugins import collect_dict

    fresh_plugins.setenv("TUNESMITH_STRICT_PLUGINS", "1")
    register_plugin(_WrongTypes(), "wrong-types")
    with pytest.raises(PluginError, match="must return a dict, got list"):
        collect_dict("tunesmith_event_sinks")


def test_an_up_to_date_store_opens_and_reads_while_another_process_holds_a_write(tmp_path, cli):
    import subprocess
    import sys

    outbox = tmp_path / "outbox.sqlite"
    report = emit(Event(kind="a", message="m"), [], outbox=outbox)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(outbox)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"INSERT INTO outbox_events VALUES ('x', 'k', 's', 'm', '{}', 't')\")\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # Opening took the write lock to re-check the migrations, so a read-only
        # `events list` waited the busy timeout and failed while any emitter was writing.
        with Store.open(
            outbox, namespace="events", migrations=OUTBOX_MIGRATIONS, timeout=0.5
        ) as db:
            assert db.schema_version("events") == len(OUTBOX_MIGRATIONS)
            assert [r["id"] for r in db.query("SELECT id FROM outbox_events")] == [report.event_id]
        result = cli("events", "list", "--outbox", str(outbox), "--json")
        assert result.exit_code == 0, result.output
        # A namespace with a pending migration still needs the write lock: one clear error.
        with pytest.raises(StoreLockedError, match=str(outbox)):
            Store.open(outbox, namespace="new", migrations=["CREATE TABLE n (a)"], timeout=0.3)
    finally:
        holder.kill()
        holder.wait()
