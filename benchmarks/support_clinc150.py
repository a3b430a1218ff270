"""Out-of-scope detection on CLINC150: tunesmith-support's recipe against the frozen baseline.

Both systems predict one of 150 intents or reject the utterance as out of scope when their
confidence is below a threshold. Everything is chosen on the validation split (threshold,
confidence, C); the test split is scored once.

- Baseline (frozen): the default model's mean-pooled embeddings, logistic regression over the 150
  intents, confidence = max probability.
- tunesmith: the default model pair-trained (the core's ``train_pair_encoder``) so that each
  training utterance lies next to its intent's name ("book flight"), then logistic regression on
  the tuned embeddings; the confidence is a blend of the max probability and the mean cosine to
  the 5 nearest training utterances (the blend weight chosen on val), calibrated to P(right)
  with Platt scaling fitted on val.

Threshold rule (both systems): the highest out-of-scope recall on val whose val in-scope
accuracy is at least ``--min-in-scope``; where no rejection keeps that floor, the balanced rule
(max of in-scope accuracy + OOS recall on val), which is printed for both systems too. In-scope accuracy counts a rejected in-scope utterance as wrong.

    python benchmarks/support_clinc150.py [--quick] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_DATA, log  # noqa: E402

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
    rejected = conf < threshold
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
    """OOS recall at the strictest threshold that keeps in-scope accuracy >= each level (test
    curve, for the table only; thresholds reported as results are chosen on val)."""
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


def ece(conf_prob, pred, labels):
    from tunesmith.engine.metrics import expected_calibration_error

    right = (np.asarray(pred) == np.asarray(labels)) & (np.asarray(labels) != OOS)
    return float(expected_calibration_error(np.asarray(conf_prob)[:, None], np.where(right, 0, 1)))


def fit_lr(x, y, c):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, y)
    return model


def platt(score_val, right_val):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=100.0)
    model.fit(np.asarray(score_val)[:, None], right_val.astype(int))
    return lambda s: model.predict_proba(np.asarray(s)[:, None])[:, 1]


def knn_similarity(queries, keys, k=5, batch=2048):
    out = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), batch):
        sims = queries[start : start + batch] @ keys.T
        top = np.partition(sims, -k, axis=1)[:, -k:]
        out[start : start + batch] = top.mean(axis=1)
    return out


def evaluate_system(
    name, pred_val, conf_val, y_val, pred_test, conf_test, y_test, prob_test, min_in
):
    goal_t, bal_t = choose_threshold(pred_val, conf_val, y_val, min_in)
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
        "no_rejection_in_scope_accuracy": round(
            float((np.asarray(pred_test) == np.asarray(y_test))[np.asarray(y_test) != OOS].mean()),
            4,
        ),
        "ece": round(ece(prob_test, pred_test, y_test), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="a subset and one short epoch")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--min-in-scope", type=float, default=0.965)
    parser.add_argument(
        "--train-per-intent",
        type=int,
        default=None,
        help="training utterances per intent for both systems (default: all 100; fewer on a "
        "busy machine)",
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
    args = parser.parse_args()

    from tunesmith.retrieval import Encoder, train_pair_encoder

    started = time.time()
    train = read_split(args.data_root, "train")
    val = read_split(args.data_root, "val")
    test = read_split(args.data_root, "test")
    if args.train_per_intent:
        train = subsample(*train, per_intent=args.train_per_intent, oos=100)
    if args.val_per_intent:
        val = subsample(*val, per_intent=args.val_per_intent, oos=100)
    if args.test_per_intent:
        test = subsample(*test, per_intent=args.test_per_intent, oos=1000)
    if args.quick:
        train = subsample(*train, per_intent=15, oos=100)
        val = subsample(*val, per_intent=6, oos=100)
        test = subsample(*test, per_intent=10, oos=400)
    epochs = args.epochs or (1.0 if args.quick else 2.0)
    log(
        f"train {len(train[0])}, val {len(val[0])}, test {len(test[0])} utterances; {epochs} epochs"
    )
    in_train = [(t, y) for t, y in zip(*train, strict=True) if y != OOS]
    x_texts = [t for t, _ in in_train]
    x_labels = np.asarray([y for _, y in in_train])
    y_val, y_test = np.asarray(val[1]), np.asarray(test[1])

    def embed(encoder):
        t0 = time.time()
        out = [encoder.encode(x_texts), encoder.encode(val[0]), encoder.encode(test[0])]
        log(f"  embedded {sum(len(o) for o in out)} texts in {time.time() - t0:.0f} s")
        return out

    results = {}
    # Baseline: frozen default model + logistic regression, max probability.
    log("baseline: frozen default model")
    base = Encoder.load("default")
    e_train, e_val, e_test = embed(base)
    val_in = y_val != OOS
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

    # tunesmith: pair-trained encoder, LR + nearest-neighbour confidence.
    log("tunesmith: pair training utterance -> intent name")
    names = {y: y.replace("_", " ") for y in set(x_labels)}
    # One validation utterance per intent is enough for the trainer's own metrics.
    seen: set[str] = set()
    val_pairs = []
    for t, y in zip(*val, strict=True):
        if y != OOS and y not in seen:
            seen.add(y)
            val_pairs.append((t, names[y]))
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_pair_encoder(
            x_texts,
            [names[y] for y in x_labels],
            Path(tmp) / "enc",
            model="default",
            eval_queries=[q for q, _ in val_pairs],
            eval_targets=[t for _, t in val_pairs],
            epochs=epochs,
            batch_size=64,
            seed=args.seed,
            force=True,
        )
        train_seconds = time.time() - t0
        log(f"  trained in {train_seconds:.0f} s; val pair metrics {result.metrics['tuned']}")
        tuned = Encoder.load(result.path)
        e_train, e_val, e_test = embed(tuned)
    best_c, best_acc = 1.0, -1.0
    for c in (1.0, 10.0, 100.0):
        acc = float((fit_lr(e_train, x_labels, c).predict(e_val[val_in]) == y_val[val_in]).mean())
        log(f"  C={c}: val in-scope accuracy without rejection {acc:.4f}")
        if acc > best_acc:
            best_c, best_acc = c, acc
    lr = fit_lr(e_train, x_labels, best_c)
    p_val, p_test = lr.predict_proba(e_val), lr.predict_proba(e_test)
    classes = lr.classes_
    pred_val, pred_test = classes[p_val.argmax(1)], classes[p_test.argmax(1)]
    knn_val, knn_test = knn_similarity(e_val, e_train), knn_similarity(e_test, e_train)
    best = None
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
        conf_val = weight * p_val.max(1) + (1 - weight) * knn_val
        goal_t, _ = choose_threshold(pred_val, conf_val, y_val, args.min_in_scope)
        acc, rec = in_scope_accuracy_and_oos_recall(pred_val, conf_val, y_val, goal_t)
        log(f"  weight of max prob {weight}: val in-scope {acc:.4f}, OOS recall {rec:.4f}")
        if best is None or (rec, acc) > best[0]:
            best = ((rec, acc), weight)
    weight = best[1]
    conf_val = weight * p_val.max(1) + (1 - weight) * knn_val
    conf_test = weight * p_test.max(1) + (1 - weight) * knn_test
    right_val = (pred_val == y_val) & (y_val != OOS)
    calibrated = platt(conf_val, right_val)
    results["tunesmith"] = evaluate_system(
        "tunesmith",
        pred_val,
        calibrated(conf_val),
        y_val,
        pred_test,
        calibrated(conf_test),
        y_test,
        calibrated(conf_test),
        args.min_in_scope,
    )
    results["tunesmith"]["max_prob_weight"] = weight
    results["tunesmith"]["train_seconds"] = round(train_seconds, 1)

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
    t, b = results["tunesmith"], results["baseline"]
    print(
        json.dumps(
            {
                "benchmark": "support_clinc150",
                "quick": args.quick,
                "in_scope_accuracy": t["in_scope_accuracy"],
                "oos_recall": t["oos_recall"],
                "ece": t["ece"],
                "oos_recall_at": t["oos_recall_at"],
                "baseline_in_scope_accuracy": b["in_scope_accuracy"],
                "baseline_oos_recall": b["oos_recall"],
                "baseline_ece": b["ece"],
                "baseline_oos_recall_at": b["oos_recall_at"],
                "goal_met": t["in_scope_accuracy"] >= 0.96 and t["oos_recall"] >= 0.75,
                "seconds": round(time.time() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
