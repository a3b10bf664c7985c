"""``minigrad.train``: the Hugging Face-style Trainer, metrics, callbacks, checkpoints and
progress bars (``minigrad.keras`` builds its ``fit`` on the same pieces)."""

from minigrad.train import callbacks, metrics
from minigrad.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)
from minigrad.train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from minigrad.train.trainer import (
    EvalPrediction,
    PredictionOutput,
    Trainer,
    TrainingArguments,
    TrainOutput,
)

__all__ = [
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "EvalPrediction",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "PredictionOutput",
    "TerminateOnNaN",
    "TrainOutput",
    "Trainer",
    "TrainingArguments",
    "callbacks",
    "latest_checkpoint",
    "load_checkpoint",
    "metrics",
]
