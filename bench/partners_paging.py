"""Paging a partner list of 1,000 items in the local twin: the time of each page of
`GET /api/v1/meetings` with an API key, p50 and p99, at two page sizes.

The organisation has two members with 500 meetings each (created through the API), so the
pages cross from one host to the next as a partner's would. Every page is a separate request
with the previous page's cursor, timed at the client from send to the whole answer. The
reference, in the same run and on the same twin, is `GET /api/health` (the emulator, Mangum
and FastAPI, no DynamoDB and no key check): the ratio is what a page costs over a bare request.

    python -m bench.partners_paging [--meetings 1000] [--passes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.join_storm import percentile
from infra.twin.server import LocalTwin, TwinOptions

RESULTS = Path(__file__).resolve().parent / "results"
PAGE_SIZES = (20, 100)


async def _account(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
    body = {"email": email, "password": "correct horse 1", "name": name}
    session = (await http.post("/api/auth/signup", json=body)).json()
    return {"email": email, "authorization": f"Bearer {session['access_token']}"}


async def _seed(http: httpx.AsyncClient, meetings: int) -> str:
    """Two members' meetings, and a key of the organisation: the key."""
    owner, member = await _account(http, "Owner"), await _account(http, "Member")
    added = await http.post(
        "/api/v1/organisation/members",
        json={"email": member["email"], "role": "member"},
        headers={"authorization": owner["authorization"]},
    )
    added.raise_for_status()
    for n in range(meetings):
        host = owner if n % 2 == 0 else member
        body = {
            "title": f"Meeting {n}",
            "start": f"2027-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00",
            "timezone": "Europe/Paris",
            "duration_minutes": 30,
        }
        created = await http.post(
            "/api/meetings", json=body, headers={"authorization": host["authorization"]}
        )
        created.raise_for_status()
    key = await http.post(
        "/api/v1/keys",
        json={"name": "bench", "scopes": ["meetings:read"], "rate_per_second": 100},
        headers={"authorization": owner["authorization"]},
    )
    key.raise_for_status()
    return str(key.json()["key"])


async def _page_through(http: httpx.AsyncClient, key: str, limit: int) -> tuple[list[float], int]:
    """Milliseconds per page, and how many items the pages held in all."""
    times, items, cursor = [], 0, None
    headers = {"authorization": f"Bearer {key}"}
    for _ in range(10_000):
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        started = time.perf_counter()
        response = await http.get("/api/v1/meetings", params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
        items += len(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return times, items
    raise RuntimeError("the list never ended")


async def _bare(http: httpx.AsyncClient, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        (await http.get("/api/health")).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _figures(times: list[float]) -> dict[str, float]:
    return {
        "pages": len(times),
        "p50_ms": round(percentile(times, 50), 1),
        "p99_ms": round(percentile(times, 99), 1),
    }


async def _run(base_url: str, meetings: int, passes: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        seeding = time.perf_counter()
        key = await _seed(http, meetings)
        seeded_s = time.perf_counter() - seeding
        results: dict[str, Any] = {
            "meetings": meetings,
            "passes": passes,
            "seed_s": round(seeded_s, 1),
        }
        bare = await _bare(http, 200)
        results["reference_health"] = _figures(bare)
        for limit in PAGE_SIZES:
            times: list[float] = []
            for _ in range(passes):
                pass_times, items = await _page_through(http, key, limit)
                assert items == meetings, f"paged {items} of {meetings}"
                times += pass_times
            figures = _figures(times)
            figures["p50_ratio_to_reference"] = round(
                figures["p50_ms"] / results["reference_health"]["p50_ms"], 1
            )
            results[f"limit_{limit}"] = figures
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meetings", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "partners_paging.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as data:
        twin = LocalTwin.start(Path(data), options=TwinOptions())
        try:
            results = asyncio.run(_run(twin.base_url, args.meetings, args.passes))
        finally:
            twin.stop()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    reference = results["reference_health"]
    print(f"reference GET /api/health: p50 {reference['p50_ms']} ms, p99 {reference['p99_ms']} ms")
    for limit in PAGE_SIZES:
        f = results[f"limit_{limit}"]
        print(
            f"limit {limit}: {f['pages']} pages, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms "
            f"({f['p50_ratio_to_reference']}x the reference's p50)"
        )


if __name__ == "__main__":
    main()
