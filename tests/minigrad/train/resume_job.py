"""A small training run for the exact-resume test (tests/minigrad/train/test_resume.py).

    python resume_job.py OUTPUT_DIR [--resume] [--slow]

Trains an MLP with dropout on scikit-learn's digits with the Trainer, saving a checkpoint
every 4 steps, and writes the final parameters to OUTPUT_DIR/final.safetensors. With --slow
each step also sleeps, so that the test can kill it part-way.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import minigrad as mg
import minigrad.nn as nn
from minigrad.data import TensorDataset
from minigrad.train import Callback, Trainer, TrainingArguments


class Slow(Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(f"step {batch}", flush=True)
        time.sleep(0.05)


def main() -> None:
    from sklearn.datasets import load_digits

    out = sys.argv[1]
    mg.set_num_threads(1)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    data = TensorDataset(x[:600], digits.target[:600])
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))
    args = TrainingArguments(
        output_dir=out,
        num_train_epochs=3,
        per_device_train_batch_size=32,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        warmup_steps=3,
        logging_steps=4,
        save_steps=4,
        save_total_limit=2,
        disable_tqdm=True,
    )
    callbacks = [Slow()] if "--slow" in sys.argv else []
    trainer = Trainer(model, args, train_dataset=data, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=True if "--resume" in sys.argv else None)
    mg.save(model.state_dict(), f"{out}/final.safetensors")
    print("done", trainer.global_step, flush=True)


if __name__ == "__main__":
    main()
