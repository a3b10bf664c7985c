"""``minigrad.keras``: Keras's Sequential API (``compile``/``fit``/``evaluate``/``predict``/
``summary``), layers, losses, optimizers and callbacks, on minigrad. A Keras program runs
with ``from tensorflow.keras...`` replaced by ``from minigrad.keras...``."""

from minigrad.keras import callbacks, layers, losses, optimizers
from minigrad.keras import models as models
from minigrad.keras.models import History, Sequential

__all__ = ["History", "Sequential", "callbacks", "layers", "losses", "models", "optimizers"]
