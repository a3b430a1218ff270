"""Fine-tuning, evaluation and prediction. Modules import torch/transformers inside functions."""
