"""`recommend train --encoder-epochs` is checked by the engine's epochs rule before any work."""

from __future__ import annotations

import pytest

from tunesmith.errors import UserInputError


@pytest.mark.parametrize("epochs", [0.0, float("inf"), float("nan")])
def test_encoder_epochs_that_are_not_a_finite_number_above_zero_are_refused_before_any_data(
    epochs,
):
    """`--encoder-epochs inf` passed the "> 0" check: the split was made and every item encoded
    (half a minute on the sample) before the pair training refused "--epochs", a flag the
    command has not."""
    from tunesmith_recommend.pipeline import Settings
    from tunesmith_recommend.workflow import checked_settings

    with pytest.raises(UserInputError) as caught:
        checked_settings(Settings(encoder_epochs=epochs), allow_network=False)
    assert str(caught.value) == (
        f"--encoder-epochs {epochs!r} is not valid; expected a finite number above 0"
    )


def test_encoder_epochs_are_not_checked_without_fine_tuning():
    from tunesmith_recommend.pipeline import Settings
    from tunesmith_recommend.workflow import checked_settings

    settings = Settings(fine_tune=False, encoder_epochs=float("inf"))
    assert checked_settings(settings, allow_network=False) is settings
