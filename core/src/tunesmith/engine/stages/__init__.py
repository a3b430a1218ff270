"""Training, as a sequence of stages; :func:`tunesmith.engine.train.train` runs them in order.

Each stage is a module with one function, ``run(state)``, that reads what the stages before it
left in the :class:`~tunesmith.engine.stages.state.Training` state and adds its own part:

1. :mod:`.prepare`: base model found, data loaded, cleaned, split, augmented; work directory.
2. :mod:`.encode`: tokenizer and classifier built, max length chosen, texts tokenised,
   epochs and learning rate resolved.
3. :mod:`.head`: the head initialised (linear probe), the start WiSE-FT blends back to.
4. :mod:`.fit`: the strategy applied, frozen features cached, the ``Trainer`` run.
5. Post-fit steps, each a no-op where it does not apply: :mod:`.average` (``--average-epochs``:
   the last epochs' weights averaged), :mod:`.wise_ft` (weight-space ensemble),
   :mod:`.nearest` (nearest-example scores), :mod:`.self_training` (``--unlabelled``).
6. :mod:`.measure`: the final model's held-out logits.
7. :mod:`.calibrate`: temperature and ``metrics.json``.
8. :mod:`.lexical` (``--lexical``): the n-gram regression fitted on the training texts, its
   share mixed into the held-out metrics.
9. :mod:`.write`: the model directory.

What the run resolved is recorded in ``state.resolved``, a
:class:`~tunesmith.engine.resolved.Resolved`, which ``run_config.json`` and the model card read.
"""
