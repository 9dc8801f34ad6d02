"""A local stand-in for the Hugging Face Hub's upload API, enough for huggingface_hub 2.4's `create_repo`,
`create_branch` and `create_commit` / `upload_folder` without Xet (set HF_HUB_DISABLE_XET=1 in the client).

    with FakeHub(token="hf_test") as hub:      # threads on 127.0.0.1, a free port; stops itself after `lifetime` s
        ... HF_ENDPOINT=hub.url ... push ...
        hub.files("user/model", "main")       # {path: bytes} of a branch after the commits
        hub.commits("user/model")             # [{oid, revision, summary, description, paths, files}], oldest first

Endpoints (what the client calls, read from huggingface_hub 2.4's hf_api.py, _commit_api.py and lfs.py):

- ``GET /api/agent-harnesses``: the registry huggingface_hub fetches (at most daily) to name AI agents in its
  user-agent header → an empty registry;
- ``POST /api/repos/create``: JSON ``{name, organization, visibility?, type?}`` → ``{url}``; 409 (with ``url``) when
  the repository exists, which `create_repo(exist_ok=True)` accepts;
- ``GET /api/{type}s/{repo}[/revision/{revision}]`` (`repo_info`): what `create_repo(exist_ok=True)` asks after a
  401/403, and `create_commit` when no file changed → ``{id, sha, private, siblings}``;
- ``POST /api/{type}s/{repo}/branch/{branch}``: JSON ``{startingPoint?}``; 409 when the branch exists;
- ``POST /api/validate-yaml``: JSON ``{content, repoType}`` → ``{errors, warnings}`` (400 when the README's YAML
  front matter does not parse to a mapping);
- ``POST /api/{type}s/{repo}/preupload/{revision}``: ``{files: [{path, sample, size}]}`` → ``uploadMode`` "lfs" for
  ``*.safetensors`` / ``*.bin`` / files over 10 MB, "regular" otherwise;
- ``POST /{repo}.git/info/lfs/objects/batch`` (git-lfs batch API) → an ``upload`` and a ``verify`` action per new
  object, pointing at ``PUT /__lfs__/{oid}`` (the sha256 of the body must equal the oid) and
  ``POST /__lfs__/{oid}/verify``;
- ``POST /api/{type}s/{repo}/commit/{revision}`` (NDJSON: a ``header`` line, then ``file`` lines with base64 content,
  ``lfsFile`` lines naming uploaded objects, ``deletedFile`` / ``deletedFolder``) → ``{commitUrl, commitOid,
  pullRequestUrl}``; ``?create_pr=1`` commits to a new ``refs/pr/N``.

With `token`, every ``/api/`` and LFS batch request must carry ``Authorization: Bearer <token>`` (401 otherwise); the
LFS object URLs, like pre-signed storage URLs, need none. Anything else gets a 404 and is listed in `unexpected`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

LFS_THRESHOLD = 10 * 1024 * 1024
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx")
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
REPO = r"(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)"
TYPE = r"(?P<type>model|dataset|space)s"


@dataclass
class Repo:
    repo_type: str
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)
    pull_requests: int = 0


class FakeHub:
    """The fake Hub's state and its server. Use as a context manager; `url` is the endpoint."""

    def __init__(self, token: str | None = None, lifetime: float = 180.0, namespace: str = "user"):
        self.token, self.lifetime, self.namespace = token, lifetime, namespace
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.unexpected: list[str] = []
        self.errors: list[str] = []  # protocol violations the server noticed (bad sha256, unknown LFS object, ...)
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self._url = ""
        self._timer: threading.Timer | None = None

    # ---- lifecycle
    @property
    def url(self) -> str:
        """The endpoint (it stays readable after `stop`)."""
        return self._url

    def start(self) -> "FakeHub":
        hub = self

        class Handler(FakeHubHandler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        self._url = f"http://{host}:{port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                         name="fake-hub").start()
        self._timer = threading.Timer(self.lifetime, self.stop)  # bounded: never outlives a stuck test
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- what the tests read
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].branches[revision])

    def commits(self, repo_id: str) -> list[dict]:
        return list(self.repos[repo_id].commits)


