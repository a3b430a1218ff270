"""A fourth plugin written from the guide alone: contract clauses triaged by risk.

The plugin below uses only what docs/writing_plugins.md names: a CLI group, a clause library
read with ``read_table`` and searched through ``tunesmith.retrieval``, its own ``Store`` table,
and events recorded in the same transaction. Each test pins a place where a stranger writing
it found the public API missing or wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from tunesmith import hookimpl

CLAUSES = [
    "the supplier liability is unlimited",
    "the customer waives every claim",
    "this agreement is governed by english law",
    "headings are for convenience only",
]


class ContractsPlugin:
    """The stranger's plugin: `clauses library` indexes a clause library, `clauses
    similar` searches it, `clauses flag` stores a clause and alerts the legal team."""

    @hookimpl
    def tunesmith_cli(self, app):
        group = typer.Typer(help="Contract clauses.")

        @group.command("library")
        def library(
            model: Path = typer.Option(..., "--model", "-m"),
            data: Path = typer.Option(..., "--data"),
            out: Path = typer.Option(..., "--out"),
        ):
            from tunesmith.data.load import read_table
            from tunesmith.engine.loading import load_model
            from tunesmith.retrieval import Encoder, VectorIndex

            rows = read_table(data, ["id", "text"], optional=["label"])
            index = VectorIndex.create(out, encoder=Encoder.from_classifier(load_model(model)))
            index.add(
                [r["id"].strip() for r in rows],
                texts=[r["text"] for r in rows],
                payloads=[{"label": r["label"]} for r in rows],
            )
            index.save()
            typer.echo(f"indexed {len(index)} clauses")

        @group.command("similar")
        def similar(
            text: str,
            model: Path = typer.Option(..., "--model", "-m"),
            index: Path = typer.Option(..., "--index"),
        ):
            from tunesmith.engine.loading import load_model
            from tunesmith.retrieval import Encoder, VectorIndex

            found = VectorIndex.load(index, encoder=Encoder.from_classifier(load_model(model)))
            typer.echo(json.dumps([hit.id for hit in found.search(text, 2)]))

        @group.command("flag")
        def flag(
            text: str,
            db: Path = typer.Option(..., "--db"),
            sink: list[str] = typer.Option([], "--sink"),
        ):
            from tunesmith.events import make_sink, record, send
            from tunesmith.hooktypes import Event
            from tunesmith.store import Store

            sinks = [make_sink(url) for url in sink]  # a mistyped --sink before any work
            migrations = ["CREATE TABLE flagged (text TEXT NOT NULL, event_id TEXT)"]
            with Store.open(db, namespace="contracts", migrations=migrations) as store:
                event = Event(kind="contracts.flagged", message=text, source="contracts")
                with store.transaction() as tx:
                    outgoing = record(event, sinks, outbox=store)
                    tx.execute("INSERT INTO flagged VALUES (?, ?)", (text, event.id))
                send(outgoing)

        app.add_typer(group, name="clauses")


@pytest.fixture
def contracts(fresh_plugins, register_plugin, tmp_path):
    fresh_plugins.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    fresh_plugins.chdir(tmp_path)
    return register_plugin(ContractsPlugin(), "clauses")


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """Two different classifiers of the same shape: a library indexed with one must not be
    searched with the other's vectors."""
    from tunesmith.testing import make_tiny_classifier

    root = tmp_path_factory.mktemp("clause_models")
    labels = ["high", "low"]
    return (
        make_tiny_classifier(root / "first", labels, CLAUSES, seed=0),
        make_tiny_classifier(root / "second", labels, CLAUSES, seed=1),
    )


def write_library(path: Path, rows, header=("id", "text", "label")) -> Path:
    from tunesmith.testing import write_csv

    write_csv(path, rows, header=header)
    return path


def test_a_clause_library_indexed_with_one_classifier_is_refused_with_another(
    contracts, classifiers, cli, tmp_path
):
    first, second = classifiers
    library = write_library(
        tmp_path / "library.csv", [(f"c{i}", t, "x") for i, t in enumerate(CLAUSES)]
    )
    built = cli("clauses", "library", "-m", str(first), "--data", str(library), "--out", "idx")
    assert built.exit_code == 0, built.output
    assert "indexed 4 clauses" in built.stdout

    same = cli("clauses", "similar", CLAUSES[0], "-m", str(first), "--index", "idx")
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)[0] == "c0"

    other = cli("clauses", "similar", CLAUSES[0], "-m", str(second), "--index", "idx")
    assert other.exit_code == 2
    assert str(second) in other.output and str(first) in other.output


def test_a_classifier_encoder_is_named_by_its_folder_however_the_path_was_written(
    classifiers, monkeypatch
):
    from tunesmith.engine.loading import load_model
    from tunesmith.retrieval import Encoder

    first, _ = classifiers
    monkeypatch.chdir(first.parent)
    relative = Encoder.from_classifier(load_model(first.name))
    assert relative.name == str(first.resolve())
    assert relative.path == first.resolve()


def test_a_library_without_its_id_column_names_the_columns_it_has(
    contracts, classifiers, cli, tmp_path
):
    first, _ = classifiers
    library = write_library(tmp_path / "lib.csv", [("r1", CLAUSES[0])], header=("ref", "text"))
    result = cli("clauses", "library", "-m", str(first), "--data", str(library), "--out", "idx")
    assert result.exit_code == 2
    assert "there is no column 'id'; the columns are: ref, text" in result.output


def test_read_table_names_the_row_and_column_of_an_empty_cell(tmp_path):
    from tunesmith.data.load import read_table
    from tunesmith.errors import DataError

    library = tmp_path / "lib.csv"
    library.write_text("id,text\nc1,unlimited liability\nc2,\nc3,  \n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_table(library, ["id", "text"])
    assert (caught.value.row, caught.value.column) == (3, "text")
    assert "empty value where a text is needed (and 1 more problem in this file)" in str(
        caught.value
    )


def test_read_table_gives_each_rows_line_and_empty_text_for_an_absent_optional_column(tmp_path):
    from tunesmith.data.load import read_table
    from tunesmith.data.readers import ROW_KEY

    library = tmp_path / "lib.jsonl"
    library.write_text(
        '{"id": "c1", "text": "unlimited liability", "label": "high"}\n'
        '{"id": 7, "text": "governed by english law"}\n',
        encoding="utf-8",
    )
    rows = read_table(library, ["id", "text"], optional=["label", "owner"])
    assert rows == [
        {ROW_KEY: 1, "id": "c1", "text": "unlimited liability", "label": "high", "owner": ""},
        {ROW_KEY: 2, "id": "7", "text": "governed by english law", "label": "", "owner": ""},
    ]


def test_read_table_says_a_short_csv_row_is_short(tmp_path):
    from tunesmith.data.load import read_table
    from tunesmith.errors import DataError

    library = tmp_path / "lib.csv"
    library.write_text("id,text\nc1,unlimited liability\nc2\n", encoding="utf-8")
    with pytest.raises(DataError, match="this row has 1 field but the header has 2") as caught:
        read_table(library, ["id", "text"])
    assert caught.value.row == 3


def test_a_mistyped_sink_is_refused_before_a_clause_is_stored(contracts, cli, tmp_path):
    result = cli("clauses", "flag", "unlimited liability", "--db", "c.sqlite", "--sink", "jsnol:x")
    assert result.exit_code == 2 and "did you mean jsonl:" in result.output
    assert not (tmp_path / "c.sqlite").exists()

    delivered = cli(
        "clauses", "flag", "unlimited liability", "--db", "c.sqlite", "--sink", "jsonl:x.jsonl"
    )
    assert delivered.exit_code == 0, delivered.output
    assert json.loads((tmp_path / "x.jsonl").read_text())["kind"] == "contracts.flagged"
