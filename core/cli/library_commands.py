"""``specchat-cli search | download | models | token``: the model library from a terminal.

The Hub endpoint comes from ``HF_ENDPOINT`` and the token from ``HF_TOKEN`` or the
OS keyring, read when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from core.cli.failures import UsageError
from core.cli.terminal import is_terminal
from core.demo_models import demo_dir_path
from core.errors import ConfigError
from core.hub.auth import clear_token, mask_token, resolve_token, save_token
from core.hub.client import HubClient
from core.hub.download import DownloadProgress, DownloadState
from core.hub.errors import DownloadCancelled, HubError
from core.hub.files import list_gguf_files
from core.hub.manager import DownloadManager, DownloadSnapshot, DownloadTask
from core.hub.search import search_gguf_repos
from core.human_units import format_bytes, format_count, format_duration
from core.library.folders import user_folders
from core.library.pairing import find_local_drafts
from core.library.scan import ModelEntry, ModelLibrary

REFRESH_S = 0.2
# The core closes the connection on cancel, so this is only a safety net.
CANCEL_WAIT_S = 5.0
BAR_WIDTH = 30
LINE_WIDTH = 100
EXIT_INTERRUPTED = 130
FILES_SHOWN_PER_REPO = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specchat-cli", description="GGUF model library")
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", help="search GGUF repositories on the Hub")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=10, help="repositories to show")
    search.add_argument(
        "--files", type=int, default=FILES_SHOWN_PER_REPO, help="list GGUF files of the top N"
    )

    download = commands.add_parser("download", help="download one GGUF file (resumable)")
    download.add_argument("repo", help="repository, e.g. bartowski/Qwen2.5-7B-Instruct-GGUF")
    download.add_argument("file", help="file name in the repository")
    download.add_argument("--dir", type=Path, help="destination folder (default: models folder)")
    download.add_argument("--revision", help="branch, tag or commit (default: main)")

    models = commands.add_parser("models", help="list local models and compatible drafts")
    models.add_argument(
        "--folder", type=Path, action="append", default=[], help="also scan this folder"
    )

    token = commands.add_parser("token", help="manage the Hugging Face token (OS keyring)")
    token.add_argument("action", choices=["set", "clear", "status"])
    token.add_argument("value", nargs="?", help="token for `set` (prompted when omitted)")
    return parser


def run_library_command(argv: list[str]) -> int:
    """Run one library subcommand; ``argv`` starts with its name. Returns the exit code."""
    args = _parser().parse_args(argv)
    # Failures are reported by core/cli/failures.py, like every subcommand's.
    if args.command == "search":
        return _search(args.query, args.limit, args.files)
    if args.command == "download":
        return _download(args.repo, args.file, args.dir, args.revision)
    if args.command == "models":
        return _models(args.folder)
    return _token(args.action, args.value)


# -- formatting ------------------------------------------------------------------------


def progress_line(progress: DownloadProgress) -> str:
    """One terminal line: bar, percent, bytes, speed and ETA."""
    total = progress.total_bytes or 0
    fraction = min(progress.bytes_done / total, 1.0) if total else 0.0
    filled = int(fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    label = {DownloadState.VERIFYING: "verifying", DownloadState.DONE: "done"}.get(
        progress.state, "downloading"
    )
    return (
        f"{label} [{bar}] {fraction:6.1%} {format_bytes(progress.bytes_done)}/"
        f"{format_bytes(total)} {format_bytes(progress.bytes_per_second)}/s "
        f"ETA {format_duration(progress.eta_seconds)}"
    )


def render_progress(progress: DownloadProgress, stream: TextIO | None) -> None:
    """Redraw the progress line in place (a windowed app may have no stderr)."""
    if stream is None:
        return
    stream.write("\r" + progress_line(progress).ljust(LINE_WIDTH))
    stream.flush()


class ProgressLine:
    """The terminal's progress line, and messages printed on lines of their own.

    A message (a retry note, a log record) first wipes the bar, so it never ends
    up glued to the bar's tail; the next redraw puts the bar back below it. Into a
    log file or a pipe the bar is a whole line at each quarter of the file and each
    change of state instead: a redraw every REFRESH_S there left dozens of
    carriage-return frames ("0 B/0 B" while a retry waited).
    """

    def __init__(self, stream: TextIO | None, terminal: bool | None = None) -> None:
        self._stream = stream
        self._terminal = is_terminal(stream) if terminal is None else terminal
        self._drawn = False
        self._logged: tuple[DownloadState, int] | None = None

    def draw(self, progress: DownloadProgress) -> None:
        if self._stream is None:
            return
        if not self._terminal:
            self._log(progress)
            return
        render_progress(progress, self._stream)
        self._drawn = True

    def _log(self, progress: DownloadProgress) -> None:
        assert self._stream is not None
        fraction = progress.fraction
        if fraction is None:
            return  # nothing known yet (connecting, or waiting to retry)
        quarter = int(min(fraction, 1.0) * 4)
        if (progress.state, quarter) == self._logged:
            return
        self._logged = (progress.state, quarter)
        self._stream.write(progress_line(progress) + "\n")
        self._stream.flush()

    def message(self, text: str) -> None:
        if self._stream is None:
            return
        if self._drawn:
            self._stream.write("\r" + " " * LINE_WIDTH + "\r")
            self._drawn = False
        self._stream.write(text + "\n")
        self._stream.flush()

    def end(self) -> None:
        """Leave the bar as it is and move below it."""
        if self._stream is not None and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
        self._drawn = False


class _ProgressLineHandler(logging.Handler):
    def __init__(self, line: ProgressLine, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self._line = line
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._line.message(self.format(record))
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _logging_through(line: ProgressLine) -> Iterator[None]:
    """Route log records of the terminal's handlers through the progress line."""
    root = logging.getLogger()
    replaced = [
        handler
        for handler in root.handlers
        if isinstance(handler, logging.StreamHandler)
        and getattr(handler, "stream", None) in (sys.stderr, sys.stdout)
    ]
    substitutes = []
    for handler in replaced:
        substitute = _ProgressLineHandler(line, handler.formatter)
        substitute.setLevel(handler.level)
        root.removeHandler(handler)
        root.addHandler(substitute)
        substitutes.append(substitute)
    try:
        yield
    finally:
        for substitute in substitutes:
            root.removeHandler(substitute)
        for handler in replaced:
            root.addHandler(handler)


