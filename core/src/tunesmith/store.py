"""A small SQLite store that plugins keep their records in: one module, one narrow interface.

``Store.open(path, namespace=, migrations=)`` opens (or creates) a database file in WAL mode with a
busy timeout and foreign keys on, then brings the namespace's tables up to date: migration ``i``
is applied once, in its own transaction, and ``schema_version(namespace, version)`` records how
many have run. Several namespaces (plugins) may share one file. Writes go through
``with db.transaction() as tx`` (one transaction per batch) or ``db.execute`` (a single write);
reads through ``db.query``. Nothing else of SQLite is exposed, so that another database can stand
behind the same methods later. Deleted rows leave free pages that new rows fill; a file created
with ``incremental_vacuum=True`` can also give them back to the disk bit by bit
(:mod:`tunesmith.store_space`).

One connection per ``Store``, guarded by a re-entrant lock: safe to share between threads of one
process (writes are serialised; a thread's transaction holds the lock until it ends). Between
processes SQLite's own file locks apply; a writer that waits longer than ``timeout`` gets
:class:`StoreLockedError`. ``synchronous=NORMAL`` in WAL mode keeps every committed transaction
when the process is killed (the WAL is in the OS page cache); only a power cut can lose the
newest commits.
"""

from __future__ import annotations

import contextlib
import errno
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import DiskFullError, UserInputError, room_hint
from tunesmith.io import no_room_shown
from tunesmith.store_upgrade import Rewrite

#: A migration: SQL (one or more statements separated by ``;``), a function of a transaction,
#: or either marked :class:`~tunesmith.store_upgrade.Rewrite` (it rewrites stored rows: said,
#: and a copy of the file kept, before it runs).
Migration = str | Callable[["Transaction"], None] | Rewrite

DEFAULT_TIMEOUT = 5.0


class StoreError(UserInputError):
    """A database file that cannot be used as it is; the message names the file."""


class StoreLockedError(StoreError):
    """Another process held a write lock on the database longer than the busy timeout."""


class StoreCorruptError(StoreError):
    """The file is not a SQLite database, or its pages are damaged."""


class StoreVersionError(StoreError):
    """The database was migrated by newer code than this one."""


class StoreFullError(StoreError, DiskFullError):
    """A write the disk, its quota or the file size limit had no room for (rolled back).

    A :class:`DiskFullError` too, so it exits 1 as a full disk does everywhere else (not 2, as
    for the user's own mistakes); callers that catch :class:`StoreError` still catch it.
    """

    exit_code = DiskFullError.exit_code


class StoreRoomError(StoreError):
    """An upgrade the disk has no room for (its copy and its rewrite); nothing was changed.
    Exit 1, as for a full disk."""

    exit_code = DiskFullError.exit_code


@dataclass(frozen=True)
class ExecResult:
    """What a single write did: rows changed and, after an ``INSERT``, the new row's id."""

    rowcount: int
    lastrowid: int | None


