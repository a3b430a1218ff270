"""Loading and validating items and events: every bad input is one clear line."""

from __future__ import annotations

import json

import pytest

from tunesmith.errors import DataError
from tunesmith_recommend.data import load_events, load_items, parse_time, sample_paths
from tunesmith_recommend.sample_gen import generate


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def items(tmp_path):
    return write(
        tmp_path / "items.csv",
        "item_id,title,description,genres\n"
        "a,Alpha,A space opera,sci-fi|drama\n"
        "b,Beta,A quiet romance,romance\n"
        "c,Gamma,,horror\n",
    )


def test_generator_reproduces_the_committed_sample_files(tmp_path):
    written = generate(tmp_path)
    for name, path in written.items():
        assert path.read_bytes() == sample_paths()[name].read_bytes(), name


def test_sample_catalogue_and_events_load():
    paths = sample_paths()
    catalogue = load_items(paths["items"], text_cols=["genres", "description"])
    events = load_events(paths["events"], catalogue)
    assert len(catalogue) == 150
    assert len(events) == 588 and len(events.user_ids) == 60
    # sorted per user, then time
    seqs = events.sequences()
    assert all((times[1:] >= times[:-1]).all() for _, times in seqs)


def test_item_text_joins_title_and_fields(items):
    catalogue = load_items(items)
    assert catalogue.texts[0] == "Alpha. A space opera. sci-fi, drama"
    assert catalogue.texts[2] == "Gamma. horror"


def test_item_text_adds_no_second_full_stop_after_a_field_that_ends_a_sentence():
    from tunesmith_recommend.data import item_text

    assert item_text("Deep", ["Lost at sea.", "horror|drama"]) == "Deep. Lost at sea. horror, drama"
    assert item_text("Run!", ["thriller"]) == "Run! thriller"


def test_duplicate_item_id_is_refused_naming_both_rows(tmp_path):
    path = write(tmp_path / "i.csv", "item_id,title\na,A\nb,B\na,C\n")
    with pytest.raises(
        DataError, match=r"i.csv:4, column 'item_id': duplicate item id 'a' \(first on row 2\)"
    ):
        load_items(path, text_cols=[])


def test_item_without_any_text_is_refused(tmp_path):
    path = write(tmp_path / "i.csv", "item_id,title,description\na,A,x\nb,,\n")
    with pytest.raises(DataError, match=r"i.csv:3.*item 'b' has no text"):
        load_items(path, text_cols=["description"])


def test_catalogue_of_one_item_is_refused(tmp_path):
    path = write(tmp_path / "i.csv", "item_id,title\na,A\n")
    with pytest.raises(DataError, match="only one item"):
        load_items(path, text_cols=[])


def test_missing_column_is_named(items):
    with pytest.raises(DataError, match=r"column 'blurb': no such column"):
        load_items(items, text_cols=["blurb"])


def test_unknown_item_in_events_names_file_row_and_column(items, tmp_path):
    events = write(tmp_path / "e.csv", "user_id,item_id,timestamp\nu,a,1\nu,zz,2\n")
    with pytest.raises(
        DataError, match=r"e.csv:3, column 'item_id': item 'zz' is not in items.csv"
    ):
        load_events(events, load_items(items))


def test_missing_and_unparsable_times_are_refused(items, tmp_path):
    catalogue = load_items(items)
    missing = write(tmp_path / "e.csv", "user_id,item_id,timestamp\nu,a,1\nu,b,\n")
    with pytest.raises(DataError, match=r"e.csv:3, column 'timestamp': missing time"):
        load_events(missing, catalogue)
    bad = write(tmp_path / "f.csv", "user_id,item_id,timestamp\nu,a,yesterday\n")
    with pytest.raises(DataError, match="unparsable time 'yesterday'"):
        load_events(bad, catalogue)


