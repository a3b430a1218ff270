"""Out-of-scope detection on CLINC150: tunesmith-support's recipe against the frozen baseline.

Both systems predict one of 150 intents or reject the utterance as out of scope when their
confidence is below a threshold. Everything is chosen on the validation split (threshold,
confidence features, C); the test split is scored once.

- Baseline (frozen): the default model's mean-pooled embeddings, logistic regression over the 150
  intents, confidence = max probability.
- tunesmith: what ``tunesmith support train --no-encoder --index-questions --classifier
  --classifier-epochs 6`` builds from past questions, with the 150 intents as the KB's entries:
  - the core engine fine-tunes the default model as a classifier over the 150 intents plus an
    out-of-scope label (the train split's 100 out-of-scope utterances), the val split as its
    held-out data (early stopping, temperature);
  - retrieval over the indexed past (training) questions: per intent, the cosine with its
    nearest training utterance (the default model's embeddings; the intents have no FAQ text);
  - the plugin's ranking score ``retrieval + w * intent probability``, ``w`` chosen on val by
    MRR from the plugin's grid (or the probability alone);
  - the plugin's confidence (``tunesmith_support.calibrate``: a logistic model on its six
    features, the out-of-scope probability among them), fitted on val; the threshold is chosen
    on 5-fold cross-validated val confidences, as `support calibrate` does.

Threshold rule (both systems): the highest out-of-scope recall on val whose val in-scope
accuracy is at least ``--min-in-scope``; where no rejection keeps that floor, the balanced rule
(max of in-scope accuracy + OOS recall on val), which is printed for both systems too. In-scope
accuracy counts a rejected in-scope utterance as wrong.

``--engine-val-share F`` gives the engine its own share of val (per intent) for its held-out
choices; the rest of val, which the classifier never saw, chooses everything else. Without it
val does both, and is then easier for the classifier than test is.

``--members N`` averages the calibrated probabilities of N classifiers trained with seeds
``--seed``, +1, ... (``support train --classifier-members N``).

``--work-dir W`` keeps the frozen embeddings and the trained classifier there (reused by a
later run with the same data and settings); without it everything goes into a temporary folder.

``--head-init H``, ``--average-epochs N`` and ``--contrastive W`` pass those engine settings to
the classifier (each tried on CLINC150 and reported in docs/support.md).

    python benchmarks/support_clinc150.py [--quick] [--data-root ../shared/data] [--work-dir W]
        [--epochs E] [--seed S] [--members N] [--head-init H] [--average-epochs N]
        [--contrastive W] [--lexical W]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_DATA, log  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402

OOS = "oos"
LEVELS = (0.90, 0.93, 0.95)


def read_split(root: Path, name: str) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with (root / "clinc150" / f"{name}.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["intent"])
    return texts, labels


def subsample(texts, labels, per_intent: int, oos: int, seed: int = 0):
    """At most ``per_intent`` utterances of each intent and ``oos`` out-of-scope ones."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    counts: dict[str, int] = {}
    keep = []
    for i in order:
        limit = oos if labels[i] == OOS else per_intent
        if counts.get(labels[i], 0) < limit:
            counts[labels[i]] = counts.get(labels[i], 0) + 1
            keep.append(i)
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]


def in_scope_accuracy_and_oos_recall(pred, conf, labels, threshold):
    labels = np.asarray(labels)
    # A predicted out-of-scope label is a rejection at any threshold.
    rejected = (conf < threshold) | (np.asarray(pred) == OOS)
    ins = labels != OOS
    acc = float(((pred == labels) & ~rejected)[ins].mean())
    recall = float(rejected[~ins].mean())
    return acc, recall


