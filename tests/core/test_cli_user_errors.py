"""Mistakes a new user makes with the core CLI: each is one ``Error:`` line with exit code 2,
before anything is written, and no flag is silently ignored."""

from __future__ import annotations

import pytest

from tunesmith.errors import UserInputError
from tunesmith.testing import make_tiny_classifier, make_tiny_tagger, write_csv

torch = pytest.importorskip("torch")

TEXTS = ["my card is lost", "where is my parcel", "card stolen", "parcel late"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("clf"), ["card", "parcel"], TEXTS)


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory):
    return make_tiny_tagger(tmp_path_factory.mktemp("ner"), ["O", "B-PER", "I-PER"], TEXTS)


@pytest.fixture
def labelled(tmp_path):
    rows = zip(TEXTS, ["card", "parcel", "card", "parcel"], strict=True)
    return write_csv(tmp_path / "eval.csv", rows)


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_calibrate_plot_at_a_folder_is_refused_before_calibration_is_rewritten(
    cli, model_dir, labelled, tmp_path
):
    folder = tmp_path / "plots"
    folder.mkdir()
    line = one_error_line(
        cli("calibrate", "--model", str(model_dir), "--data", str(labelled), "--plot", str(folder))
    )
    assert str(folder) in line and "is a folder" in line
    assert not (model_dir / "calibration.json").exists()


def test_calibrate_plot_under_a_file_is_one_error_line(cli, model_dir, labelled, tmp_path):
    plot = labelled / "reliability.png"
    line = one_error_line(
        cli("calibrate", "--model", str(model_dir), "--data", str(labelled), "--plot", str(plot))
    )
    assert f"{labelled} is a file, not a folder" in line
    assert not (model_dir / "calibration.json").exists()


def test_evaluate_plot_at_a_file_is_one_error_line(cli, model_dir, labelled):
    line = one_error_line(
        cli("evaluate", "--model", str(model_dir), "--data", str(labelled), "--plot", str(labelled))
    )
    assert f"--plot {labelled} is a file" in line


def test_evaluate_plot_on_a_ner_model_is_refused_not_ignored(cli, tagger_dir, tmp_path):
    data = tmp_path / "eval.conll"
    data.write_text("Ann\tB-PER\nsmiles\tO\n", encoding="utf-8")
    line = one_error_line(
        cli("evaluate", "--model", str(tagger_dir), "--data", str(data), "--plot", str(tmp_path))
    )
    assert "--plot" in line and "NER" in line


def test_predict_table_shows_the_top_k_labels(cli, model_dir):
    result = cli("predict", "--model", str(model_dir), "--text", "card lost", "--top-k", "2")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[-2:] == ["top", "2"]
    row = result.stdout.splitlines()[1]
    assert "card 0." in row and "parcel 0." in row


def test_predict_top_k_on_a_ner_model_is_refused_not_ignored(cli, tagger_dir):
    result = cli("predict", "--model", str(tagger_dir), "--text", "Ann smiles", "--top-k", "2")
    assert "--top-k applies to classifiers" in one_error_line(result)


def test_predict_empty_text_is_refused_not_classified(cli, model_dir):
    result = cli("predict", "--model", str(model_dir), "--text", "card", "--text", "  ")
    assert "--text number 2 is empty" in one_error_line(result)


@pytest.mark.parametrize("method", ["ig-midpoint", "occlusion", "grad-input"])
def test_explain_steps_with_a_method_without_steps_is_refused(cli, model_dir, method):
    args = ["explain", "--model", str(model_dir), "--text", "card lost", "--method", method]
    line = one_error_line(cli(*args, "--steps", "8"))
    assert f"--steps does not apply to --method {method}" in line


def test_explain_steps_are_refused_for_the_data_default_method(cli, model_dir, labelled):
    result = cli("explain", "--model", str(model_dir), "--data", str(labelled), "--steps", "8")
    assert "--method ig-midpoint" in one_error_line(result)


def test_explain_steps_still_apply_to_integrated_gradients(cli, model_dir):
    args = ["explain", "--model", str(model_dir), "--text", "card lost", "--json"]
    result = cli(*args, "--method", "ig", "--steps", "4")
    assert result.exit_code == 0, result.output


