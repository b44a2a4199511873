"""Command line: ``hsilib data list|fetch|verify|path`` and ``hsilib book run``.

Also reachable as ``python -m hsilib``. Failures exit non-zero with a
one-line reason on standard error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from .data import files
from .data.scenes import SCENES, get_scene


def _data_list(args: argparse.Namespace) -> int:
    root = files.data_dir()
    print(f"data directory: {root}")
    header = f"{'scene':<18} {'sensor':<9} {'shape':<16} {'classes':>7}  {'files':>5}  cube     data"
    print(header)
    print("-" * len(header))
    for scene in SCENES.values():
        present = files.cached(scene, root)
        cube = present[scene.cube.name]
        data = "real" if cube else ("twin" if present[scene.gt.name] else "none")
        shape = "x".join(map(str, scene.shape))
        print(f"{scene.name:<18} {scene.sensor:<9} {shape:<16} {scene.n_classes:>7}  "
              f"{sum(present.values())}/{len(present)}    {'cached ' if cube else 'missing'}  {data}")
    print("\ndata: 'real' = cube cached; 'twin' = only the ground truth is here, so "
          "the offline twin (synthetic spectra) is used; 'none' = fetch the scene first.")
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
    root = files.data_dir()
    bad = checked = 0
    for scene in SCENES.values():
        for remote in scene.files:
            path = files.local_path(scene, remote, root)
            if not path.exists():
                continue
            checked += 1
            actual = files.sha256sum(path)
            if remote.sha256 is None:
                status = f"UNVERIFIED (no published sha256; got {actual})"
            elif actual == remote.sha256:
                status = "OK"
            else:
                bad += 1
                status = f"MISMATCH (expected {remote.sha256}, got {actual})"
            print(f"{status}  {path}")
    print(f"{checked} files checked in {root}, {bad} corrupted")
    if bad:
        raise RuntimeError(f"{bad} file(s) in {root} do not match their published sha256")
    return 0


def _data_path(args: argparse.Namespace) -> int:
    print(files.data_dir())
    return 0


def _book_run(args: argparse.Namespace) -> int:
    from .book import run_notebooks  # papermill is an optional dependency

    run_notebooks(args.profile, notebooks=args.notebooks or None)
    return 0


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

    book = commands.add_parser("book", help="execute the book's notebooks")
    book_cmds = book.add_subparsers(dest="book_command", required=True)
    run = book_cmds.add_parser("run", help="execute notebooks/ into book/ with papermill")
    run.add_argument("--profile", default="quick", help="smoke, quick or full")
    run.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    run.set_defaults(handler=_book_run)
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
