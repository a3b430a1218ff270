from __future__ import annotations

import json
import threading
import time

from finance_fakes import KeywordModel, doc, wait_for, write_jsonl

from tunesmith_finance.ingest import Ingester
from tunesmith_finance.storage import count_documents
from tunesmith_finance.watch import watch_folder


def test_watch_picks_up_new_files_and_appended_lines(db, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [doc(1), doc(2)])
    (folder / "notes.txt").write_text("not a stream")
    ingester = Ingester(db, KeywordModel(), warn=lambda _m: None)
    stop = threading.Event()
    passes = []
    thread = threading.Thread(
        target=watch_folder,
        args=(ingester, folder),
        kwargs={"stop_event": stop, "on_pass": passes.append, "log": lambda _m: None},
        daemon=True,
    )
    thread.start()
    try:
        assert wait_for(lambda: count_documents(db) == 2)
        time.sleep(0.5)  # let the watcher start
        with (folder / "a.jsonl").open("a") as handle:
            handle.write(json.dumps(doc(3)) + "\n")
        write_jsonl(folder / "b.jsonl", [doc(4)])
        assert wait_for(lambda: count_documents(db) == 4)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_restarted_watch_resumes_where_it_stopped(db, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [doc(i) for i in range(3)])
    watch_folder(
        Ingester(db, KeywordModel(), warn=lambda _m: None), folder, once=True, log=lambda _m: None
    )
    with (folder / "a.jsonl").open("a") as handle:
        handle.write(json.dumps(doc(3)) + "\n")
    model = KeywordModel()
    reports = []
    watch_folder(
        Ingester(db, model, warn=lambda _m: None),
        folder,
        once=True,
        on_pass=reports.append,
        log=lambda _m: None,
    )
    assert (reports[0].read, reports[0].added, count_documents(db)) == (1, 1, 4)


def _watch_in_thread(ingester, folder, **kwargs):
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_folder,
        args=(ingester, folder),
        kwargs={"stop_event": stop, "log": lambda _m: None, **kwargs},
        daemon=True,
    )
    thread.start()
    return stop, thread


class _WritesAFileWhileScoring(KeywordModel):
    """Writes ``path`` during its first batch: a file that arrives while the first pass reads."""

    def __init__(self, path):
        super().__init__()
        self.pending = path

    def score(self, texts, *, batch_size=32):
        if self.pending is not None:
            write_jsonl(self.pending, [doc(99)])
            self.pending = None
            time.sleep(0.3)
        return super().score(texts, batch_size=batch_size)


def test_a_file_written_while_the_first_pass_reads_is_not_missed(db, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [doc(1)])
    model = _WritesAFileWhileScoring(folder / "b.jsonl")
    stop, thread = _watch_in_thread(Ingester(db, model, warn=lambda _m: None), folder)
    try:
        assert wait_for(lambda: count_documents(db) == 2, timeout=8)
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_file_the_database_was_locked_for_is_read_once_the_lock_is_gone(tmp_path, monkeypatch):
    import sqlite3

    import tunesmith_finance.ingest as ingest_module
    from tunesmith_finance.storage import open_store

    monkeypatch.setattr(ingest_module, "LOCK_RETRIES", 0)
    folder = tmp_path / "inbox"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [doc(1), doc(2)])
    db = open_store(tmp_path / "f.sqlite", timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "f.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    logged: list[str] = []
    stop, thread = _watch_in_thread(
        Ingester(db, KeywordModel(), warn=lambda _m: None), folder, log=logged.append
    )
    try:
        assert wait_for(lambda: any("locked" in m for m in logged), timeout=8)
        assert count_documents(db) == 0
        blocker.execute("ROLLBACK")
        # Nothing in the folder changes: the watcher must try the file again on its own.
        assert wait_for(lambda: count_documents(db) == 2, timeout=8)
    finally:
        blocker.close()
        stop.set()
        thread.join(timeout=10)
        db.close()


def test_a_file_that_cannot_be_read_is_logged_and_the_others_are_still_read(db, tmp_path):
    from tunesmith_finance.watch import ingest_paths

    write_jsonl(tmp_path / "a.jsonl", [doc(1)])
    write_jsonl(tmp_path / "b.jsonl", [doc(2)])
    real = Ingester(db, KeywordModel(), warn=lambda _m: None)

    class Flaky:
        def ingest_file(self, path, *, follow=False):
            if path.name == "a.jsonl":  # e.g. deleted, or its permissions changed, meanwhile
                raise PermissionError(13, "Permission denied", str(path))
            return real.ingest_file(path, follow=follow)

    logged: list[str] = []
    report = ingest_paths(Flaky(), [tmp_path / "a.jsonl", tmp_path / "b.jsonl"], logged.append)
    assert report.added == 1 and count_documents(db) == 1
    assert logged == [f"Error: {tmp_path / 'a.jsonl'}: Permission denied"]
