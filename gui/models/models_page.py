"""The Models page: the local library, Hugging Face search and the download queue.

It glues the views to ``core``: every network and disk call runs in this page's
thread pool and is awaited on the qasync loop, so the window never waits on them.
Downloads run on ``core.hub``'s own worker threads; the page reads their
snapshots on a timer (``QUEUE_REFRESH_MS``) instead of handling every progress
event, so a fast download costs the GUI thread one small repaint per tick.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from pathlib import Path

import shiboken6
from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMessageBox, QSplitter, QTabWidget, QVBoxLayout, QWidget

from core.hub.auth import resolve_token
from core.hub.client import HubClient, resolve_endpoint
from core.hub.download import TransferSettings
from core.hub.drafts import find_hub_drafts
from core.hub.errors import HubError
from core.hub.file_choices import ModelChoice, group_model_files
from core.hub.files import list_gguf_files, machine_memory_budget
from core.hub.jobs import (
    DownloadQueue,
    JobFile,
    JobSnapshot,
    JobSpec,
    JobState,
    default_queue_file,
)
from core.hub.manager import DownloadManager
from core.hub.search import search_gguf_repos
from core.library import ModelEntry, ModelLibrary, SystemMemory, read_system_memory
from core.library import folders as library_folders
from core.library.deletion import DeleteRefusedError, can_delete, delete_model
from core.paths import same_path
from gui.models.background_work import BackgroundWork
from gui.models.download_queue import DownloadQueueView
from gui.models.hub_search import HubSearchView
from gui.models.library_view import LibraryView
from gui.models.repo_files import RepoFilesView
from gui.models.token_flow import TokenFlow
from gui.models.token_prompt import TokenPrompt
from gui.sentence import as_sentence
from gui.theme import set_role

logger = logging.getLogger(__name__)

QUEUE_REFRESH_MS = 100
SEARCH_LIMIT = 30


def reveal_in_file_manager(path: Path) -> None:
    """Open the folder holding ``path`` in the system's file manager."""
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


