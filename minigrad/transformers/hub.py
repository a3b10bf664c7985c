"""Finding a Hugging Face checkpoint on this machine, offline.

``from_pretrained(name_or_path)`` accepts a directory that holds the files, or a model name
such as ``"bert-base-uncased"`` or ``"org/name"`` that Hugging Face has already downloaded into
its local cache. The cache is where ``huggingface_hub`` puts it:

    $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
        models--ORG--NAME/refs/main            the commit the name points at
        models--ORG--NAME/snapshots/COMMIT/    config.json, vocab.txt, model.safetensors, ...

Nothing is downloaded: when the files are not there, one error says where it looked and how
to get them.
"""

from __future__ import annotations

import os
from pathlib import Path


class CheckpointNotFoundError(FileNotFoundError):
    """The files of a checkpoint are not on this machine."""


def hub_cache() -> Path:
    """The folder of Hugging Face's local model cache."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _snapshot(repo: Path, revision: str) -> Path | None:
    ref = repo / "refs" / revision
    if ref.is_file():
        commit = ref.read_text().strip()
        folder = repo / "snapshots" / commit
        return folder if folder.is_dir() else None
    folder = repo / "snapshots" / revision  # a commit hash given as the revision
    if folder.is_dir():
        return folder
    snapshots = [p for p in (repo / "snapshots").glob("*") if p.is_dir()]
    if revision == "main" and snapshots:  # no refs/main: the newest snapshot
        return max(snapshots, key=lambda p: p.stat().st_mtime)
    return None


def resolve(name_or_path: str | os.PathLike, needed: str, revision: str = "main") -> Path:
    """The directory holding ``needed`` (a file name) for ``name_or_path``: the path itself
    when it is a directory, else the cached snapshot of that model name."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / needed).is_file():
            return path
        raise CheckpointNotFoundError(
            f"from_pretrained: {path} has no {needed} (it should hold Hugging Face's files: "
            "config.json, model.safetensors, and vocab.txt for a tokenizer)"
        )
    cache = hub_cache()
    repo = cache / ("models--" + text.replace("/", "--"))
    folder = _snapshot(repo, revision) if repo.is_dir() else None
    if folder is not None and (folder / needed).is_file():
        return folder
    where = str(folder) if folder is not None else f"{repo}/snapshots/ (by refs/{revision})"
    raise CheckpointNotFoundError(
        f"from_pretrained: {needed} for {text!r} is not on this machine. Looked for a directory "
        f"{path.resolve()} and in Hugging Face's cache at {where}. minigrad does not download; "
        f"fetch it once where there is network (`hf download {text}`, or "
        f"`huggingface-cli download {text}`), set HF_HUB_CACHE or HF_HOME to that cache, or pass "
        "the directory that holds the files."
    )


def weights_file(folder: Path) -> Path:
    """``model.safetensors`` in ``folder``; a pickled PyTorch checkpoint is refused."""
    safetensors = folder / "model.safetensors"
    if safetensors.is_file():
        return safetensors
    if (folder / "model.safetensors.index.json").is_file():
        raise ValueError(
            f"from_pretrained: {folder} holds a sharded checkpoint (model.safetensors.index.json);"
            " minigrad reads a single model.safetensors"
        )
    for pickled in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"):
        if (folder / pickled).is_file():
            raise ValueError(
                f"from_pretrained: {folder} has {pickled} but no model.safetensors. minigrad never "
                "loads pickle files (unpickling can run arbitrary code); convert it once with "
                "transformers: `AutoModel.from_pretrained(DIR).save_pretrained(DIR, "
                "safe_serialization=True)`, which writes model.safetensors"
            )
    raise CheckpointNotFoundError(f"from_pretrained: {folder} has no model.safetensors")
