"""A small Hub-compatible HTTP server, so upload tests run the real ``huggingface_hub`` client unmodified.

No installable local Hub server works here, so this one implements just what
``HfApi.create_repo(exist_ok=True)`` + ``HfApi.upload_folder`` call on the classic (non-xet) path,
``HF_HUB_DISABLE_XET=1``, of huggingface_hub 2.4. The list comes from reading the client
(``hf_api.py``: ``create_repo``, ``upload_folder``, ``_validate_yaml``, ``create_commit``,
``repo_info``; ``_commit_api.py``: ``_fetch_upload_modes``, ``_upload_files``, ``_send_commit``;
``lfs.py``: ``post_lfs_batch_info``, ``lfs_upload``; ``utils/_detect_agent.py``) and from logging
the requests of real pushes; the tests assert that no request falls outside it (``unhandled``):

- ``GET /api/agent-harnesses``: a registry the client fetches for its user-agent header.
- ``POST /api/repos/create``: 200 with the repo URL, or 409 (with the URL) when it exists.
- ``POST /api/validate-yaml``: the README's YAML front matter must parse to a mapping (the
  client sends it twice per upload: in ``upload_folder`` and again in ``create_commit``).
- ``POST /api/models/{repo_id}/preupload/{revision}``: "lfs" or "regular" per file, plus the oid
  of the file already stored at that path, which lets the client skip unchanged files.
- ``POST /{repo_id}.git/info/lfs/objects/batch``: git-lfs batch API, "basic" transfer; an object
  already stored gets no actions, so the client skips its upload.
- ``PUT /lfs-objects/{oid}``: the upload href the batch hands out (on the real Hub a presigned
  storage URL, sent without credentials); the body must hash to the oid (sha256).
- ``POST /lfs-objects/{oid}/verify``: the verify href.
- ``POST /api/models/{repo_id}/commit/{revision}``: NDJSON commit (header, base64 "file",
  "lfsFile" by oid, "deletedFile", "deletedFolder").
- ``GET /api/models/{repo_id}/revision/{revision}``: repo info; the client asks for it when a
  commit would be empty, to return the current head.
- ``GET /api/models/{repo_id}``: repo info too; ``create_repo(exist_ok=True)`` asks for it when
  the create call is refused (401/402/403), to tell "exists" from "no rights".

Simplifications: model repos only, one branch (``main``), no pull requests (refused with an
error), no ``.gitignore`` filtering (no file is marked ignored), one account (``user``) whose only
valid token is ``token``; every route but the storage PUT and the harness registry needs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# What the Hub stores with git-lfs: the suffixes of its default .gitattributes that a model folder
# can hold, files of 10 MiB or more, and binary files (a NUL byte in the sample the client sends).
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".npy", ".npz")
LFS_MIN_SIZE = 10 * 1024 * 1024
_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
_OID = r"(?P<oid>[0-9a-f]{64})"
_REV = r"(?P<rev>[^/]+)"


class HubError(Exception):
    """An HTTP error answer; ``code`` becomes ``X-Error-Code``, which the client maps to its exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Repo:
    """A model repo: the files at the head of ``main`` and its commit history, oldest first."""

    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    commits: list[dict] = field(default_factory=list)

    @property
    def head(self) -> str | None:
        return self.commits[-1]["oid"] if self.commits else None

    def oid_of(self, path: str) -> str | None:
        """The oid the client compares with its local one: sha256 for LFS files, git blob sha1 otherwise."""
        if path not in self.files:
            return None
        data = self.files[path]
        if path in self.lfs_paths:
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LocalHub:
    """The server, its store and its request log. ``start()`` binds a free loopback port."""

    def __init__(self, token: str = "hf_local_test_token", user: str = "local-user"):
        self.token, self.user = token, user
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.calls: list[str] = []  # one entry of ``ROUTES`` per request, in order
        self.unhandled: list[str] = []  # "METHOD path" of requests no route matched
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalHub":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # Endpoints: each takes the parsed request and returns (status, JSON body).

    def agent_harnesses(self, **_) -> tuple[int, dict]:
        """The client fetches this registry (once a day, cached in HF_HOME) for its user agent."""
        return 200, {"standardEnvVars": [], "harnesses": {}}

    def create_repo(self, body: dict, **_) -> tuple[int, dict]:
        if body.get("type", "model") != "model":
            raise HubError(400, "this server stores model repos only")
        repo_id = f"{body.get('organization') or self.user}/{body['name']}"
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": url}
        self.repos[repo_id] = Repo(private=body.get("visibility") == "private")
        return 200, {"url": url, "name": repo_id}

    def validate_yaml(self, body: dict, **_) -> tuple[int, dict]:
        match = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", body.get("content", ""), re.DOTALL)
        if match:
            try:
                metadata = yaml.safe_load(match.group(1))
            except yaml.YAMLError as err:
                return 400, {"errors": [{"message": f"YAML does not parse: {err}"}]}
            if metadata is not None and not isinstance(metadata, dict):
                return 400, {"errors": [{"message": "metadata must be a YAML mapping"}]}
        return 200, {"errors": [], "warnings": []}

    def preupload(self, body: dict, repo: str, rev: str, **_) -> tuple[int, dict]:
        stored = self._repo(repo, rev)
        files = []
        for entry in body["files"]:
            sample = base64.b64decode(entry["sample"])
            lfs = entry["path"].endswith(LFS_SUFFIXES) or entry["size"] >= LFS_MIN_SIZE or b"\0" in sample
            files.append({
                "path": entry["path"],
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
                "oid": stored.oid_of(entry["path"]),
            })
        return 200, {"files": files, "commitOid": stored.head}

    def lfs_batch(self, body: dict, repo: str, **_) -> tuple[int, dict]:
        self._repo(repo, body.get("ref", {}).get("name", "main"))
        if body.get("operation") != "upload" or "basic" not in body.get("transfers", ["basic"]):
            raise HubError(400, "only the 'upload' operation with the 'basic' transfer is supported")
        objects = []
        for obj in body["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            stored = self.lfs_objects.get(obj["oid"])
            if stored is None or len(stored) != obj["size"]:
                href = f"{self.url}/lfs-objects/{obj['oid']}"
                answer["actions"] = {"upload": {"href": href}, "verify": {"href": f"{href}/verify"}}
            objects.append(answer)
        return 200, {"transfer": "basic", "objects": objects}

    def lfs_upload(self, raw: bytes, oid: str, **_) -> tuple[int, dict]:
        if hashlib.sha256(raw).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not hash to {oid}")
        self.lfs_objects[oid] = raw
        return 200, {}

    def lfs_verify(self, body: dict, oid: str, **_) -> tuple[int, dict]:
        if oid not in self.lfs_objects or len(self.lfs_objects[oid]) != body.get("size"):
            raise HubError(404, f"LFS object {oid} of size {body.get('size')} was not uploaded")
        return 200, {}

    def commit(self, raw: bytes, query: dict, repo: str, rev: str, **_) -> tuple[int, dict]:
        stored = self._repo(repo, rev)
        if query.get("create_pr"):
            raise HubError(400, "pull requests are not supported by this server")
        lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with a 'header' line")
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, stored.head):
            raise HubError(412, f"parent commit {header['parentCommit']} is not the head {stored.head}")
        files, lfs_paths = dict(stored.files), set(stored.lfs_paths)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"]
            if key == "file":
                files[path] = base64.b64decode(value["content"])
                lfs_paths.discard(path)
            elif key == "lfsFile":
                data = self.lfs_objects.get(value["oid"])
                if data is None or len(data) != value.get("size", len(data)):
                    raise HubError(400, f"LFS object {value['oid']} for {path} was not uploaded")
                files[path] = data
                lfs_paths.add(path)
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                for name in [name for name in files if name.startswith(path.rstrip("/") + "/")]:
                    del files[name]
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        record = {"repo": repo, "summary": header.get("summary", ""), "description": header.get("description", ""),
                  "parent": stored.head, "paths": sorted(line["value"]["path"] for line in lines[1:])}
        record["oid"] = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()
        stored.files, stored.lfs_paths = files, lfs_paths & files.keys()
        stored.commits.append(record)
        commit_url = f"{self.url}/{repo}/commit/{record['oid']}"
        return 200, {"success": True, "commitOid": record["oid"], "commitUrl": commit_url, "pullRequestUrl": None}

    def repo_info(self, repo: str, rev: str = "main", **_) -> tuple[int, dict]:
        stored = self._repo(repo, rev)
        siblings = [{"rfilename": path} for path in sorted(stored.files)]
        return 200, {"id": repo, "sha": stored.head, "private": stored.private, "siblings": siblings}

    def _repo(self, repo_id: str, rev: str) -> Repo:
        if repo_id not in self.repos:
            raise HubError(404, f"Repository Not Found for url: {repo_id}", "RepoNotFound")
        if unquote(rev) != "main":
            raise HubError(404, f"Revision Not Found: {rev} (this server has only 'main')", "RevisionNotFound")
        return self.repos[repo_id]


