"""A fake Hugging Face Hub for the end-to-end tests of vit's Hub client: the "hub" (resolve URLs, as
huggingface.co answers them) and the "cdn" (where LFS files are redirected to, on another port, so another host
as far as a client is concerned). Standard library only.

usage: fake_hub.py REPOS_DIR LOG_FILE [--timeout SECONDS]

Prints one line, `HUB=http://127.0.0.1:P1 CDN=http://127.0.0.1:P2`, then serves until SIGTERM / SIGINT or until
--timeout seconds (default 300) have passed, so that a crashed test never leaves it running. Every request
appends one JSON line to LOG_FILE: {"server", "method", "path", "authorization"}.

Repos are folders, REPOS_DIR/<org>/<name>/<file>; a repo's commit is sha1("<org>/<name>"). *.safetensors and
*.bin are LFS files (redirected to the cdn), the rest regular git files (a relative redirect to
/api/resolve-cache/..., which serves them). The files are read at each request, so a test may change them while
the server runs.

Special repos: org "gated" answers 401 GatedRepo without `Authorization: Bearer hf_good_token`; org "error"
answers 500 to everything; the cdn cuts the body of LFS files of repos whose name contains "cut" the first time
each is asked for (full Content-Length, half the bytes, then the connection closes; later requests get it whole) and flips the last byte of those of repos whose name
contains "corrupt".
"""
import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_TOKEN = "Bearer hf_good_token"
LFS_SUFFIXES = (".safetensors", ".bin")


def commit_of(org, name):
    return hashlib.sha1(f"{org}/{name}".encode()).hexdigest()


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(file):
    return file.endswith(LFS_SUFFIXES)


def safe_part(part):
    """A path segment that stays inside REPOS_DIR."""
    return part not in ("", ".", "..") and "\\" not in part and "\0" not in part


