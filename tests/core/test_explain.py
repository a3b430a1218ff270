"""Attributions: word merging, integrated gradients (batched, vs Captum), occlusion, faithfulness,
targets and bad input, pair similarity, NER entities, PEFT and mean-pooling heads, plugins."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

#: Tiny models on one torch thread: on a busy shared CPU more threads made the training and
#: the explanations here several times slower (figures are compared with tolerances).
pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = ["negative", "positive"]
TEXTS = [
    "the app is great thanks",
    "great card and great app",
    "i love the new app",
    "good help with my account",
    "the refund is terrible",
    "bad app and a broken card",
    "i hate the late delivery",
    "terrible help my money is lost",
]
TRUE = [1, 1, 1, 1, 0, 0, 0, 0]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny BERT classifier trained for a few full-batch steps, and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.testing import make_tiny_trained_classifier

    directory = tmp_path_factory.mktemp("clf")
    make_tiny_trained_classifier(directory, LABELS, TEXTS, TRUE, steps=60)
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    return model, AutoTokenizer.from_pretrained(directory)


class BagOfWords(torch.nn.Module):
    """A hand-checkable classifier: p(positive) = sigmoid(sum of the words' weights).

    Each token's one-number embedding is its weight; [PAD] and special tokens weigh 0.
    """

    def __init__(self, tokenizer, weights: dict[str, float]) -> None:
        super().__init__()
        self.embeddings = torch.nn.Embedding(len(tokenizer), 1)
        with torch.no_grad():
            self.embeddings.weight.zero_()
            for word, weight in weights.items():
                self.embeddings.weight[tokenizer.convert_tokens_to_ids(word)] = weight
        self.config = SimpleNamespace(
            id2label=dict(enumerate(LABELS)), problem_type=None, max_position_embeddings=64
        )

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids=None, attention_mask=None):
        total = (self.embeddings(input_ids)[..., 0] * attention_mask).sum(-1)
        return SimpleNamespace(logits=torch.stack([-total / 2, total / 2], dim=-1))


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    from tunesmith.testing import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(tmp_path_factory.mktemp("bow"), ["good great movie film"])
    model = BagOfWords(tokenizer, {"good": 2.0, "great": 3.0, "bad": -2.0})
    return model, tokenizer


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_word_pieces_are_summed_into_the_words_of_the_text():
    from transformers import AutoTokenizer

    from tunesmith.explain.encoding import encode_texts
    from tunesmith.models import default_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    text = "Unbelievably nice, truly"
    (enc,) = encode_texts(tokenizer, [text], max_length=64)
    assert enc.words == ["Unbelievably", "nice", ",", "truly"]
    assert [text[s:e] for s, e in enc.spans] == enc.words
    pieces = [w for w in enc.word_ids if w == 0]
    assert len(pieces) > 1  # the first word really is split into several pieces
    scores = [float(i) for i in range(len(enc.input_ids))]
    merged = enc.merge(scores)
    expected_first = sum(s for s, w in zip(scores, enc.word_ids, strict=True) if w == 0)
    assert merged[0] == pytest.approx(expected_first)
    assert len(merged) == 4


def test_explanation_has_prediction_one_score_per_word_and_faithfulness(classifier):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = classifier
    (exp,) = explain_texts(model, tokenizer, ["the app is great thanks"])
    assert exp.label == "positive" and exp.target == "positive"
    assert 0.5 < exp.probability <= 1.0
    assert [t.word for t in exp.tokens] == ["the", "app", "is", "great", "thanks"]
    assert exp.k == 1 and exp.comprehensiveness is not None and exp.sufficiency is not None
    data = exp.to_dict()
    for key in (
        "label",
        "probability",
        "tokens",
        "delta",
        "comprehensiveness",
        "sufficiency",
        "method",
        "target",
    ):
        assert key in data
    assert data["tokens"][3] == {"word": "great", "score": exp.tokens[3].score}


def test_ig_delta_is_small_with_enough_steps_and_larger_with_few(classifier):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = classifier
    texts = ["bad app and a broken card", "i love the new app"]
    coarse = explain_texts(model, tokenizer, texts, method="ig", n_steps=1, with_faithfulness=False)
    # This tiny model's score jumps right next to its all-zero [PAD] baseline: it needs steps.
    fine = explain_texts(model, tokenizer, texts, method="ig", n_steps=400, with_faithfulness=False)
    for c, f in zip(coarse, fine, strict=True):
        assert abs(f.delta) < 1e-3
        assert abs(f.delta) < abs(c.delta)


def test_batched_ig_equals_one_text_at_a_time(classifier):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = classifier
    texts = ["terrible help my money is lost", "great", "i hate the late delivery", "good help"]
    together = explain_texts(
        model, tokenizer, texts, method="ig", n_steps=20, with_faithfulness=False, max_tokens=64
    )
    for text, batched in zip(texts, together, strict=True):
        (alone,) = explain_texts(
            model, tokenizer, [text], method="ig", n_steps=20, with_faithfulness=False
        )
        assert [t.word for t in alone.tokens] == [t.word for t in batched.tokens]
        for a, b in zip(alone.tokens, batched.tokens, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)
        assert alone.delta == pytest.approx(batched.delta, abs=1e-5)


def test_ig_equals_captum_layer_integrated_gradients(classifier):
    from captum.attr import LayerIntegratedGradients

    from tunesmith.explain.encoding import baseline_ids, encode_texts
    from tunesmith.explain.ig import IGTask, integrated_gradients
    from tunesmith.explain.scoring import classifier_score_fn

    model, tokenizer = classifier
    (enc,) = encode_texts(tokenizer, ["bad app and a broken card"], max_length=64)
    ids = torch.tensor([enc.input_ids])
    mask = torch.ones_like(ids)

    def forward(input_ids, attention_mask):
        return torch.softmax(model(input_ids=input_ids, attention_mask=attention_mask).logits, -1)

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    base = torch.tensor([baseline_ids(enc, tokenizer.pad_token_id)])
    expected, expected_delta = lig.attribute(
        ids,
        baselines=base,
        target=0,
        additional_forward_args=(mask,),
        n_steps=30,
        return_convergence_delta=True,
    )
    (ours,) = integrated_gradients(
        model,
        [IGTask(enc.input_ids, [w is not None for w in enc.word_ids])],
        classifier_score_fn([0]),
        pad_id=tokenizer.pad_token_id,
        n_steps=30,
    )
    assert ours.scores == pytest.approx(expected.sum(-1)[0].tolist(), abs=1e-5)
    assert ours.delta == pytest.approx(float(expected_delta), abs=1e-5)


def test_captum_ig_method_gives_the_same_explanation_as_batched_ig(classifier):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = classifier
    texts = ["bad app and a broken card", "i love the great app"]
    ours = explain_texts(model, tokenizer, texts, method="ig", n_steps=30)
    captum = explain_texts(model, tokenizer, texts, method="captum-ig", n_steps=30)
    for a, b in zip(ours, captum, strict=True):
        assert a.label == b.label
        assert [w.score for w in a.tokens] == pytest.approx([w.score for w in b.tokens], abs=1e-5)
        assert a.delta == pytest.approx(b.delta, abs=1e-5)


def test_ig_adaptive_method_adds_up_at_least_as_well_as_the_fixed_rule(classifier):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = classifier
    texts = ["bad app and a broken card", "i love the great app", "card"]
    fixed = explain_texts(model, tokenizer, texts, method="ig", n_steps=8)
    adaptive = explain_texts(model, tokenizer, texts, method="ig-adaptive", n_steps=8)
    for a, b in zip(fixed, adaptive, strict=True):
        assert a.label == b.label and len(a.tokens) == len(b.tokens)
        assert abs(b.delta) <= max(abs(a.delta), 3e-4) + 1e-9


def test_ig_on_a_bag_of_words_model_matches_the_closed_form(bag):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["good great movie"], method="ig", n_steps=50)
    # f(a) = sigmoid(a * 5) along the path, so word i gets w_i * (sigmoid(5) - sigmoid(0)) / 5.
    scale = (sigmoid(5.0) - 0.5) / 5.0
    assert [t.score for t in exp.tokens] == pytest.approx([2 * scale, 3 * scale, 0.0], abs=1e-6)
    assert abs(exp.delta) < 1e-6


def test_ig_midpoint_is_the_mean_gradient_around_half_way_times_the_input(bag):
    from tunesmith.explain.attribute import explain_texts
    from tunesmith.explain.ig import MIDPOINT_ALPHAS

    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["good great movie"], method="ig-midpoint")
    # At alpha the total is 5 alpha; d sigmoid / d total there is s (1 - s).
    slopes = [sigmoid(5 * a) * (1 - sigmoid(5 * a)) for a in MIDPOINT_ALPHAS]
    slope = sum(slopes) / len(slopes)
    assert MIDPOINT_ALPHAS == (0.45, 0.55)
    assert [t.score for t in exp.tokens] == pytest.approx([2 * slope, 3 * slope, 0.0], abs=1e-6)
    assert exp.n_steps == 2 and exp.method == "ig-midpoint"
    assert exp.delta == pytest.approx(5 * slope - (sigmoid(5.0) - 0.5), abs=1e-6)


def test_ig_midpoint_ranks_first_the_word_that_alone_flips_the_prediction(bag):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    # "bad movie great": total 1, positive; without "great" the total is -2, negative.
    (exp,) = explain_texts(model, tokenizer, ["bad movie great"], method="ig-midpoint")
    assert exp.label == "positive"
    ranked = sorted(exp.tokens, key=lambda t: -t.score)
    assert [t.word for t in ranked] == ["great", "movie", "bad"]
    assert exp.comprehensiveness == pytest.approx(sigmoid(1.0) - sigmoid(-2.0), abs=1e-6)


def test_default_method_is_the_fast_one_chosen_by_the_benchmark(bag):
    from tunesmith.explain.attribute import explain_texts
    from tunesmith.explain.methods import DEFAULT_METHOD

    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["good great movie"])
    assert DEFAULT_METHOD == "ig-midpoint" and exp.method == DEFAULT_METHOD


def test_grad_input_is_the_gradient_at_the_input_times_the_input(bag):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["good great movie"], method="grad-input")
    slope = sigmoid(5.0) * (1 - sigmoid(5.0))
    assert [t.score for t in exp.tokens] == pytest.approx([2 * slope, 3 * slope, 0.0], abs=1e-6)
    assert exp.delta is None


def test_occlusion_scores_are_the_probability_drop_without_each_word(bag):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["good great movie"], method="occlusion")
    full = sigmoid(5.0)
    expected = [full - sigmoid(3.0), full - sigmoid(2.0), 0.0]
    assert [t.score for t in exp.tokens] == pytest.approx(expected, abs=1e-6)
    assert exp.delta is None and exp.method == "occlusion"


def test_comprehensiveness_and_sufficiency_remove_or_keep_the_top_words(bag):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["good great movie the film"])
    # 5 words -> k = 1, the top word is "great" (weight 3).
    assert exp.k == 1
    assert exp.comprehensiveness == pytest.approx(sigmoid(5.0) - sigmoid(2.0), abs=1e-6)
    assert exp.sufficiency == pytest.approx(sigmoid(5.0) - sigmoid(3.0), abs=1e-6)


def test_top_k_is_a_fifth_of_the_words_and_at_least_one():
    from tunesmith.explain.faithfulness import top_k_count

    assert [top_k_count(n) for n in (0, 1, 2, 4, 5, 10, 12)] == [0, 1, 1, 1, 1, 2, 2]


def test_target_label_is_explained_instead_of_the_prediction(bag):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["good great movie"], target="negative")
    assert exp.label == "positive" and exp.target == "negative"
    assert exp.target_probability == pytest.approx(1 - sigmoid(5.0), abs=1e-6)
    assert exp.tokens[1].score < 0  # "great" speaks against "negative"


def test_unknown_target_label_is_a_clear_error_listing_the_labels(bag):
    from tunesmith.errors import UserInputError
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    with pytest.raises(UserInputError, match="unknown target label 'neutral'.*negative, positive"):
        explain_texts(model, tokenizer, ["good"], target="neutral")


def test_empty_text_is_rejected_with_its_position(bag):
    from tunesmith.errors import UserInputError
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    with pytest.raises(UserInputError, match="text 2 is empty"):
        explain_texts(model, tokenizer, ["good", "   "])


def test_text_longer_than_the_model_limit_is_truncated_with_a_warning(bag):
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    warnings: list[str] = []
    (exp,) = explain_texts(model, tokenizer, ["good " * 100], max_length=16, warn=warnings.append)
    assert exp.truncated and len(exp.tokens) == 14  # 16 tokens minus [CLS] and [SEP]
    assert len(warnings) == 1 and "limit of 16 tokens" in warnings[0]


def test_a_text_past_the_tokenizer_limit_warns_once_in_our_words_not_transformers(tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    from tunesmith.explain.encoding import encode_texts
    from tunesmith.testing import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(tmp_path, ["good great movie film"])
    tokenizer.model_max_length = 16  # what transformers compares a text's length with
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()  # as on a user's terminal
    try:
        encode_texts(tokenizer, ["good " * 100], max_length=16)
    finally:
        hf_logging.set_verbosity(verbosity)
    err = capfd.readouterr().err
    assert err.count("warning: text 1 has 102 tokens") == 1
    assert "Token indices sequence length" not in err


def test_unknown_method_lists_the_available_ones(bag):
    from tunesmith.errors import UserInputError
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = bag
    with pytest.raises(
        UserInputError,
        match="available: captum-ig, grad-input, ig, ig-adaptive, ig-midpoint, occlusion",
    ):
        explain_texts(model, tokenizer, ["good"], method="shap")


def test_hook_tunesmith_attribution_methods_plugin_method_is_used_by_name(bag, register_plugin):
    from tunesmith import hookimpl
    from tunesmith.explain.attribute import explain_texts
    from tunesmith.explain.types import TokenAttribution

    class FirstWord:
        name = "first-word"

        def attribute(self, model, tokenizer, texts, *, encoded, **kwargs):
            out = []
            for enc in encoded:
                first = next(i for i, w in enumerate(enc.word_ids) if w is not None)
                out.append(
                    TokenAttribution(
                        [1.0 if i == first else 0.0 for i in range(len(enc.input_ids))]
                    )
                )
            return out

    class Plugin:
        @hookimpl
        def tunesmith_attribution_methods(self):
            return {"first-word": FirstWord()}

    register_plugin(Plugin(), "first-word-plugin")
    model, tokenizer = bag
    (exp,) = explain_texts(model, tokenizer, ["movie good great"], method="first-word")
    assert [t.score for t in exp.tokens] == [1.0, 0.0, 0.0]
    assert exp.comprehensiveness == pytest.approx(0.0, abs=1e-6)  # "movie" weighs nothing


def test_mean_pooling_head_is_explained_through_its_own_forward(classifier):
    import copy

    from tunesmith.engine.modeling import enable_mean_pooling
    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = classifier
    pooled = enable_mean_pooling(copy.deepcopy(model))
    (exp,) = explain_texts(pooled, tokenizer, ["great card and great app"], method="ig", n_steps=50)
    with torch.no_grad():
        ids = tokenizer(["great card and great app"], return_tensors="pt")
        probs = torch.softmax(pooled(**ids).logits, -1)[0]
    assert exp.probability == pytest.approx(float(probs.max()), abs=1e-5)
    assert abs(exp.delta) < 1e-3


def test_peft_wrapped_classifier_is_explained_at_its_embeddings(classifier):
    import copy

    from peft import LoraConfig, get_peft_model

    from tunesmith.explain.attribute import explain_texts

    model, tokenizer = classifier
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS")
    wrapped = get_peft_model(copy.deepcopy(model), config)
    (plain,) = explain_texts(model, tokenizer, ["i love the new app"], method="ig", n_steps=20)
    (peft,) = explain_texts(wrapped, tokenizer, ["i love the new app"], method="ig", n_steps=20)
    # LoRA's B matrices start at zero, so the wrapped model computes the same function.
    assert [t.score for t in peft.tokens] == pytest.approx(
        [t.score for t in plain.tokens], abs=1e-5
    )


def test_pair_attributions_of_each_side_add_up_to_the_similarity_that_side_brings(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from tunesmith.explain.pair import explain_pair
    from tunesmith.testing import make_tiny_base_model

    make_tiny_base_model(tmp_path, ["card payment failed", "refund money to my card"])
    model = AutoModel.from_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    exp = explain_pair(model, tokenizer, "card payment failed", "refund money to my card")
    assert [t.word for t in exp.query_tokens] == ["card", "payment", "failed"]
    assert [t.word for t in exp.passage_tokens] == ["refund", "money", "to", "my", "card"]
    # Each side is explained with the other held as it is, so each adds up on its own.
    query_total = sum(t.score for t in exp.query_tokens)
    passage_total = sum(t.score for t in exp.passage_tokens)
    assert query_total == pytest.approx(exp.similarity - exp.query_baseline_similarity, abs=1e-3)
    assert passage_total == pytest.approx(
        exp.similarity - exp.passage_baseline_similarity, abs=1e-3
    )
    assert abs(exp.delta) < 1e-3
    with torch.no_grad():
        batch = tokenizer(
            ["card payment failed", "refund money to my card"], padding=True, return_tensors="pt"
        )
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert exp.similarity == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
    # The query's baseline is the match of the query with its words blanked out ([PAD], the
    # special tokens kept) and the passage as it is.
    blank = batch["input_ids"][0].clone()
    words = blank != tokenizer.pad_token_id
    words &= ~torch.isin(blank, torch.tensor(tokenizer.all_special_ids))
    blank[words] = tokenizer.pad_token_id
    with torch.no_grad():
        state = model(input_ids=blank[None], attention_mask=batch["attention_mask"][:1])
        m = batch["attention_mask"][:1].unsqueeze(-1).float()
        blank_emb = torch.nn.functional.normalize(
            (state.last_hidden_state * m).sum(1) / m.sum(1), dim=-1
        )
    assert exp.query_baseline_similarity == pytest.approx(float(blank_emb[0] @ emb[1]), abs=1e-5)


def test_a_text_explained_against_itself_gets_a_positive_total_on_each_side(tmp_path):
    # Both sides blanked at once embed almost alike, which made nearly every word of a real
    # match negative; against the other side as it is, what a side brings is positive here.
    from transformers import AutoModel, AutoTokenizer

    from tunesmith.explain.pair import explain_pair
    from tunesmith.testing import make_tiny_base_model

    make_tiny_base_model(tmp_path, ["card payment failed"])
    model = AutoModel.from_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    exp = explain_pair(model, tokenizer, "card payment failed", "card payment failed")
    assert exp.similarity == pytest.approx(1.0, abs=1e-5)
    assert exp.query_baseline_similarity < 1.0 and exp.passage_baseline_similarity < 1.0
    assert sum(t.score for t in exp.query_tokens) > 0
    assert sum(t.score for t in exp.passage_tokens) > 0


def test_ner_model_is_explained_per_predicted_entity(tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tunesmith.explain.ner import explain_entities
    from tunesmith.testing import make_tiny_tagger

    tags = ["O", "B-ORG", "I-ORG", "B-LOC"]
    sentences = [
        (["apple", "bank", "opened", "in", "paris"], [1, 2, 0, 0, 3]),
        (["the", "bank", "in", "london"], [0, 0, 0, 3]),
        (["acme", "bank", "is", "new"], [1, 2, 0, 0]),
    ]
    make_tiny_tagger(tmp_path, tags, [" ".join(w) for w, _ in sentences])
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForTokenClassification.from_pretrained(tmp_path)
    batch = tokenizer(
        [w for w, _ in sentences], is_split_into_words=True, padding=True, return_tensors="pt"
    )
    labels = torch.full(batch["input_ids"].shape, -100)
    for i, (_, tag_ids) in enumerate(sentences):
        for pos, word in enumerate(batch.word_ids(i)):
            if word is not None:
                labels[i, pos] = tag_ids[word]
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.eval()
    for _ in range(80):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    (entities,) = explain_entities(model, tokenizer, ["apple bank opened in paris"], n_steps=30)
    assert [(e.label, e.entity) for e in entities] == [("ORG", "apple bank"), ("LOC", "paris")]
    for entity in entities:
        assert [t.word for t in entity.tokens] == ["apple", "bank", "opened", "in", "paris"]
        assert abs(entity.delta) < 1e-2
        assert entity.entity == "apple bank opened in paris"[entity.start : entity.end]
    assert entities[0].tokens[0].score != entities[1].tokens[0].score


def test_multilabel_model_explains_the_sigmoid_probability_of_a_label(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.explain.attribute import explain_texts
    from tunesmith.testing import make_tiny_classifier

    make_tiny_classifier(tmp_path, ["a", "b", "c"], ["card money"], multilabel=True, seed=3)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    (exp,) = explain_texts(model, tokenizer, ["card money"], target="b", method="ig", n_steps=20)
    with torch.no_grad():
        logits = model(**tokenizer(["card money"], return_tensors="pt")).logits[0]
    assert exp.target_probability == pytest.approx(float(torch.sigmoid(logits[1])), abs=1e-5)
    total = sum(t.score for t in exp.tokens)
    assert abs(exp.delta) < 1e-3 and total != 0.0


def test_adaptive_ig_is_no_worse_than_a_fine_fixed_rule_within_its_row_cap(classifier):
    from tunesmith.explain.encoding import encode_texts
    from tunesmith.explain.ig import ADAPTIVE_PANELS, IGTask, integrated_gradients
    from tunesmith.explain.scoring import classifier_score_fn

    model, tokenizer = classifier
    encoded = encode_texts(tokenizer, ["bad app and a broken card", "great"], max_length=64)
    tasks = [IGTask(e.input_ids, [w is not None for w in e.word_ids]) for e in encoded]
    score_fn = classifier_score_fn([0, 0])
    fine = integrated_gradients(model, tasks, score_fn, pad_id=tokenizer.pad_token_id, n_steps=200)
    adaptive = integrated_gradients(
        model, tasks, score_fn, pad_id=tokenizer.pad_token_id, rule="adaptive", tolerance=1e-4
    )
    for a, f in zip(adaptive, fine, strict=True):
        # Each panel's gap is within tolerance, unless the text ran into its 4 * 50 row cap.
        assert abs(a.delta) <= ADAPTIVE_PANELS * 1e-4 or a.rows > 100
        # No worse than 200 fixed points; on "great" (one word, so its score must be the whole
        # change f(x) - f(b)) the tiny model's near-step path leaves the fixed rule 0.18 off.
        assert abs(a.delta) <= abs(f.delta) + 1e-4
        assert 2 * ADAPTIVE_PANELS <= a.rows <= 200
        assert a.f_input == pytest.approx(f.f_input, abs=1e-6)
    assert adaptive[0].scores == pytest.approx(fine[0].scores, abs=5e-3)
    change = adaptive[1].f_input - adaptive[1].f_baseline
    assert adaptive[1].scores[1] == pytest.approx(change, abs=0.01)


def test_unknown_ig_rule_is_refused(classifier):
    from tunesmith.explain.ig import IGTask, integrated_gradients
    from tunesmith.explain.scoring import classifier_score_fn

    model, tokenizer = classifier
    with pytest.raises(ValueError, match="unknown integration rule"):
        integrated_gradients(
            model,
            [IGTask([101, 102], [False, False])],
            classifier_score_fn([0]),
            pad_id=0,
            rule="simpson",
        )


def ig_tasks(tokenizer, texts):
    """The encoded texts and their IG tasks (word-pieces replaced, special tokens kept)."""
    from tunesmith.explain.encoding import encode_texts
    from tunesmith.explain.ig import IGTask

    encoded = encode_texts(tokenizer, texts, max_length=64)
    return encoded, [IGTask(e.input_ids, [w is not None for w in e.word_ids]) for e in encoded]


class CountingRows(torch.nn.Module):
    """Wraps a classifier and counts the rows it is run on."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.rows = 0

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None):
        self.rows += int(input_ids.shape[0])
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


