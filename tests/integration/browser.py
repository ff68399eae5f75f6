"""Shared pieces for the browser tests: Debian's Chromium, its flags, artifacts and axe-core.

Playwright for Python drives Debian's ``/usr/bin/chromium`` (``make system-deps`` installs it);
it never downloads a browser. Import the ``chromium`` fixture from here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"

# Without the networking flags Chromium keeps calling home, which this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

MEDIA_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Loopback candidates, and real addresses instead of mDNS names (the node cannot resolve
    # .local names): the media stays on 127.0.0.1.
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make system-deps`")
    ARTIFACTS.mkdir(exist_ok=True)
    return CHROMIUM


async def axe_violations(
    page: Page, impacts: tuple[str, ...] = ("serious", "critical")
) -> list[Any]:
    """Run axe-core (the npm package, from node_modules) on the page as it is now.

    Returns the violations of the given impacts, each trimmed to what a failure message needs.
    """
    if not AXE_SCRIPT.exists():
        pytest.fail(f"axe-core is missing at {AXE_SCRIPT}: run `npm ci`")
    # Evaluated, not added as a <script> tag: the pages' CSP (as CloudFront serves it) blocks
    # inline scripts, and an injected tag would be one.
    await page.evaluate(AXE_SCRIPT.read_text() + ";undefined")
    result = await page.evaluate("async () => JSON.stringify(await axe.run(document))")
    violations = json.loads(result)["violations"]
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in violations
        if v["impact"] in impacts
    ]
