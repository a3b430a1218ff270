"""The demo's sample KB, built on the first question: a failed build leaves nothing behind."""

from __future__ import annotations

import pytest


def test_a_failed_sample_kb_build_leaves_no_half_made_folder(tiny_model, tmp_path, monkeypatch):
    import tunesmith_support.learning as learning
    from tunesmith_support import demo

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))

    def broken(*_args, **_kwargs):
        raise RuntimeError("calibration failed")

    monkeypatch.setattr(learning, "calibrate_kb", broken)
    with pytest.raises(RuntimeError):
        demo.sample_kb(model=str(tiny_model))
    # Each failed question left a sample-kb.tmp-* folder, index included, under the demo's home.
    assert list(demo.demo_dir().iterdir()) == []
