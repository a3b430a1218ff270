"""One test per hook: a throw-away plugin's implementation is called and used."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith import hookimpl
from tunesmith.hooktypes import Demo, Event, SampleData


class CliPlugin:
    @hookimpl
    def tunesmith_cli(self, app: typer.Typer) -> None:
        group = typer.Typer()

        @group.command("ping")
        def ping() -> None:
            typer.echo("pong")

        app.add_typer(group, name="throwaway")


def test_hook_tunesmith_cli_adds_a_working_command_group(register_plugin, cli):
    register_plugin(CliPlugin(), "cli-plugin")
    result = cli("throwaway", "ping")
    assert result.exit_code == 0 and result.stdout.strip() == "pong"


class DemoPlugin:
    @hookimpl
    def tunesmith_demos(self):
        return [Demo(name="throwaway", title="Throw-away", build=lambda: None)]


def test_hook_tunesmith_demos_adds_a_demo_to_the_suite(register_plugin):
    from tunesmith_suite.suite import collect_demos

    register_plugin(DemoPlugin(), "demo-plugin")
    assert [d.name for d in collect_demos(["throwaway"])] == ["throwaway"]


class SinkPlugin:
    sent: list[Event] = []

    class MemorySink:
        def __init__(self, rest: str) -> None:
            self.rest = rest

        def send(self, event: Event) -> None:
            SinkPlugin.sent.append(event)

    @hookimpl
    def tunesmith_event_sinks(self):
        return {"memory": SinkPlugin.MemorySink}


def test_hook_tunesmith_event_sinks_adds_a_sink_scheme(register_plugin):
    from tunesmith.events import emit, make_sink

    register_plugin(SinkPlugin(), "sink-plugin")
    sink = make_sink("memory:bucket")
    emit(Event(kind="alert", message="hello"), [sink])
    assert sink.rest == "bucket" and SinkPlugin.sent[-1].message == "hello"


class SamplePlugin:
    def __init__(self, path):
        self.path = path

    @hookimpl
    def tunesmith_sample_data(self):
        return [SampleData(name="throwaway", description="t", paths={"train": self.path})]


def test_hook_tunesmith_sample_data_lists_plugin_sets_beside_the_builtin_ones(
    register_plugin, tmp_path, cli
):
    import json

    path = tmp_path / "t.csv"
    path.write_text("text,label\nhi,greeting\n", encoding="utf-8")
    register_plugin(SamplePlugin(path), "sample-plugin")
    result = cli("sample-data", "--json")
    assert result.exit_code == 0, result.output
    sets = {s["name"]: s for s in json.loads(result.stdout)}
    assert sets["throwaway"]["paths"]["train"] == str(path)
    builtin = [s for name, s in sets.items() if name != "throwaway"]
    assert builtin, "the core ships at least one sample data set"
    for sample in builtin:
        for file in map(Path, sample["paths"].values()):
            # A split may be a folder of documents (the support plugin's knowledge base).
            files = sorted(file.rglob("*.*")) if file.is_dir() else [file]
            assert files and all(f.read_text(encoding="utf-8").strip() for f in files)


class ReaderPlugin:
    @hookimpl
    def tunesmith_data_readers(self):
        def read_pipe(path):
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines[1:], start=2):
                text, label = line.split("|")
                yield {"text": text, "label": label, "__row__": number}

        return {".pipe": read_pipe}


def test_hook_tunesmith_data_readers_adds_a_file_format(register_plugin, tmp_path):
    from tunesmith.data.load import load_text_dataset

    register_plugin(ReaderPlugin(), "reader-plugin")
    path = tmp_path / "d.pipe"
    path.write_text("text|label\nhello there|greeting\nmy card is lost|card\n", encoding="utf-8")
    dataset = load_text_dataset(path)
    assert dataset.texts == ["hello there", "my card is lost"]
    assert dataset.label_names == ["card", "greeting"]


class ShoutAugmenter:
    name = "shout"

    def augment(self, texts, labels, rng):
        return [t.upper() for t in texts], list(labels)


class AugmenterPlugin:
    @hookimpl
    def tunesmith_augmenters(self):
        return [ShoutAugmenter()]


def test_hook_tunesmith_augmenters_adds_an_augmenter_chosen_by_name(register_plugin, tmp_path):
    from tunesmith.data.augment import augment_dataset
    from tunesmith.data.load import load_text_dataset

    register_plugin(AugmenterPlugin(), "augmenter-plugin")
    path = tmp_path / "d.csv"
    path.write_text("text,label\nhello there,greeting\nlost card,card\n", encoding="utf-8")
    augmented = augment_dataset(load_text_dataset(path), ["shout"], seed=0, cache_dir=tmp_path)
    assert "HELLO THERE" in augmented.texts and "hello there" in augmented.texts


# --- one precedence rule for every hook (docs/plugin_hooks.md, "How results are combined") ---
#
# Results come in registration order, built-ins first; on a name clash the plugin registered
# last wins. Each test registers two throw-away plugins, "first" then "second", that clash.


def named_plugin(hook: str, make):
    """A plugin object whose ``hook`` (taking no arguments) returns ``make()``."""

    class Plugin:
        pass

    def impl(self):
        return make()

    impl.__name__ = hook
    setattr(Plugin, hook, hookimpl(impl))
    return Plugin()


def test_hook_tunesmith_cli_the_plugin_registered_last_wins_a_command_name(register_plugin, cli):
    class Adds:
        def __init__(self, word):
            self.word = word

        @hookimpl
        def tunesmith_cli(self, app):
            app.command("clash")(lambda: typer.echo(self.word))

    register_plugin(Adds("first"), "first")
    register_plugin(Adds("second"), "second")
    assert cli("clash").stdout.strip() == "second"


def test_hook_tunesmith_demos_builtins_first_and_last_registered_wins_a_name(register_plugin):
    from tunesmith_suite.suite import collect_demos

    def demo(title):
        return lambda: [Demo(name="clash", title=title, build=lambda: None)]

    register_plugin(named_plugin("tunesmith_demos", demo("first")), "first")
    register_plugin(named_plugin("tunesmith_demos", demo("second")), "second")
    demos = collect_demos()
    assert demos[0].name == "playground"  # the core's own demo comes first
    assert [d.title for d in demos if d.name == "clash"] == ["second"]


def test_hook_tunesmith_data_readers_the_last_registered_reader_wins_a_suffix(register_plugin):
    from tunesmith.data.readers import BUILTIN_READERS, available_readers, reader_for

    def first(path):
        return []

    def second(path):
        return []

    assert available_readers()[".csv"] is BUILTIN_READERS[".csv"]
    register_plugin(named_plugin("tunesmith_data_readers", lambda: {".csv": first}), "first")
    register_plugin(named_plugin("tunesmith_data_readers", lambda: {"CSV": second}), "second")
    assert reader_for("x.csv") is second


def test_hook_tunesmith_augmenters_the_last_registered_wins_a_name(register_plugin):
    from tunesmith.data.augment import available_augmenters

    class Named:
        def __init__(self, tag):
            self.name, self.tag = "token_edits", tag

        def augment(self, texts, labels, rng):
            return [], []

    assert type(available_augmenters()["token_edits"]).__name__ == "TokenEdits"
    register_plugin(named_plugin("tunesmith_augmenters", lambda: [Named("first")]), "first")
    register_plugin(named_plugin("tunesmith_augmenters", lambda: [Named("second")]), "second")
    assert available_augmenters()["token_edits"].tag == "second"


def test_hook_tunesmith_train_callbacks_come_in_registration_order(register_plugin):
    from tunesmith.plugins import collect_list

    class Callbacks:
        def __init__(self, tag):
            self.tag = tag

        @hookimpl
        def tunesmith_train_callbacks(self, run):
            return [f"{self.tag}:{run}"]

    register_plugin(Callbacks("a"), "first")
    register_plugin(Callbacks("b"), "second")
    assert collect_list("tunesmith_train_callbacks", run="R")[-2:] == ["a:R", "b:R"]


def test_hook_tunesmith_attribution_methods_the_last_registered_wins_a_name(register_plugin):
    from tunesmith.explain.methods import get_method

    class Method:
        def __init__(self, tag):
            self.name, self.tag = "occlusion", tag

    def methods(tag):
        return lambda: {"occlusion": Method(tag)}

    assert type(get_method("occlusion")).__name__ == "WordOcclusion"
    register_plugin(named_plugin("tunesmith_attribution_methods", methods("first")), "first")
    register_plugin(named_plugin("tunesmith_attribution_methods", methods("second")), "second")
    assert get_method("occlusion").tag == "second"


def test_hook_tunesmith_event_sinks_the_last_registered_wins_a_scheme(register_plugin):
    from tunesmith.events import StdoutSink, make_sink

    class Sink:
        def __init__(self, rest, tag=""):
            self.tag = tag

        def send(self, event):
            pass

    assert isinstance(make_sink("stdout"), StdoutSink)
    for tag in ("first", "second"):
        factory = {"stdout": lambda rest, tag=tag: Sink(rest, tag)}
        register_plugin(named_plugin("tunesmith_event_sinks", lambda f=factory: f), tag)
    assert make_sink("stdout").tag == "second"


def test_hook_tunesmith_sample_data_builtins_first_and_last_registered_wins_a_name(
    register_plugin, tmp_path, cli
):
    import json

    for tag in ("first", "second"):
        path = tmp_path / f"{tag}.csv"
        sample = SampleData(name="clash", description=tag, paths={"train": path})
        register_plugin(named_plugin("tunesmith_sample_data", lambda s=sample: [s]), tag)
    sets = json.loads(cli("sample-data", "--json").stdout)
    assert sets[0]["name"] == "support_intents"  # the core's own sets come first
    assert [s["description"] for s in sets if s["name"] == "clash"] == ["second"]


def test_hook_tunesmith_attribution_methods_a_wrong_shaped_result_is_one_error_naming_it(
    register_plugin, tmp_path
):
    """A plugin's method that returned too few results, or too few scores for a text, failed
    with a bare ``zip()`` traceback naming neither the method nor the plugin."""
    import pytest
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.errors import PluginError
    from tunesmith.explain.attribute import explain_texts
    from tunesmith.explain.types import TokenAttribution
    from tunesmith.testing import make_tiny_classifier

    class Short:
        name = "short"

        def attribute(self, model, tokenizer, texts, **kwargs):
            return [TokenAttribution(scores=[1.0]) for _ in texts]

    class Missing:
        name = "missing"

        def attribute(self, model, tokenizer, texts, **kwargs):
            return []

    register_plugin(
        named_plugin(
            "tunesmith_attribution_methods", lambda: {"short": Short(), "missing": Missing()}
        ),
        "bad-methods",
    )
    directory = make_tiny_classifier(tmp_path / "clf", ["ham", "spam"], ["good movie"])
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    with pytest.raises(PluginError, match=r"method 'short' returned 1 scores for text 1"):
        explain_texts(model, tokenizer, ["good movie"], method="short")
    with pytest.raises(PluginError, match=r"method 'missing' returned 0 results for 1 text"):
        explain_texts(model, tokenizer, ["good movie"], method="missing")


def test_hook_tunesmith_cli_a_later_command_replaces_an_earlier_group_of_its_name(
    register_plugin, cli
):
    """Typer adds groups after commands, so an earlier plugin's group beat a later plugin's
    command of the same name, against the rule that the last registered wins."""

    class AddsGroup:
        @hookimpl
        def tunesmith_cli(self, app):
            group = typer.Typer()
            group.command("ping")(lambda: typer.echo("group"))
            app.add_typer(group, name="clash")

    class AddsCommand:
        @hookimpl
        def tunesmith_cli(self, app):
            app.command("clash")(lambda: typer.echo("command"))

    register_plugin(AddsGroup(), "first")
    register_plugin(AddsCommand(), "second")
    result = cli("clash")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "command"
    # The other way round, the later group wins, as before; other groups are kept.
    assert cli("events", "--help").exit_code == 0


def test_hook_tunesmith_cli_a_plugin_that_raises_keeps_none_of_the_commands_it_added(
    register_plugin, cli, monkeypatch
):
    monkeypatch.delenv("TUNESMITH_STRICT_PLUGINS", raising=False)  # make test sets it

    class AddsThenRaises:
        @hookimpl
        def tunesmith_cli(self, app):
            group = typer.Typer()
            group.command("ping")(lambda: typer.echo("half-built"))
            app.add_typer(group, name="halfway")
            app.command("halfcmd")(lambda: typer.echo("half-built"))
            raise RuntimeError("failed after adding a group")

    register_plugin(AddsThenRaises(), "half")
    register_plugin(CliPlugin(), "cli-plugin")
    assert cli("halfway", "ping").exit_code != 0
    assert cli("halfcmd").exit_code != 0
    # The next plugin's commands are kept, and the failure is listed.
    assert cli("throwaway", "ping").stdout.strip() == "pong"
    listed = cli("plugins", "--json")
    assert "failed after adding a group" in listed.stdout
