"""`support serve --reload-every`: a knowledge base rewritten on disk is loaded beside the copy
serving and swapped in between requests; no request fails or mixes the two copies, a broken
or half-written KB is never swapped in, and conversations and feedback carry over."""

from __future__ import annotations

import csv
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tunesmith_support.sample import sample_paths

QUESTIONS = [
    "how much does shipping cost",
    "can I return boots I wore outside",
    "do you price match",
    "how do I track my order",
    "what sizes do the rain jackets come in",
    "talk to a human",
]


def _updated_sources(where: Path) -> Path:
    """The sample KB with every FAQ answer reworded: a re-index encodes them all again."""
    source = shutil.copytree(sample_paths()["kb"], where)
    faq = source / "faq.csv"
    with faq.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["answer"] = "Updated tonight: " + row["answer"]
    with faq.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return source


def _rewrite(kb: Path, sources: Path) -> None:
    """What the nightly job does (`support index`, then `support calibrate`), under the KB's
    run lock as the commands hold it; calibrated for another precision, so that a turn scored
    by the new index with the old calibration would match neither copy."""
    from tunesmith.locks import run_lock
    from tunesmith_support.kbindex import kb_entries
    from tunesmith_support.learning import calibrate_kb, read_labelled

    with run_lock(kb):
        from tunesmith_support.kbindex import build_index

        build_index(sources, kb)
        ids = {e.id for e in kb_entries(kb)}
        calibrate_kb(kb, read_labelled([sample_paths()["history"]], ids), target_precision=0.4)


def _as_api(answer) -> dict:
    """An answer's fields as ``/v1/ask`` gives them."""
    return {**answer.to_dict(), "text": answer.text}


def _scored(answer: dict) -> tuple:
    """What a copy of the KB decides for a question, to the digits it computes it."""
    return (
        answer["decision"],
        answer["reason"],
        round(answer["confidence"], 6),
        answer["text"],
        tuple((c["id"], round(c["score"], 6), c["snippet"]) for c in answer["candidates"]),
    )


def _app(service, reloader, **options):
    from fastapi.testclient import TestClient

    from tunesmith_support.api import create_app

    return TestClient(create_app(service, reloader=reloader, **options))


@pytest.fixture
def served(kb_copy):
    """(service, reloader, log lines) over a private KB copy; the reloader's thread off."""
    from tunesmith_support.reload import KbReloader
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    lines: list[str] = []
    reloader = KbReloader(service, 0.05, log=lines.append)
    yield service, reloader, lines
    reloader.stop()
    service.close()


def test_requests_in_flight_during_a_reload_all_succeed_each_answered_from_one_copy(
    served, built_kb, tmp_path
):
    from tunesmith_support.answer import Answerer

    service, reloader, lines = served
    old = {q: _scored(_as_api(Answerer(built_kb).ask(q))) for q in QUESTIONS}
    sources = _updated_sources(tmp_path / "sources")
    responses: list[tuple[str, dict]] = []
    statuses: list[int] = []
    with _app(service, reloader) as client:
        first = client.post("/v1/ask", json={"question": QUESTIONS[0]}).json()
        reloader.start()
        done = threading.Event()

        def keep_asking(offset: int) -> None:
            after = 0
            i = offset
            while after < 6:
                question = QUESTIONS[i % len(QUESTIONS)]
                r = client.post("/v1/ask", json={"question": question})
                statuses.append(r.status_code)
                responses.append((question, r.json()))
                i += 1
                after += done.is_set()

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(keep_asking, n) for n in range(4)]
            _rewrite(service.kb_dir, sources)
            deadline = time.monotonic() + 60
            while reloader.generation < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            done.set()
            for future in futures:
                future.result()
        health = client.get("/v1/health").json()
        # The conversation and its turn from before the swap go on.
        follow = client.post(
            "/v1/ask",
            json={"question": "and express?", "conversation_id": first["conversation_id"]},
        )
        rated = client.post("/v1/feedback", json={"turn_id": first["turn_id"], "helpful": True})
        corrected = client.post(
            "/v1/feedback", json={"turn_id": first["turn_id"], "correct_id": "ord-01"}
        )
    assert reloader.generation == 2 and reloader.error is None, lines
    assert set(statuses) == {200}
    new = {q: _scored(_as_api(Answerer(service.kb_dir).ask(q))) for q in QUESTIONS}
    assert all(old[q] != new[q] for q in QUESTIONS[:5])  # the two copies can be told apart
    seen = {"old": 0, "new": 0}
    for question, response in responses:
        scored = _scored(response)
        assert scored in (old[question], new[question]), "a turn mixed the two copies"
        seen["old" if scored == old[question] else "new"] += 1
    assert seen["old"] and seen["new"]
    assert health["generation"] == 2 and health["kb_changed"] is False
    assert health["restart_needed"] is False and health["reload_error"] is None
    assert follow.status_code == 200 and rated.status_code == 200
    assert corrected.status_code == 200
    stored = service.conversations.store.query("SELECT COUNT(*) AS n FROM support_turns")
    assert stored[0]["n"] == len(responses) + 2
    assert any("reloaded the knowledge base" in line for line in lines)


