"""``/_emulator/ui``: the operator's dashboard, server-rendered HTML with inline SVG charts.

Every page is whole HTML that works without script; ``static/ui.js`` (no library) refreshes the
parts marked ``data-live`` once a second and posts the clock controls without a page load.
Templates, stylesheet and script ship in the package: nothing is fetched from elsewhere, and the
Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import PlatformDep, StrictJSONResponse
from qcog_mock.mockserver.clock import CLOCK_MODES, parse_duration, parse_time
from qcog_mock.mockserver.dashboard import svg
from qcog_mock.mockserver.dashboard.access import (
    COOKIE,
    PREFIX,
    OperatorDep,
    RedactToken,
    SameOriginDep,
    Sessions,
    SignInNeeded,
    new_token,
    safe_next,
    signed_in,
    token_matches,
)
from qcog_mock.mockserver.dashboard.figure import run_figure
from qcog_mock.mockserver.errors import Invalid, PlatformError
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.rows import delivery_row, final_metrics, parameters, run_row

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # A token URL never leaks through a link to elsewhere; same-origin posts keep their Origin.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
RUNS_PER_PAGE = 100  # the runs page is fetched again every second: it stays small
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def add_dashboard_routes(routes: APIRouter) -> None:
    """The dashboard's routes and files, on the routes every app shares."""
    routes.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    routes.include_router(router)


def add_dashboard(app: FastAPI) -> None:
    """What one app's dashboard holds of its own: its token, sessions and sign-in redirect."""
    app.state.dashboard_token = new_token()
    app.state.dashboard_sessions = Sessions()
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactToken) for f in access_log.filters):
        access_log.addFilter(RedactToken())

    @app.exception_handler(SignInNeeded)
    async def to_login(request: Request, error: SignInNeeded) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"{PREFIX}/login?next={quote(error.path)}", status_code=303)
        return StrictJSONResponse({"detail": "Sign in to the dashboard first."}, status_code=401)


def login_url(app: FastAPI, base: str) -> str:
    """The token URL that signs a browser in (``serve`` and ``demo --serve`` print it)."""
    return f"{base.rstrip('/')}{PREFIX}/login?token={app.state.dashboard_token}"


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return TEMPLATES.TemplateResponse(
        request, name, {"prefix": PREFIX, **context}, status_code=status, headers=HEADERS
    )


def _answer(model: BaseModel) -> dict[str, Any]:
    """A model as the API answers it: the rows and the figure read that shape, wherever from."""
    return model.model_dump(mode="json", exclude_unset=True)


def _chrome(platform: Platform, request: Request, project_id: str | None) -> dict[str, Any]:
    """What every signed-in page shows: the projects, the clock, where "back" leads."""
    projects = platform.identity.list_projects(1000, 0)
    # Where a form sends the browser back to: this page, without the last notice.
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "notice"])
    here = request.url.path + (f"?{query}" if query else "")
    return {
        "projects": projects,
        "project_id": project_id or (projects[0].id if projects else None),
        "clock": platform.control.clock_state(),
        "modes": CLOCK_MODES,
        "here": here,
        "notice": request.query_params.get("notice"),
    }


# Signing in -------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, token: str | None = None, next: str | None = None) -> Response:
    if token is not None:
        if token_matches(request, token):
            return signed_in(request, next)
        error = "That sign-in link is not valid: the link changes each time the server starts."
        return _page(request, "login.html", {"next": safe_next(next), "error": error}, 401)
    return _page(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    platform: PlatformDep,
    _: SameOriginDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    throttle = request.app.state.sign_in_throttle
    address = request.client.host if request.client else "unknown"
    throttle.check(address)
    if platform.identity.is_admin_login(username, password):
        return signed_in(request, next)
    throttle.failed(address, username)
    error = "Wrong name or password: use the admin's (QCOG_MOCK_ADMIN_USERNAME/_PASSWORD)."
    return _page(request, "login.html", {"next": safe_next(next), "error": error}, 401)


@router.post("/logout")
def logout(request: Request, _: SameOriginDep) -> Response:
    request.app.state.dashboard_sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# Pages ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def runs_page(
    request: Request,
    platform: PlatformDep,
    _: OperatorDep,
    project: str | None = None,
    page: int = 1,
) -> Response:
    chrome = _chrome(platform, request, project)
    selected = platform.identity.get_project(chrome["project_id"])
    total = platform.store.count("run", selected.id)
    pages = max(1, -(-total // RUNS_PER_PAGE))
    page = min(max(page, 1), pages)
    skip = (page - 1) * RUNS_PER_PAGE
    runs = map(_answer, platform.runs.page(selected.id, None, RUNS_PER_PAGE, skip, descending=True))
    paging = {
        "page": page,
        "pages": pages,
        "total": total,
        "project_param": selected.id if project else None,
    }
    return _page(
        request,
        "runs.html",
        {**chrome, "project": selected, "rows": list(map(run_row, runs)), **paging},
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, platform: PlatformDep, _: OperatorDep, run_id: str) -> Response:
    run = _answer(platform.runs.find(run_id))
    chrome = _chrome(platform, request, run["project_id"])
    figure = run_figure(run, chrome["clock"].now)
    checkpoints = platform.runs.checkpoints(run["project_id"], run_id)
    deployments = platform.deployments.page(run["project_id"], run_id, 10_000, 0)
    deliveries = map(_answer, platform.control.deliveries(run_id, None))
    return _page(
        request,
        "run.html",
        {
            **chrome,
            "run": run,
            "row": run_row(run),
            "parameters": parameters(run),
            "metrics": final_metrics(run),
            "timeline_svg": svg.timeline(figure),
            "losses_svg": svg.losses(figure),
            "checkpoints": checkpoints[::-1],  # the newest first
            "deployments": deployments,
            "deliveries": [delivery_row(d) for d in deliveries],
            "events": platform.timeline.events(run_id, 0, 10_000)[-30:][::-1],
        },
    )


# The clock --------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise Invalid(f"duration: {error}.") from None


def _move_clock(platform: Platform, action: str, text: str, mode: str) -> tuple[schemas.Clock, str]:
    control = platform.control
    if action == "advance":
        return control.advance(_seconds(text)), f"Advanced by {text.strip()}."
    if action == "next":
        upcoming = control.clock_state().next_event_at
        if upcoming is None:
            raise Invalid("Nothing is scheduled: there is no next event to advance to.")
        return control.advance(to=parse_time(upcoming)), "Advanced to the next event."
    if action == "settle":
        state = control.settle(600.0)
        return state, "Settled." if state.settled else "Still busy after 600 s."
    if action == "mode":
        return control.set_clock_mode(mode, None), f"The clock is now {mode}."
    raise Invalid(f"action: '{action}' is not one of advance, next, settle, mode.")


@router.post("/clock")
def clock_control(
    request: Request,
    platform: PlatformDep,
    _: OperatorDep,
    __: SameOriginDep,
    action: Annotated[str, Form()],
    duration: Annotated[str, Form()] = "4d",
    mode: Annotated[str, Form()] = "manual",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Advance, settle or switch the clock. The page's script asks for JSON; a plain form
    post is sent back to the page it came from, with what happened as a notice."""
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        state, message = _move_clock(platform, action, duration, mode)
    except PlatformError as error:
        if wants_json:
            return StrictJSONResponse({"detail": error.message}, status_code=error.status)
        message = error.message
    else:
        if wants_json:
            return StrictJSONResponse({**_answer(state), "message": message})
    target = safe_next(next)
    joiner = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{joiner}notice={quote(message)}", status_code=303)