def test_train_seed_numpy_cannot_take_is_refused_before_any_work(cli, labelled, tmp_path):
    out = tmp_path / "model"
    for seed in ("-5", str(2**32)):
        line = one_error_line(
            cli("train", "--data", str(labelled), "--out", str(out), "--seed", seed)
        )
        assert f"--seed {seed} is not valid" in line
    assert not list(tmp_path.glob("model*"))


def test_train_pair_seed_numpy_cannot_take_is_refused(cli, labelled, tmp_path):
    args = ["train", "--task", "pairs", "--data", str(labelled), "--pair-col", "label"]
    line = one_error_line(cli(*args, "--out", str(tmp_path / "enc"), "--seed", "-1"))
    assert "--seed -1 is not valid" in line


def test_train_pair_column_without_task_pairs_is_refused_not_ignored(cli, labelled, tmp_path):
    args = ["train", "--data", str(labelled), "--out", str(tmp_path / "m")]
    assert "--pair-col goes with --task pairs" in one_error_line(cli(*args, "--pair-col", "x"))
    assert "--negative-col goes with --task pairs" in one_error_line(
        cli(*args, "--negative-col", "x")
    )


@pytest.mark.parametrize(
    "extra", [["--strategy", "lora"], ["--label-col", "intent"], ["--no-calibrate"]]
)
def test_train_classification_flag_with_task_pairs_is_refused_not_ignored(
    cli, labelled, tmp_path, extra
):
    args = ["train", "--task", "pairs", "--data", str(labelled), "--pair-col", "label"]
    line = one_error_line(cli(*args, "--out", str(tmp_path / "enc"), *extra))
    assert f"{extra[0]} does not apply to --task pairs" in line
    assert not (tmp_path / "enc").exists()


def test_train_folder_as_data_is_named_a_folder(cli, tmp_path):
    line = one_error_line(cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "m")))
    assert f"--data {tmp_path} is a folder" in line


def test_train_unknown_task_lists_pairs_among_the_choices():
    from tunesmith.engine.config import RunConfig

    with pytest.raises(UserInputError, match=r"ner \| pairs"):
        RunConfig(data="x.csv", task="bogus").validate()


@pytest.mark.parametrize("ratio", [1.0, 5.0, -0.1])
def test_a_warmup_ratio_outside_zero_to_one_is_refused_not_read_as_steps(ratio, tmp_path):
    # the Python API's warmup_ratio was never checked; 1 or more is a step count to the Trainer
    from tunesmith.engine.config import RunConfig

    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="warmup_ratio .* a share of the steps"):
        RunConfig(data=str(data), warmup_ratio=ratio).validate()
    RunConfig(data=str(data), warmup_ratio=0.0).validate()


@pytest.mark.parametrize("command", ["list", "tail"])
def test_events_unknown_status_is_refused_also_without_an_outbox(
    cli, tmp_path, monkeypatch, command
):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))  # no events.sqlite there
    result = cli("events", command, "--status", "bogus")
    assert "unknown status 'bogus'" in one_error_line(result)


def test_explain_html_at_a_folder_is_one_error_line_even_with_force(cli, model_dir, tmp_path):
    args = ["explain", "--model", str(model_dir), "--text", "card lost", "--force"]
    line = one_error_line(cli(*args, "--html", str(tmp_path)))
    assert f"--html {tmp_path} is a folder" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--model", "m", "--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["predict"], "Missing option '--model'"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ],
)
def test_a_usage_error_is_one_error_line_with_a_help_hint_not_a_boxed_usage(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"Error: {message}") and "--help'" in result.stderr
    assert "Usage:" not in result.output and "╭" not in result.output


def test_a_command_group_called_bare_prints_its_help_and_no_empty_error(cli):
    result = cli("events")
    assert "Usage:" in result.stdout and "Error" not in result.stderr


def test_a_pair_training_range_error_names_the_flag(cli, tmp_path):
    data = write_csv(tmp_path / "pairs.csv", [["q1", "a1"], ["q2", "a2"]], header=("q", "a"))
    result = cli("train", "--task", "pairs", "--data", str(data), "--text-col", "q",
                 "--pair-col", "a", "--out", str(tmp_path / "enc"), "--epochs", "0")  # fmt: skip
    assert result.exit_code == 2 and "--epochs 0.0 is not valid" in result.stderr


