"""The FastAPI app: ``create_app(source, settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from model_garden import __version__

from .routes import carbon, datasets, deployments, jobs, overview, stream, versions
from .settings import ReadApiSettings
from .source import ApiError, Source

STATIC = Path(__file__).parent / "static"
NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Model Garden</title></head><body><h1>Model Garden read API</h1>
<p>The dashboard was not built (no index.html in model_garden/readapi/static/).
The API is at <a href="/api/docs">/api/docs</a>.</p></body></html>
"""


def create_app(source: Source, settings: ReadApiSettings | None = None) -> FastAPI:
    """The read API over ``source``; the built dashboard at ``/`` when it is there."""
    settings = settings or ReadApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        source.start()
        try:
            yield
        finally:
            source.stop()

    app = FastAPI(
        title="Model Garden read API",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.source = source
    app.state.settings = settings

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ())[1:]) or None,
                "line": None,
                "message": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        detail = {"message": "the request is invalid", "errors": errors}
        return JSONResponse({"detail": detail}, status_code=422)

    api = APIRouter(prefix="/api/v1")
    for module in (overview, jobs, versions, deployments, datasets, carbon, stream):
        api.include_router(module.router)
    app.include_router(api)

    static = settings.static_dir or STATIC
    if (static / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static, html=True), name="dashboard")
    else:

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        def not_built() -> str:
            return NOT_BUILT

    return app
