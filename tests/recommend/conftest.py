"""Fixtures the recommend tests share."""

from __future__ import annotations

import pytest

from tunesmith_recommend.data import load_items, sample_paths


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny base encoder whose vocabulary covers the sample catalogue (built once)."""
    from tunesmith.testing import make_tiny_base_model

    catalogue = load_items(sample_paths()["items"])
    return str(make_tiny_base_model(tmp_path_factory.mktemp("tiny"), catalogue.texts))