# (method, path as the client's code writes it, pattern, LocalHub method, needs the token)
_ROUTES = [
    ("GET", "/api/agent-harnesses", r"/api/agent-harnesses", "agent_harnesses", False),
    ("POST", "/api/repos/create", r"/api/repos/create", "create_repo", True),
    ("POST", "/api/validate-yaml", r"/api/validate-yaml", "validate_yaml", True),
    ("POST", "/api/models/{repo_id}/preupload/{revision}", rf"/api/models/{_REPO}/preupload/{_REV}", "preupload", True),
    ("POST", "/{repo_id}.git/info/lfs/objects/batch", rf"/{_REPO}\.git/info/lfs/objects/batch", "lfs_batch", True),
    ("PUT", "/lfs-objects/{oid}", rf"/lfs-objects/{_OID}", "lfs_upload", False),
    ("POST", "/lfs-objects/{oid}/verify", rf"/lfs-objects/{_OID}/verify", "lfs_verify", True),
    ("POST", "/api/models/{repo_id}/commit/{revision}", rf"/api/models/{_REPO}/commit/{_REV}", "commit", True),
    ("GET", "/api/models/{repo_id}", rf"/api/models/{_REPO}", "repo_info", True),
    ("GET", "/api/models/{repo_id}/revision/{revision}", rf"/api/models/{_REPO}/revision/{_REV}", "repo_info", True),
]
ROUTES = [f"{method} {path}" for method, path, *_ in _ROUTES]


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, finds its route, answers JSON; one store-wide lock keeps requests atomic."""

    hub: LocalHub
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def log_message(self, format, *args):  # the request log is ``hub.calls``; keep test output clean
        pass

    def _dispatch(self) -> None:
        raw = self._read_body()
        url = urlsplit(self.path)
        for method, route, pattern, name, needs_token in _ROUTES:
            match = re.fullmatch(pattern, url.path) if method == self.command else None
            if match:
                break
        else:
            self.hub.unhandled.append(f"{self.command} {url.path}")
            return self._answer(404, {"error": f"no such endpoint on this test server: {url.path}"})
        self.hub.calls.append(f"{method} {route}")
        try:
            if needs_token and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
                raise HubError(401, "Invalid credentials in Authorization header")
            content_type = self.headers.get("Content-Type", "").split(";")[0]
            is_json = content_type == "application/json" or content_type.endswith("+json")
            body = json.loads(raw) if raw and is_json else {}
            with self.hub.lock:
                status, answer = getattr(self.hub, name)(
                    body=body, raw=raw, query=parse_qs(url.query), **match.groupdict()
                )
        except HubError as err:
            return self._answer(err.status, {"error": err.message}, err.code)
        except (KeyError, TypeError, ValueError) as err:  # a 400, not a 500 the client would retry
            return self._answer(400, {"error": f"malformed request: {err!r}"})
        self._answer(status, answer)

    def _read_body(self) -> bytes:
        """The body, whether sent with ``Content-Length`` or chunked (the client streams file uploads)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, body: dict, error_code: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_code:
            self.send_header("X-Error-Code", error_code)
        self.end_headers()
        self.wfile.write(data)
