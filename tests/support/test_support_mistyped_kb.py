"""A mistyped ``--kb`` is one line and leaves no trace: ``ask`` and ``chat`` made
``typo/conversations.sqlite`` (and a ``--db`` elsewhere) before saying the folder was not a
knowledge base, and an empty folder given by mistake kept a database it never had."""

from __future__ import annotations

import pytest

NOT_A_KB = "not a knowledge base (no kb.json)"


@pytest.mark.parametrize(
    ("command", "given"),
    [(("ask", "how much is delivery?"), None), (("chat",), "how much is delivery?\n")],
)
def test_a_mistyped_kb_is_refused_before_any_conversation_database_is_made(
    cli, tmp_path, command, given
):
    typo = tmp_path / "typo"
    result = cli("support", command[0], "--kb", str(typo), *command[1:], input=given)
    assert result.exit_code != 0
    assert NOT_A_KB in result.output.strip().splitlines()[-1]
    assert not typo.exists()


def test_a_folder_that_is_not_a_kb_stays_as_it_was_and_no_db_elsewhere_is_made(cli, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.sqlite"
    result = cli(
        "support", "ask", "--kb", str(folder), "--db", str(elsewhere), "how much is delivery?"
    )
    assert result.exit_code != 0 and NOT_A_KB in result.output
    assert list(folder.iterdir()) == []
    assert not elsewhere.exists()


def test_the_open_service_helper_refuses_a_folder_without_kb_json(tmp_path):
    from tunesmith.errors import UserInputError
    from tunesmith_support.commands.shared import open_service

    with pytest.raises(UserInputError, match="not a knowledge base"):
        open_service(tmp_path / "typo", None, None)
    assert not (tmp_path / "typo").exists()
