"""Command line: ``hsilib data list|fetch|verify|path``, ``hsilib models``,
``hsilib methods``, ``hsilib summary MODEL``, ``hsilib claims``, ``hsilib plan``,
``hsilib results pack|unpack``, ``hsilib book run`` and ``hsilib book check``.

Also reachable as ``python -m hsilib``. Failures exit non-zero with a
one-line reason on standard error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from .data import files
from .data.scenes import SCENES, get_scene


def _existing_data_dir() -> Path:
    root = files.data_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {root} does not exist; set $HSILIB_DATA_DIR, or run "
                                "'hsilib data fetch SCENE' to create it")
    return root


def _cube_state(scene, root) -> str:
    """'cached' (verified), 'corrupt' or 'missing'."""
    path = files.local_path(scene, scene.cube, root)
    if not path.exists():
        return "missing"
    try:
        files.verify(path, scene.cube)
    except (files.DataIntegrityError, OSError):
        return "corrupt"
    return "cached"


def _data_list(args: argparse.Namespace) -> int:
    root = files.data_dir()
    print(f"data directory: {root}")
    header = f"{'scene':<18} {'sensor':<9} {'shape':<16} {'classes':>7}  {'files':>5}  cube     data"
    print(header)
    print("-" * len(header))
    for scene in SCENES.values():
        present = files.cached(scene, root)
        cube = _cube_state(scene, root)
        data = "real" if cube == "cached" else ("twin" if present[scene.gt.name] else "none")
        shape = "x".join(map(str, scene.shape))
        print(f"{scene.name:<18} {scene.sensor:<9} {shape:<16} {scene.n_classes:>7}  "
              f"{sum(present.values())}/{len(present)}    {cube:<8} {data}")
    print("\ndata: 'real' = cube cached and verified; 'twin' = no usable cube (missing or "
          "corrupt) but the ground truth is here, so the offline twin (synthetic spectra) is "
          "used; 'none' = fetch the scene first.")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    scenes = [get_scene(name) for name in args.scenes]  # unknown names fail before any download
    for scene in scenes:
        # Small files first, so a failing cube download still leaves the twin usable.
        wanted = scene.label_files + (() if args.no_cube else (scene.cube,))
        for remote in wanted:
            path = files.fetch(scene, remote, progressbar=sys.stderr.isatty())
            print(f"{scene.name}: {path}")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    root = _existing_data_dir()
    bad = unreadable = checked = 0
    seen: set[str] = set()
    for scene in SCENES.values():
        for remote in scene.files:
            path = files.local_path(scene, remote, root)
            # Scenes can share a folder and its files (Indian Pines, 200 and 220 bands).
            if not path.exists() or str(path.resolve()) in seen:
                continue
            seen.add(str(path.resolve()))
            checked += 1
            try:
                actual = files.sha256sum(path)
            except OSError as err:
                unreadable += 1
                print(f"UNREADABLE ({err.strerror or err})  {path}")
                continue
            if remote.sha256 is None:
                status = f"UNVERIFIED (no published sha256; got {actual})"
            elif actual == remote.sha256:
                status = "OK"
            else:
                bad += 1
                status = f"MISMATCH (expected {remote.sha256}, got {actual})"
            print(f"{status}  {path}")
    print(f"{checked} files checked in {root}, {bad} corrupted, {unreadable} unreadable")
    if bad or unreadable:
        raise RuntimeError(f"{bad + unreadable} file(s) in {root} are corrupted or unreadable")
    return 0


def _data_path(args: argparse.Namespace) -> int:
    print(files.data_dir())
    return 0


def _print_columns(header: list[str], rows: list[list[object]]) -> None:
    """Left-aligned columns as wide as their widest cell; the last column free."""
    cells = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    for row in cells:
        print(" ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]))


def _models(args: argparse.Namespace) -> int:
    from .models import MODELS

    _print_columns(["name", "paper name", "family", "input", "channels", "patch"],
                   [[spec.name, spec.title, spec.family, spec.input,
                     "all" if spec.components is None else spec.components, spec.patch_size]
                    for spec in MODELS.values()])
    return 0


def _methods(args: argparse.Namespace) -> int:
    from .compress import METHODS

    _print_columns(["name", "paper name", "family", "kind", "source"],
                   [[method.name, method.title, method.family, method.kind, method.source]
                    for method in METHODS.values()])
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(_positive(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas, got {text!r}") from None


def _summary(args: argparse.Namespace) -> int:
    from . import measure
    from .models import MODELS, example_input, get_model

    spec = get_model(args.model)
    scene = get_scene(args.scene)
    if spec.family != "torch":
        raise ValueError(f"model {args.model!r} is a scikit-learn model: it has no "
                         "layers to summarize (torch models: "
                         f"{', '.join(n for n, s in MODELS.items() if s.family == 'torch')})")
    channels = args.components if args.components is not None else (spec.components or scene.n_bands)
    patch = args.patch if args.patch is not None else spec.patch_size
    if patch % 2 == 0:
        raise ValueError(f"--patch must be odd, got {patch}")
    model = spec.make(channels, scene.n_classes, patch, args.widths).eval()
    example = example_input(args.model, channels, patch)
    rows = measure.layer_summary(model, example)
    widths = "" if args.widths is None else f", widths {'/'.join(map(str, args.widths))}"
    print(f"{spec.title} on {scene.title}: input {tuple(example.shape[1:])}, {scene.n_classes} classes{widths}")
    print(f"{'layer':<12} {'type':<12} {'output shape':<18} {'parameters':>11} {'MACs':>13}")
    for row in rows:
        shape = "x".join(map(str, row.output_shape))
        print(f"{row.name:<12} {row.kind:<12} {shape:<18} {row.params:>11,} {row.macs:>13,}")
    counted = sum(measure.parameters_per_layer(model).values())
    print(f"trainable parameters as the paper counts them (conv, linear, LSTM): {counted:,}")
    print(f"batch-norm parameters (reported separately): {measure.norm_parameters(model):,}")
    print(f"all parameters (PyTorch's count): {measure.all_parameters(model):,}")
    print(f"MACs per sample: {sum(r.macs for r in rows):,}")
    print(f"memory (float32, parameters and buffers): {measure.theoretical_memory_mb(model):.3f} MB")
    return 0


# How ``hsilib claims`` writes the ledger (a frame with one row per claim).
CLAIMS_FORMATS: dict[str, Callable] = {
    "csv": lambda ledger: ledger.to_csv(sys.stdout, index=False),
    "json": lambda ledger: print(ledger.to_json(orient="records", force_ascii=False, indent=1)),
    "table": lambda ledger: _print_columns(
        ["claim", "chapter", "verdict", "paper, our rule", "reason"],
        ledger[["claim", "chapter", "verdict", "paper_verdict", "reason"]].values.tolist()),
}


def _claims(args: argparse.Namespace) -> int:
    from .claims import claims_ledger, evidence_frame, paper_evidence
    from .experiments import ResultStore

    if args.paper:
        evidence = paper_evidence()
    else:
        store = ResultStore(args.store)
        if args.store is not None and not store.root.is_dir():
            raise FileNotFoundError(f"result store {store.root} does not exist")
        evidence = evidence_frame(store.records())
    CLAIMS_FORMATS[args.format](claims_ledger(evidence).reset_index())
    return 0


def _plan(args: argparse.Namespace) -> int:
    from .experiments import ResultStore
    from .plan import duration, make_plan

    store = ResultStore(args.store)
    plan = make_plan(args.profile, args.notebooks or None, store)
    table = plan.by_chapter().reset_index()
    print(f"result store: {store.root}; each run counted in the first chapter that needs it")
    _print_columns(["chapter", "kind", "runs", "stored", "to run", "training, expected", "at most",
                    "stored, stopped on a plateau"],
                   [[r.chapter, r.kind, r.runs, r.stored, r.left, duration(r.expected), duration(r.seconds),
                     f"{r.plateau} of {r.trained} trained" if r.trained else "-"] for r in table.itertuples()])
    largest = plan.largest()
    if len(largest):
        print("\nlongest runs to do:")
        _print_columns(["chapter", "run", "training, expected", "at most"],
                       [[r.chapter, r.label, duration(r.expected), duration(r.seconds)] for r in largest.itertuples()])
    print(f"\n{plan.summary()}\n{plan.plateau_share()}")
    print("Training steps timed on this machine; at most: every run to its maximum epochs; expected: "
          "times the share of those epochs that the store's runs of the same kind and model trained "
          "before their plateau (1 where it has none). Classical models, scoring and measuring are "
          "not counted.")
    return 0


def _results_pack(args: argparse.Namespace) -> int:
    from .experiments import ResultStore
    from .experiments.archive import pack

    store = ResultStore(args.store)
    keys = None
    if args.profile:
        from .plan import make_plan, profile_keys

        plan = make_plan(args.profile, store=store, step=lambda model, precision, widths: 0.0)  # counts only
        keys, missing = profile_keys(plan, store), int((~plan.rows["stored"]).sum())
        if missing:
            print(f"warning: {missing} runs of the {args.profile} profile are not in the store (hsilib plan "
                  f"--profile {args.profile} lists them); a book built from this archive trains them",
                  file=sys.stderr)
    print(f"packed {pack(args.archive, store, keys)} files of {store.root} into {args.archive}")
    return 0


def _results_unpack(args: argparse.Namespace) -> int:
    from .experiments import ResultStore
    from .experiments.archive import unpack

    store = ResultStore(args.store)
    done = unpack(args.archive, store)
    print(f"verified {args.archive}; wrote {done.written} files into {store.root} "
          f"({done.kept} already there, kept)")
    return 0


def _book_run(args: argparse.Namespace) -> int:
    from .book import run_notebooks  # papermill is an optional dependency

    run_notebooks(args.profile, notebooks=args.notebooks or None, scheduler=args.scheduler)
    return 0


def _book_check(args: argparse.Namespace) -> int:
    from .book_check import check_book, summary  # playwright is an optional dependency

    reports = check_book(args.html, args.screenshots)
    print(summary(reports))
    return 1 if any(r.problems for r in reports) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hsilib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="scene files: list, fetch, verify, path")
    data_cmds = data.add_subparsers(dest="data_command", required=True)
    data_cmds.add_parser("list", help="registered scenes and what is cached").set_defaults(
        handler=_data_list)
    fetch = data_cmds.add_parser("fetch", help="download scene files (sha256-verified)")
    fetch.add_argument("scenes", nargs="+", metavar="SCENE", help=f"one of: {', '.join(SCENES)}")
    fetch.add_argument("--no-cube", action="store_true",
                       help="only ground truth and split masks (enough for the twin)")
    fetch.set_defaults(handler=_data_fetch)
    data_cmds.add_parser("verify", help="re-hash every cached file").set_defaults(
        handler=_data_verify)
    data_cmds.add_parser("path", help="print the data directory").set_defaults(
        handler=_data_path)

    commands.add_parser("models", help="list the registered models").set_defaults(handler=_models)
    summary = commands.add_parser("summary", help="per-layer table of a model: shapes, parameters, MACs")
    summary.add_argument("model", help="a registered model (see 'hsilib models')")
    summary.add_argument("--scene", default="indian_pines", help="sets classes and bands (default indian_pines)")
    summary.add_argument("--patch", type=_positive, help="odd patch side (default: the model's)")
    summary.add_argument("--components", type=_positive,
                         help="input channels / PCA components (default: the model's)")
    summary.add_argument("--widths", type=_widths,
                         help="widths of the prunable layers, e.g. 15,30,30 for Table 5's 90%% CNN2D")
    summary.set_defaults(handler=_summary)
    commands.add_parser("methods", help="list the compression methods").set_defaults(handler=_methods)

    claims = commands.add_parser(
        "claims", help="the paper's claims judged on a result store, beside the paper's own tables",
        description="Every claim of the paper judged on the runs of a result store (verdict, reason, "
                    "our evidence) and, by the same rule, on the paper's published tables "
                    "(paper_verdict, paper). Judge one profile's runs at a time.")
    claims.add_argument("--store", help="result store directory (default: $HSILIB_RESULTS_DIR or the "
                                        "user cache)")
    claims.add_argument("--paper", action="store_true",
                        help="judge the paper's own tables instead of a store (verdict and ours then "
                             "describe the paper)")
    claims.add_argument("--format", choices=list(CLAIMS_FORMATS), default="table")
    claims.set_defaults(handler=_claims)

    plan = commands.add_parser("plan", help="what a profile will run and cost, before it runs",
                               description="Each chapter's runs by kind, how many the result store "
                                           "already holds, and an estimate of the training time left "
                                           "on this machine (training steps timed here once, cached).")
    plan.add_argument("--profile", default="quick", help="smoke, quick or full")
    plan.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    plan.add_argument("--store", help="result store directory (default: $HSILIB_RESULTS_DIR or the user cache)")
    plan.set_defaults(handler=_plan)

    results = commands.add_parser("results", help="a result store as one verified archive: pack, unpack")
    results_cmds = results.add_subparsers(dest="results_command", required=True)
    store_help = "result store directory (default: $HSILIB_RESULTS_DIR or the user cache)"
    pack = results_cmds.add_parser("pack", help="records and weights files, with a sha256 manifest")
    pack.add_argument("archive", help="the tar archive to write")
    pack.add_argument("--profile", help="only the runs a book of this profile reads (default: the whole store)")
    pack.add_argument("--store", help=store_help)
    pack.set_defaults(handler=_results_pack)
    unpack = results_cmds.add_parser("unpack", help="verify every file of an archive, then write them")
    unpack.add_argument("archive", help="a tar archive written by 'hsilib results pack'")
    unpack.add_argument("--store", help=store_help)
    unpack.set_defaults(handler=_results_unpack)

    book = commands.add_parser("book", help="execute the book's notebooks")
    book_cmds = book.add_subparsers(dest="book_command", required=True)
    run = book_cmds.add_parser("run", help="execute notebooks/ into book/ with papermill")
    run.add_argument("--profile", default="quick", help="smoke, quick or full")
    run.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    run.add_argument("--scheduler", help="a Dask scheduler's address (tcp://host:8786): every chapter's grid "
                                         "runs on that cluster, whose workers need no access to the result "
                                         "store (default: $HSILIB_SCHEDULER, else this machine)")
    run.set_defaults(handler=_book_run)
    check = book_cmds.add_parser("check", help="open every built page in headless Chromium and check it")
    check.add_argument("html", nargs="?", default="_build/html", help="the built book (default: _build/html)")
    check.add_argument("--screenshots", default="_build/screenshots", help="where page screenshots go")
    check.set_defaults(handler=_book_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("hsilib: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line, no traceback, for every failure
        message = " ".join(str(err).split())
        print(f"hsilib: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
