"""The ``pnyx`` command line: run experiments, play tournaments, list what exists, rebuild reports."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from pathlib import Path

from pnyx.errors import PnyxError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise PnyxError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pnyx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def execution(p):
        p.add_argument("--out", help="output folder (default runs/<name>-<time>)")
        p.add_argument("--workers", type=int, help="local Ray workers (default: all cores; 1 runs in-process)")
        p.add_argument("--address", help="address of a running Ray cluster to join")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        p.add_argument("--cache", metavar="PATH", help="completion cache file for every model role that names none")
        p.add_argument("--runtime-env", metavar="FILE.yaml",
                       help="Ray runtime environment for the workers (py_modules, working_dir, env_vars, pip)")
        p.add_argument("--py-modules", metavar="PATH[,PATH]", help="local packages or modules to ship to the Ray workers")

    run = sub.add_parser("run", help="run a shipped experiment or a YAML file")
    run.add_argument("experiment", help="shipped experiment name (see 'pnyx list') or FILE.yaml")
    run.add_argument("--quick", action="store_true", help="apply the preset's quick overrides")
    run.add_argument("--seed", type=int)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field; the value is parsed as YAML")
    run.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished units")
    run.add_argument("--export", action="append", default=[], choices=["inspect"],
                     help="as the run ends, also write its text studies for another tool into the run folder: "
                          "inspect (Inspect eval logs in OUT/inspect, as 'pnyx export inspect' writes them)")
    execution(run)

    tour = sub.add_parser("tournament", help="round-robin tournament of policies in a repeated game")
    tour.add_argument("--players", required=True, help="comma-separated policy specs, e.g. tft,memory_one(0.9,0.1,0.8,0.2,1)")
    tour.add_argument("--game", default="ipd")
    tour.add_argument("--turns", type=int, default=200)
    tour.add_argument("--repetitions", type=int, default=10)
    tour.add_argument("--seed", type=int, default=0)
    tour.add_argument("--noise", type=float, default=0.0)
    tour.add_argument("--engine", default="batched", help="batched (default) or loop")
    tour.add_argument("--resume", action="store_true")
    execution(tour)

    _judge_eval_arguments(sub.add_parser("judge-eval", help="score a judge against human labels (AUROC, accuracy, F1)"))
    listing = sub.add_parser("list", help="shipped experiments, environments, policies, judges and models")
    listing.add_argument("what", nargs="?", choices=sorted(_LIST_ALIASES), metavar="WHAT",
                         help=f"one section only: {', '.join(sorted(_LIST_ALIASES))}")
    listing.add_argument("--filter", metavar="TEXT", help="only entries whose name or description contains TEXT")
    show = sub.add_parser("show", help="a shipped preset's YAML, each field commented with its meaning")
    show.add_argument("preset", help="shipped experiment name (see 'pnyx list experiments') or FILE.yaml")
    report = sub.add_parser("report", help="regenerate summary, plots and report.md of a run folder")
    report.add_argument("folder")
    soo = sub.add_parser("soo-finetune", help="train LoRA adapters that shrink a model's self-other distance")
    soo.add_argument("--model", default="embedded", help="transformers-backend model spec (default: embedded)")
    soo.add_argument("--out", required=True, help="folder for the adapters and soo_finetune.json")
    soo.add_argument("--pairs", help="JSONL prompt pairs (default: the shipped pairs)")
    soo.add_argument("--layers", help="decoder layers compared, comma-separated (default: 4 spread layers)")
    soo.add_argument("--steps", type=int, default=40)
    soo.add_argument("--batch-pairs", type=int, default=8)
    soo.add_argument("--lr", type=float, default=1e-3)
    soo.add_argument("--kl-weight", type=float, default=1.0, help="weight of the output-preservation term")
    soo.add_argument("--held-out", type=int, default=2, help="templates held out for evaluation")
    soo.add_argument("--seed", type=int, default=0)
    export = sub.add_parser("export", help="write a run's text episodes for another tool")
    export.add_argument("format", choices=["inspect"], help="inspect: Inspect eval logs, for 'inspect view'")
    export.add_argument("folder", help="a finished run folder")
    export.add_argument("--out", help="output folder (default FOLDER/inspect)")
    return parser


def _judge_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The ``judge-eval`` command line: each flag that is not about the run sets the config
    field of its name (:class:`pnyx.experiments.judge_eval.JudgeEvalConfig`), whose defaults apply."""
    field = {"default": argparse.SUPPRESS}
    p.add_argument("--judge", required=True, metavar="SPEC",
                   help="a judge spec (see 'pnyx list', or package.module:Class); short names: keyword "
                        "(keyword_af), model (af_classifier; strongreject_rubric with --task compliance)")
    p.add_argument("--task", choices=["af", "compliance"], help="what the labels say (default af)", **field)
    p.add_argument("--model", help="the judge model's spec (for a judge that calls a model)", **field)
    p.add_argument("--data", required=True, help="labelled file: .jsonl, or .json holding a list or {\"samples\": [...]}")
    p.add_argument("--text-field", required=True, help="field holding the text to judge")
    p.add_argument("--label-field", required=True, help="field holding the human label")
    p.add_argument("--positive", help="the label value that means positive, when labels are strings", **field)
    p.add_argument("--id-field", help="field holding the item id (default id; else the item's index)", **field)
    p.add_argument("--request-field", help="field holding the request (--task compliance)", **field)
    p.add_argument("--votes", type=int, help="--judge model, af: classifier votes (default 20)", **field)
    p.add_argument("--threshold", type=float, help="--judge model, af: threshold on the positive share (default 0.4)",
                   **field)
    p.add_argument("--temperature", type=float,
                   help="--judge model: temperature (default 1 for AF votes, 0 for compliance)", **field)
    p.add_argument("--max-tokens", type=int, help="--judge model: reply limit (default 2048)", **field)
    p.add_argument("--seed", type=int, help="default 0", **field)
    p.add_argument("--bootstrap", type=int, help="bootstrap replicates (default 2000)", **field)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished units")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--cache", metavar="PATH", help="completion cache file for the judge model")
    p.set_defaults(workers=None, address=None, runtime_env=None, py_modules=None)


