"""Saving a trained model draws no transformers progress bar on the user's terminal."""

from __future__ import annotations


def test_save_classifier_draws_no_shard_progress_bar_and_keeps_the_bar_setting(tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    from tunesmith.engine.modeling import load_classifier, save_classifier
    from tunesmith.testing import make_tiny_classifier

    model = load_classifier(make_tiny_classifier(tmp_path / "tiny", ["a", "b"]))
    before = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()  # as another thread's quiet load may leave them
    try:
        capfd.readouterr()
        save_classifier(model, tmp_path / "saved")
        err = capfd.readouterr().err
        assert "Writing model shards" not in err and "it/s" not in err
        assert hf_logging.is_progress_bar_enabled()  # put back as it was
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()
    assert (tmp_path / "saved" / "config.json").is_file()