def choose_threshold(pred, conf, labels, min_in_scope):
    """(goal-rule threshold, balanced-rule threshold) on validation data."""
    candidates = np.unique(np.concatenate([[-np.inf], conf]))
    best_goal, best_goal_recall = -np.inf, -1.0
    best_bal, best_bal_score = -np.inf, -1.0
    for t in candidates:
        acc, rec = in_scope_accuracy_and_oos_recall(pred, conf, labels, t)
        if acc >= min_in_scope and rec > best_goal_recall:
            best_goal, best_goal_recall = t, rec
        if acc + rec > best_bal_score:
            best_bal, best_bal_score = t, acc + rec
    if best_goal_recall <= 0.0:
        # The in-scope floor cannot be met with any rejection: fall back to the balanced rule.
        return float(best_bal), float(best_bal)
    return float(best_goal), float(best_bal)


def recall_at_levels(pred, conf, labels):
    """OOS recall at the strictest threshold that keeps in-scope accuracy >= each level, read
    off the test curve: what the confidence can do, chosen on nothing (``transfer_at_levels``
    gives the same levels with val-chosen thresholds)."""
    out = {}
    order = np.unique(conf)
    for level in LEVELS:
        best = None
        for t in order[::-1]:
            acc, rec = in_scope_accuracy_and_oos_recall(pred, conf, labels, t)
            if acc >= level:
                best = rec
                break
        out[f"{level:.2f}"] = None if best is None else round(best, 4)
    return out


def transfer_at_levels(pred_val, conf_val, y_val, pred_test, conf_test, y_test):
    """Test (in-scope accuracy, OOS recall) at the threshold chosen on val for each level.

    ``recall_at_levels`` reads the test curve (what the confidence could do); this is what a
    user who sets the level on their own held-out data gets on new data.
    """
    out = {}
    for level in LEVELS:
        threshold, _ = choose_threshold(pred_val, conf_val, y_val, level)
        acc, rec = in_scope_accuracy_and_oos_recall(pred_test, conf_test, y_test, threshold)
        out[f"{level:.2f}"] = [round(acc, 4), round(rec, 4)]
    return out


def ece(conf_prob, pred, labels):
    from tunesmith.engine.metrics import expected_calibration_error

    right = (np.asarray(pred) == np.asarray(labels)) & (np.asarray(labels) != OOS)
    return float(expected_calibration_error(np.asarray(conf_prob)[:, None], np.where(right, 0, 1)))


def fit_lr(x, y, c):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, y)
    return model


def evaluate_system(
    name,
    pred_val,
    conf_val,
    y_val,
    pred_test,
    conf_test,
    y_test,
    prob_test,
    min_in,
    choose_conf=None,
):
    """Test figures at the thresholds chosen on val (``choose_conf``: the val confidences they
    are chosen on, if not ``conf_val``, such as cross-validated ones)."""
    choose_conf = conf_val if choose_conf is None else choose_conf
    goal_t, bal_t = choose_threshold(pred_val, choose_conf, y_val, min_in)
    acc, rec = in_scope_accuracy_and_oos_recall(pred_test, conf_test, y_test, goal_t)
    bacc, brec = in_scope_accuracy_and_oos_recall(pred_test, conf_test, y_test, bal_t)
    val_acc, val_rec = in_scope_accuracy_and_oos_recall(pred_val, conf_val, y_val, goal_t)
    return {
        "system": name,
        "threshold": round(goal_t, 4),
        "val_in_scope_accuracy": round(val_acc, 4),
        "val_oos_recall": round(val_rec, 4),
        "in_scope_accuracy": round(acc, 4),
        "oos_recall": round(rec, 4),
        "balanced_in_scope_accuracy": round(bacc, 4),
        "balanced_oos_recall": round(brec, 4),
        "oos_recall_at": recall_at_levels(pred_test, conf_test, y_test),
        "at_val_threshold": transfer_at_levels(
            pred_val, choose_conf, y_val, pred_test, conf_test, y_test
        ),
        "no_rejection_in_scope_accuracy": round(
            float((np.asarray(pred_test) == np.asarray(y_test))[np.asarray(y_test) != OOS].mean()),
            4,
        ),
        "ece": round(ece(prob_test, pred_test, y_test), 4),
    }


#: Weights of the classifier's probability tried in the ranking score (the plugin's grid);
#: ``None``: the classifier's probability alone.
INTENT_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, None)


