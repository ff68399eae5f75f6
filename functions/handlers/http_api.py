"""HTTP API (payload format 2.0) → FastAPI, through Mangum."""

from __future__ import annotations

from mangum import Mangum

from townhall.api.app import create_app

handler = Mangum(create_app(), lifespan="off")
