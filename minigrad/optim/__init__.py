"""``minigrad.optim``: optimizers with PyTorch's names, defaults and state dicts, and
``minigrad.optim.lr_scheduler``."""

from minigrad.optim import lr_scheduler
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
