"""Training: SGD with a cosine schedule and CIFAR augmentation, evaluation, resumable runs."""
from hwadapt.train.loop import TrainConfig, evaluate, finetune, fit

__all__ = ["TrainConfig", "evaluate", "finetune", "fit"]
