"""Routes for the dashboard page, its static files, plotly.js and the browser collector.

The page and scripts hold no data, so they need no token; every number the page shows comes
from the authenticated JSON routes, called with the token the user signs in with (kept in
sessionStorage and sent as a header, never in a URL). plotly.js is served from the `plotly`
wheel installed from the package registry, never from a CDN or a hand-copied file.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"
_STATIC_FILES = {"dashboard.js", "dashboard.css"}
_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["browser"])


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the `plotly` wheel."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html", headers=_CACHE)


@router.get("/dashboard/static/plotly.min.js", include_in_schema=False)
async def plotly_js() -> FileResponse:
    return FileResponse(
        plotly_js_path(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def dashboard_static(name: str) -> FileResponse:
    if name not in _STATIC_FILES:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    kind = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(STATIC_DIR / name, media_type=kind, headers=_CACHE)


@router.get(
    "/v1/collector.js",
    summary="The browser event collector script",
    description="Public script for web pages: buffers events and sends them to /v1/collect.",
    response_class=FileResponse,
)
async def collector_js() -> FileResponse:
    return FileResponse(STATIC_DIR / "collector.js", media_type="text/javascript", headers=_CACHE)