def _shorten(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _describe(section: str) -> dict[str, str]:
    """Name -> description of one ``pnyx list`` section, importing only its registry."""
    if section == "experiments":
        from pnyx.experiments.catalog import preset_descriptions

        return preset_descriptions()
    if section == "experiment kinds":
        from pnyx.experiments.catalog import KINDS

        return KINDS.describe()
    if section == "environments":
        from pnyx.envs import ENVIRONMENTS

        return ENVIRONMENTS.describe()
    if section == "policies":
        from pnyx.agents import POLICIES

        return POLICIES.describe()
    if section == "discussants":
        from pnyx.agents.discussants import DISCUSSANTS

        return DISCUSSANTS.describe()
    if section == "judges":
        from pnyx.agents.judges import JUDGES

        return JUDGES.describe()
    from pnyx.agents.llm import MODELS

    return MODELS.describe()


_LIST_SECTIONS = ["experiments", "experiment kinds", "environments", "policies", "discussants", "judges",
                  "language models"]
_LIST_ALIASES = {"experiments": "experiments", "presets": "experiments", "kinds": "experiment kinds",
                 "environments": "environments", "games": "environments", "policies": "policies",
                 "discussants": "discussants", "judges": "judges", "models": "language models"}


def _list(what: str | None, text: str | None) -> None:
    needle = (text or "").lower()
    shown = 0
    for title in [_LIST_ALIASES[what]] if what else _LIST_SECTIONS:
        entries = {name: doc for name, doc in _describe(title).items()
                   if needle in name.lower() or needle in doc.lower()}
        if needle and not entries:
            continue
        shown += len(entries)
        print(f"{title}:")
        for name, doc in entries.items():
            print(f"  {name:24s} {_shorten(doc)}")
    if needle and not shown:
        raise PnyxError(f"nothing listed matches {text!r}")


def _show(preset: str) -> None:
    from pnyx.experiments.catalog import commented_preset

    print(commented_preset(preset), end="")


def _report(folder: str) -> int:
    from pnyx.experiments.config import load_yaml, validate
    from pnyx.experiments.runner import finalize

    out = Path(folder)
    if not (out / "config.yaml").is_file():
        raise PnyxError(f"{folder!r} is not a pnyx run folder (no config.yaml)")
    summary = finalize(*validate(load_yaml(out / "config.yaml"), stored=True), out)
    print(f"report: {out / 'report.md'}")
    damaged = summary["run"].get("damaged", [])
    if damaged:
        print(f"pnyx: error: {len(damaged)} damaged chunk(s) in {out} (first: {damaged[0]}); "
              f"--resume reruns their units", file=sys.stderr)
        return 1
    return 0


def _soo_finetune(args) -> int:
    from pnyx.population.soo_finetuning import SOOTraining, finetune_to_folder
    from pnyx.specs import split_list

    try:
        layers = tuple(int(x) for x in split_list(args.layers, "layer list")) if args.layers else None
    except ValueError:
        raise PnyxError(f"--layers {args.layers!r} must be integers separated by commas") from None
    settings = SOOTraining(layers=layers, steps=args.steps, batch_pairs=args.batch_pairs, lr=args.lr,
                           kl_weight=args.kl_weight, seed=args.seed)
    result = finetune_to_folder(args.model, args.out, settings, pairs_file=args.pairs, held_out=args.held_out)
    for layer, before, after in zip(result.layers, result.before, result.after):
        print(f"layer {layer}: held-out self-other distance {before:.4g} -> {after:.4g}")
    if result.latent_before is not None:
        print(f"held-out latent SOO (the authors' measure): {result.latent_before:.4g} -> {result.latent_after:.4g}")
    print(f"adapters: {args.out} (load as {args.model}(adapter={args.out}))")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the command line; SIGTERM stops a run like Ctrl-C while it runs."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(argv)
    except BrokenPipeError:  # `pnyx list | head` ends quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if argv is None:  # the process exits next; its exit-time collections would scan every imported object
            gc.freeze()


def _main(argv: list[str] | None) -> int:
    out = None
    try:
        args = _parser().parse_args(argv)
        if args.command == "list":
            _list(args.what, args.filter)
            return 0
        if args.command == "show":
            _show(args.preset)
            return 0
        if args.command == "report":
            return _report(args.folder)
        if args.command == "export":
            from pnyx.experiments.inspect_export import export_inspect

            for path in export_inspect(args.folder, args.out):
                print(f"log: {path}")
            return 0
        if args.command == "soo-finetune":
            return _soo_finetune(args)
        from pnyx.experiments.cluster import runtime_env_option
        from pnyx.experiments.config import resolve, validate
        from pnyx.experiments.experiment import RunOptions
        from pnyx.experiments.runner import default_out, execute

        options = RunOptions(workers=args.workers, address=args.address, progress=not args.no_progress,
                             cache=args.cache, runtime_env=runtime_env_option(args.runtime_env, args.py_modules))
        if args.command == "run":
            kind, cfg = resolve(args.experiment, quick=args.quick, seed=args.seed, overrides=args.overrides)
            out = Path(args.out) if args.out else default_out(args.experiment)
            if args.export:
                from pnyx.experiments.inspect_export import check_exportable, export_inspect

                check_exportable(kind.name, cfg)
        elif args.command == "judge-eval":
            from pnyx.experiments.judge_eval import JudgeEvalConfig

            kind, cfg = validate({"kind": "judge-eval",
                                  **{k: v for k, v in vars(args).items() if k in JudgeEvalConfig.model_fields}})
            out = Path(args.out)
        else:
            from pnyx.specs import split_list

            kind, cfg = validate({"kind": "tournament", "players": split_list(args.players, "player list"), "game": args.game,
                                  "turns": args.turns, "repetitions": args.repetitions, "seed": args.seed,
                                  "noise": args.noise, "engine": args.engine})
            out = Path(args.out) if args.out else default_out("tournament")
        summary = execute(kind, cfg, out, resume=args.resume, options=options)
        print(f"results: {out}")
        if getattr(args, "export", None) and summary.get("run", {}).get("finished"):
            for path in export_inspect(out):
                print(f"log: {path}")
        if args.command == "judge-eval" and "metrics" in summary:
            from pnyx.experiments.judge_eval import headline

            print(headline(summary))
        run_info = summary.get("run", {})
        if run_info.get("failed"):
            first = (run_info.get("failures") or [{}])[0]
            detail = f" (first: {first['unit']}: {first['error']})" if first else ""
            print(f"pnyx: error: {run_info['failed']} of {run_info['units']} units failed{detail}; "
                  f"see {out / 'report.md'}; --resume retries them", file=sys.stderr)
            return 1
        return 0
    except PnyxError as e:
        print(f"pnyx: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = f"; finished units are kept in {out}, rerun with --resume to continue" if out else ""
        print(f"pnyx: interrupted{where}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