def test_a_turn_begun_on_the_old_copy_ends_on_it_and_the_old_copy_is_then_freed(served, tmp_path):
    """The swap lands while a question is being searched: that turn is the old copy's whole,
    and once it is answered nothing holds the old copy (two copies only around the swap)."""
    service, reloader, _lines = served
    old = service.answerer
    searching, swapped = threading.Event(), threading.Event()
    expected = _scored(_as_api(old.ask(QUESTIONS[0])))
    real = {"search": old.search}

    def slow_search(*args, **kwargs):
        searching.set()
        swapped.wait(30)
        return real["search"](*args, **kwargs)

    old.search = slow_search
    sources = _updated_sources(tmp_path / "sources")
    with _app(service, reloader) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/v1/ask", json={"question": QUESTIONS[0]})
        assert searching.wait(30)
        _rewrite(service.kb_dir, sources)
        assert reloader.check()
        assert service.answerer is not old
        swapped.set()
        answer = pending.result()
        assert answer.status_code == 200 and _scored(answer.json()) == expected
        fresh = client.post("/v1/ask", json={"question": QUESTIONS[0]}).json()
    assert _scored(fresh) != expected
    gone = weakref.ref(old)
    real.clear()
    del old
    gc.collect()
    assert gone() is None


def test_a_broken_new_kb_keeps_the_old_copy_serving_and_health_says_why(served):
    service, reloader, lines = served
    kb = service.kb_dir
    loads = []
    load = reloader._load
    reloader._load = lambda *args: loads.append(1) or load(*args)
    calibration = (kb / "calibration.json").read_bytes()
    # What a `train` whose calibration was refused leaves: no calibration.
    (kb / "calibration.json").unlink()
    with _app(service, reloader) as client:
        assert reloader.check() is False
        assert reloader.check() is False and len(loads) == 1  # not tried again unchanged
        health = client.get("/v1/health").json()
        assert health["status"] == "ok" and health["generation"] == 1
        assert "has no calibration yet" in health["reload_error"]
        assert health["reload_error_at"] and health["kb_changed"] is True
        assert client.post("/v1/ask", json={"question": QUESTIONS[0]}).status_code == 200
        assert any("could not reload" in line and "no calibration" in line for line in lines)
        # Put right: the next check loads it, and the error is gone.
        (kb / "calibration.json").write_bytes(calibration)
        assert reloader.check() is True
        health = client.get("/v1/health").json()
    assert health["generation"] == 2 and health["reload_error"] is None


def test_a_kb_pointing_at_another_encoder_than_its_index_is_refused(served, tiny_model, tmp_path):
    from tunesmith.io import atomic_write_json

    service, reloader, _lines = served
    other = shutil.copytree(tiny_model, tmp_path / "other_encoder")
    meta = json.loads((service.kb_dir / "kb.json").read_text(encoding="utf-8"))
    atomic_write_json(service.kb_dir / "kb.json", {**meta, "model": str(other)})
    served_before = service.answerer
    assert reloader.check() is False
    assert "built with another encoder" in reloader.error
    assert service.answerer is served_before