def test_ig_runs_the_model_once_per_distinct_baseline_with_each_texts_own_target(classifier):
    from tunesmith.explain.ig import MIDPOINT_ALPHAS, integrated_gradients
    from tunesmith.explain.scoring import classifier_score_fn

    model, tokenizer = classifier
    # Two texts of one length share a baseline; targets differ, so the shared output must be
    # scored for each text's own label.
    texts = ["the refund is terrible", "i love the app", "great"]
    encoded, tasks = ig_tasks(tokenizer, texts)
    assert len(encoded[0].input_ids) == len(encoded[1].input_ids) != len(encoded[2].input_ids)
    score_fn = classifier_score_fn([0, 1, 1])
    counting = CountingRows(model).eval()
    shared = integrated_gradients(
        counting, tasks, score_fn, pad_id=tokenizer.pad_token_id, rule="midpoint"
    )
    # Gradient rows of each text, one row per text at the input, one per distinct baseline.
    assert counting.rows == len(MIDPOINT_ALPHAS) * 3 + 3 + 2
    for task, target, result in zip(tasks, [0, 1, 1], shared, strict=True):
        (alone,) = integrated_gradients(
            model,
            [task],
            classifier_score_fn([target]),
            pad_id=tokenizer.pad_token_id,
            rule="midpoint",
        )
        # float32 rounding of a batch of 3 against a batch of 1: some CPUs' kernels (an AMD
        # EPYC) sum in another order, 2e-5 apart on a score of -99, so relative as well.
        assert result.f_baseline == pytest.approx(alone.f_baseline, rel=1e-5, abs=1e-6)
        assert result.scores == pytest.approx(alone.scores, rel=1e-5, abs=1e-6)
    assert shared[0].f_baseline != pytest.approx(shared[1].f_baseline, abs=1e-3)


