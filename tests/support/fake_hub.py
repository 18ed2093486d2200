"""A local HTTP server that speaks enough of the Hugging Face Hub's protocol for tests.

Routes (as huggingface_hub 2.4 and ``core.hub`` call them):

- ``GET /api/models``: search (``filter``, ``search``, ``author``, ``sort``,
  ``limit``) with ``Link: <...>; rel="next"`` pagination.
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: repo info;
  ``blobs=True`` adds each file's size, ``blobId`` and ``lfs`` (sha256, size).
- ``GET /api/models/{repo}/tree/{rev}``: file list.
- ``HEAD/GET /{repo}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag``; LFS files
  answer 302 with ``X-Linked-Etag``/``X-Linked-Size`` to ``/_lfs/...``, which serves
  the bytes with ``Range`` support (206 + ``Content-Range``).
- Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound,
  GatedRepo). ``X-Xet-Hash`` is never sent, so clients use plain HTTP.

Knobs for failure tests: ``rate_limited``, per-file ``corrupt`` and ``listed_size``
(the size the API reports, which may differ from the bytes served), ``rules``
(``drop_after``: close the connection after N bytes, ``drop_count`` times;
``hold_after``: stall after N bytes until ``release()``), ``faults``: a queue of
per-request misbehaviours of a file's content route (see ``Fault``),
``stall_api`` (hold the next repository-info request), ``new_commit`` (the
repository gets a new commit, old ones vanish as after a history squash),
``change_in_place`` (new bytes under the same commit, as a mirror might serve),
and ``bytes_served`` per file.

For the window tests: ``throttle_bytes_per_s`` slows every file body down so a
download takes a few seconds, ``GET /api/whoami-v2`` answers for the tokens in
``allowed_tokens`` and ``known_tokens`` (401 for any other), and search sorts by
``downloads``, ``likes`` or ``lastModified``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

HOLD_SAFETY_TIMEOUT_S = 10.0


@dataclass
class FakeFile:
    content: bytes
    lfs: bool = True
    corrupt: bool = False
    # The size the API lists, when a test wants it to disagree with the content.
    listed_size: int | None = None

    @property
    def size(self) -> int:
        return len(self.content) if self.listed_size is None else self.listed_size

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def git_blob_id(self) -> str:
        header = f"blob {len(self.content)}\0".encode()
        return hashlib.sha1(header + self.content, usedforsecurity=False).hexdigest()

    def served_bytes(self) -> bytes:
        if not self.corrupt:
            return self.content
        middle = len(self.content) // 2
        return (
            self.content[:middle]
            + bytes([self.content[middle] ^ 0xFF])
            + self.content[middle + 1 :]
        )


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, FakeFile]
    downloads: int = 0
    likes: int = 0
    gated: bool = False
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    tags: list[str] = field(default_factory=lambda: ["gguf"])
    last_modified: str = "2026-10-01T12:00:00.000Z"


@dataclass
class ServeRule:
    """Misbehaviour for one file's content route."""

    drop_after: int | None = None
    drop_count: int = 1
    hold_after: int | None = None


@dataclass
class Fault:
    """What the content route does to the next ``times`` requests for one file.

    Attributes:
        status: answer with this status (and ``headers``) instead of the bytes.
        drop_after: send this many body bytes, then close the connection.
        stall_after: send this many body bytes, then nothing until ``release()``.
        extra: bytes sent after the file's content, counted in Content-Length.
        no_length: send no Content-Length: the body ends when the connection closes.
        ignore_range: answer a Range request with 200 and the whole file.
        range_shift: answer a Range request from this many bytes later, saying so.
        redirect_loop: answer 302 to the same URL.
        then: called after the answer is sent (e.g. to make a new commit).
    """

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    stall_after: int | None = None
    extra: bytes = b""
    no_length: bool = False
    ignore_range: bool = False
    range_shift: int = 0
    redirect_loop: bool = False
    then: Callable[[], None] | None = None
    times: int = 1