class _FailingCommands:
    """A throw-away plugin whose commands fail as the operating system or the user makes them."""

    @staticmethod
    def tunesmith_cli(app):
        import errno

        @app.command("disk-full")
        def disk_full() -> None:
            raise OSError(errno.ENOSPC, "No space left on device", "out.csv")

        @app.command("stopped")
        def stopped() -> None:
            raise KeyboardInterrupt

        @app.command("pipe-closed")
        def pipe_closed() -> None:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")


@pytest.fixture
def failing(register_plugin):
    import tunesmith

    plugin = type(
        "FailingPlugin", (), {"tunesmith_cli": tunesmith.hookimpl(_FailingCommands.tunesmith_cli)}
    )
    register_plugin(plugin, "failing-commands")


def test_an_os_error_no_command_foresaw_is_one_line_naming_the_file(cli, failing, monkeypatch):
    monkeypatch.delenv("TUNESMITH_DEBUG", raising=False)
    result = cli("disk-full")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        "Error: [Errno 28] No space left on device: 'out.csv' (set TUNESMITH_DEBUG=1 for the "
        "traceback)"
    ]
    monkeypatch.setenv("TUNESMITH_DEBUG", "1")
    assert isinstance(cli("disk-full").exception, OSError)  # the traceback, when asked for


def test_ctrl_c_is_one_line_and_exit_code_130(cli, failing):
    result = cli("stopped")
    assert result.exit_code == 130
    assert result.output.strip() == "Error: interrupted (Ctrl-C)"


def test_a_reader_that_closed_the_pipe_ends_the_command_quietly(cli, failing):
    result = cli("pipe-closed")  # `tunesmith predict ... | head`: nobody is left to tell
    assert result.exit_code == 1 and result.output == ""


def test_an_empty_path_is_refused_not_read_as_the_current_folder(
    cli, model_dir, labelled, tmp_path, monkeypatch
):
    # Path("") is "."; an unset shell variable (--plot "$DIR") wrote the plots into the cwd
    monkeypatch.chdir(tmp_path)
    result = cli("evaluate", "--model", str(model_dir), "--data", str(labelled), "--plot", "")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Invalid value for '--plot': the path is empty")
    assert not list(tmp_path.glob("*.png"))


def _commands(command, path=("tunesmith",)):
    """Every (command path, command) of the tree, the plugins' groups included."""
    yield " ".join(path), command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _options():
    import typer

    from tunesmith.cli import build_app

    for where, command in _commands(typer.main.get_command(build_app())):
        for param in command.params:
            if param.param_type_name == "option":
                yield where, param


def test_every_model_option_has_the_short_form_m_and_is_spelled_model():
    for where, option in _options():
        names = option.opts + option.secondary_opts
        if "--model" in names or "--model-dir" in names:
            assert "-m" in names and "--model" in names, (where, names)


def test_every_option_says_what_it_does_in_its_help():
    for where, option in _options():
        assert (option.help or "").strip(), (where, option.opts)


def test_help_paragraphs_are_reflowed_not_broken_where_the_source_wrapped():
    import typer

    from tunesmith.cli import _reflow_help, build_app, reflow_paragraphs

    command = typer.main.get_command(build_app())
    _reflow_help(command)
    retry = command.commands["events"].commands["retry"]
    assert "marks each one) and stdout: a delivery" in retry.help
    source = "First line\nwrapped.\n\nSee:\n  tunesmith x\n- one\n- two\n\n\bkept\nas is"
    assert reflow_paragraphs(source) == (
        "First line wrapped.\n\nSee:\n  tunesmith x\n- one\n- two\n\n\bkept\nas is"
    )


@pytest.mark.parametrize("args", [["--help"], ["events", "list", "--help"]])
def test_help_shows_no_value_type_beside_a_flag(cli, args):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "--json" in result.output or args == ["--help"]
    assert "<bool>" not in result.output
    assert "<path>" in result.output or args == ["--help"]
