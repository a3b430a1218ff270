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
        for file in sample["paths"].values():
            assert Path(file).read_text(encoding="utf-8").strip()


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
