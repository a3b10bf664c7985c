"""The ``minigrad`` command.

    minigrad recipes                         list the recipes: data, reference, result, time
    minigrad train RECIPE [--data DIR] [--epochs N] [--out DIR] [--seed S] [--quiet] [--compile]
                          [--from CHECKPOINT]    (sst2-bert: fine-tune a Hugging Face BERT)
    minigrad train RECIPE --seeds 0,1,2,3,4  one run per seed; each figure, mean and std
    minigrad evaluate OUT [--data DIR]       evaluate a finished run's saved model again
    minigrad generate OUT [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K]
    minigrad bench [NAME ...]                the benchmarks (overhead, kernels, layers, ...)
    minigrad tune [--threads 1,2] [--out FILE]  measure the kernels' dispatch thresholds here
    minigrad export OUT --onnx [--to FILE]   a finished run's model as ONNX (OUT/model.onnx)
    minigrad explain [--out PAGE] SCRIPT.py [ARGS ...]  a script's first backward(), as a page
    minigrad explain-prediction RUN --index N  saliency and Grad-CAM (or token colours) of one
                                             test example of a finished run

Errors (an unknown recipe, missing data, a bad argument) are one line saying what to do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# minigrad before anything imports NumPy: it sets OPENBLAS_THREAD_TIMEOUT (minigrad/__init__.py)
import minigrad  # noqa: F401  isort: skip

BENCHMARKS = (
    "overhead",
    "kernels",
    "layers",
    "training",
    "compile",
    "data",
    "func",
    "distributed",
    "privacy",
)


def _fail(message: str) -> int:
    print(f"minigrad: {message}", file=sys.stderr)
    return 2


def cmd_recipes(args) -> int:
    from models.recipes import RECIPES, RESULTS, recorded

    width = max(len(n) for n in RECIPES)
    for r in RECIPES.values():
        seconds = RESULTS["recipes"][r.name]["seconds"]
        print(f"{r.name:<{width}}  {r.summary}")
        print(
            f"{'':<{width}}  data: {r.data}; reference: {r.reference}; "
            f"minigrad: {recorded(r.name)} in {seconds:g} s ({RESULTS['machine']})"
        )
    return 0


def cmd_train(args) -> int:
    from models.recipes import RECIPES, MissingData, run_recipe

    if args.recipe not in RECIPES:
        return _fail(f"unknown recipe {args.recipe!r}; `minigrad recipes` lists them")
    if args.epochs is not None and args.epochs <= 0:
        return _fail(f"--epochs must be positive, got {args.epochs}")
    out = args.out or f"runs/{args.recipe}"
    start = {}
    if args.start_from:  # --from: only the SST-2 BERT recipe starts from a checkpoint
        if args.recipe != "sst2-bert":
            return _fail(f"--from works with sst2-bert only, not {args.recipe}")
        start = {"start_from": args.start_from}
    if args.compile:  # TrainingArguments(torch_compile=True): the steps through minigrad.compile
        start["compiled"] = True
    if args.seeds is not None:
        return _train_seeds(args, out, start)
    try:
        report = run_recipe(
            args.recipe,
            out=out,
            seed=args.seed,
            epochs=args.epochs,
            data=args.data,
            verbose=not args.quiet,
            **start,
        )
    except MissingData as e:
        return _fail(str(e))
    except (FileNotFoundError, ValueError) as e:  # --from: a checkpoint missing or unreadable
        if "start_from" not in start:
            raise
        return _fail(str(e))
    from minigrad import distributed
    from models.runs import figures_of, written_files

    if not distributed.is_main():  # data parallel under mpiexec: rank 0 reports
        return 0
    figures = ", ".join(f"{k} {v:.4g}" for k, v in figures_of(report).items())
    print(f"\n{args.recipe}: {figures}  ({report['seconds']:.0f} s)")
    print(f"reference: {report['reference']}")
    print("\n".join(written_files(out)))
    return 0


def _train_seeds(args, out: str, start: dict) -> int:
    """``train NAME --seeds 0,1,2``: one run per seed under OUT/seed-S, then each figure by
    seed with its mean and standard deviation, in OUT/report.json."""
    from models.recipes import MissingData, run_recipe
    from models.runs import (
        _run_seeds,
        describe_summary,
        parse_seeds,
        summarize,
        write_json,
        written_files,
    )

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as e:
        return _fail(str(e))

    from minigrad import distributed

    main = distributed.is_main()  # under mpiexec: one seed per rank, rank 0 reports

    def run_one(seed: int) -> dict:
        return run_recipe(
            args.recipe,
            out=str(Path(out) / f"seed-{seed}"),
            seed=seed,
            epochs=args.epochs,
            data=args.data,
            verbose=not args.quiet and main,
            data_parallel=False,
            **start,
        )

    try:
        reports = _run_seeds(seeds, run_one)
    except MissingData as e:
        return _fail(str(e))
    if not main:
        return 0
    summary = summarize(seeds, reports)
    write_json(Path(out) / "report.json", summary)
    print(f"\n{args.recipe} over seeds {', '.join(map(str, seeds))}:")
    print("\n".join(describe_summary(summary)))
    print(f"reference: {summary['reference']}")
    print("\n".join(written_files(out)))
    return 0


def cmd_evaluate(args) -> int:
    from models.recipes import RECIPES, MissingData, evaluate_recipe

    out = Path(args.out)
    try:
        stored = json.loads((out / "report.json").read_text())
    except FileNotFoundError:
        return _fail(f"{out}/report.json not found; train first: minigrad train RECIPE --out {out}")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return _fail(f"{out}/report.json is not valid JSON ({e}); train again to rewrite it")
    if isinstance(stored, dict) and "seeds" in stored:
        return _fail(
            f"{out} holds one run per seed; evaluate one of them: minigrad evaluate "
            f"{out / ('seed-' + str(stored['seeds'][0]))}"
        )
    name = stored.get("recipe") if isinstance(stored, dict) else None
    if name not in RECIPES:
        return _fail(
            f"{out}/report.json names recipe {name!r}, which is not one of this minigrad's "
            "(`minigrad recipes` lists them)"
        )
    try:
        fresh = evaluate_recipe(name, str(out), args.data)
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
    kind = json.loads((out / "model" / "config.json").read_text()).get("model_type")
    generators = [name for name, cls in zoo.MODELS.items() if hasattr(cls, "generate")]
    if kind not in generators:
        return _fail(
            f"{out / 'model' / 'config.json'} names model_type {kind!r}, not a text model of "
            f"the zoo that generates ({', '.join(generators)})"
        )
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
    env = dict(os.environ)
    if args.out:  # else benchmarks/harness.py's default, the user's cache directory
        env["MINIGRAD_BENCH_OUT"] = os.path.abspath(os.path.expanduser(args.out))
    for name in names:
        # benchmarks/ is installed with the command, so this works from any directory
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], env=env)
        if code:
            return code
    return 0


def cmd_tune(args) -> int:
    """Measure kernels/tuned.py's settings on this machine, with a progress bar, and write
    them; Ctrl-C leaves the previous file as it was."""
    import time

    from tqdm import tqdm

    from minigrad import backend

    try:
        counts = sorted({int(t) for t in args.threads.split(",")}) if args.threads else None
    except ValueError:
        return _fail(f"--threads: expected thread counts like 1,2, got {args.threads!r}")
    bar = tqdm(total=1, disable=args.quiet, unit="setting", leave=False)

    def progress(done, total, label):
        bar.total = total
        bar.n = done
        bar.set_description(label, refresh=False)
        bar.refresh()

    start = time.perf_counter()
    try:
        where, results = backend.tune(counts, args.out, progress)
    except KeyboardInterrupt:
        bar.close()
        print("minigrad tune: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        bar.close()
    print(f"{backend.cpu_info()['model']}, kernels for {backend.kernel_target()['target']}:")
    for threads, settings in results["measured"].items():
        for name, m in settings.items():
            mark = "" if m["chosen"] == m["default"] else "  (changed)"
            print(f"  {threads} thread(s)  {name}: {m['chosen']}, shipped {m['default']}{mark}")
    print(
        f"written to {where} in {time.perf_counter() - start:.0f} s; the kernels read it "
        "from the next import (MINIGRAD_TUNE_FILE=none ignores it)"
    )
    return 0


def cmd_export(args) -> int:
    from models.export import ExportError, export_run

    if not args.onnx:
        return _fail("say which format: minigrad export OUT --onnx")
    try:
        path = export_run(args.out, args.to)
    except ExportError as e:
        return _fail(f"export: {e}")
    print(f"written {path} (inputs with a free batch dimension; run it with onnxruntime)")
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
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("recipes", help="list the recipes").set_defaults(fn=cmd_recipes)
    t = sub.add_parser("train", help="train a recipe")
    t.add_argument("recipe")
    t.add_argument("--data", help="the data folder (default ../shared/data or $MINIGRAD_DATA)")
    t.add_argument("--epochs", type=int, help="override the recipe's length")
    t.add_argument("--out", help="output folder (default runs/RECIPE)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--seeds", help="train once per seed (e.g. 0,1,2,3,4 or 0-4); report mean, std")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--compile",
        action="store_true",
        help="run each training step through minigrad.compile (traced on the first batch of "
        "each shape, then replayed; a step it cannot capture runs eagerly with a warning)",
    )
    t.add_argument(
        "--from",
        dest="start_from",
        help="sst2-bert: start from this Hugging Face BERT checkpoint (a directory or a name "
        "in the local Hugging Face cache)",
    )
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
    x = sub.add_parser("export", help="export a finished run's model (ONNX)")
    x.add_argument("out")
    x.add_argument("--onnx", action="store_true", help="write OUT/model.onnx")
    x.add_argument("--to", help="another path for the .onnx file")
    x.set_defaults(fn=cmd_export)
    e2 = sub.add_parser("explain", help="draw the first backward pass of a training script")
    e2.add_argument("--out", help="the HTML page (default SCRIPT-backward.html); before SCRIPT")
    e2.add_argument("script")
    e2.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    e2.set_defaults(fn=cmd_explain)
    xp = sub.add_parser("explain-prediction", help="saliency and Grad-CAM of one test example")
    xp.add_argument("run_dir")
    xp.add_argument("--index", type=int, default=0)
    xp.add_argument("--out", help="the PNG (default RUN_DIR/explain-INDEX.png)")
    xp.add_argument("--data", help="the data folder (default ../shared/data or $MINIGRAD_DATA)")
    xp.set_defaults(fn=cmd_explain_prediction)
    b = sub.add_parser("bench", help="run the benchmarks")
    b.add_argument("names", nargs="*")
    b.add_argument(
        "--out",
        help="the folder for the JSON results (default ~/.cache/minigrad/benchmarks, or "
        "$XDG_CACHE_HOME/minigrad/benchmarks)",
    )
    b.set_defaults(fn=cmd_bench)
    tu = sub.add_parser("tune", help="measure the kernels' dispatch thresholds on this machine")
    tu.add_argument("--threads", help="thread counts to tune for (default: 1 and all cores)")
    tu.add_argument(
        "--out", help="the tuning file (default: this machine's, in ~/.cache/minigrad/tune)"
    )
    tu.add_argument("--quiet", action="store_true", help="no progress bar")
    tu.set_defaults(fn=cmd_tune)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command. A user's mistake (a missing or corrupt file, a bad value, an unknown
    name) ends in one line on stderr and exit status 2, never a traceback; ``--debug`` shows
    the traceback instead."""
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # argparse printed its one-line usage error
        return int(e.code or 0)
    if not getattr(args, "fn", None):
        p.print_help()
        return 2
    try:
        code = args.fn(args)
    except KeyboardInterrupt:
        print("minigrad: interrupted", file=sys.stderr)
        code = 130
    except Exception as e:  # the one place the command turns an error into a line
        if args.debug:
            raise
        code = _fail(f"{_describe(e)} (--debug shows where)")
    _end_other_ranks(code)
    return code


def _end_other_ranks(code: int) -> None:
    """Under mpiexec, a rank that fails ends the job: the others would otherwise wait for it
    at their next collective call, for ever."""
    distributed = sys.modules.get("minigrad.distributed")
    if code and distributed is not None and distributed.is_initialized():
        if distributed.world_size() > 1:
            distributed.abort(code)


def _describe(e: Exception) -> str:
    """One line for an error: its message, with the kind of error where the message alone
    would not say it."""
    if isinstance(e, KeyError):
        return f"no {e.args[0]!r} where one was expected" if e.args else "a key is missing"
    if isinstance(e, PermissionError):
        return f"permission denied: {e.filename or e}"
    if isinstance(e, IsADirectoryError | NotADirectoryError | FileExistsError):
        return f"{e.strerror or type(e).__name__}: {e.filename or e}"
    text = " ".join(str(e).split())
    return text or type(e).__name__


if __name__ == "__main__":
    raise SystemExit(main())