def split_by_label(texts, labels, share: float, seed: int = 0):
    """(first, rest): ``share`` of each label's utterances, drawn with ``seed``, and the others."""
    rng = np.random.default_rng(seed)
    first = []
    for label in sorted(set(labels)):
        rows = [i for i, y in enumerate(labels) if y == label]
        rows = [rows[j] for j in rng.permutation(len(rows))]
        first += rows[: round(share * len(rows))]
    pick = sorted(first)
    chosen = set(first)
    rest = [i for i in range(len(texts)) if i not in chosen]
    return (
        ([texts[i] for i in pick], [labels[i] for i in pick]),
        ([texts[i] for i in rest], [labels[i] for i in rest]),
    )


def write_jsonl(path: Path, texts: list[str], labels: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for text, label in zip(texts, labels, strict=True):
            handle.write(json.dumps({"text": text, "intent": label}) + "\n")
    return path


def split_file(root: Path, work: Path, name: str, split, full: bool) -> Path:
    """The split's file: the original when it is whole, else a subset written into ``work``."""
    if full:
        return root / "clinc150" / f"{name}.jsonl"
    return write_jsonl(work / f"{name}-{len(split[0])}.jsonl", *split)


def cached(path: Path, compute):
    """``compute()`` saved as ``path`` (.npy) and reused by later runs."""
    if path.exists():
        log(f"  reusing {path}")
        return np.load(path)
    value = compute()
    np.save(path, value)
    return value


def train_classifier(
    train_file: Path,
    val_file: Path,
    out: Path,
    *,
    model,
    epochs,
    seed,
    engine: dict | None = None,
) -> Path:
    """The core engine's classifier, exactly as ``tunesmith train --data TRAIN --eval VAL
    --label-col intent --epochs E --nearest off`` plus ``engine`` (other engine settings, such as
    ``head_init``, given only when not the default); reused when ``out`` holds one trained with
    the same settings. ``lexical`` (engine ``--lexical``) is not part of that match: a reused
    classifier gets its n-gram model refitted for it, in seconds."""
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.lexical_refit import refit_lexical
    from tunesmith.engine.train import train

    engine = dict(engine or {})
    lexical = float(engine.pop("lexical", 0.0))
    settings = {
        "data": str(train_file.resolve()),
        "eval": str(val_file.resolve()),
        "model": model,
        "epochs": epochs,
        "seed": seed,
        "nearest": "off",
        # only the settings given, so classifiers trained before these options still match
        **engine,
    }
    run = RunConfig(
        data=str(train_file),
        eval_data=str(val_file),
        out=str(out),
        model=model,
        label_col="intent",
        epochs=epochs,
        seed=seed,
        nearest="off",
        force=True,
        lexical=lexical,
        **engine,
    )
    marker = out / "bench_settings.json"
    if marker.exists() and json.loads(marker.read_text()) == settings:
        stored = json.loads((out / "run_config.json").read_text()).get("lexical") or 0.0
        if stored != lexical:
            refit_lexical(out, run, log=log)
        log(f"  reusing the classifier in {out} (same data and settings; lexical {lexical:g})")
        return out
    train(run)
    marker.write_text(json.dumps(settings))
    return out


def classifier_similarity(model_dir: Path, train, texts_by_split: list[list[str]]):
    """Each split's best cosine with an in-scope training utterance, in the classifier's own
    sentence space (``IntentModel.similarity`` of the support plugin)."""
    from tunesmith.retrieval import Encoder
    from tunesmith_support.scoring import best_cosine

    encoder = Encoder.load(str(model_dir))
    in_scope = [t for t, y in zip(*train, strict=True) if y != OOS]
    examples = encoder.encode(in_scope, progress=False)
    return [best_cosine(encoder, texts, examples) for texts in texts_by_split]


def classifier_probabilities(model_dirs: list[Path], texts_by_split: list[list[str]]):
    """Each split's mean of the classifiers' calibrated probabilities (a seed ensemble's, as
    ``tunesmith.engine.ensemble`` scores one), and their labels; each classifier loads once."""
    from tunesmith.engine.ensemble import mean_probabilities
    from tunesmith.engine.loading import load_model

    models = [load_model(str(d)) for d in model_dirs]
    labels = list(models[0].labels)
    for model in models[1:]:
        if list(model.labels) != labels:
            raise SystemExit(f"{model.path}: its labels differ from the first classifier's")
    probs = [
        np.asarray(mean_probabilities(models, texts, batch_size=64), dtype=np.float64)
        for texts in texts_by_split
    ]
    return probs, labels


def nearest_by_intent(queries, keys, key_labels, intents, batch=1024):
    """``[n, intents]``: each query's cosine with the nearest training utterance of each intent
    (vectors are L2-normalised), as retrieval over past questions indexed per entry scores it."""
    key_labels = np.asarray(key_labels)
    out = np.full((len(queries), len(intents)), -1.0, dtype=np.float64)
    columns = [np.flatnonzero(key_labels == intent) for intent in intents]
    for start in range(0, len(queries), batch):
        sims = queries[start : start + batch] @ keys.T
        for j, rows in enumerate(columns):
            if len(rows):
                out[start : start + batch, j] = sims[:, rows].max(axis=1)
    return out


def ranking(nearest, probs, weight):
    """The plugin's combined score per intent: ``retrieval + weight * intent probability``
    (``weight`` None: the probability alone)."""
    return probs if weight is None else nearest + weight * probs


def mrr(scores, truth_cols):
    """Mean reciprocal rank of the right intent (in-scope utterances only)."""
    rows = np.flatnonzero(truth_cols >= 0)
    right = scores[rows, truth_cols[rows]]
    ranks = 1 + (scores[rows] > right[:, None]).sum(axis=1)
    return float((1.0 / ranks).mean())


def plugin_features(scores, probs, oos_prob, nearest, knn):
    """The support plugin's confidence features (``tunesmith_support.calibrate.FEATURES``) of
    each utterance's ranked intents: top score, margin, second, third, the top intent's
    probability, the out-of-scope probability, the best retrieval cosine among the five best
    candidates (``nearest``: the per-intent nearest cosines) and the best cosine with an
    in-scope training utterance in the classifier's own space (``knn``)."""
    from tunesmith_support.calibrate import FEATURES

    # The plugin's candidates are the five best by the ranking score.
    order = np.argsort(-scores, axis=1)[:, :5]
    top3 = np.take_along_axis(scores, order[:, :3], axis=1)
    columns = {
        "top": top3[:, 0],
        "margin": top3[:, 0] - top3[:, 1],
        "second": top3[:, 1],
        "third": top3[:, 2],
        "intent": np.take_along_axis(probs, order[:, :1], axis=1)[:, 0],
        "intent_oos": oos_prob,
        "nearest": np.take_along_axis(nearest, order, axis=1).max(axis=1),
        "intent_knn": knn,
    }
    return order[:, 0], np.column_stack([columns[name] for name in FEATURES])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="a subset (15 per intent)")
    parser.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="classifier epochs (default 6, chosen on val; 3 with --quick)",
    )
    parser.add_argument("--min-in-scope", type=float, default=0.965)
    parser.add_argument("--model", default="default", help="base model of both systems")
    parser.add_argument("--work-dir", type=Path, default=None, help="cache (see above)")
    parser.add_argument(
        "--train-per-intent",
        type=int,
        default=None,
        help="training utterances per intent for both systems (default: all 100)",
    )
    parser.add_argument(
        "--val-per-intent", type=int, default=None, help="val utterances per intent (all 100 OOS)"
    )
    parser.add_argument(
        "--test-per-intent",
        type=int,
        default=None,
        help="test utterances per intent (all 1,000 OOS)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--engine-val-share",
        type=float,
        default=0.0,
        help="share of val (per intent) that only the engine sees (early stop, WiSE-FT, "
        "temperature); the rest alone chooses the ranking, confidence and thresholds",
    )
    parser.add_argument(
        "--members", type=int, default=1, help="classifier seeds averaged (a seed ensemble)"
    )
    parser.add_argument(
        "--head-init",
        default="auto",
        choices=["auto", "probe", "random"],
        help="the classifier's head start (engine --head-init)",
    )
    parser.add_argument(
        "--average-epochs",
        type=int,
        default=0,
        help="engine --average-epochs N for the classifier (kept only if val does not drop)",
    )
    parser.add_argument(
        "--contrastive",
        type=float,
        default=0.0,
        help="engine --contrastive W for the classifier (a supervised contrastive term)",
    )
    parser.add_argument(
        "--lexical",
        type=float,
        default=0.0,
        help="engine --lexical W for the classifier (an n-gram regression's share; refitted "
        "on a reused classifier)",
    )
    args = parser.parse_args()

    from tunesmith.retrieval import Encoder

    started = time.time()
    train = read_split(args.data_root, "train")
    val = read_split(args.data_root, "val")
    test = read_split(args.data_root, "test")
    full = {"train": True, "val": True, "test": True}
    if args.quick:
        args.train_per_intent = args.train_per_intent or 15
        args.val_per_intent = args.val_per_intent or 6
        args.test_per_intent = args.test_per_intent or 10
    if args.train_per_intent:
        train, full["train"] = subsample(*train, per_intent=args.train_per_intent, oos=100), False
    if args.val_per_intent:
        val, full["val"] = subsample(*val, per_intent=args.val_per_intent, oos=100), False
    if args.test_per_intent:
        oos = 400 if args.quick else 1000
        test, full["test"] = subsample(*test, per_intent=args.test_per_intent, oos=oos), False
    engine_val = None
    if args.engine_val_share > 0:
        engine_val, val = split_by_label(*val, args.engine_val_share, seed=0)
        full["val"] = False
    epochs = args.epochs or (3.0 if args.quick else 6.0)
    log(
        f"train {len(train[0])}, val {len(val[0])}, test {len(test[0])} utterances; {epochs} epochs"
    )
    temp = None
    if args.work_dir is None:
        temp = Path(tempfile.mkdtemp(prefix="support_clinc150_"))
    work = args.work_dir or temp
    work.mkdir(parents=True, exist_ok=True)
    parts = [args.model, train, val, test] + ([engine_val] if engine_val else [])
    key = hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:12]
    in_train = [(t, y) for t, y in zip(*train, strict=True) if y != OOS]
    x_texts = [t for t, _ in in_train]
    x_labels = np.asarray([y for _, y in in_train])
    y_val, y_test = np.asarray(val[1]), np.asarray(test[1])
    val_in = y_val != OOS

    results = {}
    # Baseline: frozen default model + logistic regression, max probability.
    log("baseline: frozen default model")
    base = None

    def frozen(name, texts):
        nonlocal base
        if base is None:
            base = Encoder.load(args.model)
        t0 = time.time()
        out = base.encode(texts)
        log(f"  embedded {len(texts)} {name} texts in {time.time() - t0:.0f} s")
        return out

    e_train = cached(work / f"frozen-{key}-train.npy", lambda: frozen("train", x_texts))
    e_val = cached(work / f"frozen-{key}-val.npy", lambda: frozen("val", val[0]))
    e_test = cached(work / f"frozen-{key}-test.npy", lambda: frozen("test", test[0]))
    best_c, best_acc = 1.0, -1.0
    for c in (1.0, 10.0, 100.0):
        acc = float((fit_lr(e_train, x_labels, c).predict(e_val[val_in]) == y_val[val_in]).mean())
        log(f"  C={c}: val in-scope accuracy without rejection {acc:.4f}")
        if acc > best_acc:
            best_c, best_acc = c, acc
    lr = fit_lr(e_train, x_labels, best_c)
    p_val, p_test = lr.predict_proba(e_val), lr.predict_proba(e_test)
    classes = lr.classes_
    results["baseline"] = evaluate_system(
        "frozen baseline",
        classes[p_val.argmax(1)],
        p_val.max(1),
        y_val,
        classes[p_test.argmax(1)],
        p_test.max(1),
        y_test,
        p_test.max(1),
        args.min_in_scope,
    )
    del base

    # tunesmith: the engine classifier with an out-of-scope label + calibrated confidence.
    log("tunesmith: engine classifier over the intents and out-of-scope")
    t0 = time.time()
    train_file = split_file(args.data_root, work, "train", train, full["train"])
    if engine_val is not None:
        val_file = write_jsonl(work / f"val-engine-{len(engine_val[0])}.jsonl", *engine_val)
    else:
        val_file = split_file(args.data_root, work, "val", val, full["val"])
    engine: dict = {}
    head_suffix = ""
    if args.head_init != "auto":
        engine["head_init"] = args.head_init
        head_suffix += f"-h{args.head_init}"
    if args.average_epochs:
        engine["average_epochs"] = args.average_epochs
        head_suffix += f"-avg{args.average_epochs}"
    if args.contrastive:
        engine["contrastive"] = args.contrastive
        head_suffix += f"-c{args.contrastive:g}"
    if args.lexical:
        engine["lexical"] = args.lexical
    # ``--members N``: N seeds, as ``support train --classifier-members N`` trains them; the
    # mean of their calibrated probabilities is the classifier's.
    model_dirs = [
        train_classifier(
            train_file,
            val_file,
            work / f"classifier-{key}-e{epochs:g}-s{args.seed + k}{head_suffix}",
            model=args.model,
            epochs=epochs,
            seed=args.seed + k,
            engine=engine,
        )
        for k in range(args.members)
    ]
    train_seconds = time.time() - t0
    log(f"  classifier ready in {train_seconds:.0f} s: {', '.join(map(str, model_dirs))}")
    (probs_val, probs_test), labels = classifier_probabilities(model_dirs, [val[0], test[0]])
    labels = np.asarray(labels)
    intents = [label for label in labels if label != OOS]
    inside = np.asarray([list(labels).index(i) for i in intents])
    oos_col = list(labels).index(OOS) if OOS in labels else None

    def split_probs(probs):
        oos = probs[:, oos_col] if oos_col is not None else np.zeros(len(probs))
        return probs[:, inside], oos

    p_val, oos_val = split_probs(probs_val)
    p_test, oos_test = split_probs(probs_test)
    # Retrieval over past questions (`support train --index-questions`) with the KB's encoder,
    # here the untuned default model (`--no-encoder`): its embeddings are the baseline's above.
    t0 = time.time()
    near_val = nearest_by_intent(e_val, e_train, x_labels, intents)
    near_test = nearest_by_intent(e_test, e_train, x_labels, intents)
    log(f"  nearest training utterance per intent in {time.time() - t0:.0f} s")
    column = {intent: j for j, intent in enumerate(intents)}
    truth_val = np.asarray([column.get(y, -1) for y in y_val])
    best = None
    for weight in INTENT_WEIGHTS:
        scores = ranking(near_val, p_val, weight)
        m = mrr(scores, truth_val)
        acc = float((scores.argmax(1) == truth_val)[val_in].mean())
        log(f"  intent weight {weight}: val MRR {m:.4f}, in-scope accuracy {acc:.4f}")
        if best is None or m > best[0] + 1e-9:
            best = (m, weight)
    weight = best[1]
    # As `support train --classifier` stores them: the in-scope training utterances embedded
    # by the (first) classifier's own encoder.
    t0 = time.time()
    knn_val, knn_test = classifier_similarity(model_dirs[0], train, [val[0], test[0]])
    log(
        f"  nearest in-scope training utterance in the classifier's space in {time.time() - t0:.0f} s"
    )
    names = np.asarray(intents)
    top_val, x_val = plugin_features(
        ranking(near_val, p_val, weight), p_val, oos_val, near_val, knn_val
    )
    top_test, x_test = plugin_features(
        ranking(near_test, p_test, weight), p_test, oos_test, near_test, knn_test
    )
    pred_val, pred_test = names[top_val], names[top_test]
    from tunesmith_support.calibrate import FEATURES, Logistic, _cross_val

    right_val = ((pred_val == y_val) & val_in).astype(int)
    model = Logistic.fit(x_val, right_val)
    # The threshold is chosen on cross-validated val confidences (as `support calibrate`
    # chooses its thresholds); val and test are then scored by the model fitted on all of val.
    cv_val = _cross_val(x_val, right_val)
    goal_t, _ = choose_threshold(pred_val, cv_val, y_val, args.min_in_scope)
    cv_acc, cv_rec = in_scope_accuracy_and_oos_recall(pred_val, cv_val, y_val, goal_t)
    log(f"  cross-validated val: in-scope {cv_acc:.4f}, OOS recall {cv_rec:.4f}")
    conf_val, conf_test = model.predict(x_val), model.predict(x_test)
    results["tunesmith"] = evaluate_system(
        "tunesmith",
        pred_val,
        conf_val,
        y_val,
        pred_test,
        conf_test,
        y_test,
        conf_test,
        args.min_in_scope,
        choose_conf=cv_val,
    )
    results["tunesmith"]["intent_weight"] = weight
    results["tunesmith"]["train_seconds"] = round(train_seconds, 1)
    log(f"  confidence coefficients {dict(zip(FEATURES, model.coef, strict=True))}")

    print(
        f"CLINC150 ({'quick subset' if args.quick else 'full'}): threshold chosen on val "
        f"for val in-scope accuracy >= {args.min_in_scope}, measured on test"
    )
    header = [
        "system",
        "in-scope acc",
        "OOS recall",
        "acc@0 rej",
        "OOS@.90",
        "OOS@.93",
        "OOS@.95",
        "ECE",
        "balanced acc/OOS",
    ]
    print(" | ".join(header))
    for r in results.values():
        at = r["oos_recall_at"]
        print(
            " | ".join(
                str(v)
                for v in [
                    r["system"],
                    r["in_scope_accuracy"],
                    r["oos_recall"],
                    r["no_rejection_in_scope_accuracy"],
                    at["0.90"],
                    at["0.93"],
                    at["0.95"],
                    r["ece"],
                    f"{r['balanced_in_scope_accuracy']}/{r['balanced_oos_recall']}",
                ]
            )
        )
    print(
        "threshold chosen on val for each in-scope level, measured on test "
        "(in-scope acc / OOS recall):"
    )
    for r in results.values():
        at = r["at_val_threshold"]
        print(f"  {r['system']}: " + ", ".join(f"{k}: {a}/{o}" for k, (a, o) in at.items()))
    t, b = results["tunesmith"], results["baseline"]
    if temp is not None:
        shutil.rmtree(temp, ignore_errors=True)
    print(
        strict_json(
            {
                "benchmark": "support_clinc150",
                "quick": args.quick,
                "epochs": epochs,
                "members": args.members,
                "head_init": args.head_init,
                "average_epochs": args.average_epochs,
                "contrastive": args.contrastive,
                "lexical": args.lexical,
                "engine_val_share": args.engine_val_share,
                "in_scope_accuracy": t["in_scope_accuracy"],
                "oos_recall": t["oos_recall"],
                "ece": t["ece"],
                "oos_recall_at": t["oos_recall_at"],
                "at_val_threshold": t["at_val_threshold"],
                "val_in_scope_accuracy": t["val_in_scope_accuracy"],
                "val_oos_recall": t["val_oos_recall"],
                "intent_weight": t["intent_weight"],
                "baseline_in_scope_accuracy": b["in_scope_accuracy"],
                "baseline_oos_recall": b["oos_recall"],
                "baseline_ece": b["ece"],
                "baseline_oos_recall_at": b["oos_recall_at"],
                "baseline_at_val_threshold": b["at_val_threshold"],
                "goal_met": t["in_scope_accuracy"] >= 0.96 and t["oos_recall"] >= 0.75,
                "seconds": round(time.time() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
