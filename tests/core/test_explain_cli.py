"""``tunesmith explain``: one JSON object for --text, JSON lines for --data, HTML, and bad input
as one clear error line (exit code 2), never a traceback."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

LABELS = ["negative", "positive"]
TEXTS = [
    "the app is great thanks",
    "great card and great app",
    "i love the new app",
    "the refund is terrible",
    "bad app and a broken card",
    "i hate the late delivery",
]
TRUE = [1, 1, 1, 0, 0, 0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny classifier trained a few steps, saved as a plain Hugging Face directory."""
    from tunesmith.testing import make_tiny_trained_classifier

    return make_tiny_trained_classifier(tmp_path_factory.mktemp("clf"), LABELS, TEXTS, TRUE)


def test_text_json_prints_one_object_with_words_delta_and_faithfulness(cli, model_dir):
    result = cli(
        "explain",
        "--model",
        str(model_dir),
        "--text",
        "great card and great app",
        "--json",
        "--steps",
        "20",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["label"] == "positive" and data["target"] == "positive"
    assert data["method"] == "ig" and isinstance(data["delta"], float)
    assert [t["word"] for t in data["tokens"]] == ["great", "card", "and", "great", "app"]
    assert all(isinstance(t["score"], float) for t in data["tokens"])
    assert isinstance(data["comprehensiveness"], float) and isinstance(data["sufficiency"], float)
    assert data["k"] == 1


def test_target_and_occlusion_options_are_honoured(cli, model_dir):
    result = cli(
        "explain",
        "--model",
        str(model_dir),
        "--text",
        "great app",
        "--json",
        "--target",
        "negative",
        "--method",
        "occlusion",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["target"] == "negative" and data["label"] == "positive"
    assert data["method"] == "occlusion" and data["delta"] is None


def test_text_without_json_prints_a_readable_summary(cli, model_dir):
    result = cli(
        "explain", "--model", str(model_dir), "--text", "i hate the late delivery", "--steps", "10"
    )
    assert result.exit_code == 0, result.output
    assert "predicted negative" in result.stdout and "comprehensiveness" in result.stdout


def test_data_writes_one_json_line_per_text_in_file_order(cli, model_dir, tmp_path):
    data = tmp_path / "texts.csv"
    texts = ["great app", "bad card", "i love the new app", "the refund is terrible"]
    data.write_text("text\n" + "\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "explained.jsonl"
    result = cli("explain", "--model", str(model_dir), "--data", str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["text"] for line in lines] == texts
    assert [line["index"] for line in lines] == [0, 1, 2, 3]
    assert all("tokens" in line and "delta" in line for line in lines)
    assert result.stdout == ""


def test_data_defaults_to_the_fast_method_and_text_to_50_step_ig(cli, model_dir, tmp_path):
    from tunesmith.explain.methods import DEFAULT_METHOD

    data = tmp_path / "texts.csv"
    data.write_text("text\ngreat app\nbad card\n", encoding="utf-8")
    many = cli("explain", "--model", str(model_dir), "--data", str(data))
    assert many.exit_code == 0, many.output
    lines = [json.loads(line) for line in many.stdout.splitlines()]
    assert DEFAULT_METHOD == "ig-midpoint"
    assert [line["method"] for line in lines] == [DEFAULT_METHOD] * 2
    assert all(line["n_steps"] == 2 and isinstance(line["delta"], float) for line in lines)
    one = cli("explain", "--model", str(model_dir), "--text", "great app", "--json")
    assert one.exit_code == 0, one.output
    single = json.loads(one.stdout)
    assert single["method"] == "ig" and single["n_steps"] == 50
    chosen = cli("explain", "--model", str(model_dir), "--data", str(data), "--method", "ig")
    assert {json.loads(line)["method"] for line in chosen.stdout.splitlines()} == {"ig"}


def test_data_without_out_streams_json_lines_to_stdout(cli, model_dir, tmp_path, monkeypatch):
    import tunesmith.commands.explain as command

    monkeypatch.setattr(command, "CHUNK", 2)  # several chunks: memory stays bounded
    data = tmp_path / "texts.jsonl"
    texts = ["great app", "bad card", "good help", "late delivery", "thanks"]
    data.write_text("\n".join(json.dumps({"body": t}) for t in texts) + "\n", encoding="utf-8")
    result = cli(
        "explain",
        "--model",
        str(model_dir),
        "--data",
        str(data),
        "--text-col",
        "body",
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == texts


def test_html_page_is_written_with_user_text_escaped(cli, model_dir, tmp_path):
    page = tmp_path / "why.html"
    result = cli(
        "explain",
        "--model",
        str(model_dir),
        "--text",
        "great <script>alert(1)</script>",
        "--html",
        str(page),
        "--steps",
        "4",
    )
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;" in html


def test_existing_output_is_not_overwritten_without_force(cli, model_dir, tmp_path):
    data = tmp_path / "texts.csv"
    data.write_text("text\ngreat app\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    result = cli("explain", "--model", str(model_dir), "--data", str(data), "--out", str(out))
    assert result.exit_code == 2 and "--force" in result.stderr
    assert out.read_text(encoding="utf-8") == "keep me\n"
    result = cli(
        "explain",
        "--model",
        str(model_dir),
        "--data",
        str(data),
        "--out",
        str(out),
        "--force",
    )
    assert result.exit_code == 0 and json.loads(out.read_text())["text"] == "great app"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "   "], "the text is empty"),
        (
            ["--text", "great", "--target", "neutral"],
            "unknown target label 'neutral'; the model's labels are: negative, positive",
        ),
        (["--text", "great", "--method", "shap"], "unknown attribution method 'shap'"),
        ([], "pass either --text TEXT or --data FILE"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_code_2(cli, model_dir, args, message):
    result = cli("explain", "--model", str(model_dir), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1


def test_empty_row_in_data_names_the_file(cli, model_dir, tmp_path):
    data = tmp_path / "texts.jsonl"
    data.write_text('{"text": "great"}\n{"text": ""}\n', encoding="utf-8")
    result = cli("explain", "--model", str(model_dir), "--data", str(data))
    assert result.exit_code == 2 and str(data) in result.stderr


def test_missing_model_directory_is_a_clear_error(cli, tmp_path):
    result = cli("explain", "--model", str(tmp_path / "nope"), "--text", "great")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_long_text_is_truncated_and_the_user_is_told(cli, model_dir):
    result = cli(
        "explain", "--model", str(model_dir), "--text", "great " * 300, "--json", "--steps", "2"
    )
    assert result.exit_code == 0, result.output
    assert "longer than the model's limit" in result.stderr
    data = json.loads(result.stdout)
    assert data["truncated"] is True and len(data["tokens"]) == 126


def test_ner_model_is_explained_per_entity(cli, tmp_path):
    from tunesmith.testing import make_tiny_tagger

    make_tiny_tagger(tmp_path / "ner", ["O", "B-ORG", "I-ORG"], ["acme bank opened"])
    result = cli(
        "explain",
        "--model",
        str(tmp_path / "ner"),
        "--text",
        "acme bank opened",
        "--json",
        "--steps",
        "4",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data["entities"], list)
    for entity in data["entities"]:
        assert {"entity", "label", "start", "end", "tokens", "delta"} <= set(entity)
    result = cli("explain", "--model", str(tmp_path / "ner"), "--text", "acme", "--target", "ORG")
    assert result.exit_code == 2 and "per predicted entity" in result.stderr


@pytest.mark.parametrize("strategy", ["full", "freeze:1", "head", "lora", "full+nearest"])
def test_model_trained_with_each_strategy_is_explained_from_the_cli(cli, tmp_path, strategy):
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = [
        (f"{who} {what}", label)
        for label, phrases in {
            "card": ["lost my card", "card was stolen"],
            "refund": ["want a refund", "need my money back"],
        }.items()
        for what in phrases
        for who in ["i", "we", "my wife", "a friend", "the user"]
    ]
    data = write_csv(tmp_path / "train.csv", rows)
    base = make_tiny_base_model(tmp_path / "base", [t for t, _ in rows])
    out = tmp_path / "model"
    # "full+nearest": mean pooling, so the few-shot default mixes in nearest-example scores.
    extra = ["--pooling", "mean"] if strategy == "full+nearest" else []
    trained = cli(
        "train", "--data", str(data), "--model", str(base), "--out", str(out),
        "--strategy", strategy.split("+")[0], "--epochs", "1", "--batch-size", "8", *extra,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert (out / "nearest_examples.safetensors").is_file() == (strategy == "full+nearest")
    result = cli("explain", "--model", str(out), "--text", "i lost my card", "--json")
    assert result.exit_code == 0, result.output
    explanation = json.loads(result.stdout)
    assert explanation["label"] in {"card", "refund"}
    assert [t["word"] for t in explanation["tokens"]] == ["i", "lost", "my", "card"]
    assert explanation["delta"] is not None
    # Completeness holds through the nearest-example mixture too (it is differentiable).
    assert abs(explanation["delta"]) < 0.05


def test_help_shows_the_default_number_of_steps_not_eaten_as_markup(cli):
    import re

    result = cli("explain", "--help")
    assert result.exit_code == 0
    text = re.sub(r"[\s│]+", " ", result.stdout)  # rich wraps the help inside a box
    assert "(ig, ig-adaptive, captum-ig; default 50)" in text


def test_a_multi_label_summary_does_not_call_a_label_below_half_predicted():
    # "predicted urgent (p=0.496)" where `predict` lists no label for that text
    from tunesmith.commands.explain import _summary
    from tunesmith.explain.types import Explanation

    def summary(p: float) -> str:
        item = Explanation("t", "urgent", p, "urgent", p, [], "occlusion")
        return _summary(item, "t", multilabel=True).splitlines()[0]

    assert summary(0.496).startswith("no label above 0.5; most probable urgent (p=0.496)")
    assert summary(0.9).startswith("most probable label urgent (p=0.900)")
    single = Explanation("t", "urgent", 0.496, "urgent", 0.496, [], "occlusion")
    assert _summary(single, "t").startswith("predicted urgent")


def test_a_seed_ensemble_is_explained_as_predict_scores_it_not_its_first_member(
    cli, model_dir, tmp_path
):
    """`predict` averages every member of an ensemble.json; `explain` explained the first alone
    and said nothing, so its label and probability were not the ones predict showed."""
    import shutil

    from tunesmith.testing import make_tiny_classifier

    ensemble = tmp_path / "ensemble"
    shutil.copytree(model_dir, ensemble)
    make_tiny_classifier(ensemble / "members" / "seed1", LABELS, TEXTS, seed=3)
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["members/seed1"]}))
    text = "great card and great app"
    predicted = json.loads(
        cli("predict", "--model", str(ensemble), "--text", text, "--json").stdout
    )
    alone = json.loads(cli("predict", "--model", str(model_dir), "--text", text, "--json").stdout)
    assert abs(predicted["score"] - alone["score"]) > 1e-3  # the members do change the score
    for args in (["--text", text, "--json"], ["--data", str(tmp_path / "texts.csv")]):
        (tmp_path / "texts.csv").write_text(f"text\n{text}\n")
        result = cli("explain", "--model", str(ensemble), *args, "--method", "occlusion")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout.splitlines()[0] if "--data" in args else result.stdout)
        assert data["label"] == predicted["label"] and data["members"] == 2
        assert data["probability"] == pytest.approx(predicted["score"], abs=1e-5)
    summary = cli("explain", "--model", str(ensemble), "--text", text, "--method", "occlusion")
    assert f"(p={predicted['score']:.3f})" in summary.stdout


def test_a_repeated_text_is_refused_not_all_but_the_last_silently_dropped(cli, model_dir):
    """`predict --text A --text B` labels both; `explain` kept only B and said nothing."""
    result = cli("explain", "--model", str(model_dir), "--text", "great app", "--text", "bad card")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--text was given 2 times" in result.stderr
    assert "--data" in result.stderr


def test_predict_and_explain_say_once_on_stderr_that_a_model_is_a_seed_ensemble(
    cli, model_dir, tmp_path
):
    """Both showed an ensemble's probabilities as one model's; the JSON on stdout stays as it
    was (explain's already says "members": 2)."""
    import shutil

    from tunesmith.testing import make_tiny_classifier

    ensemble = tmp_path / "ensemble"
    shutil.copytree(model_dir, ensemble)
    make_tiny_classifier(ensemble / "members" / "seed1", LABELS, TEXTS, seed=3)
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["members/seed1"]}))
    text = "great card and great app"
    note = f"note: {ensemble} is a seed ensemble of 2 models; its probabilities"
    for command in (["predict"], ["explain", "--method", "occlusion"]):
        for extra in ([], ["--json"]):
            result = cli(*command, "--model", str(ensemble), "--text", text, *extra)
            assert result.exit_code == 0, result.output
            assert result.stderr.count(note) == 1, result.stderr
            assert "seed ensemble" not in result.stdout
            if extra:
                json.loads(result.stdout)
    said = cli("explain", "--model", str(ensemble), "--text", text, "--method", "occlusion")
    assert "probabilities and word scores are the mean of its members'" in said.stderr
    for command in ("predict", "explain"):
        alone = cli(command, "--model", str(model_dir), "--text", text)
        assert alone.exit_code == 0 and "seed ensemble" not in alone.stderr