def _split_statements(script: str) -> list[str]:
    """``"A; B;"`` -> ``["A;", "B;"]``, keeping semicolons inside strings and triggers."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        statements.append(buffer.strip())
    return statements


#: Statements that end or nest transactions: only ``transaction()`` may issue them, or a
#: ``ROLLBACK`` in the middle would leave the rest of the block committing row by row.
_TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})


#: What SQLite skips before a statement's first keyword: blanks, ``;``, ``(`` and comments
#: (a ``/*`` comment left open runs to the end).
_LEADING_NOISE = re.compile(r"(?:[\s;(]+|--[^\n]*|/\*.*?(?:\*/|\Z))*", re.DOTALL)
_KEYWORD = re.compile(r"[A-Za-z]+")


def _refuse_transaction_control(sql: str) -> None:
    # Comments are skipped as SQLite skips them: "-- done\nCOMMIT" is a COMMIT too.
    rest = _LEADING_NOISE.sub("", sql, count=1)  # it matches at 0, if only emptily
    keyword = _KEYWORD.match(rest)
    word = keyword.group(0).upper() if keyword else ""
    if word in _TRANSACTION_CONTROL:
        raise StoreError(
            f"{word} is not allowed in a store statement: use "
            "`with db.transaction()` (nested blocks become savepoints), and raise to roll back"
        )


class Transaction:
    """The handle ``db.transaction()`` yields: writes and reads inside one transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> ExecResult:
        """Run one statement; returns rows changed and the last inserted row id."""
        _refuse_transaction_control(sql)
        with self._store._translate():
            cursor = self._store._conn.execute(sql, params)
        return ExecResult(cursor.rowcount, cursor.lastrowid)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | dict[str, Any]]) -> int:
        """Run one statement per row; returns the rows changed."""
        _refuse_transaction_control(sql)
        with self._store._translate():
            return self._store._conn.executemany(sql, rows).rowcount

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Read inside the transaction (sees its own uncommitted writes)."""
        _refuse_transaction_control(sql)
        with self._store._translate():
            return self._store._conn.execute(sql, params).fetchall()

    def progress(self, fraction: float) -> None:
        """How much of a :class:`~tunesmith.store_upgrade.Rewrite` step is done (0 to 1): moves
        the bar drawn while it runs; nothing otherwise."""
        sink = self._store._progress_sink
        if sink is not None:
            sink(fraction)


def _check_migrations(namespace: Any, migrations: Any) -> None:
    """A namespace that is a non-empty string; migrations a list of SQL strings or callables."""
    if not isinstance(namespace, str) or not namespace:
        raise StoreError(f"namespace must be a non-empty string, got {namespace!r}")
    if isinstance(migrations, str | bytes):
        raise StoreError("migrations must be a list of migrations, not one string")
    for i, step in enumerate(migrations):
        inner = step.step if isinstance(step, Rewrite) else step
        if not (isinstance(inner, str) or callable(inner)):
            raise StoreError(
                f"migration {i + 1} of namespace {namespace!r} is {type(inner).__name__}; "
                "give SQL text or a function of the transaction"
            )


def _apply(tx: Transaction, step: Migration) -> None:
    if isinstance(step, Rewrite):
        step = step.step
    if callable(step):
        step(tx)
        return
    for statement in _split_statements(step):
        tx.execute(statement)


class Store:
    """One SQLite file, opened for one namespace's tables (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        incremental_vacuum: bool = False,
    ) -> None:
        """Open the file without migrating; use :meth:`Store.open`."""
        self.path = Path(path) if str(path) != ":memory:" else Path(":memory:")
        self.timeout = timeout
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() in the thread that holds the lock
        self._progress_sink: Any = None  # the bar a Rewrite step moves (store_upgrade)
        if str(path) != ":memory:":
            if self.path.exists() and not self.path.is_file():
                # SQLite says "disk I/O error" for /dev/null and "unable to open" for a folder.
                what = "a folder" if self.path.is_dir() else "not a regular file"
                raise StoreError(f"{self.path}: {what}; give a database file")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"{self.path}: cannot create its folder ({exc.strerror or exc})"
                ) from None
        try:
            # isolation_level=None: no implicit transactions; transaction() issues BEGIN itself.
            self._conn = sqlite3.connect(
                str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            with self._translate():
                self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                if incremental_vacuum and self._empty():
                    # Before WAL mode, which writes the file's header: after that (or once a
                    # table exists) SQLite keeps the mode the file has. Only on an empty file:
                    # on one with pages the pragma still writes its header, so a read (a dry
                    # run, `events list`, a read-only copy) would change the file.
                    self._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._conn.execute("PRAGMA journal_mode = WAL").fetchall()
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            self._conn.close()
            raise

    def _empty(self) -> bool:
        """Whether the file has no page yet (new, or of zero bytes)."""
        return int(self._conn.execute("PRAGMA page_count").fetchone()[0]) == 0

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        namespace: str = "main",
        migrations: Sequence[Migration] = (),
        timeout: float = DEFAULT_TIMEOUT,
        incremental_vacuum: bool = False,
    ) -> Store:
        """Open ``path`` (created when missing) and apply ``namespace``'s pending migrations.

        ``migrations`` is the whole ordered list, oldest first; never edit one that has shipped,
        append a new one. A database whose version for ``namespace`` is higher than
        ``len(migrations)`` raises :class:`StoreVersionError`.

        ``incremental_vacuum``: a file created now is in SQLite's incremental auto-vacuum mode,
        so :func:`tunesmith.store_space.reclaim` gives its free pages back in short
        transactions; an existing file keeps the mode it was made with.
        """
        store = cls(path, timeout=timeout, incremental_vacuum=incremental_vacuum)
        try:
            store.migrate(namespace, migrations)
        except BaseException:
            store.close()
            raise
        return store

    def migrate(self, namespace: str, migrations: Sequence[Migration]) -> int:
        """Apply ``namespace``'s pending migrations, each in its own transaction; the new version."""
        _check_migrations(namespace, migrations)
        columns = {row["name"] for row in self.query("PRAGMA table_info(schema_version)")}
        if not columns:
            self.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            columns = {row["name"] for row in self.query("PRAGMA table_info(schema_version)")}
        if not {"namespace", "version"} <= columns:
            # Another program's table of that name: migrating would fail with a bare SQL error.
            raise StoreError(
                f"{self.path}: its schema_version table was not made by tunesmith (columns "
                f"{', '.join(sorted(columns))}); open another file"
            )
        # Up to date is the common case: a plain read, which in WAL mode never waits for a
        # writer, so opening a store (`tunesmith events list`) works while another process
        # holds a long write transaction on it.
        if self._up_to_date(self, namespace, migrations):
            return len(migrations)
        announced: Any = None  # what was said (and copied) before the first rewrite
        try:
            while True:
                known = self._version(self, namespace)
                step = migrations[known] if known < len(migrations) else None
                with self._rewriting(isinstance(step, Rewrite)), self.transaction() as tx:
                    # Read inside the write transaction so two processes never apply one
                    # step twice.
                    if self._up_to_date(tx, namespace, migrations):
                        break
                    version = self._version(tx, namespace)
                    if migrations[version] is not step:
                        continue  # another process migrated meanwhile: read again
                    if announced is None:
                        # A new file (version 0) has nothing to copy or wait for
                        announced = version > 0 and self._announce(
                            tx, namespace, migrations, version
                        )
                    if announced and isinstance(step, Rewrite):
                        from tunesmith.store_upgrade import RewriteBar

                        self._progress_sink = RewriteBar(announced.show_bar)
                    self._apply_step(tx, namespace, step, version)
                    if isinstance(step, Rewrite):
                        self._check_references(tx, namespace, version)
                    tx.execute(
                        "INSERT INTO schema_version(namespace, version) VALUES (?, ?) "
                        "ON CONFLICT(namespace) DO UPDATE SET version = excluded.version",
                        (namespace, version + 1),
                    )
        except BaseException:
            if announced:
                from tunesmith.store_upgrade import abandoned

                abandoned(announced)  # rolled back: the file is as it was
            raise
        if announced:
            from tunesmith.store_upgrade import finished

            finished(self.path, len(migrations), announced)
        return len(migrations)

    def _announce(
        self, tx: Transaction, namespace: str, migrations: Sequence[Migration], version: int
    ) -> Any:
        """Before the first pending :class:`Rewrite` of a file with data: say it, check the
        room, keep the copy (:mod:`tunesmith.store_upgrade`); False when none is pending."""
        from tunesmith.store_upgrade import announce

        rewrite = next((s for s in migrations[version:] if isinstance(s, Rewrite)), None)
        if rewrite is None or str(self.path) == ":memory:":
            return False
        count = int(tx.query(rewrite.count)[0][0] or 0)
        return announce(
            self.path, namespace, version, len(migrations), rewrite, count, StoreRoomError
        )

    @contextlib.contextmanager
    def _rewriting(self, rewrite: bool) -> Iterator[None]:
        """Around a :class:`Rewrite` step's transaction: foreign key checks off (SQLite's
        recipe for rebuilding a table; they are a no-op inside a transaction, so set before
        it) and a larger page cache; restored after, and the bar its ``tx.progress`` moved
        closed."""
        if not rewrite:
            yield
            return
        from tunesmith.store_upgrade import REWRITE_CACHE_KIB

        cache = self.query("PRAGMA cache_size")[0][0]
        self._run("PRAGMA foreign_keys = OFF")
        self._run(f"PRAGMA cache_size = -{REWRITE_CACHE_KIB}")
        try:
            yield
        finally:
            if self._progress_sink is not None:
                self._progress_sink.close()  # type: ignore[attr-defined]
                self._progress_sink = None
            if self._conn is not None:
                self._run(f"PRAGMA cache_size = {int(cache)}")
                self._run("PRAGMA foreign_keys = ON")

    def _check_references(self, tx: Transaction, namespace: str, version: int) -> None:
        """After a :class:`Rewrite` step, run with foreign key checks off: every reference must
        still hold (SQLite's recipe for rebuilding a table), else the step is rolled back."""
        broken = tx.query("PRAGMA foreign_key_check")
        if broken:
            table, rowid, parent = broken[0][0], broken[0][1], broken[0][2]
            raise StoreError(
                f"{self.path}: migration {version + 1} of namespace {namespace!r} left "
                f"{len(broken)} row(s) naming a missing {parent} row (first: {table} row "
                f"{rowid}) and was rolled back"
            )

    def _apply_step(self, tx: Transaction, namespace: str, step: Migration, version: int) -> None:
        """Apply one migration; its failure names the file, the step and the namespace."""
        try:
            _apply(tx, step)
        except StoreLockedError:
            raise  # no fault of the migration: said as for any other write
        except Exception as exc:  # SQL, a refused statement, the function's own error
            # Which migration of which namespace: several plugins may share the file.
            detail = (
                str(exc).removeprefix(f"{self.path}: ")
                if isinstance(exc, StoreError)
                else f"{type(exc).__name__}: {exc}"
            )
            kind = type(exc) if isinstance(exc, StoreError) else StoreError
            raise kind(
                f"{self.path}: migration {version + 1} of namespace {namespace!r} "
                f"failed and was rolled back: {detail}"
            ) from exc

    def _up_to_date(
        self, reader: Transaction | Store, namespace: str, migrations: Sequence[Migration]
    ) -> bool:
        """True when every migration ran; a StoreVersionError when newer code migrated it."""
        version = self._version(reader, namespace)
        if version > len(migrations):
            raise StoreVersionError(
                f"{self.path}: namespace {namespace!r} is at schema version {version}, "
                f"newer than this code knows ({len(migrations)}); upgrade what declares that "
                "namespace (tunesmith, or the plugin whose tables it holds) or open another file"
            )
        return version == len(migrations)

    def schema_version(self, namespace: str = "main") -> int:
        """How many of ``namespace``'s migrations have been applied (0 for none)."""
        return self._version(self, namespace)  # a plain read: never waits for a writer

    def _version(self, tx: Transaction | Store, namespace: str) -> int:
        rows = tx.query("SELECT version FROM schema_version WHERE namespace = ?", (namespace,))
        if not rows:
            return 0
        version = rows[0]["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise StoreError(
                f"{self.path}: schema version {version!r} of namespace {namespace!r} is not "
                "a whole number; the file was changed by hand or by another program"
            )
        return version

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Nested use in the same thread becomes a savepoint inside the outer transaction. The
        write lock is taken at the start (``BEGIN IMMEDIATE``), so a busy database fails here,
        before any work, rather than halfway through.
        """
        with self._lock:
            self._check_open()
            tx = Transaction(self)
            if self._depth:
                name = f"sp{self._depth}"
                self._run(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield tx
                except BaseException:
                    self._run(f"ROLLBACK TO {name}")
                    self._run(f"RELEASE {name}")
                    raise
                else:
                    self._run(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            self._run("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield tx
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._run("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
            finally:
                self._depth = 0

    @property
    def in_transaction(self) -> bool:
        """True while a :meth:`transaction` block is open on this store: what is written now
        may still be rolled back."""
        return bool(self._depth)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> ExecResult:
        """A single write in its own transaction (or in the caller's, when one is open)."""
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Rows of a read; each row is indexed by column name or position."""
        _refuse_transaction_control(sql)
        with self._lock:
            self._check_open()
            with self._translate():
                return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection (idempotent); committed data is already on disk."""
        with self._lock:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _check_open(self) -> None:
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")

    def _run(self, sql: str) -> None:
        with self._translate():
            self._conn.execute(sql)

    def _no_room(self, kind: str) -> int | None:
        """The errno of a write that found no room: SQLite says ``SQLITE_FULL`` for a full
        disk, but only "disk I/O error" when a file reached the size limit (``EFBIG``), which
        the database's files then show."""
        if kind == "SQLITE_FULL":
            return errno.ENOSPC
        if kind != "SQLITE_IOERR" or str(self.path) == ":memory:":
            return None
        files = (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-journal"))
        return next((code for f in files if (code := no_room_shown(f)) is not None), None)

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """SQLite's lock, disk and corruption errors become one line naming the file.

        Told apart by SQLite's error code, never by the message: "no such table: locked_rows"
        is the caller's SQL, not a lock.
        """
        try:
            yield
        except sqlite3.DatabaseError as exc:
            # IntegrityError, ProgrammingError and plain SQL errors are the caller's bug.
            code = (getattr(exc, "sqlite_errorname", None) or "").split("_", 2)
            kind = "_".join(code[:2])  # SQLITE_BUSY_SNAPSHOT -> SQLITE_BUSY
            if kind in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise StoreLockedError(
                    f"{self.path}: the database is locked by another process "
                    f"(waited {self.timeout:g} s); try again when it has finished"
                ) from None
            room = self._no_room(kind)
            if room is not None:  # the statement was rolled back
                raise StoreFullError(
                    self.path,
                    room,
                    # Said so: a batch job (finance ingest) keeps its earlier batches.
                    outcome=(
                        "this write was rolled back (what was committed before it is kept): "
                        f"{room_hint(room)}"
                    ),
                    detail=f"SQLite: {exc}",
                ) from None
            if kind in ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_PERM"):
                raise StoreError(f"{self.path}: {exc}") from None
            if kind in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or type(exc) is sqlite3.DatabaseError:
                raise StoreCorruptError(
                    f"{self.path}: not a usable SQLite database ({exc})"
                ) from None
            raise
