"""Out-of-scope detection on a second data set: banking77 with 20 intents held out.

The support plugin's confidence reads ``intent_knn``, the question's best cosine with the intent
classifier's in-scope training questions in the classifier's own sentence space
(``tunesmith_support.scoring.IntentModel.similarity``). It was chosen on CLINC150's val split;
this checks it where nothing was tuned. Protocol (seeded): 20 of banking77's 77 intents are
out of scope; the core engine fine-tunes a classifier (the default model, 4 epochs) on 40
training texts of each of the other 57; val = 20 other training texts per kept intent plus 400
training texts of the held-out intents; test = banking77's test split (held-out intents out of
scope). No out-of-scope text is trained on.

Compared, each a logistic regression fitted on val (5-fold cross-validated AUROC on val, then
AUROC on test): the classifier's maximum probability alone (what a plain classifier offers, and
what Rasa's fallback thresholds), ``intent_knn`` alone, and both.

    python benchmarks/support_oos_banking77.py [--quick] [--work-dir W] [--data-root DIR]
        [--contrastive W]

``--quick``: 15 training texts per kept intent, 2 epochs. Prints a table and ends with one JSON
line (``maxprob_test_auroc``, ``knn_test_auroc``, ``both_test_auroc`` and the val figures).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import DEFAULT_DATA, log, read_csv, write_csv  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402

HELD_OUT_INTENTS = 20
VAL_PER_INTENT = 20
VAL_OOS = 400


def split(train: list[dict[str, str]], per_intent: int, seed: int = 0):
    """(fit rows, val rows, out-of-scope intents), drawn with ``seed``."""
    rng = random.Random(seed)
    intents = sorted({r["label"] for r in train})
    rng.shuffle(intents)
    outside = set(intents[:HELD_OUT_INTENTS])
    by_label: dict[str, list[dict[str, str]]] = {}
    for row in train:
        by_label.setdefault(row["label"], []).append(row)
    fit, val = [], []
    for label in sorted(set(intents) - outside):
        rows = list(by_label[label])
        rng.shuffle(rows)
        fit += rows[:per_intent]
        val += rows[per_intent : per_intent + VAL_PER_INTENT]
    pool = [r for r in train if r["label"] in outside]
    rng.shuffle(pool)
    return fit, val + pool[:VAL_OOS], outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="15 texts per intent, 2 epochs")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the classifier here")
    parser.add_argument(
        "--contrastive", type=float, default=0.0, help="engine --contrastive W for the classifier"
    )
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.ensemble import same_run
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits, probabilities
    from tunesmith.engine.train import train as engine_train
    from tunesmith.retrieval import Encoder
    from tunesmith_support.scoring import best_cosine

    started = time.time()
    root = args.data_root / "banking77"
    per_intent, epochs = (15, 2.0) if args.quick else (40, 4.0)
    fit, val, outside = split(read_csv(root / "train.csv"), per_intent)
    test = read_csv(root / "test.csv")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="oos-b77-"))
    work.mkdir(parents=True, exist_ok=True)
    engine = {"contrastive": args.contrastive} if args.contrastive else {}
    suffix = f"-c{args.contrastive:g}" if args.contrastive else ""
    out = work / f"classifier-{per_intent}-e{epochs:g}{suffix}"
    data = write_csv(out.with_suffix(".csv"), fit)
    run = RunConfig(data=str(data), out=str(out), epochs=epochs, force=True, **engine).validate()
    t0 = time.time()
    if same_run(out, run):
        log(f"reusing {out} (same settings, same data)")
    else:
        log(f"fine-tuning on {len(fit)} texts of {77 - len(outside)} intents, {epochs:g} epochs")
        engine_train(run, log=lambda _m: None)
    train_seconds = time.time() - t0

    model = load_model(str(out))
    encoder = Encoder.load(str(out))
    examples = encoder.encode([r["text"] for r in fit], progress=False)

    def features(rows):
        texts = [r["text"] for r in rows]
        probs = np.asarray(probabilities(model, predict_logits(model, texts)))
        knn = best_cosine(encoder, texts, examples)
        return np.column_stack([probs.max(axis=1), knn]), np.array(
            [r["label"] in outside for r in rows]
        )

    x_val, y_val = features(val)
    x_test, y_test = features(test)
    results = {}
    for name, columns in (("maxprob", [0]), ("knn", [1]), ("both", [0, 1])):
        clf = LogisticRegression(C=10.0, max_iter=1000)
        cv = cross_val_predict(clf, x_val[:, columns], y_val, cv=5, method="predict_proba")[:, 1]
        clf.fit(x_val[:, columns], y_val)
        results[name] = {
            "val_cv_auroc": round(float(roc_auc_score(y_val, cv)), 4),
            "test_auroc": round(
                float(roc_auc_score(y_test, clf.predict_proba(x_test[:, columns])[:, 1])), 4
            ),
        }
    print(
        f"banking77, {HELD_OUT_INTENTS} intents out of scope: {len(fit)} training texts, "
        f"val {len(val)} ({int(y_val.sum())} OOS), test {len(test)} ({int(y_test.sum())} OOS)"
    )
    print("confidence from                     val AUROC (5-fold CV)  test AUROC")
    labels = {
        "maxprob": "max probability (peer)",
        "knn": "intent_knn alone",
        "both": "max probability + intent_knn",
    }
    for name, label in labels.items():
        r = results[name]
        print(f"{label:35s} {r['val_cv_auroc']:.4f}                 {r['test_auroc']:.4f}")
    print(
        strict_json(
            {
                "benchmark": "support_oos_banking77",
                "quick": args.quick,
                "train_texts": len(fit),
                "epochs": epochs,
                "contrastive": args.contrastive,
                **{f"{n}_val_cv_auroc": r["val_cv_auroc"] for n, r in results.items()},
                **{f"{n}_test_auroc": r["test_auroc"] for n, r in results.items()},
                "train_seconds": round(train_seconds, 1),
                "seconds": round(time.time() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