def test_ig_takes_the_callers_input_values_instead_of_running_the_input_again(classifier):
    from tunesmith.explain.ig import MIDPOINT_ALPHAS, integrated_gradients
    from tunesmith.explain.scoring import classifier_score_fn

    model, tokenizer = classifier
    _, tasks = ig_tasks(tokenizer, ["bad app and a broken card", "great"])
    score_fn = classifier_score_fn([0, 1])
    computed = integrated_gradients(model, tasks, score_fn, pad_id=0, rule="midpoint")
    counting = CountingRows(model).eval()
    given = integrated_gradients(
        counting,
        tasks,
        score_fn,
        pad_id=0,
        rule="midpoint",
        input_values=[r.f_input for r in computed],
    )
    # Gradient rows and two baselines, no input rows.
    assert counting.rows == len(MIDPOINT_ALPHAS) * 2 + 2
    for a, b in zip(computed, given, strict=True):
        assert a.delta == pytest.approx(b.delta, abs=1e-6)
        assert a.scores == pytest.approx(b.scores, abs=1e-6)
    with pytest.raises(ValueError, match="input values"):
        integrated_gradients(model, tasks, score_fn, pad_id=0, input_values=[0.5])


class TupleOutputs(CountingRows):
    """A model whose outputs are a plain tuple: no ``logits`` to share baseline rows by."""

    def forward(self, input_ids=None, attention_mask=None):
        return (super().forward(input_ids, attention_mask).logits,)