# -- commands --------------------------------------------------------------------------


def _search(query: str, limit: int, files_for_top: int) -> int:
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if files_for_top < 0:
        raise UsageError(f"--files must be 0 or more, got {files_for_top}")
    client = HubClient.from_environment()
    repos = search_gguf_repos(client, query, limit=limit)
    if not repos:
        print(f"no GGUF repositories match {query!r} on {client.endpoint}")
        return 0
    for rank, repo in enumerate(repos):
        gated = "  [gated]" if repo.gated else ""
        print(f"{repo.repo_id}  {format_count(repo.downloads)} downloads{gated}")
        if rank >= files_for_top:
            continue
        try:
            listing = list_gguf_files(client, repo.repo_id)
        except HubError as exc:
            print(f"    (files unavailable: {exc})")
            continue
        for file in listing.files:
            size = format_bytes(file.size) if file.size is not None else "size unknown"
            mark = "  <- fits this machine" if file.recommended else ""
            if file.fits_memory is False:
                mark = "  (too large for this machine)"
            print(f"    {file.filename}  {size}  {file.quantization or '?'}{mark}")
    return 0


def _download(repo_id: str, filename: str, folder: Path | None, revision: str | None) -> int:
    client = HubClient.from_environment()
    # Notes arrive with single progress reports on the worker thread; the listener
    # keeps every one, the terminal loop prints them in order.
    notes: list[str] = []

    def keep_note(snapshot: DownloadSnapshot) -> None:
        if snapshot.progress.note:
            notes.append(snapshot.progress.note)

    manager = DownloadManager(client, listener=keep_note)
    task = manager.enqueue(repo_id, filename, destination_dir=folder, revision=revision)
    try:
        return _follow_download(task, notes)
    finally:
        manager.shutdown(timeout=CANCEL_WAIT_S)


def _show(task: DownloadTask, notes: list[str], line: ProgressLine) -> None:
    while notes:
        line.message(f"note: {notes.pop(0)}")
    progress = task.snapshot().progress
    if progress.state in (DownloadState.DOWNLOADING, DownloadState.VERIFYING):
        line.draw(progress)


def _interrupted(task: DownloadTask, line: ProgressLine) -> int:
    task.cancel()
    # A second Ctrl+C while the cancel completes just stops waiting.
    with contextlib.suppress(KeyboardInterrupt):
        task.wait(CANCEL_WAIT_S)
    line.end()
    partial = task.request.partial_path
    if partial.exists():
        kept = f"{format_bytes(partial.stat().st_size)} kept in {partial}"
        print(f"cancelled: {kept}; run the same command again to resume", file=sys.stderr)
    else:
        print("cancelled before any data was downloaded", file=sys.stderr)
    return EXIT_INTERRUPTED