class Hub:
    def __init__(self, repos_dir, log_file):
        self.repos_dir = os.path.abspath(repos_dir)
        self.log_file = log_file
        self.log_lock = threading.Lock()
        self.cdn_url = None  # set once the cdn is listening
        self.cut_once = set()  # sha256 of the "cut" files already cut once

    def log(self, server, method, path, authorization):
        line = json.dumps({"server": server, "method": method, "path": path, "authorization": authorization})
        with self.log_lock:
            with open(self.log_file, "a") as f:
                f.write(line + "\n")
                f.flush()

    def repo_dir(self, org, name):
        return os.path.join(self.repos_dir, org, name)

    def read_file(self, org, name, file):
        """The bytes of a repo file, or None when it is missing."""
        parts = file.split("/")
        if not all(safe_part(p) for p in parts):
            return None
        path = os.path.join(self.repo_dir(org, name), *parts)
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read()

    def find_lfs(self, sha256):
        """(bytes, repo name) of the LFS file whose content has this sha256, or None. Repos are searched in
        sorted order; the first holding the content decides the cdn's behaviour (cut, corrupt)."""
        for org in sorted(os.listdir(self.repos_dir)):
            org_dir = os.path.join(self.repos_dir, org)
            if not os.path.isdir(org_dir):
                continue
            for name in sorted(os.listdir(org_dir)):
                repo = os.path.join(org_dir, name)
                for root, dirs, files in os.walk(repo):
                    dirs.sort()
                    for file in sorted(files):
                        if not is_lfs(file):
                            continue
                        with open(os.path.join(root, file), "rb") as f:
                            data = f.read()
                        if hashlib.sha256(data).hexdigest() == sha256:
                            return data, name
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1"
    hub = None    # set per server class
    role = None   # "hub" or "cdn"

    def log_message(self, format, *args):  # quiet: the JSON log says what happened
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    def handle_request(self, head):
        self.close_connection = True
        self.hub.log(self.role, self.command, self.path, self.headers.get("Authorization"))
        path = urllib.parse.urlsplit(self.path).path
        parts = [urllib.parse.unquote(p) for p in path.split("/")[1:]]
        try:
            if self.role == "cdn":
                self.cdn(parts, head)
            else:
                self.route_hub(parts, head)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # --- responses -------------------------------------------------------------------------------------------

    def respond(self, status, headers=(), body=b"", head=False, length=None):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
            self.wfile.flush()

    def error(self, status, code, message, head, extra=()):
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if code:
            headers += [("X-Error-Code", code), ("X-Error-Message", message)]
        self.respond(status, headers + list(extra), message.encode(), head)

    # --- hub -------------------------------------------------------------------------------------------------

    def route_hub(self, parts, head):
        # /<org>/<name>/resolve/<revision>/<file...>
        if len(parts) >= 5 and parts[2] == "resolve":
            org, name, _, revision = parts[:4]
            return self.resolve(org, name, revision, "/".join(parts[4:]), head)
        # /api/resolve-cache/models/<org>/<name>/<commit>/<file...>
        if len(parts) >= 7 and parts[:3] == ["api", "resolve-cache", "models"]:
            org, name, commit = parts[3:6]
            return self.resolve_cache(org, name, commit, "/".join(parts[6:]), head)
        self.error(404, None, "Not found", head)

    def repo_errors(self, org, name, head):
        """Answers the request and returns True when the repo itself refuses it (error org, missing, gated)."""
        if org == "error":
            self.error(500, None, "Internal Server Error", head)
            return True
        if not (safe_part(org) and safe_part(name) and os.path.isdir(self.hub.repo_dir(org, name))):
            self.error(404, "RepoNotFound", "Repository not found", head)
            return True
        if org == "gated" and self.headers.get("Authorization") != GOOD_TOKEN:
            self.error(401, "GatedRepo",
                       f"Access to model {org}/{name} is restricted. You must have access to it and be authenticated "
                       "to access it. Please log in.", head)
            return True
        return False

    def resolve(self, org, name, revision, file, head):
        if self.repo_errors(org, name, head):
            return
        commit = commit_of(org, name)
        if revision not in ("main", commit):
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        data = self.hub.read_file(org, name, file)
        if data is None:
            return self.error(404, "EntryNotFound", f"{file} does not exist on \"{revision}\"", head,
                              [("X-Repo-Commit", commit)])
        if is_lfs(file):
            sha256 = hashlib.sha256(data).hexdigest()
            return self.respond(302, [("Location", f"{self.hub.cdn_url}/lfs/{sha256}"), ("X-Repo-Commit", commit),
                                      ("X-Linked-Etag", f'"{sha256}"'), ("X-Linked-Size", str(len(data))),
                                      ("ETag", f'"{sha256}"')], head=head)
        location = "/api/resolve-cache/models/" + "/".join(
            urllib.parse.quote(p) for p in [org, name, commit] + file.split("/"))
        self.respond(307, [("Location", location), ("X-Repo-Commit", commit)], head=head)

    def resolve_cache(self, org, name, commit, file, head):
        if self.repo_errors(org, name, head):
            return
        if commit != commit_of(org, name):
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {commit}", head)
        data = self.hub.read_file(org, name, file)
        if data is None:
            return self.error(404, "EntryNotFound", f"{file} does not exist on \"{commit}\"", head,
                              [("X-Repo-Commit", commit)])
        self.respond(200, [("X-Repo-Commit", commit), ("ETag", f'"{git_blob_sha1(data)}"'),
                           ("Content-Type", "application/octet-stream")], data, head)

    # --- cdn -------------------------------------------------------------------------------------------------

    def cdn(self, parts, head):
        found = None
        if len(parts) == 2 and parts[0] == "lfs" and len(parts[1]) == 64:
            found = self.hub.find_lfs(parts[1].lower())
        if found is None:
            return self.error(404, None, "Not found", head)
        data, name = found
        headers = [("Content-Type", "application/octet-stream")]
        if "cut" in name and not head and parts[1] not in self.hub.cut_once:
            # The full length announced, half the bytes sent, then the connection closes; once per file, so that
            # a rerun can succeed.
            self.hub.cut_once.add(parts[1])
            return self.respond(200, headers, data[:len(data) // 2], head, length=len(data))
        if "corrupt" in name and data:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self.respond(200, headers, data, head)


def serve(hub, role):
    handler = type(f"{role.capitalize()}Handler", (Handler,), {"hub": hub, "role": role})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=role, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repos_dir")
    parser.add_argument("log_file")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to serve before exiting by itself")
    args = parser.parse_args()
    if not os.path.isdir(args.repos_dir):
        parser.error(f"{args.repos_dir}: no such folder")

    hub = Hub(args.repos_dir, args.log_file)
    cdn_server, hub.cdn_url = serve(hub, "cdn")
    hub_server, hub_url = serve(hub, "hub")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"HUB={hub_url} CDN={hub.cdn_url}", flush=True)
    stop.wait(args.timeout)
    for server in (hub_server, cdn_server):
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