def test_a_reload_waits_while_a_writer_holds_the_kb(served):
    """`train` writes a new encoder and index, then the classifier, then the calibration,
    each atomically: in between, the files on disk are a mix, never loaded."""
    from tunesmith.locks import run_lock

    service, reloader, _lines = served
    calibration = service.kb_dir / "calibration.json"
    with run_lock(service.kb_dir):
        later = calibration.stat().st_mtime_ns + 5_000_000_000
        os.utime(calibration, ns=(later, later))
        assert reloader.check() is False and reloader.error is None
    assert reloader.check() is True


#: A re-index in a process of its own (under the KB's run lock, as `support index` runs), which
#: stops after encoding, before saving, until it is killed.
WRITER = """
import sys, time
from pathlib import Path
from tunesmith.locks import run_lock
from tunesmith_support.kbindex import build_index

kb, sources, flag = sys.argv[1:]

def stop(done, total):
    Path(flag).write_text("encoded")
    time.sleep(600)

with run_lock(kb):
    build_index(sources, kb, progress=stop)
"""


def test_a_reindex_in_progress_or_killed_leaves_the_server_on_the_old_copy(served, tmp_path):
    service, reloader, _lines = served
    kb = service.kb_dir
    sources = _updated_sources(tmp_path / "sources")
    first = service.answerer
    flag = tmp_path / "encoded"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(kb), str(sources), str(flag)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    with _app(service, reloader) as client:
        try:
            deadline = time.monotonic() + 120
            while not flag.exists() and writer.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert flag.exists(), "the re-index never got to encoding"
            assert reloader.check() is False
            assert client.post("/v1/ask", json={"question": QUESTIONS[0]}).status_code == 200
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        assert reloader.check() is False and reloader.error is None
        health = client.get("/v1/health").json()
        assert health["generation"] == 1 and health["kb_changed"] is False
        assert service.answerer is first
        answered = client.post("/v1/ask", json={"question": QUESTIONS[0]}).json()
    assert "Updated tonight" not in json.dumps(answered)


def test_health_says_a_restart_is_needed_only_when_the_server_does_not_reload(make_client):
    from tunesmith_support.reload import KbReloader

    client = make_client()
    off, on = KbReloader(client.service, 0), KbReloader(client.service, 30)
    calibration = client.service.kb_dir / "calibration.json"
    later = calibration.stat().st_mtime_ns + 5_000_000_000
    os.utime(calibration, ns=(later, later))
    with _app(client.service, off) as without, _app(client.service, on) as reloading:
        stopped = without.get("/v1/health").json()
        running = reloading.get("/v1/health").json()
    assert stopped["restart_needed"] is True and stopped["reload_every"] == 0
    assert running["restart_needed"] is False and running["kb_changed"] is True
    assert running["reload_every"] == 30


def test_feedback_after_a_reload_reads_the_ids_the_new_copy_renamed(served, tmp_path):
    """A re-index that gave an entry a new id: an agent's correct_id with the old id is the
    new entry's once the new copy serves (the renames were read once and kept before)."""
    from tunesmith.locks import run_lock
    from tunesmith_support.kbindex import build_index

    service, reloader, _lines = served
    sources = shutil.copytree(sample_paths()["kb"], tmp_path / "sources")
    faq = sources / "faq.csv"
    faq.write_text(faq.read_text(encoding="utf-8").replace("ord-01,", "ord-track,", 1))
    with _app(service, reloader) as client:
        turn = client.post("/v1/ask", json={"question": QUESTIONS[0]}).json()["turn_id"]
        assert (
            client.post("/v1/feedback", json={"turn_id": turn, "helpful": True}).status_code == 200
        )
        with run_lock(service.kb_dir):
            assert build_index(sources, service.kb_dir).renamed == {"ord-01": "ord-track"}
        assert reloader.check()
        fixed = client.post("/v1/feedback", json={"turn_id": turn, "correct_id": "ord-01"})
    assert fixed.status_code == 200, fixed.json()
    assert service.conversations.feedback()[-1]["correct_id"] == "ord-track"
