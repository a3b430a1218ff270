"""``support serve --reload-every N``: pick up a knowledge base rewritten on disk, with no
request failed or answered from a mix of two copies.

Every ``N`` seconds a background thread compares the KB's files (:func:`~tunesmith_support.
answer.kb_stamp`: ``kb.json``, the index's generation, the calibration, the classifier, the
languages; the inode, size and time of each) with those of the copy being served. When they
changed and no writer holds the KB's run lock (``index``, ``calibrate`` and ``train`` hold it
for their whole run, and ``train`` passes through states such as a new encoder and index
beside the old calibration), it loads a new :class:`~tunesmith_support.answer.Answerer`
beside the one serving, asks it one question, and checks that the files did not change and
no writer started meanwhile; only then is it swapped in (:meth:`~tunesmith_support.service.
SupportService.use`). A request reads the service's copy once, so each is answered wholly from
the old copy or wholly from the new.

A copy that fails to load or to answer (no calibration after a refused ``train``, an index
built with another encoder) is reported in the log and in ``/v1/health``; the old copy keeps
serving and that version of the files is not tried again until they change. A load overtaken
by a switch of ``kb.json`` (whose writer removes the folders the old one named right after) is
not an error: it is done again at once, or at the next check if a writer is at work again.
The stamps, the swap and these rules are the core's :class:`tunesmith.reloading.Reloading`
(recommend's model follows its folder with it too); this module adds what is the KB's.

The encoder and the intent classifier are the largest parts of a copy and the slowest to
load: when the new ``kb.json`` names the folder the serving copy loaded one from, and none of
its files changed, the new copy uses that model (an `index` that added entries, a
`calibrate`; a `train` without ``--classifier`` keeps the classifier, whose labels are then
read from the new ``kb.json``'s renamed ids). Both copies then run their models under one
lock, as one copy's requests do.

Polling, not a signal or an admin route: the nightly job needs no address, process id or
credentials of the server (which may be several, behind a load balancer), and the API gains
no route that changes state. A stat of five files every 30 seconds costs nothing.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.io import process_alive
from tunesmith.locks import lock_path
from tunesmith.reloading import Reloading, one_line
from tunesmith_support.answer import Answerer, kb_stamp
from tunesmith_support.kbgenerations import classifier_path
from tunesmith_support.kbindex import model_location, read_meta

if TYPE_CHECKING:
    from tunesmith_support.scoring import IntentModel
    from tunesmith_support.service import SupportService

#: Loads of a KB tried in a row while a writer keeps switching ``kb.json`` under them (by
#: :func:`load_answerer`, and by the reloader around it).
LOAD_TRIES = 3

#: The warning a reload that failed is said with (:data:`tunesmith.reloading.FAILURE`'s fields).
FAILURE = (
    "warning: could not reload {what} ({error}); still answering from the copy loaded at "
    "{loaded_at}"
)

#: A lock file with no pid in it this many seconds old was left by a writer killed in the
#: instant between taking the lock and writing its pid; a younger one is a writer starting.
UNNAMED_LOCK_SECONDS = 60.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def writer_pid(kb_dir: str | Path) -> int | None:
    """The process rewriting the KB (``index``, ``calibrate``, ``train``: their run lock),
    ``None`` when there is none. Read, never locked: taking the lock, even for a moment, would
    make a writer starting at that moment fail with "another run is writing"."""
    path = lock_path(kb_dir)
    try:
        text = path.read_text(encoding="utf-8").strip()
        age = time.time() - path.stat().st_mtime
    except OSError:
        return None  # no lock file: no writer (a finished one removes it)
    if not text:
        return -1 if age < UNNAMED_LOCK_SECONDS else None
    try:
        pid = int(text)
    except ValueError:
        return None
    # A writer killed with -9 leaves its file behind (the kernel drops the lock itself).
    return pid if process_alive(pid) else None


def folder_stamp(folder: Path) -> tuple[Any, ...] | None:
    """The resolved ``folder`` with the inode, size and time of each of its files: equal
    stamps, the same files. ``None`` when it is missing, empty or cannot be read."""
    files = []
    try:
        for path in sorted(folder.rglob("*")):
            stat = path.stat()
            files.append(
                (str(path.relative_to(folder)), stat.st_ino, stat.st_size, stat.st_mtime_ns)
            )
        where = str(folder.resolve(strict=True))
    except OSError:
        return None
    return (where, tuple(files)) if files else None


def encoder_stamp(kb_dir: Path, meta: dict[str, Any]) -> tuple[Any, ...] | None:
    """The encoder folder ``kb.json`` (``meta``) names, with its files' stamps
    (:func:`folder_stamp`): equal stamps, the same model. ``None`` when it names no local
    folder (a Hub id) or it cannot be read."""
    from tunesmith.models import DEFAULT_MODEL, default_model_path

    location = model_location(kb_dir, meta)
    folder = Path(default_model_path() if location == DEFAULT_MODEL else location)
    stamp = folder_stamp(folder)
    return None if stamp is None else (str(meta.get("model") or "default"), *stamp)


def classifier_stamp(kb_dir: Path, meta: dict[str, Any]) -> tuple[Any, ...] | None:
    """The intent classifier folder ``kb.json`` (``meta``) names (``classifier-gN``: `train
    --classifier` writes each under a new name), with its files' stamps; ``None`` when there
    is none."""
    return folder_stamp(classifier_path(kb_dir, meta))


def load_answerer(
    kb_dir: str | Path, *, device: str = "cpu", previous: Answerer | None = None
) -> Answerer:
    """The KB as one ``kb.json`` names it: read once, every part loaded from what it names.
    `index`, `calibrate` and `train` remove the folders the old ``kb.json`` named right after
    switching it: a load that read the old one a moment before failed (``serve`` started
    during the nightly job exited). A load overtaken by a switch is done again at once
    (:data:`LOAD_TRIES` in all).

    ``previous``: a copy already loaded, whose encoder and intent classifier are used when
    ``kb.json`` names the same folder, unchanged (:func:`encoder_stamp`,
    :func:`classifier_stamp`, taken before each try and kept on the copy)."""
    kb_dir = Path(kb_dir)
    for attempt in range(1, LOAD_TRIES + 1):
        before = kb_stamp(kb_dir)
        try:
            meta = read_meta(kb_dir)
            stamps = encoder_stamp(kb_dir, meta), classifier_stamp(kb_dir, meta)
            encoder, intent = _reusable(previous, *stamps)
            lexical = previous.scorer.lexical if previous is not None else None
            answerer = Answerer(
                kb_dir, device=device, meta=meta, loaded_stamp=before, encoder=encoder,
                intent=intent, lexical=lexical,
            )  # fmt: skip
        except Exception:
            if attempt < LOAD_TRIES and kb_stamp(kb_dir) != before:
                continue
            raise
        answerer.encoder_stamp, answerer.classifier_stamp = stamps
        shared_lexical = lexical is not None and answerer.scorer.lexical is lexical
        if encoder is not None or intent is not None or shared_lexical:
            # One model in two copies around the swap: its calls serialised as one copy's are
            # (a fast tokenizer used from two threads at once fails with "Already borrowed"); a
            # BM25 index kept from the old copy stays under the lock it was used under.
            answerer._lock = previous._lock  # type: ignore[union-attr]
        # The kb.json read is the one the stamp was taken with, or a switch landed between
        # (should the last try still see one, the reloader loads the KB again at its next
        # check).
        if attempt == LOAD_TRIES or kb_stamp(kb_dir) == answerer.loaded_stamp:
            return answerer
    raise AssertionError("unreachable")


def _reusable(
    previous: Answerer | None,
    encoder: tuple[Any, ...] | None,
    classifier: tuple[Any, ...] | None,
) -> tuple[Any, IntentModel | None]:
    """(encoder, intent classifier) of ``previous`` whose stamps equal these (``None`` each
    that differs: loaded again)."""
    if previous is None:
        return None, None
    same_encoder = encoder is not None and encoder == getattr(previous, "encoder_stamp", None)
    held = getattr(previous, "classifier_stamp", None)
    same_classifier = classifier is not None and classifier == held
    return (
        previous.encoder if same_encoder else None,
        previous.scorer.intent if same_classifier else None,
    )


def load_checked(kb_dir: Path, device: str, previous: Answerer | None = None) -> Answerer:
    """A new copy of the KB, checked by answering one question with it (its encoder, index,
    intent classifier and calibration together), as the first customer would. ``previous``:
    the copy serving, whose encoder is reused when the KB still names it."""
    answerer = load_answerer(kb_dir, device=device, previous=previous)
    probe = answerer.entries[0].title if answerer.entries else "test question"
    answerer.ask(probe)
    return answerer


class KbReloader:
    """Reloads ``service``'s KB when its files change (see the module docstring): :meth:`check`
    once, or every ``every`` seconds (``serve --reload-every``; 0: never) in a thread between
    :meth:`start` and :meth:`stop`. The load, the swap and the failures are the core's
    :class:`~tunesmith.reloading.Reloading`; this adds the KB's stamp, the writer's lock,
    the hand-over to the service and the timer."""

    def __init__(
        self,
        service: SupportService,
        every: float,
        *,
        log: Callable[[str], None] = _stderr,
        load: Callable[[Path, str, Answerer | None], Answerer] = load_checked,
    ) -> None:
        self.service = service
        self.every = every
        self.log = log
        self._load = load  # looked up at each load: a test may wrap it
        kb_dir = service.kb_dir
        answerer = service.answerer
        self.versions: Reloading[Answerer] = Reloading(
            answerer,
            getattr(answerer, "loaded_stamp", None),
            lambda: self._load(kb_dir, service.device, service.answerer),
            self._stamp_if_still,
            # The timer below checks, by refresh(); requests read the service's copy.
            mode="never",
            what=f"the knowledge base {kb_dir}",
            log=lambda line: self.log(line),
            failure=FAILURE,
            on_swap=self._swapped,
            tries=LOAD_TRIES,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def generation(self) -> int:
        """1 for the copy loaded at start, one more per reload."""
        return self.versions.generation

    @property
    def error(self) -> str | None:
        """Why the last reload failed, None once one succeeds."""
        return self.versions.error

    def changed(self) -> bool:
        """Whether the KB on disk is not the copy serving (a reload waiting for a writer, or
        one that failed)."""
        return kb_stamp(self.service.kb_dir) != getattr(self.service.answerer, "loaded_stamp", None)

    def status(self) -> dict[str, Any]:
        """What ``/v1/health`` says of reloading."""
        versions = self.versions
        return {
            "generation": versions.generation,
            "loaded_at": versions.loaded_at,
            "reload_every": self.every,
            "reload_error": versions.error,
            "reload_error_at": versions.error_at,
        }

    def check(self) -> bool:
        """Load and swap in the KB if it changed and no writer is at work; True when swapped.
        A load overtaken by a writer's switch of ``kb.json`` is done again at once."""
        return self.versions.refresh()

    def _stamp_if_still(self) -> tuple[int, ...] | None:
        """The KB's stamp, None while a writer is at work: mid-write the files can be a mix,
        and a writer that starts during a load makes it a load overtaken."""
        kb_dir = self.service.kb_dir
        return None if writer_pid(kb_dir) is not None else kb_stamp(kb_dir)

    def _swapped(self, answerer: Answerer) -> None:
        self.service.use(answerer)
        # The old copy's model may sit in reference cycles: free it now, not at some later
        # collection, so that two copies are held only around the swap.
        gc.collect()
        self.log(
            f"reloaded the knowledge base {self.service.kb_dir}: {len(answerer.entries)} entries "
            f"(generation {self.versions.generation})"
        )

    def start(self) -> None:
        """Check every ``every`` seconds in a daemon thread (none when ``every`` is 0)."""
        if self.every <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="kb-reload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (a load under way is abandoned with the process if it takes longer)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.check()
            except Exception as exc:  # never let the thread die: the next check may work
                self.log(
                    f"warning: checking the knowledge base for changes failed ({one_line(exc)})"
                )