def test_ig_scores_every_baseline_itself_when_outputs_have_no_logits(classifier):
    from tunesmith.explain.ig import integrated_gradients
    from tunesmith.explain.scoring import classifier_score_fn

    model, tokenizer = classifier
    _, tasks = ig_tasks(tokenizer, ["the refund is terrible", "i love the app"])
    score_fn = classifier_score_fn([0, 1])
    expected = integrated_gradients(model, tasks, score_fn, pad_id=0, rule="midpoint")
    plain = integrated_gradients(
        TupleOutputs(model).eval(), tasks, score_fn, pad_id=0, rule="midpoint"
    )
    for a, b in zip(expected, plain, strict=True):
        assert a.f_baseline == pytest.approx(b.f_baseline, abs=1e-6)
        assert a.delta == pytest.approx(b.delta, abs=1e-6)


def test_a_pair_explanation_of_an_encoder_explains_the_similarity_it_matched_with(tmp_path):
    # The support and recommend plugins match with an Encoder: a classifier's encoder pools its
    # [CLS] token, all-MiniLM-L6-v2 reads 256 tokens of a 512-token model. The explanation
    # mean-pooled and read 512 tokens whatever the encoder, so its "similarity" (0.52 against
    # the 0.69 that chose a long FAQ entry) and words were of another match.
    import dataclasses

    from tunesmith.explain.pair import explain_encoder_pair
    from tunesmith.retrieval import Encoder
    from tunesmith.testing import make_tiny_classifier

    query, passage = "card payment failed", "refund money to my card and the app is bad"
    make_tiny_classifier(tmp_path, LABELS, [query, passage])
    encoder = Encoder.load(tmp_path)
    assert encoder.pooling == ("cls",)
    vectors = encoder.encode([query, passage])
    exp = explain_encoder_pair(encoder, query, passage, n_steps=16)
    assert exp.similarity == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)
    assert sum(t.score for t in exp.query_tokens) == pytest.approx(
        exp.similarity - exp.query_baseline_similarity, abs=1e-3
    )
    # Truncated as the encoder truncates: 6 tokens are [CLS], 4 word-pieces and [SEP].
    encoder.max_length = 6
    vectors = encoder.encode([query, passage])
    exp = explain_encoder_pair(encoder, query, passage, n_steps=4)
    assert [t.word for t in exp.passage_tokens] == ["refund", "money", "to", "my"]
    assert exp.similarity == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)
    # An encoder that lower-cases first (sentence_bert_config.json) shows the words as typed.
    encoder.layout = dataclasses.replace(encoder.layout, lowercase=True)
    exp = explain_encoder_pair(encoder, "Card PAYMENT", "Refund", n_steps=4)
    assert [t.word for t in exp.query_tokens] == ["Card", "PAYMENT"]


