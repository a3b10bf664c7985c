"""Settings measured on this machine by ``minigrad tune``, read by the kernels where they
would otherwise use a shipped default.

Which algorithm wins near a dispatch threshold depends on the CPU, its caches and the thread
count, so each threshold below has a shipped default (measured on one machine, named where it
is used) and can be re-measured on the user's. ``minigrad tune`` (minigrad/tune.py) writes a
plain JSON file in the user's cache directory, named after the machine it describes:

    {"format": 1,
     "machine": {"cpu": ..., "llvm_cpu": ..., "features": [...], "target": "avx512",
                 "minigrad": "0.1.0"},
     "threads": {"1": {"conv_sliver_fill": 0.625, ...}, "2": {...}},
     "measured": {...}}

A kernel asks ``value(name)`` at call time and gets the entry for the current thread count,
or the default. A file that cannot be read, is not JSON, describes another machine or another
version of minigrad, or holds a value out of range is ignored (the whole file, or that value)
with one warning that names the file and the problem; the defaults then apply.
``MINIGRAD_TUNE_FILE`` names another file; ``MINIGRAD_TUNE_FILE=none`` ignores any.

Plain Python: no Numba in this module beyond reading the thread count.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path

import numba

FORMAT = 1

# name: (shipped default at 1 thread, at more threads, lowest allowed, highest allowed)
SETTINGS = {
    # conv2d on batch slivers when the batch fills this fraction of its slivers
    # (kernels/conv_slivers.py, applies)
    "conv_sliver_fill": (0.75, 0.75, 0.0, 1.01),
    # the LSTM by batch slivers when the batch fills this fraction of the columns the threads
    # would compute (kernels/rnn.py, by_slivers)
    "lstm_sliver_fill": (0.8, 0.7, 0.0, 1.01),
    # attention's square block for sequences up to 256 and longer (kernels/attention.py)
    "attention_block_short": (64, 64, 16, 1024),
    "attention_block_long": (256, 256, 16, 1024),
}


class TuningWarning(UserWarning):
    """A tuning file was ignored, wholly or in part; the defaults apply."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("minigrad")
    except Exception:  # not installed (a checkout on sys.path): the source's own version
        return "unknown"


def machine() -> dict:
    """What a tuning file must describe to be used here: the CPU, its features, the kernels'
    target and minigrad's version."""
    import platform

    import llvmlite.binding as ll

    from kernels import isa

    features = sorted(k for k, on in isa.host_features().items() if on)
    return {
        "cpu": isa.cpu_model() or ll.get_host_cpu_name(),
        "architecture": platform.machine(),
        "llvm_cpu": ll.get_host_cpu_name(),
        "features": features,
        "target": isa.TARGET,
        "minigrad": _version(),
    }


def default_path(info: dict | None = None) -> Path:
    """``$XDG_CACHE_HOME/minigrad/tune/<cpu>-<hash>.json`` (``~/.cache`` by default): one file
    per machine, target and version, so that several can share a home directory."""
    info = machine() if info is None else info
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:12]
    slug = "".join(c if c.isalnum() else "-" for c in info["llvm_cpu"]).strip("-") or "cpu"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "minigrad" / "tune" / f"{slug}-{info['target']}-{digest}.json"


def path(info: dict | None = None) -> Path | None:
    """The tuning file this process reads (None: ``MINIGRAD_TUNE_FILE=none``); ``info``:
    ``machine()``, if already at hand."""
    chosen = os.environ.get("MINIGRAD_TUNE_FILE", "").strip()
    if chosen.lower() == "none":
        return None
    return Path(chosen).expanduser() if chosen else default_path(info)


def check(data, where: str, info: dict) -> dict[str, dict[str, float]]:
    """The per-thread settings of a tuning file's contents ``data``, valid ones only; raises
    ValueError naming the problem if the file as a whole cannot be used."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{where}: not a minigrad tuning file of format {FORMAT}")
    theirs = data.get("machine")
    if theirs != info:
        differs = sorted(
            k for k in info if not isinstance(theirs, dict) or theirs.get(k) != info[k]
        ) or ["machine"]
        raise ValueError(f"{where}: measured on another machine or version ({', '.join(differs)})")
    threads = data.get("threads")
    if not isinstance(threads, dict):
        raise ValueError(f"{where}: 'threads' must map a thread count to its settings")
    out: dict[str, dict[str, float]] = {}
    for count, settings in threads.items():
        if not (isinstance(count, str) and count.isdigit() and isinstance(settings, dict)):
            raise ValueError(f"{where}: threads[{count!r}] is not a thread count and its settings")
        kept = {}
        for name, v in settings.items():
            if name not in SETTINGS:
                warnings.warn(f"{where}: unknown setting {name!r} ignored", TuningWarning, 3)
                continue
            low, high = SETTINGS[name][2:]
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not low <= v <= high:
                warnings.warn(
                    f"{where}: threads[{count!r}][{name!r}] = {v!r} is outside "
                    f"[{low}, {high}]; the default is used",
                    TuningWarning,
                    3,
                )
                continue
            kept[name] = v
        out[count] = kept
    return out


_loaded: dict[str, dict[str, float]] = {}
_source: Path | None = None


def load() -> Path | None:
    """(Re)read the tuning file; returns its path if it is used, None otherwise."""
    global _loaded, _source
    _loaded, _source = {}, None
    info = machine()
    where = path(info)
    if where is None or not where.exists():
        return None
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
        _loaded = check(data, str(where), info)
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        reason = str(e) if str(where) in str(e) else f"{where}: {e}"
        warnings.warn(f"tuning file ignored, defaults used: {reason}", TuningWarning, 2)
        return None
    _source = where
    return where


def default(name: str, threads: int) -> float:
    one, more = SETTINGS[name][:2]
    return one if threads == 1 else more


def value(name: str, threads: int | None = None) -> float:
    """The setting for ``threads`` (default: Numba's current count): measured, or shipped."""
    threads = numba.get_num_threads() if threads is None else threads
    measured = _loaded.get(str(threads))
    if measured is not None and name in measured:
        return measured[name]
    return default(name, threads)


def source() -> Path | None:
    """The tuning file in use, or None (shipped defaults)."""
    return _source


load()