def test_mixed_time_formats_are_refused_naming_both_rows(items, tmp_path):
    path = write(
        tmp_path / "e.csv", "user_id,item_id,timestamp\nu,a,1700000000\nu,b,2026-01-01T10:00:00Z\n"
    )
    with pytest.raises(DataError, match=r"e.csv:3.*row 2 is unix seconds, this row is ISO 8601"):
        load_events(path, load_items(items))


def test_out_of_order_times_are_sorted_per_user(items, tmp_path):
    path = write(
        tmp_path / "e.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"who": "u", "what": "b", "when": "2026-01-03"},
                {"who": "u", "what": "a", "when": "2026-01-01T00:00:00+01:00"},
                {"who": "v", "what": "c", "when": "2026-01-02"},
            ]
        ),
    )
    events = load_events(path, load_items(items), user_col="who", item_col="what", time_col="when")
    items_u, times_u = events.sequences()[0]
    assert events.user_ids == ["u", "v"]
    assert list(items_u) == [0, 1] and times_u[0] < times_u[1]


def test_min_rating_keeps_only_positive_events(items, tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp,stars\nu,a,1,5\nu,b,2,2\nv,c,3,4\n")
    events = load_events(path, load_items(items), rating_col="stars", min_rating=4)
    assert len(events) == 2 and sorted(events.items.tolist()) == [0, 2]
    bad = write(tmp_path / "f.csv", "user_id,item_id,timestamp,stars\nu,a,1,five\n")
    with pytest.raises(DataError, match=r"f.csv:2, column 'stars': cannot read the rating 'five'"):
        load_events(bad, load_items(items), rating_col="stars", min_rating=4)


def test_parquet_events_load(items, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "e.parquet"
    pq.write_table(
        pa.table({"user_id": ["u", "u"], "item_id": ["a", "c"], "timestamp": [10, 5]}), path
    )
    events = load_events(path, load_items(items))
    assert events.items.tolist() == [2, 0]


def test_parse_time_reads_unix_seconds_and_iso():
    assert parse_time("86400") == (86400.0, "unix seconds")
    assert parse_time("1970-01-02T00:00:00Z") == (86400.0, "ISO 8601")
    assert parse_time("1970-01-02") == (86400.0, "ISO 8601")


def test_nan_and_infinite_times_are_refused_not_read_as_unix_seconds(items, tmp_path):
    # float() reads "nan" and "inf"; such an event would sort last and become a test request
    catalogue = load_items(items)
    for bad in ("nan", "inf", "-Infinity"):
        path = write(tmp_path / "e.csv", f"user_id,item_id,timestamp\nu,a,1\nu,b,{bad}\n")
        with pytest.raises(DataError, match=r"e.csv:3, column 'timestamp': time '.*' is not a fin"):
            load_events(path, catalogue)
    with pytest.raises(ValueError):
        parse_time(float("inf"))


def test_nan_rating_is_refused_not_counted_as_a_positive_event(items, tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp,stars\nu,a,1,5\nu,b,2,nan\n")
    with pytest.raises(DataError, match=r"e.csv:3, column 'stars': cannot read the rating 'nan'"):
        load_events(path, load_items(items), rating_col="stars", min_rating=4)


def test_rating_or_kind_column_without_its_threshold_is_refused(items, tmp_path):
    # alone, the flag was ignored: a misspelt column passed and every rating counted as positive
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp,stars\nu,a,1,1\n")
    catalogue = load_items(items)
    with pytest.raises(DataError, match="--rating-col needs --min-rating"):
        load_events(path, catalogue, rating_col="starz")
    with pytest.raises(DataError, match="--kind-col needs --kinds"):
        load_events(path, catalogue, kind_col="kind")
    with pytest.raises(DataError, match="column 'kind': no such column"):
        load_events(path, catalogue, kind_col="kind", kinds=["buy"])


def test_an_empty_entry_in_kinds_does_not_count_rows_without_a_kind(items, tmp_path):
    # "--kinds buy," (a trailing comma) made "" a wanted kind: every row with an empty kind
    # became a positive event, and "--kinds ," an empty-kind filter instead of a refusal
    path = write(
        tmp_path / "e.csv", "user_id,item_id,timestamp,kind\nu,a,1,buy\nu,b,2,\nu,c,3,view\n"
    )
    catalogue = load_items(items)
    events = load_events(path, catalogue, kind_col="kind", kinds=["buy", ""])
    assert [catalogue.ids[i] for i in events.items] == ["a"]
    with pytest.raises(DataError, match="--kind-col needs --kinds"):
        load_events(path, catalogue, kind_col="kind", kinds=["", " "])


def test_a_lone_surrogate_in_jsonl_items_or_events_names_file_row_and_column(items, tmp_path):
    # a JSONL "\ud800" escape failed in the encoder as "text 0 holds U+D800" (items) or, for a
    # user id, as a UnicodeEncodeError traceback writing histories.json after all the training
    bad_items = write(
        tmp_path / "i.jsonl",
        '{"item_id": "a", "title": "Alpha", "description": "x", "genres": "y"}\n'
        '{"item_id": "b", "title": "Beta", "description": "Bad \\ud800", "genres": "y"}\n',
    )
    with pytest.raises(DataError, match=r"i.jsonl:2, column 'description': .*U\+D800"):
        load_items(bad_items)
    events = write(
        tmp_path / "e.jsonl",
        '{"user_id": "u", "item_id": "a", "timestamp": 1}\n'
        '{"user_id": "v\\ud800", "item_id": "b", "timestamp": 2}\n',
    )
    with pytest.raises(DataError, match=r"e.jsonl:2, column 'user_id': .*U\+D800"):
        load_events(events, load_items(items))


def test_jsonl_column_missing_from_the_first_row_only_is_found(tmp_path):
    # JSONL exports often leave out a row's empty fields
    path = write(
        tmp_path / "items.jsonl",
        '{"item_id": "a", "title": "Alpha"}\n'
        '{"item_id": "b", "title": "Beta", "description": "A quiet romance", "genres": "x"}\n',
    )
    catalogue = load_items(path)
    assert catalogue.texts == ["Alpha", "Beta. A quiet romance. x"]


def test_times_all_in_1970_are_kept_with_a_note_naming_file_and_column(items, tmp_path):
    # A ratings column given as --time-col reads as Unix seconds 1..10: it trains, but is said.
    path = write(tmp_path / "e.csv", "user_id,item_id,stars\nu,a,7\nu,b,9\nv,c,3\n")
    events = load_events(path, load_items(items), time_col="stars")
    assert len(events) == 3
    assert len(events.notes) == 1
    assert "e.csv: column 'stars'" in events.notes[0] and "3 to 9" in events.notes[0]


def test_real_unix_and_iso_times_bring_no_note(items, tmp_path):
    unix = write(tmp_path / "e.csv", "user_id,item_id,timestamp\nu,a,1700000000\nu,b,1700000100\n")
    iso = write(tmp_path / "f.csv", "user_id,item_id,timestamp\nu,a,1970-01-01T00:00:05Z\n")
    assert load_events(unix, load_items(items)).notes == []
    assert load_events(iso, load_items(items)).notes == []


# One torch thread: its ranker fit took ten times as long on two threads of a busy shared CPU.
@pytest.mark.usefixtures("one_torch_thread")
def test_cli_says_the_1970_note_on_stderr_and_keeps_json_on_stdout(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from tunesmith.cli import build_app

    paths = sample_paths()
    header = paths["events"].read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[2] == "rating"
    # the sample's events with the rating column (1 to 5) named as the time column
    args = ["recommend", "train", "--items", str(paths["items"]), "--events"]
    args += [str(paths["events"]), "--time-col", "rating", "--model", tiny_model]
    args += ["--no-fine-tune", "--tower-epochs", "1", "--out", str(tmp_path / "m"), "--json"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "note: " in result.stderr and "column 'rating'" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["events"] > 0
