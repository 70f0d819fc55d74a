"""Training: SGD with a cosine schedule and CIFAR augmentation, evaluation, resumable runs."""
from hwadapt.train.loop import TrainConfig, evaluate, finetune, fit
from hwadapt.train.progress import make_progress

__all__ = ["TrainConfig", "evaluate", "finetune", "fit", "make_progress"]
