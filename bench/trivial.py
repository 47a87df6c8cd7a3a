"""The HTTP ceiling: a trivial FastAPI app served like ours (uvicorn, no access log)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/trivial")
async def trivial(request: Request) -> dict[str, Any]:
    body = await request.json()
    return {"ok": True, "n": len(body)}
