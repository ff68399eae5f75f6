"""The web app's static files (`web/`), standing in for S3 behind CloudFront.

`/` serves `index.html` (CloudFront's default root object); everything else is the file at
that path, with a content type from a fixed table (so ES modules are served as JavaScript
whatever the machine's mime.types says) and `Cache-Control: no-cache`, so an edit shows on
reload. Like CloudFront in front of S3, there is no index for sub-folders: `/rooms/` is not
`/rooms/index.html`, so the web app cannot come to rely on one locally.

A path that leads outside `web/` (`..`, an encoded `%2e%2e`, a symlink pointing out) is
refused with 404, the same answer as a missing file. A 404 is the app's own page,
`web/404.html`, as CloudFront answers it (infra/stacks/edge.py), with status 404.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

NO_CACHE = {"Cache-Control": "no-cache"}
NOT_FOUND_PAGE = "404.html"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain; charset=utf-8",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
}


def content_type(path: Path) -> str:
    known = _CONTENT_TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class StaticSite:
    """ASGI app serving files under `root` for GET and HEAD."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def resolve(self, url_path: str) -> Path | None:
        """The file for a decoded URL path, or None when there is none (or it is outside)."""
        if "\x00" in url_path or "\\" in url_path:
            return None
        candidate = (self.root / url_path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root):
            return None
        if candidate == self.root:
            candidate = self.root / "index.html"
        return candidate if candidate.is_file() else None

    def not_found(self) -> Response:
        page = self.root / NOT_FOUND_PAGE
        if not page.is_file():
            return PlainTextResponse("Not Found", status_code=404, headers=NO_CACHE)
        return FileResponse(page, status_code=404, media_type=content_type(page), headers=NO_CACHE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response: Response
        if request.method not in {"GET", "HEAD"}:
            response = PlainTextResponse("Method Not Allowed", status_code=405, headers=NO_CACHE)
        else:
            path = self.resolve(request.url.path)
            if path is None:
                response = self.not_found()
            else:
                response = FileResponse(path, media_type=content_type(path), headers=NO_CACHE)
        await response(scope, receive, send)