def _follow_download(task: DownloadTask, notes: list[str]) -> int:
    line = ProgressLine(sys.stderr)
    with _logging_through(line):
        try:
            while not task.wait(REFRESH_S):
                _show(task, notes, line)
        except KeyboardInterrupt:
            return _interrupted(task, line)
        _show(task, notes, line)
    snapshot = task.snapshot()
    if snapshot.state is DownloadState.DONE and snapshot.progress.total_bytes is not None:
        line.draw(snapshot.progress)
    line.end()
    if isinstance(snapshot.error, DownloadCancelled):
        print(f"cancelled: {snapshot.error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if snapshot.error is not None:
        print(f"error: {snapshot.error}", file=sys.stderr)
        return 1
    resumed = snapshot.progress.resumed_from
    note = f" (resumed at {format_bytes(resumed)})" if resumed else ""
    print(f"downloaded and checksum verified{note}: {snapshot.path}")
    return 0


def _describe(entry: ModelEntry) -> str:
    meta = entry.metadata
    if meta is None:
        return f"BROKEN  {entry.path}: {entry.error}"
    template = "yes" if meta.has_chat_template else "no"
    context = meta.context_length if meta.context_length is not None else "?"
    origin = f"  [{entry.repo_id}]" if entry.repo_id else ""
    return (
        f"{meta.name}  {meta.architecture}  {format_count(meta.parameter_count)} params  "
        f"{meta.quantization}  {format_bytes(entry.file_size)}  ctx {context}  "
        f"chat template: {template}  vocab {meta.vocab.fingerprint}{origin}\n"
        f"    {entry.path}  ({entry.source.value})"
    )


def _models(extra_folders: list[Path]) -> int:
    for folder in extra_folders:
        if not folder.exists():
            raise ConfigError(f"folder not found: {folder}")
        if not folder.is_dir():
            raise ConfigError(f"not a folder: {folder} (--folder takes a folder to scan)")
    folders = [*user_folders(), *extra_folders]
    library = ModelLibrary(user_folders=folders)
    entries = library.scan()
    if not entries:
        print(_nothing_found(library, folders))
        return 0
    usable = [entry for entry in entries if entry.usable]
    for entry in entries:
        print(_describe(entry))
        if not entry.usable:
            continue
        pairing = find_local_drafts(entry, usable)
        # By file: every quantisation of a model carries the same name in its metadata.
        for candidate in pairing.compatible:
            print(f"    draft: {candidate.entry.path.name}  {candidate.reason}")
        if not pairing.compatible:
            print("    draft: none compatible in the library")
        for candidate in pairing.incompatible:
            print(f"    not a draft: {candidate.entry.path.name}  {candidate.reason}")
    return 0


def _nothing_found(library: ModelLibrary, folders: list[Path]) -> str:
    """Where ``models`` looked, and where the models the command line uses are."""
    places = [
        f"the models folder {library.app_folder} (downloads go there)",
        f"the Hugging Face cache {library.hf_cache}",
        *(f"{folder}" for folder in folders),
    ]
    message = f"no GGUF models found in {', '.join(places[:-1])} or {places[-1]}"
    demo = demo_dir_path()
    if any(demo.glob("*.gguf")):
        # The command line builds the demo pair without adding it to the library.
        message += f"; the demo pair is in {demo} (list it with --folder {demo})"
    return message


def _read_token() -> str:
    """The token typed at a prompt, or the first line of piped input."""
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            token = getpass.getpass("Hugging Face token: ")
        else:
            token = sys.stdin.readline() if sys.stdin is not None else ""
    except EOFError:
        token = ""
    if not token.strip():
        raise ConfigError("no token given: pass it as `token set TOKEN` or type it at the prompt")
    return token


def _token(action: str, value: str | None) -> int:
    if action == "set":
        token = value or _read_token()
        save_token(token)
        print("token stored in the OS keyring")
        return 0
    if action == "clear":
        print("token removed" if clear_token() else "no token was stored")
        return 0
    current, source = resolve_token()
    if current is None:
        print("no token: gated models cannot be downloaded (set one with `token set`)")
    else:
        print(f"token {mask_token(current)} from the {source.value}")
    return 0