def test_evaluate_and_calibrate_say_on_stderr_that_a_model_is_a_seed_ensemble(
    cli, model_dir, tmp_path
):
    """Both load every member of an ensemble.json (evaluate scores their mean, calibrate refits
    each and then the mean) but, unlike predict and explain, never said so: their figures read
    as one model's. The note goes to stderr only; the JSON on stdout stays parseable."""
    import shutil

    from tunesmith.testing import make_tiny_classifier

    ensemble = tmp_path / "ensemble"
    shutil.copytree(model_dir, ensemble)
    make_tiny_classifier(ensemble / "members" / "seed1", LABELS, TEXTS, seed=3)
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["members/seed1"]}))
    data = tmp_path / "held_out.csv"
    data.write_text(
        "text,label\n" + "".join(f"{t},{LABELS[y]}\n" for t, y in zip(TEXTS, TRUE, strict=True))
    )
    note = f"note: {ensemble} is a seed ensemble of 2 models; "
    said = {
        "evaluate": "its probabilities are the mean of its members'",
        "calibrate": "every member's temperature was refitted, then the mean's own",
    }
    for command, how in said.items():
        for extra in ([], ["--json"]):
            result = cli(command, "--model", str(ensemble), "--data", str(data), *extra)
            assert result.exit_code == 0, result.output
            assert result.stderr.count(note + how) == 1, result.stderr
            assert "seed ensemble" not in result.stdout
            if extra:
                json.loads(result.stdout)
    single = tmp_path / "single"
    shutil.copytree(model_dir, single)
    for command in said:
        alone = cli(command, "--model", str(single), "--data", str(data))
        assert alone.exit_code == 0 and "seed ensemble" not in alone.stderr