def test_a_seed_ensemble_is_explained_as_the_mean_of_its_members(tmp_path):
    # `predict` scores an ensemble with the mean of its members' probabilities; explaining the
    # first member alone showed another probability, label and words.
    import numpy as np

    from tunesmith.engine.ensemble import load_ensemble
    from tunesmith.engine.predict import class_probabilities
    from tunesmith.explain.attribute import explain_loaded
    from tunesmith.testing import make_tiny_classifier, make_tiny_trained_classifier

    make_tiny_trained_classifier(tmp_path / "first", LABELS, TEXTS, TRUE, steps=20)
    make_tiny_classifier(tmp_path / "other", LABELS, TEXTS, seed=3)
    first, other = load_ensemble(tmp_path / "first")[0], load_ensemble(tmp_path / "other")[0]
    texts = ["great card and great app", "the refund is terrible", "bad app"]
    mean = class_probabilities([first, other], texts)
    for method in ("occlusion", "ig"):
        both = explain_loaded(first, texts, members=[other], method=method, n_steps=8, warn=None)
        alone = [
            explain_loaded(m, texts, target=[e.target for e in both], method=method, n_steps=8)
            for m in (first, other)
        ]
        for i, exp in enumerate(both):
            assert exp.label == LABELS[int(mean[i].argmax())]
            assert exp.probability == pytest.approx(float(mean[i].max()), abs=1e-5)
            expected = (
                np.array([t.score for t in alone[0][i].tokens])
                + np.array([t.score for t in alone[1][i].tokens])
            ) / 2
            assert [t.score for t in exp.tokens] == pytest.approx(expected.tolist(), abs=1e-6)
            assert exp.to_dict()["members"] == 2
    # Occlusion of the ensemble is the drop in the mean probability without each word.
    exp = explain_loaded(first, ["bad app"], members=[other], method="occlusion", warn=None)[0]
    target = LABELS.index(exp.target)
    for word, without in zip(exp.tokens, ["app", "bad"], strict=True):
        drop = mean[2, target] - class_probabilities([first, other], [without])[0, target]
        assert word.score == pytest.approx(float(drop), abs=1e-5)
    # Faithfulness is read on the mean too: removing the top word of "bad app" leaves the other.
    top = max(exp.tokens, key=lambda t: t.score).word
    rest = "app" if top == "bad" else "bad"
    drop = mean[2, target] - class_probabilities([first, other], [rest])[0, target]
    assert exp.comprehensiveness == pytest.approx(float(drop), abs=1e-5)


def test_ensemble_members_that_tokenise_differently_are_a_clear_error(tmp_path):
    from tunesmith.engine.loading import load_model
    from tunesmith.errors import UserInputError
    from tunesmith.explain.attribute import explain_loaded
    from tunesmith.testing import make_tiny_classifier

    make_tiny_classifier(tmp_path / "a", LABELS, ["zebra crossing"])
    make_tiny_classifier(tmp_path / "b", LABELS, ["quokka"])
    first, other = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    with pytest.raises(UserInputError, match="tokenise text 1 differently"):
        explain_loaded(first, ["quokka zebra"], members=[other], method="occlusion")
