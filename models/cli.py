"""The ``minigrad`` command.

    minigrad recipes                         list the recipes: data, reference, result, time
    minigrad train RECIPE [--data DIR] [--epochs N] [--out DIR] [--seed S] [--quiet]
    minigrad evaluate OUT [--data DIR]       evaluate a finished run's saved model again
    minigrad generate OUT [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K]
    minigrad bench [NAME ...]                the benchmarks (overhead, kernels, layers, ...)
    minigrad explain [--out PAGE] SCRIPT.py [ARGS ...]  a script's first backward(), as a page
    minigrad explain-prediction RUN --index N  saliency and Grad-CAM (or token colours) of one
                                             test example of a finished run

Errors (an unknown recipe, missing data, a bad argument) are one line saying what to do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# minigrad before anything imports NumPy: it sets OPENBLAS_THREAD_TIMEOUT (minigrad/__init__.py)
import minigrad  # noqa: F401  isort: skip

BENCHMARKS = ("overhead", "kernels", "layers", "training", "data")


def _fail(message: str) -> int:
    print(f"minigrad: {message}", file=sys.stderr)
    return 2


def cmd_recipes(args) -> int:
    from models.recipes import RECIPES

    width = max(len(n) for n in RECIPES)
    for r in RECIPES.values():
        print(f"{r.name:<{width}}  {r.summary}")
        print(
            f"{'':<{width}}  data: {r.data}; reference: {r.reference}; minigrad: {r.expected}; "
            f"about {r.minutes:g} min on 2 cores"
        )
    return 0


def cmd_train(args) -> int:
    from models.recipes import RECIPES, MissingData, run_recipe

    if args.recipe not in RECIPES:
        return _fail(f"unknown recipe {args.recipe!r}; `minigrad recipes` lists them")
    if args.epochs is not None and args.epochs <= 0:
        return _fail(f"--epochs must be positive, got {args.epochs}")
    out = args.out or f"runs/{args.recipe}"
    try:
        report = run_recipe(
            args.recipe,
            out=out,
            seed=args.seed,
            epochs=args.epochs,
            data=args.data,
            verbose=not args.quiet,
        )
    except MissingData as e:
        return _fail(str(e))
    print(
        f"\n{args.recipe}: "
        + ", ".join(
            f"{k} {v:.4g}" for k, v in report.items() if isinstance(v, float) and k != "seconds"
        )
        + f"  (reference: {report['reference']}; {report['seconds']:.0f} s)"
    )
    print(f"written to {out}: report.json, model/, checkpoints, logs/log.jsonl, curves.png")
    return 0


def cmd_evaluate(args) -> int:
    from models.recipes import MissingData, evaluate_recipe

    out = Path(args.out)
    try:
        stored = json.loads((out / "report.json").read_text())
    except FileNotFoundError:
        return _fail(f"{out}/report.json not found; train first: minigrad train RECIPE --out {out}")
    try:
        fresh = evaluate_recipe(stored["recipe"], str(out), args.data)
    except MissingData as e:
        return _fail(str(e))
    for key, value in fresh.items():
        if isinstance(value, float) and key != "seconds":
            print(
                f"{stored['recipe']}: {key} {value:.4g} (at the end of training: {stored[key]:.4g})"
            )
    config = json.loads((out / "model" / "config.json").read_text())
    print(f"model: {config['model_type']} from {out / 'model'}")
    return 0


def cmd_generate(args) -> int:
    out = Path(args.out)
    if not (out / "tokenizer.json").exists() or not (out / "model" / "config.json").exists():
        return _fail(f"{out} holds no text model; train one: minigrad train shakespeare-gpt")
    import numpy as np

    from minigrad.data.text import Tokenizer
    from models import zoo

    tokenizer = Tokenizer.load(out / "tokenizer.json")
    kind = json.loads((out / "model" / "config.json").read_text())["model_type"]
    model = zoo.MODELS[kind].from_pretrained(out / "model")
    prompt = tokenizer.encode(args.prompt) or [tokenizer.stoi.get("\n", 1)]
    ids = model.generate(
        [prompt],
        args.tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        generator=np.random.default_rng(args.seed),
    )
    print(tokenizer.decode(ids[0]))
    return 0


def cmd_bench(args) -> int:
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        return _fail(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    root = Path(__file__).resolve().parents[1]
    for name in names:
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], cwd=root)
        if code:
            return code
    return 0


def cmd_explain(args) -> int:
    from models.explain import ExplainError, explain_script

    out = args.out or str(Path(args.script).with_suffix("")) + "-backward.html"
    try:
        path, nodes = explain_script(args.script, out, args.args)
    except ExplainError as e:
        return _fail(str(e))
    print(f"wrote {path}: the first backward() of {args.script}, {nodes} nodes (script stopped)")
    return 0


def cmd_explain_prediction(args) -> int:
    from models.explain import ExplainError, explain_prediction
    from models.recipes import MissingData

    try:
        result = explain_prediction(args.run_dir, args.index, args.out, args.data)
    except (ExplainError, MissingData) as e:
        return _fail(str(e))
    if "png" in result:
        print(f"label {result['label']}, predicted {result['predicted']}: wrote {result['png']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minigrad", description="minigrad's recipes and tools")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("recipes", help="list the recipes").set_defaults(fn=cmd_recipes)
    t = sub.add_parser("train", help="train a recipe")
    t.add_argument("recipe")
    t.add_argument("--data", help="the data folder (default ../shared/data or $MINIGRAD_DATA)")
    t.add_argument("--epochs", type=int, help="override the recipe's length")
    t.add_argument("--out", help="output folder (default runs/RECIPE)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)
    e = sub.add_parser("evaluate", help="evaluate a finished run's model again")
    e.add_argument("out")
    e.add_argument("--data", help="the data folder (default ../shared/data or $MINIGRAD_DATA)")
    e.set_defaults(fn=cmd_evaluate)
    g = sub.add_parser("generate", help="sample text from a trained text model")
    g.add_argument("out")
    g.add_argument("--prompt", default="")
    g.add_argument("--tokens", type=int, default=300)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(fn=cmd_generate)
    x = sub.add_parser("explain", help="draw the first backward pass of a training script")
    x.add_argument("--out", help="the HTML page (default SCRIPT-backward.html); before SCRIPT")
    x.add_argument("script")
    x.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    x.set_defaults(fn=cmd_explain)
    xp = sub.add_parser("explain-prediction", help="saliency and Grad-CAM of one test example")
    xp.add_argument("run_dir")
    xp.add_argument("--index", type=int, default=0)
    xp.add_argument("--out", help="the PNG (default RUN_DIR/explain-INDEX.png)")
    xp.add_argument("--data", help="the data folder (default ../shared/data or $MINIGRAD_DATA)")
    xp.set_defaults(fn=cmd_explain_prediction)
    b = sub.add_parser("bench", help="run the benchmarks")
    b.add_argument("names", nargs="*")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # argparse printed its one-line usage error
        return int(e.code or 0)
    if not getattr(args, "fn", None):
        p.print_help()
        return 2
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