class ModelsPage(QWidget):
    """Library, Hub search, repository files and downloads in one window.

    Args:
        library: the library to scan (default: the app's folders).
        endpoint: the Hub's URL (default: ``HF_ENDPOINT`` or huggingface.co).
        queue_factory: builds the download queue for a client (default: one on the
            app's queue file), called once the token is read from the keyring.
        memory_budget: bytes a model may use here (default: RAM plus free VRAM).
        reveal: opens a file's folder (default: the system's file manager).
        models_in_use: the model files the engine has loaded now; they are not deleted.

    Signals:
        use_as_target(object), use_as_draft(object): a model ``Path`` for the picker.
        library_changed(): files appeared or went (a download finished, a delete,
            a folder added or removed, files copied in).
    """

    use_as_target = Signal(object)
    use_as_draft = Signal(object)
    library_changed = Signal()

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        library: ModelLibrary | None = None,
        endpoint: str | None = None,
        queue_factory: Callable[[HubClient], DownloadQueue] | None = None,
        memory_budget: Callable[[], int] = machine_memory_budget,
        reveal: Callable[[Path], None] = reveal_in_file_manager,
        models_in_use: Callable[[], Collection[Path]] = tuple,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("models_page")
        self.setWindowTitle("SpecChat · Models")
        # A window of its own, closed with Esc like a dialog (downloads go on).
        close = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        close.setContext(Qt.ShortcutContext.WindowShortcut)
        close.activated.connect(self.close)
        self.library = library or ModelLibrary()
        self._endpoint = resolve_endpoint(endpoint)
        self._queue_factory = queue_factory or default_queue_factory
        self._memory_budget = memory_budget
        self._reveal = reveal
        self._models_in_use = models_in_use
        self._work = BackgroundWork("models-page", self._on_task_failed)
        self.tokens = TokenFlow(self._work, self._endpoint, self)
        self.tokens.token_saved.connect(self._on_token_saved)
        self.downloads: DownloadQueue | None = None
        self._job_states: dict[int, JobState] = {}
        self._scanning = False
        self._scan_again = False
        self._system: SystemMemory | None = None
        self._search_generation = 0
        self._repo_generation = 0
        self._repo_commit: str | None = None
        self._entries: list[ModelEntry] = []
        self._scanned_once = False
        # The job whose failure the status line shows, cleared once it runs again.
        self._status_job: int | None = None
        # What the status line said about a token kept for this session only, until a
        # download's own line has carried it too (a quick download's "Downloaded …"
        # replaced it before anyone could read it).
        self._token_note = ""

        self.library_view = LibraryView()
        self.search_view = HubSearchView()
        self.repo_view = RepoFilesView()
        self.queue_view = DownloadQueueView()
        self.status_label = QLabel()
        self.status_label.setObjectName("models_status")
        self.status_label.setWordWrap(True)
        hub = QSplitter(Qt.Orientation.Horizontal)
        hub.setObjectName("hub_splitter")
        hub.addWidget(self.search_view)
        hub.addWidget(self.repo_view)
        hub.setStretchFactor(0, 3)
        hub.setStretchFactor(1, 2)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("models_tabs")
        self.tabs.addTab(self.library_view, "Library")
        self.tabs.addTab(hub, "Hugging Face")
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.setObjectName("models_splitter")
        outer.addWidget(self.tabs)
        outer.addWidget(self.queue_view)
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(outer, 1)
        layout.addWidget(self.status_label)
        self.resize(1100, 720)

        self._queue_timer = QTimer(self)
        self._queue_timer.setObjectName("download_queue_refresh")
        self._queue_timer.setInterval(QUEUE_REFRESH_MS)
        self._queue_timer.timeout.connect(self.refresh_downloads)
        self._wire()
        self._work.spawn(self._start())

    def _wire(self) -> None:
        library = self.library_view
        library.rescan_requested.connect(self.rescan)
        library.use_as_target.connect(self.use_as_target)
        library.use_as_draft.connect(self.use_as_draft)
        library.reveal_requested.connect(lambda path: self._reveal(Path(path)))
        library.delete_requested.connect(self.confirm_delete)
        library.folder_added.connect(
            lambda folder: self._work.spawn(self._add_folder(Path(folder)))
        )
        library.folder_removed.connect(
            lambda folder: self._work.spawn(self._remove_folder(Path(folder)))
        )
        library.pairing.use_pair_requested.connect(self._use_pair)
        self.search_view.search_requested.connect(
            lambda query, sort: self._work.spawn(self._search(query, sort))
        )
        self.search_view.repo_opened.connect(self.open_repo)
        self.repo_view.repo_opened.connect(self.open_repo)
        self.repo_view.download_requested.connect(self.download)
        self.repo_view.find_drafts_requested.connect(
            lambda repo_id: self._work.spawn(self._find_drafts(repo_id))
        )
        self.queue_view.pause_requested.connect(self._pause)
        self.queue_view.resume_requested.connect(self._resume)
        self.queue_view.cancel_requested.connect(self._cancel)
        self.queue_view.remove_requested.connect(self._forget)

    # ----- plumbing ---------------------------------------------------------------------

    @property
    def _closed(self) -> bool:
        return self._work.closed

    @property
    def token_prompt(self) -> TokenPrompt | None:
        return self.tokens.prompt

    def _on_task_failed(self, error: BaseException) -> None:
        if self._closed or not shiboken6.isValid(self.status_label):
            return
        self.show_status(f"Something went wrong: {error}", error=True)

    def show_status(self, text: str, error: bool = False) -> None:
        self._status_job = None
        self.status_label.setText(as_sentence(text))
        set_role(self.status_label, "error" if error else "muted")

    def client(self) -> HubClient:
        return HubClient(endpoint=self._endpoint, token=self.tokens.token)

    async def _start(self) -> None:
        token, _source = await self._work.run(resolve_token)
        self.tokens.token = token
        self.downloads = await self._work.run(self._queue_factory, self.client())
        self.refresh_downloads()
        await self._scan()

    # ----- library ----------------------------------------------------------------------

    def rescan(self) -> None:
        """Look for models again (in the background; a scan already running reruns once)."""
        self._work.spawn(self._scan())

    async def _scan(self) -> None:
        if self._scanning:
            self._scan_again = True
            return
        self._scanning = True
        try:
            while True:
                self._scan_again = False
                await self._scan_once()
                if not self._scan_again or self._closed:
                    break
        finally:
            self._scanning = False

    async def _scan_once(self) -> None:
        library = self.library
        known_system = self._system

        def scan() -> tuple[list[ModelEntry], SystemMemory, set[Path], list[tuple[Path, bool]]]:
            entries = library.scan()
            ram = read_system_memory(query_gpu=known_system is None)
            system = ram
            if known_system is not None:
                # nvidia-smi is slow to start; free VRAM is read once per page.
                system = SystemMemory(
                    ram.total_ram_bytes, ram.available_ram_bytes, known_system.free_vram_bytes
                )
            app = library.app_folder
            deletable = {entry.path for entry in entries if can_delete(entry, app)}
            added = library.user_folders
            user = list(added) if added is not None else library_folders.user_folders()
            return entries, system, deletable, [(folder, folder.is_dir()) for folder in user]

        try:
            entries, system, deletable, user = await self._work.run(scan)
        except OSError as exc:
            self.library_view.show_error(f"Could not scan the model folders: {exc}")
            return
        if self._closed:
            return
        changed = _files_of(entries) != _files_of(self._entries)
        first = not self._scanned_once
        self._scanned_once = True
        self._entries = entries
        self._system = system
        self.library_view.show_folders(library.app_folder, user, library.hf_cache)
        self.library_view.show_entries(entries, system, deletable)
        if changed and not first:
            self.library_changed.emit()  # the picker rescans too

    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    def event(self, event: QEvent) -> bool:  # Qt override
        # Files copied in while the user was elsewhere show up when they come back.
        if event.type() == QEvent.Type.WindowActivate and self.downloads is not None:
            self.rescan()
        return super().event(event)

    async def _add_folder(self, folder: Path) -> None:
        library = self.library

        def add() -> None:
            if library.user_folders is None:
                library_folders.add_user_folder(folder)
            elif folder.resolve() not in library.user_folders:
                library.user_folders.append(folder.resolve())

        await self._work.run(add)
        await self._scan()

    async def _remove_folder(self, folder: Path) -> None:
        library = self.library

        def remove() -> None:
            if library.user_folders is None:
                library_folders.remove_user_folder(folder)
            else:
                library.user_folders[:] = [f for f in library.user_folders if f != folder]

        await self._work.run(remove)
        await self._scan()

    def _use_pair(self, target: Path, draft: Path) -> None:
        self.use_as_target.emit(target)
        self.use_as_draft.emit(draft)

    def confirm_delete(self, entry: ModelEntry) -> QMessageBox:
        """Ask before deleting; the box is returned so tests can answer it.

        A model the engine has loaded is not deleted: the chat would go on from the
        mapped file while the library and the picker said it was gone, and a reload
        would fail (on Windows the delete itself fails on a file in use).
        """
        if any(same_path(entry.path, loaded) for loaded in self._models_in_use()):
            box = QMessageBox(
                QMessageBox.Icon.Information,
                "Delete model",
                f"{entry.path.name} is loaded right now. Unload it under the model "
                "picker first, then delete it here.",
                QMessageBox.StandardButton.Ok,
                self,
            )
            box.finished.connect(box.deleteLater)
            box.open()
            return box
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Delete model",
            f"Delete {entry.path.name} from disk? It was downloaded by SpecChat; "
            "you can download it again later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(button: int) -> None:
            if button == QMessageBox.StandardButton.Yes:
                self._work.spawn(self._delete(entry))

        box.finished.connect(answered)
        box.finished.connect(box.deleteLater)
        box.open()  # not exec(): a nested loop would stall the qasync loop
        return box

    async def _delete(self, entry: ModelEntry) -> None:
        try:
            removed = await self._work.run(delete_model, entry, self.library.app_folder)
        except DeleteRefusedError as exc:
            self.show_status(str(exc), error=True)
            return
        self.show_status(f"Deleted {', '.join(path.name for path in removed)}.")
        await self._scan()

    # ----- Hugging Face -----------------------------------------------------------------

    async def _search(self, query: str, sort: str) -> None:
        self._search_generation += 1
        generation = self._search_generation
        try:
            results = await self._work.run(
                functools.partial(
                    search_gguf_repos, self.client(), query or None, SEARCH_LIMIT, sort=sort
                )
            )
        except HubError as exc:
            if generation == self._search_generation:
                self.search_view.show_error(str(exc))
            return
        if generation == self._search_generation and not self._closed:
            self.search_view.show_results(results)

    def open_repo(self, repo_id: str) -> None:
        self.tabs.setCurrentIndex(1)
        self._work.spawn(self._open_repo(repo_id))

    async def _open_repo(self, repo_id: str) -> None:
        self._repo_generation += 1
        generation = self._repo_generation
        self.repo_view.show_loading(repo_id)
        client, budget_of = self.client(), self._memory_budget
        folder = self.library.app_folder / repo_id

        def listing() -> tuple[bool, list[ModelChoice], str | None, frozenset[str]]:
            budget = budget_of()
            files = list_gguf_files(client, repo_id, memory_budget_bytes=budget)
            choices = group_model_files(files.files, budget)
            downloaded = frozenset(c.name for c in choices if c.is_downloaded_in(folder))
            return files.gated, choices, files.commit, downloaded

        try:
            gated, choices, commit, downloaded = await self._work.run(listing)
        except HubError as exc:
            if generation == self._repo_generation:
                self.repo_view.show_error(str(exc))
            return
        if generation != self._repo_generation or self._closed:
            return
        self._repo_commit = commit
        self.repo_view.show_choices(repo_id, gated, choices, downloaded)
        if not choices:
            self.repo_view.show_note("This repository has no complete GGUF model.")

    async def _find_drafts(self, repo_id: str) -> None:
        try:
            drafts = await self._work.run(find_hub_drafts, self.client(), repo_id)
        except HubError as exc:
            self.repo_view.show_error(str(exc))
            return
        if self.repo_view.repo_id == repo_id:
            self.repo_view.show_drafts(drafts)

    # ----- downloads --------------------------------------------------------------------

    def download(self, choice: ModelChoice) -> None:
        """Queue ``choice`` from the open repository; asks for a token first when gated."""
        repo_id = self.repo_view.repo_id
        if repo_id is None:
            return
        if self.repo_view.gated and self.tokens.token is None:
            self.tokens.ask(
                f"{repo_id} is gated: downloading it needs a Hugging Face token.",
                then=lambda: self.download(choice),
            )
            return
        spec = JobSpec(
            repo_id,
            tuple(JobFile(file.filename, file.size) for file in choice.files),
            self.library.app_folder / repo_id,
            revision=self._repo_commit,
        )
        self._work.spawn(self._submit(spec))

    async def _submit(self, spec: JobSpec) -> None:
        downloads = self.downloads
        if downloads is None:
            self.repo_view.show_error("The download queue is still starting; try again.")
            return
        try:
            await self._work.run(downloads.submit, spec)
        except HubError as exc:
            self.repo_view.show_error(str(exc))
            self.show_status(str(exc), error=True)
            return
        self.repo_view.show_note(f"Queued {spec.files[0].filename}; see Downloads below.")
        self.refresh_downloads()

    def refresh_downloads(self) -> None:
        """Render the queue; notice finished and token-needing jobs."""
        if self.downloads is None:
            return
        snapshots = self.downloads.snapshots()
        self.queue_view.show_jobs(snapshots)
        for snapshot in snapshots:
            before = self._job_states.get(snapshot.job_id)
            if before is not snapshot.state:
                self._job_states[snapshot.job_id] = snapshot.state
                self._on_job_changed(snapshot)
        if any(snapshot.state.active for snapshot in snapshots):
            if not self._queue_timer.isActive():
                self._queue_timer.start()
        else:
            self._queue_timer.stop()

    def _on_job_changed(self, snapshot: JobSnapshot) -> None:
        if snapshot.state is JobState.DONE:
            done = f"Downloaded {snapshot.spec.model_path.name}; it is in the library."
            self.show_status(f"{done} {self._token_note}".strip())
            self._token_note = ""
            filenames = tuple(file.filename for file in snapshot.spec.files)
            self.repo_view.mark_downloaded(snapshot.spec.repo_id, filenames)
            self.rescan()
        elif snapshot.state is JobState.FAILED and snapshot.needs_token:
            job_id = snapshot.job_id
            self.tokens.ask(
                snapshot.error or "A token is needed.", then=lambda: self._resume(job_id)
            )
        elif snapshot.state is JobState.FAILED:
            # The row says why, at length; repeated here it took three more lines.
            name = snapshot.spec.model_path.name
            self.show_status(f"The download of {name} failed: see Downloads.", error=True)
            self._status_job = snapshot.job_id
        elif snapshot.job_id == self._status_job:
            # Retried: its old failure no longer describes it.
            self.show_status("")

    def _pause(self, job_id: int) -> None:
        if self.downloads is not None:
            self._work.spawn(self._queue_call(self.downloads.pause, job_id))

    def _resume(self, job_id: int) -> None:
        if self.downloads is not None:
            self._work.spawn(self._queue_call(self.downloads.resume, job_id))

    def _cancel(self, job_id: int) -> None:
        if self.downloads is not None:
            self._work.spawn(self._queue_call(self.downloads.cancel, job_id))

    def _forget(self, job_id: int) -> None:
        if self.downloads is not None:
            self._work.spawn(self._queue_call(self.downloads.forget, job_id))

    async def _queue_call(self, action: Callable[[int], None], job_id: int) -> None:
        # The queue writes its state file (and a cancel deletes data): not on this thread.
        await self._work.run(action, job_id)
        self.refresh_downloads()

    def _on_token_saved(self, _token: str, account: str, stored: bool) -> None:
        if self.downloads is not None:
            self.downloads.set_client(self.client())
        if stored:
            self.show_status(f"Token of {account} saved in the system keyring.")
        else:
            self._token_note = (
                f"Token of {account} is used until SpecChat closes: this system has no "
                "keyring to keep it (set HF_TOKEN to have it every time)."
            )
            self.show_status(self._token_note)

    # ----- closing ----------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop the transfers (unfinished ones resume next time) and the threads."""
        if self._closed:
            return
        downloads = self.downloads
        if shiboken6.isValid(self._queue_timer):  # the window may be gone already
            self._queue_timer.stop()
        if downloads is not None:
            await self._work.run(downloads.shutdown)
        self._work.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        # Closing the page only hides it: downloads go on while the chat is used.
        event.accept()


def _files_of(entries: list[ModelEntry]) -> set[tuple[Path, int]]:
    return {(entry.path, entry.file_size) for entry in entries}


def default_queue_factory(client: HubClient) -> DownloadQueue:
    """The app's queue: one download at a time, remembered in the app's data folder."""
    return DownloadQueue(DownloadManager(client, settings=TransferSettings()), default_queue_file())
