"""The old home of the pieces around the transformers ``Trainer``; each now lives in a module
named for its job, and this one re-exports them so that existing imports keep working:

- :mod:`~tunesmith.engine.max_length`: how many tokens a text is given (training's cut, the
  limit a saved model reads at prediction);
- :mod:`~tunesmith.engine.encoding`: texts and words to token ids, ``EncodedDataset``;
- :mod:`~tunesmith.engine.padding`: dynamic padding, ``PaddingCollator``;
- :mod:`~tunesmith.engine.losses`: class weights, the contrastive loss, R-Drop's parts;
- :mod:`~tunesmith.engine.samplers`: same-label pairs in every batch;
- :mod:`~tunesmith.engine.checkpoints`: what an exact ``--resume`` adds to checkpoints;
- :mod:`~tunesmith.engine.layer_decay`: ``--layer-decay``'s optimizer groups;
- :mod:`~tunesmith.engine.trainer`: the ``Trainer`` subclass;
- :mod:`~tunesmith.engine.held_out_score`: the score that selects the best checkpoint;
- :mod:`~tunesmith.engine.progress`: progress on stderr.

New code imports from those modules.
"""

from __future__ import annotations

from tunesmith.engine.checkpoints import (
    EPOCH_ORDER_FILE,
    epoch_order_file,
    make_order_recorder,
    make_step_checkpoints,
)
from tunesmith.engine.encoding import EncodedDataset, encode_texts, encode_words
from tunesmith.engine.held_out_score import SCORE_NAMES, score_metrics
from tunesmith.engine.layer_decay import layer_decay_groups
from tunesmith.engine.losses import (
    class_weights,
    doubled_rows,
    supervised_contrastive_loss,
    symmetric_kl,
)
from tunesmith.engine.max_length import (
    MAX_INPUT_TOKENS,
    choose_max_length,
    input_limit,
    model_max_length,
    token_lengths,
)
from tunesmith.engine.padding import TOKEN_FIELDS, PaddingCollator, pad_rows, pad_tokens
from tunesmith.engine.progress import make_progress_callback
from tunesmith.engine.samplers import make_pair_sampler, paired_order, same_label_pairs
from tunesmith.engine.trainer import make_trainer_class

__all__ = [
    "EPOCH_ORDER_FILE",
    "MAX_INPUT_TOKENS",
    "SCORE_NAMES",
    "TOKEN_FIELDS",
    "EncodedDataset",
    "PaddingCollator",
    "choose_max_length",
    "class_weights",
    "doubled_rows",
    "encode_texts",
    "encode_words",
    "epoch_order_file",
    "input_limit",
    "layer_decay_groups",
    "make_order_recorder",
    "make_pair_sampler",
    "make_progress_callback",
    "make_step_checkpoints",
    "make_trainer_class",
    "model_max_length",
    "pad_rows",
    "pad_tokens",
    "paired_order",
    "same_label_pairs",
    "score_metrics",
    "supervised_contrastive_loss",
    "symmetric_kl",
    "token_lengths",
]
