"""What ``minigrad train`` does around a recipe: several seeds, their summary, and the list of
files a run actually wrote.

``minigrad train NAME --seeds 0,1,2,3,4`` trains one run per seed under ``OUT/seed-S`` and
writes ``OUT/report.json`` with each figure per seed, its mean and its standard deviation.
The loop over seeds is the one call ``_run_seeds(seeds, run_one)``; the summary is computed
apart from it, so the runs may come from elsewhere (one seed per process, say) and be
summarised the same way.

Under ``mpiexec -n N`` the seeds are shared out among the ranks (rank r trains seeds r, r + N,
... of the list, each run alone on its process), rank 0 gathers the reports and writes the
summary; without a launcher they run one after the other.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minigrad import distributed

SKIP = ("seconds",)  # numbers in a report that are not figures of the model


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; ``"0-4"`` -> [0, 1, 2, 3, 4]. Raises ValueError naming the
    bad part."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if "-" in part:  # seeds are non-negative, so a dash is a range
                low, high = (int(x) for x in part.split("-"))
                if high < low:
                    raise ValueError
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(
                f"--seeds: {part!r} is not a seed or a range (write e.g. 0,1,2 or 0-4)"
            ) from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: {text!r} repeats a seed")
    return seeds


def _run_seeds(seeds: list[int], run_one: Callable[[int], dict]) -> list[dict]:
    """Run ``run_one(seed)`` for each seed; the results in seed order, on every rank.
    Under mpiexec each rank runs its share of the seeds (``seeds[rank::world_size]``) and the
    reports are gathered (as JSON); otherwise the seeds run in turn."""
    ranks = distributed.world_size()
    if ranks == 1:
        return [run_one(seed) for seed in seeds]
    mine = {str(seed): run_one(seed) for seed in seeds[distributed.rank() :: ranks]}
    merged: dict[str, dict] = {}
    for reports in distributed.all_gather_object(None, mine):
        merged.update(reports)
    return [merged[str(seed)] for seed in seeds]


def figures_of(report: dict) -> dict[str, float]:
    """The figures of one run's report: its float values, but the wall time."""
    return {k: v for k, v in report.items() if isinstance(v, float) and k not in SKIP}


def summarize(seeds: list[int], reports: list[dict]) -> dict:
    """One summary of several runs of a recipe: for each figure its values by seed, their
    mean and their sample standard deviation (n - 1 in the denominator; 0.0 for one seed)."""
    if len(seeds) != len(reports) or not reports:
        raise ValueError(f"summarize: {len(seeds)} seeds but {len(reports)} reports")
    figures = {}
    for key in figures_of(reports[0]):
        values = [float(r[key]) for r in reports]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        figures[key] = {"per_seed": values, "mean": mean, "std": math.sqrt(var)}
    return {
        "recipe": reports[0]["recipe"],
        "seeds": list(seeds),
        "figures": figures,
        "reference": reports[0].get("reference", ""),
        "seconds_per_seed": [r.get("seconds") for r in reports],
    }


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _percent(key: str, value: float) -> str:
    if "accuracy" in key or "f1" in key:
        return f"{100 * value:.2f} %"
    return f"{value:.4g}"


def describe_summary(summary: dict) -> list[str]:
    """Lines for the terminal: each figure by seed, then mean +- std."""
    lines = []
    for key, f in summary["figures"].items():
        each = ", ".join(
            f"seed {s}: {_percent(key, v)}" for s, v in zip(summary["seeds"], f["per_seed"])
        )
        lines.append(f"{key}: {each}")
        lines.append(
            f"{key}: mean {_percent(key, f['mean'])} +- {_percent(key, f['std'])} (std over "
            f"{len(summary['seeds'])} seeds)"
        )
    return lines


def _matplotlib_missing() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return True
    return False


def written_files(out: str | os.PathLike) -> list[str]:
    """The lines that tell a user what a run wrote under ``out``: only files that exist, and,
    when the curves are missing because matplotlib is, how to get them."""
    out = Path(out)
    names = [
        ("report.json", "report.json"),
        ("model", "model/"),
        ("tokenizer.json", "tokenizer.json"),
        ("sample.txt", "sample.txt"),
        ("logs/log.jsonl", "logs/log.jsonl"),
        ("curves.png", "curves.png"),
    ]
    found = [shown for path, shown in names if (out / path).exists()]
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*") if p.is_dir())
    if checkpoints:
        found.insert(2, f"{len(checkpoints)} checkpoint(s) ({', '.join(checkpoints)})")
    seeds = sorted(p.name for p in out.glob("seed-*") if p.is_dir())
    if seeds:
        found.append(f"one run per seed in {', '.join(s + '/' for s in seeds)}")
    lines = [f"written to {out}: {', '.join(found)}"] if found else []
    if not (out / "curves.png").exists() and (out / "logs").exists() and _matplotlib_missing():
        lines.append("no curves.png: matplotlib is not installed (pip install 'minigrad[plot]')")
    return lines
