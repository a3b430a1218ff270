from __future__ import annotations

import json
import threading
import time

from finance_fakes import KeywordModel, doc, write_jsonl

from tunesmith_finance.ingest import Ingester
from tunesmith_finance.storage import count_documents
from tunesmith_finance.watch import watch_folder


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


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
