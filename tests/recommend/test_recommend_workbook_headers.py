"""The recommend readers find a workbook's header by the columns the flags name: a title row of
two cells above it ("Shop catalogue" | "exported ...") is not taken for the header."""

from __future__ import annotations

import pytest

from tunesmith_recommend.data import load_events, load_items


@pytest.fixture
def workbooks(tmp_path):
    import openpyxl

    items = openpyxl.Workbook()
    sheet = items.active
    sheet.append(["Shop catalogue", "exported 2026-04-20"])
    sheet.append([])
    sheet.append(["sku", "name", "blurb"])
    sheet.append(["b1", "Red Kettle", "a kettle"])
    sheet.append(["b2", "Blue Mug", "a mug"])
    items.save(tmp_path / "items.xlsx")
    events = openpyxl.Workbook()
    sheet = events.active
    sheet.append(["Orders", "April"])
    sheet.append(["customer", "sku", "stars", "when"])
    sheet.append(["ann", "b1", 5, "2026-04-01T10:00:00Z"])
    sheet.append(["ann", "b2", 2, "2026-04-02T10:00:00Z"])
    sheet.append(["bob", "b2", 4, "2026-04-03T10:00:00Z"])
    events.save(tmp_path / "events.xlsx")
    return tmp_path / "items.xlsx", tmp_path / "events.xlsx"


def test_items_and_events_workbooks_with_a_title_row_are_read_under_the_named_columns(
    workbooks,
):
    items, events = workbooks
    catalogue = load_items(items, id_col="sku", title_col="name", text_cols=["blurb"])
    assert catalogue.ids == ["b1", "b2"] and catalogue.titles == ["Red Kettle", "Blue Mug"]
    found = load_events(
        events,
        catalogue,
        user_col="customer",
        item_col="sku",
        time_col="when",
        rating_col="stars",
        min_rating=4.0,
    )
    assert found.user_ids == ["ann", "bob"]
    assert [catalogue.ids[i] for i in found.items.tolist()] == ["b1", "b2"]
    assert {u: [catalogue.ids[i] for i in v] for u, v in found.rated_below.items()} == {
        "ann": ["b2"]
    }