class FakeHubHandler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.0"  # one request per connection: simple and enough for the client

    def log_message(self, format, *args) -> None:  # quiet test output
        pass

    # ---- plumbing
    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, payload=None, headers: dict | None = None,
              content_type: str = "application/json") -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, message: str, code: str | None = None, **extra) -> None:
        self.reply(status, {"error": message, **extra}, {"X-Error-Code": code} if code else None)

    def authorized(self) -> bool:
        token = self.hub.token
        if token is None or self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self.error(401, "Invalid credentials in Authorization header")
        return False

    def do_GET(self) -> None:
        self.route("GET")

    def do_PUT(self) -> None:
        self.route("PUT")

    def do_POST(self) -> None:
        self.route("POST")

    def route(self, method: str) -> None:
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        with self.hub.lock:
            self.hub.requests.append((method, path))
        routes = [
            ("GET", r"/api/agent-harnesses", self.agent_harnesses),
            ("POST", r"/api/repos/create", self.create_repo),
            ("GET", rf"/api/{TYPE}/{REPO}(?:/revision/(?P<revision>[^/]+))?", self.repo_info),
            ("POST", rf"/api/{TYPE}/{REPO}/branch/(?P<branch>[^/]+)", self.create_branch),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("POST", rf"/api/{TYPE}/{REPO}/preupload/(?P<revision>[^/]+)", self.preupload),
            ("POST", rf"/(?:(?P<prefix>datasets|spaces)/)?{REPO}\.git/info/lfs/objects/batch", self.lfs_batch),
            ("PUT", r"/__lfs__/(?P<oid>[0-9a-f]{64})", self.lfs_put),
            ("POST", r"/__lfs__/(?P<oid>[0-9a-f]{64})/verify", self.lfs_verify),
            ("POST", rf"/api/{TYPE}/{REPO}/commit/(?P<revision>[^/]+)", self.commit),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                try:
                    handler(query=query, **{key: unquote(value) for key, value in match.groupdict().items()
                                             if value is not None})
                except Exception as error:  # noqa: BLE001 - report, never hang the client
                    with self.hub.lock:
                        self.hub.errors.append(f"{method} {path}: {type(error).__name__}: {error}")
                    self.error(500, f"fake hub failure: {error}")
                return
        with self.hub.lock:
            self.hub.unexpected.append(f"{method} {self.path}")
        self.error(404, f"fake hub: no route for {method} {path}")

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or repo.repo_type != repo_type:
            self.error(404, "Repository not found", "RepoNotFound")
            return None
        return repo

    # ---- endpoints
    def agent_harnesses(self, query) -> None:
        self.reply(200, {"standardEnvVars": [], "harnesses": {}})  # the user-agent registry, fetched once a day

    def create_repo(self, query) -> None:
        if not self.authorized():
            return
        payload = json.loads(self.body() or b"{}")
        repo_id = f"{payload.get('organization') or self.hub.namespace}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        with self.hub.lock:
            if repo_id in self.hub.repos:
                return self.error(409, "You already created this model repo", url=url)
            repo = Repo(payload.get("type") or "model", payload.get("visibility") == "private")
            repo.branches["main"] = {".gitattributes": GITATTRIBUTES}
            repo.commits.append({"oid": uuid.uuid4().hex + "00000000", "revision": "main", "summary": "initial commit",
                                 "description": "", "paths": [".gitattributes"],
                                 "files": dict(repo.branches["main"])})
            self.hub.repos[repo_id] = repo
        self.reply(200, {"url": url, "name": repo_id, "id": uuid.uuid4().hex[:24]})

    def repo_info(self, query, type, repo, revision="main") -> None:
        if not self.authorized():
            return
        with self.hub.lock:
            found = self.repo(repo, type)
            if found is None:
                return
            if revision not in found.branches:
                return self.error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            sha = next(commit["oid"] for commit in reversed(found.commits) if commit["revision"] == revision)
            siblings = [{"rfilename": path} for path in sorted(found.branches[revision])]
        self.reply(200, {"id": repo, "sha": sha, "private": found.private, "siblings": siblings})

    def create_branch(self, query, type, repo, branch) -> None:
        if not self.authorized():
            return
        payload = json.loads(self.body() or b"{}")
        with self.hub.lock:
            found = self.repo(repo, type)
            if found is None:
                return
            if branch in found.branches:
                return self.error(409, "Reference already exists")
            start = payload.get("startingPoint") or "main"
            if start not in found.branches:
                return self.error(404, f"Invalid rev id: {start}", "RevisionNotFound")
            found.branches[branch] = dict(found.branches[start])
        self.reply(200, {})

    def validate_yaml(self, query) -> None:
        if not self.authorized():
            return
        import yaml

        payload = json.loads(self.body())
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", payload.get("content", ""), flags=re.DOTALL)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else {}
            problem = None if isinstance(metadata, dict) or metadata is None else "metadata is not a mapping"
        except yaml.YAMLError as error:
            problem = f"invalid YAML: {error}"
        if problem:
            return self.reply(400, {"errors": [{"message": problem}], "warnings": []})
        warnings = [] if metadata else [{"message": "empty or missing yaml metadata in repo card"}]
        self.reply(200, {"errors": [], "warnings": warnings})

    def preupload(self, query, type, repo, revision) -> None:
        if not self.authorized():
            return
        payload = json.loads(self.body())
        with self.hub.lock:
            found = self.repo(repo, type)
            if found is None:
                return
            if revision not in found.branches:
                return self.error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        files = []
        for item in payload["files"]:
            lfs = item["path"].endswith(LFS_SUFFIXES) or item["size"] > LFS_THRESHOLD
            base64.b64decode(item["sample"], validate=True)  # the client sends the first 512 bytes
            files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": None})
        self.reply(200, {"files": files, "commitOid": found.commits[-1]["oid"]})

    def lfs_batch(self, query, repo, prefix=None) -> None:
        if not self.authorized():
            return
        payload = json.loads(self.body())
        assert payload["operation"] == "upload" and payload.get("hash_algo", "sha256") == "sha256", payload
        objects = []
        for item in payload["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self.hub.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/__lfs__/{item['oid']}"},
                    "verify": {"href": f"{self.hub.url}/__lfs__/{item['oid']}/verify"},
                }
            objects.append(entry)
        self.reply(200, {"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def lfs_put(self, query, oid) -> None:
        data = self.body()
        if hashlib.sha256(data).hexdigest() != oid:
            with self.hub.lock:
                self.hub.errors.append(f"LFS upload {oid}: the body's sha256 differs")
            return self.error(400, "sha256 mismatch")
        with self.hub.lock:
            self.hub.lfs_objects[oid] = data
        self.reply(200, None)

    def lfs_verify(self, query, oid) -> None:
        payload = json.loads(self.body())
        stored = self.hub.lfs_objects.get(oid)
        if stored is None or payload.get("oid") != oid or payload.get("size") != len(stored):
            return self.error(404, "object not found or size mismatch")
        self.reply(200, {})

    def commit(self, query, type, repo, revision) -> None:
        if not self.authorized():
            return
        if "x-ndjson" not in self.headers.get("Content-Type", ""):
            return self.error(400, "the commit body must be application/x-ndjson")
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            return self.error(400, "the first NDJSON line must be the header")
        header = lines[0]["value"]
        with self.hub.lock:
            found = self.repo(repo, type)
            if found is None:
                return
            if revision not in found.branches:
                return self.error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            pull_request = None
            if query.get("create_pr") == ["1"]:
                found.pull_requests += 1
                pull_request = found.pull_requests
                found.branches[f"refs/pr/{pull_request}"] = dict(found.branches[revision])
                revision = f"refs/pr/{pull_request}"
            files = dict(found.branches[revision])
            paths = []
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    assert value.get("encoding") == "base64", value
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "lfsFile":
                    data = self.hub.lfs_objects.get(value["oid"])
                    if data is None or len(data) != value["size"] or value.get("algo", "sha256") != "sha256":
                        self.hub.errors.append(f"commit names LFS object {value['oid']} that was not uploaded")
                        return self.error(422, f"LFS object {value['oid']} not found")
                    files[value["path"]] = data
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {path: data for path, data in files.items() if not path.startswith(prefix)}
                else:
                    return self.error(400, f"unknown commit operation {key}")
                paths.append(value["path"])
            oid = hashlib.sha1(json.dumps([header, paths, len(found.commits)]).encode()).hexdigest()
            found.branches[revision] = files
            found.commits.append({"oid": oid, "revision": revision, "summary": header.get("summary"),
                                  "description": header.get("description"), "paths": paths, "files": files})
        prefix = "" if type == "model" else f"{type}s/"
        self.reply(200, {
            "success": True,
            "commitOid": oid,
            "commitUrl": f"{self.hub.url}/{prefix}{repo}/commit/{oid}",
            "pullRequestUrl": f"{self.hub.url}/{prefix}{repo}/discussions/{pull_request}" if pull_request else None,
        })