class FakeHub:
    """The server and its state; use as a context manager or call ``close()``."""

    def __init__(self, page_size: int = 50) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.allowed_tokens: set[str] = set()
        # Valid tokens of accounts that were not granted the gated repositories.
        self.known_tokens: set[str] = set()
        self.throttle_bytes_per_s: float | None = None
        self.rate_limited = False
        # Hold the next repository-info request (the download's metadata) until release().
        self.stall_api = False
        self.page_size = page_size
        self.rules: dict[str, ServeRule] = {}
        self.faults: dict[str, list[Fault]] = {}
        # Request headers (lower-case names) of every GET for a file's bytes.
        self.content_requests: dict[str, list[dict[str, str]]] = {}
        self.bytes_served: dict[str, int] = {}
        # (method, path, headers with lower-case names) of every request
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.held = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._streams_done = threading.Condition(self._lock)
        self._streaming = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        # A short poll interval makes shutdown() quick in each test's teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-hub", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        downloads: int = 0,
        gated: bool = False,
        lfs: bool = True,
        likes: int = 0,
        license: str | None = None,
        last_modified: str | None = None,
    ) -> FakeRepo:
        repo = FakeRepo(
            repo_id,
            {name: FakeFile(content, lfs=lfs) for name, content in files.items()},
            downloads=downloads,
            likes=likes,
            gated=gated,
        )
        if license:
            repo.tags.append(f"license:{license}")
        if last_modified:
            repo.last_modified = last_modified
        self.repos[repo_id] = repo
        return repo

    def file(self, repo_id: str, filename: str) -> FakeFile:
        return self.repos[repo_id].files[filename]

    def new_commit(self, repo_id: str, files: dict[str, bytes]) -> str:
        """Commit new contents; the old commit can no longer be resolved (a squash)."""
        repo = self.repos[repo_id]
        for name, content in files.items():
            repo.files[name] = FakeFile(content, lfs=repo.files[name].lfs)
        repo.sha = hashlib.sha1(repo.sha.encode(), usedforsecurity=False).hexdigest()
        return repo.sha

    def change_in_place(self, repo_id: str, filename: str, content: bytes) -> None:
        """New bytes under the same commit, as a mirror serving mutable files might."""
        self.repos[repo_id].files[filename].content = content

    def next_fault(self, filename: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(filename)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def release(self) -> None:
        """Let a held transfer continue."""
        self._release.set()

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until no response body is being written. A cancelled download's
        handler may go on writing (and counting) the rest of a released body into
        the closed connection for a moment; byte counts are only stable after it."""
        with self._streams_done:
            return self._streams_done.wait_for(lambda: self._streaming == 0, timeout)

    def stream_started(self) -> None:
        with self._lock:
            self._streaming += 1

    def stream_ended(self) -> None:
        with self._streams_done:
            self._streaming -= 1
            self._streams_done.notify_all()

    def count_served(self, filename: str, n_bytes: int) -> None:
        with self._lock:
            self.bytes_served[filename] = self.bytes_served.get(filename, 0) + n_bytes

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_released(self) -> None:
        self.held.set()
        self._release.wait(HOLD_SAFETY_TIMEOUT_S)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: FakeHub


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    # -- plumbing ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def _dispatch(self, send_body: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.hub.requests.append((self.command, self.path, headers))
        try:
            if self.hub.rate_limited:
                self._error(429, None, "rate limited", {"Retry-After": "30"})
            elif path == "/api/models":
                self._search(query)
            elif path == "/api/whoami-v2":
                self._whoami()
            elif path.startswith("/api/models/"):
                if self.hub.stall_api:
                    self.hub.stall_api = False
                    self.hub.wait_released()
                self._api_repo(path.removeprefix("/api/models/"), query)
            elif path.startswith("/_lfs/"):
                self._lfs(path.removeprefix("/_lfs/"), send_body)
            elif "/resolve/" in path:
                self._resolve(path.lstrip("/"), send_body)
            else:
                self._error(404, None, "no such route")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away, as in the cancel tests

    def _json(self, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(
        self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _token(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None

    # -- API ------------------------------------------------------------------------

    def _search(self, query: dict[str, list[str]]) -> None:
        filters = query.get("filter", [])
        search = (query.get("search") or [""])[0].lower()
        author = (query.get("author") or [None])[0]
        limit = int((query.get("limit") or ["1000"])[0])
        offset = int((query.get("cursor") or ["0"])[0])
        hits = [
            repo
            for repo in self.hub.repos.values()
            if all(tag in repo.tags for tag in filters)
            and search in repo.repo_id.lower()
            and (author is None or repo.repo_id.split("/")[0] == author)
        ]
        sort = (query.get("sort") or [""])[0]
        if sort == "downloads":
            hits.sort(key=lambda repo: -repo.downloads)
        elif sort == "likes":
            hits.sort(key=lambda repo: -repo.likes)
        elif sort == "lastModified":
            hits.sort(key=lambda repo: repo.last_modified, reverse=True)
        page_size = min(limit, self.hub.page_size)
        page = hits[offset : offset + page_size]
        headers = {}
        if offset + page_size < len(hits):
            kept = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
            next_query = "&".join(f"{k}={quote(v)}" for k, v in kept)
            next_url = f"{self.hub.url}/api/models?{next_query}&cursor={offset + page_size}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        items = [
            {
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "downloads": repo.downloads,
                "likes": repo.likes,
                "gated": "manual" if repo.gated else False,
                "private": False,
                "tags": repo.tags,
                "lastModified": repo.last_modified,
            }
            for repo in page
        ]
        self._json(items, headers)

    def _whoami(self) -> None:
        token = self._token()
        if token is None or token not in self.hub.allowed_tokens | self.hub.known_tokens:
            self._error(401, None, "Invalid credentials in Authorization header")
            return
        self._json({"type": "user", "name": "tester", "auth": {"type": "access_token"}})

    def _split_repo(self, rest: str) -> tuple[FakeRepo | None, str]:
        owner, _, remainder = rest.partition("/")
        name, _, tail = remainder.partition("/")
        return self.hub.repos.get(f"{owner}/{name}"), tail

    def _api_repo(self, rest: str, query: dict[str, list[str]]) -> None:
        repo, tail = self._split_repo(rest)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if tail.startswith("revision/"):
            if tail.removeprefix("revision/") not in ("main", repo.sha):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return
        elif tail.startswith("tree/"):
            self._json(
                [
                    {
                        "type": "file",
                        "path": name,
                        "size": len(file.content),
                        "oid": file.git_blob_id,
                        **(
                            {
                                "lfs": {
                                    "oid": file.sha256,
                                    "size": len(file.content),
                                    "pointerSize": 134,
                                }
                            }
                            if file.lfs
                            else {}
                        ),
                    }
                    for name, file in repo.files.items()
                ]
            )
            return
        with_blobs = (query.get("blobs") or ["false"])[0].lower() == "true"
        siblings: list[dict[str, Any]] = []
        for name, file in repo.files.items():
            sibling: dict[str, Any] = {"rfilename": name}
            if with_blobs:
                sibling["size"] = file.size
                sibling["blobId"] = file.git_blob_id
                if file.lfs:
                    sibling["lfs"] = {
                        "sha256": file.sha256,
                        "size": file.size,
                        "pointerSize": 134,
                    }
            siblings.append(sibling)
        self._json(
            {
                "id": repo.repo_id,
                "sha": repo.sha,
                "downloads": repo.downloads,
                "likes": repo.likes,
                "gated": "manual" if repo.gated else False,
                "private": False,
                "tags": repo.tags,
                "siblings": siblings,
            }
        )

    # -- files ----------------------------------------------------------------------

    def _resolve(self, path: str, send_body: bool) -> None:
        repo, tail = self._split_repo(path)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return
        revision, _, filename = tail.removeprefix("resolve/").partition("/")
        if revision not in ("main", repo.sha):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        if repo.gated:
            token = self._token()
            if token is None:
                message = (
                    f"Access to model {repo.repo_id} is restricted. You must be authenticated."
                )
                self._error(401, "GatedRepo", message)
                return
            if token not in self.hub.allowed_tokens:
                message = f"Access to model {repo.repo_id} is restricted: not authorized."
                self._error(403, "GatedRepo", message)
                return
        file = repo.files.get(filename)
        if file is None:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        common = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if file.lfs:
            self.send_response(302)
            self.send_header("Location", f"/_lfs/{repo.repo_id}/{quote(filename)}")
            self.send_header("X-Linked-Etag", f'"{file.sha256}"')
            self.send_header("X-Linked-Size", str(len(file.content)))
            self.send_header("ETag", f'"{file.git_blob_id}"')
            self.send_header("Content-Length", "0")
            for key, value in common.items():
                self.send_header(key, value)
            self.end_headers()
            return
        self._send_content(filename, file, send_body, {**common, "ETag": f'"{file.git_blob_id}"'})

    def _lfs(self, path: str, send_body: bool) -> None:
        repo, filename = self._split_repo(path)
        file = repo.files.get(filename) if repo else None
        if file is None:
            self._error(404, None, "no such object")
            return
        self._send_content(filename, file, send_body, {"ETag": f'"{file.sha256}"'})

    def _send_content(
        self, filename: str, file: FakeFile, send_body: bool, headers: dict[str, str]
    ) -> None:
        fault = (self.hub.next_fault(filename) if send_body else None) or Fault()
        if send_body:
            received = {key.lower(): value for key, value in self.headers.items()}
            self.hub.content_requests.setdefault(filename, []).append(received)
        try:
            self._send_content_with(filename, file, send_body, headers, fault)
        finally:
            if fault.then is not None:
                fault.then()

    def _send_content_with(
        self,
        filename: str,
        file: FakeFile,
        send_body: bool,
        headers: dict[str, str],
        fault: Fault,
    ) -> None:
        if fault.status is not None:
            self._error(fault.status, None, f"injected {fault.status}", fault.headers)
            return
        if fault.redirect_loop:
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = file.served_bytes()
        start = 0
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        range_applies = if_range is None or if_range == headers.get("ETag")
        if range_header and range_header.startswith("bytes=") and range_applies:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self._error(
                    416, None, "Range Not Satisfiable", {"Content-Range": f"bytes */{len(data)}"}
                )
                return
        if start and fault.ignore_range:
            start = 0
        if start:
            start = min(start + fault.range_shift, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:] + fault.extra
        self.send_header("Content-Type", "application/octet-stream")
        if fault.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not send_body:
            return
        if fault.drop_after is not None:
            self._write(filename, body[: fault.drop_after])
            self.close_connection = True
            return
        if fault.stall_after is not None:
            self._write(filename, body[: fault.stall_after])
            self.hub.wait_released()
            body = body[fault.stall_after :]
        self._stream(filename, body)

    def _stream(self, filename: str, body: bytes) -> None:
        self.hub.stream_started()
        try:
            self._stream_body(filename, body)
        finally:
            self.hub.stream_ended()

    def _stream_body(self, filename: str, body: bytes) -> None:
        rule = self.hub.rules.get(filename, ServeRule())
        limit = len(body)
        dropping = rule.drop_after is not None and rule.drop_count > 0
        if dropping and rule.drop_after is not None:
            rule.drop_count -= 1
            limit = min(limit, rule.drop_after)
        position = 0
        if rule.hold_after is not None and rule.hold_after < limit:
            self._write(filename, body[: rule.hold_after])
            position = rule.hold_after
            rule.hold_after = None
            self.hub.wait_released()
        self._write(filename, body[position:limit])
        if limit < len(body):
            self.close_connection = True  # the client sees a body shorter than announced

    def _write(self, filename: str, chunk: bytes) -> None:
        for offset in range(0, len(chunk), 64 << 10):
            piece = chunk[offset : offset + (64 << 10)]
            self.wfile.write(piece)
            self.wfile.flush()
            self.hub.count_served(filename, len(piece))
            if self.hub.throttle_bytes_per_s:
                time.sleep(len(piece) / self.hub.throttle_bytes_per_s)
