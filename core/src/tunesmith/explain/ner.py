"""Explain a token classifier (NER): for each predicted entity, which words made the model tag it.

The explained score of an entity is the mean probability of its predicted tag over the entity's
first word-pieces; integrated gradients attribute it to every word of the sentence, so context
words that give the entity its type show up as well as the entity itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.engine.predict import decode_entities, split_words
from tunesmith.explain.encoding import check_texts, encode_words, max_input_length, pad_batch
from tunesmith.explain.ig import IGTask, integrated_gradients
from tunesmith.explain.model_io import label_names, model_device, output_tensor, run_model
from tunesmith.explain.types import EntityExplanation, WordScore


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def explain_entities(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str] | str,
    *,
    labels: Sequence[str] | None = None,
    n_steps: int = 50,
    max_tokens: int | None = None,
    max_length: int | None = None,
    temperature: Any = None,
    progress: Callable[[float], None] | None = None,
    warn: Callable[[str], None] | None = _warn,
) -> list[list[EntityExplanation]]:
    """One list per text: an explanation for each entity the tagger predicts in it.

    Entities are decoded as ``tunesmith predict`` decodes them (BIO or IO tags, words split
    the same way). ``progress`` gets the number of entities done.
    """
    import torch

    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    check_texts(texts)
    names = label_names(model, labels)
    model.eval()
    limit = max_length or max_input_length(model, tokenizer)
    # Words split as ``tunesmith predict`` splits them, so the entities are the same ones.
    encoded = [encode_words(tokenizer, text, split_words(text), max_length=limit) for text in texts]
    for index, enc in enumerate(encoded):
        if enc.truncated and warn is not None:
            warn(
                f"warning: text {index + 1} is longer than the model's limit of {limit} tokens; "
                "only its beginning is explained"
            )
    scheme = "BIO" if any(name.startswith("B-") for name in names) else "IO"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # Predict tags: the tag of a word is the tag of its first piece.
    found: list[tuple[int, list[int], str, list[int], list[int], float]] = []
    device = model_device(model)
    for t, enc in enumerate(encoded):
        ids, mask = pad_batch([enc.input_ids], pad)
        with torch.inference_mode():
            logits = output_tensor(run_model(model, ids.to(device), mask.to(device)))[0]
            if temperature is not None:
                logits = logits / float(temperature)
            probs = torch.softmax(logits.float(), dim=-1).cpu()
        first: dict[int, int] = {}
        for pos, word in enumerate(enc.word_ids):
            if word is not None and word not in first:
                first[word] = pos
        word_tags = [int(probs[first[w]].argmax()) for w in range(enc.n_words)]
        for kind, first_word, end_word in decode_entities([names[i] for i in word_tags], scheme):
            entity_words = list(range(first_word, end_word))
            positions = [first[w] for w in entity_words]
            tag_ids = [word_tags[w] for w in entity_words]
            score = float(sum(probs[p, g] for p, g in zip(positions, tag_ids, strict=True)))
            found.append((t, entity_words, kind, positions, tag_ids, score / len(positions)))

    results: list[list[EntityExplanation]] = [[] for _ in texts]
    if not found:
        return results
    width = max(len(f[3]) for f in found)
    pos_index = torch.zeros((len(found), width), dtype=torch.long)
    tag_index = torch.zeros((len(found), width), dtype=torch.long)
    valid = torch.zeros((len(found), width))
    for e, (_, _, _, positions, tag_ids, _) in enumerate(found):
        pos_index[e, : len(positions)] = torch.tensor(positions)
        tag_index[e, : len(tag_ids)] = torch.tensor(tag_ids)
        valid[e, : len(positions)] = 1.0

    def score_fn(outputs: Any, task_index: Any) -> Any:
        logits = output_tensor(outputs)
        if temperature is not None:
            logits = logits / float(temperature)
        probs = torch.softmax(logits, dim=-1)
        rows = torch.arange(probs.shape[0])[:, None]
        picked = probs[rows, pos_index[task_index], tag_index[task_index]]
        weights = valid[task_index].to(picked.dtype)
        return (picked * weights).sum(-1) / weights.sum(-1)

    tasks = [
        IGTask(encoded[t].input_ids, [w is not None for w in encoded[t].word_ids])
        for t, *_ in found
    ]
    attributions = integrated_gradients(
        model,
        tasks,
        score_fn,
        pad_id=tokenizer.pad_token_id,
        n_steps=n_steps,
        vocab_size=len(tokenizer),
        max_tokens=max_tokens,
        progress=(lambda rows: progress(rows / n_steps)) if progress else None,
    )
    for (t, entity_words, kind, _, _, probability), attr in zip(found, attributions, strict=True):
        enc = encoded[t]
        start = enc.spans[entity_words[0]][0]
        end = enc.spans[entity_words[-1]][1]
        scores = enc.merge(attr.scores)
        results[t].append(
            EntityExplanation(
                text=enc.text,
                entity=enc.text[start:end],
                label=kind,
                start=start,
                end=end,
                probability=probability,
                tokens=[
                    WordScore(word, score, s, e)
                    for word, score, (s, e) in zip(enc.words, scores, enc.spans, strict=True)
                ],
                delta=attr.delta,
                truncated=enc.truncated,
            )
        )
    return results
