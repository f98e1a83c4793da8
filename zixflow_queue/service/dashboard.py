"""/dashboard: the operators' pages, and their replay and purge of dead letters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined

from producer.store import storage_boundary
from zixflow_queue.service import dashboard_view as view
from zixflow_queue.service.body import read_limited
from zixflow_queue.service.dashboard_auth import (
    FORM_TOKEN_FIELD,
    check_form_token,
    form_token,
    operator,
)
from zixflow_queue.service.dashboard_letters import AsyncDeadLetters
from zixflow_queue.service.dashboard_queues import backlog, phone_limits
from zixflow_queue.service.dashboard_search import search
from zixflow_queue.service.problems import Problem
from zixflow_queue.service.settings import ServiceSettings
from zixflow_queue.service.state import producer_of
from zixflow_queue.stats import Snapshot, SnapshotReader

PREFIX = "/dashboard"
LETTERS_SHOWN = 200
"""Dead letters listed on the page; "all matching" acts on every one."""
NAV = (
    ("overview", "", "Overview"),
    ("backlog", "/backlog", "Backlog"),
    ("limits", "/limits", "Rate limits"),
    ("dead", "/dead", "Dead letters"),
    ("search", "/search", "Search"),
)
HEADERS = {
    # Scripts, styles and forms of the dashboard's own origin only: an injected tag does nothing.
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",  # no framing, so no clicks tricked through a frame
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
Operator = Annotated[str, Depends(operator)]


def templates() -> Jinja2Templates:
    """The pages' templates, escaping every value they show."""
    env = Environment(
        loader=PackageLoader("zixflow_queue.service", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
    env.filters.update(
        number=view.number, seconds=view.seconds, moment=view.moment, label=view.label,
        pretty=pretty,
    )  # fmt: skip
    env.globals.update(prefix=PREFIX, nav=NAV, form_token_field=FORM_TOKEN_FIELD)
    return Jinja2Templates(env=env)


def pretty(value: object) -> str:
    """A JSON value (or JSON text) indented for reading; other text as it is."""
    if isinstance(value, str):
        try:
            return pretty(json.loads(value))
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


class Dashboard:
    """The pages of one deployment, and the client its dead-letter actions use."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.queue = settings.queue
        self.max_bytes = settings.max_body_bytes
        self.reader = SnapshotReader(settings)
        self.letters = AsyncDeadLetters(settings)
        self.templates = templates()

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        """Close the dead letters' Redis client when the app stops."""
        try:
            yield
        finally:
            self.letters.close()

    async def overview(self, request: Request, password: Operator) -> Response:
        """Every count, and the live rates of the last five minutes."""
        snapshot = await self._snapshot(request)
        return self._page(request, password, "overview", snapshot,
                          groups=view.groups(snapshot), live=view.live(snapshot))  # fmt: skip

    async def live(self, request: Request, _: Operator) -> Response:
        """The overview's counts and rates as JSON, for its script to refresh them."""
        snapshot = await self._snapshot(request)
        return JSONResponse(view.live(snapshot), headers={"Cache-Control": "no-store"})

    async def backlog(self, request: Request, password: Operator) -> Response:
        """The backlog's sizes, the oldest waiting jobs and the scheduled jobs due first."""
        snapshot = await self._snapshot(request)
        (sizes,) = [group for group in view.groups(snapshot) if group.title == "Backlog"]
        jobs = await backlog(producer_of(request))
        return self._page(request, password, "backlog", snapshot, sizes=sizes, jobs=jobs)

    async def limits(self, request: Request, password: Operator) -> Response:
        """Sends each phone id's rate limit put off, and whether it is holding sends now."""
        snapshot = await self._snapshot(request)
        phones = await phone_limits(producer_of(request), snapshot.deferrals, snapshot.at)
        return self._page(request, password, "limits", snapshot, phones=phones)

    async def dead(
        self,
        request: Request,
        password: Operator,
        match: str = "",
        replayed: Annotated[int | None, Query(ge=0)] = None,
        purged: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        """The dead letters, newest first, those that match the filter text."""
        snapshot = await self._snapshot(request)
        letters = await self.letters.entries(match or None)
        return self._page(request, password, "dead", snapshot, letters=letters,
                          shown=letters[:LETTERS_SHOWN], match=match, replayed=replayed,
                          purged=purged)  # fmt: skip

    async def search(self, request: Request, password: Operator, q: str = "") -> Response:
        """A job by id (status, record, history), a recipient's jobs, an idempotency key's."""
        snapshot = await self._snapshot(request)
        found = await search(producer_of(request), q)
        return self._page(request, password, "search", snapshot, found=found, query=q)

    async def replay(self, request: Request, password: Operator) -> Response:
        """Replay the chosen dead letters' jobs, then back to the list."""
        form = await self._form(request, password)
        replayed = await self.letters.replay(await self._chosen(form))
        return _back_to_list(form, replayed=len(replayed))

    async def purge(self, request: Request, password: Operator) -> Response:
        """Delete the chosen dead letters, then back to the list."""
        form = await self._form(request, password)
        purged = await self.letters.purge(await self._chosen(form))
        return _back_to_list(form, purged=purged)

    async def _snapshot(self, request: Request) -> Snapshot:
        store = producer_of(request).store
        with storage_boundary("read the deployment's numbers", writes=False):
            return await self.reader.read_async(store.records, store.broker)

    def _page(
        self, request: Request, password: str, page: str, snapshot: Snapshot, **context: Any
    ) -> Response:
        shared = {"page": page, "queue": self.queue, "at": snapshot.at,
                  "dead_letters": snapshot.dead_letters, "query": "",
                  "form_token": form_token(password)}  # fmt: skip
        return self.templates.TemplateResponse(
            request, f"{page}.html", {**shared, **context}, headers=HEADERS
        )

    async def _form(self, request: Request, password: str) -> dict[str, list[str]]:
        """The posted form's fields, once its token shows it came from a dashboard page."""
        raw = await read_limited(request, self.max_bytes)
        form = parse_qs(raw.decode(errors="replace"), keep_blank_values=True)
        check_form_token(password, _field(form, FORM_TOKEN_FIELD))
        return form

    async def _chosen(self, form: dict[str, list[str]]) -> list[str]:
        """The dead letters a form names: by id, or all that match its filter text."""
        if _field(form, "all"):
            return [letter.id for letter in await self.letters.entries(_field(form, "match"))]
        if not form.get("id"):
            raise Problem(400, "choose dead letters: by id, or all that match the filter")
        return form["id"]


def _field(form: dict[str, list[str]], name: str) -> str:
    return next(iter(form.get(name, [])), "")


def _back_to_list(form: dict[str, list[str]], **done: int) -> Response:
    """To the list, filtered as it was, saying what was done (Post/Redirect/Get)."""
    match = _field(form, "match")
    query = urlencode({**({"match": match} if match else {}), **done})
    return RedirectResponse(f"{PREFIX}/dead?{query}", status_code=303)


def router(settings: ServiceSettings) -> APIRouter:
    """The dashboard, for operators signing in with an API token (basic auth)."""
    dashboard = Dashboard(settings)
    routes = APIRouter(prefix=PREFIX, lifespan=dashboard.lifespan, include_in_schema=False)
    for path, endpoint, method in (
        ("", dashboard.overview, "GET"),
        ("/stats.json", dashboard.live, "GET"),
        ("/backlog", dashboard.backlog, "GET"),
        ("/limits", dashboard.limits, "GET"),
        ("/dead", dashboard.dead, "GET"),
        ("/dead/replay", dashboard.replay, "POST"),
        ("/dead/purge", dashboard.purge, "POST"),
        ("/search", dashboard.search, "GET"),
    ):
        routes.add_api_route(path, endpoint, methods=[method], response_model=None)
    # Stylesheet, script and icon: no secrets, and open, so a sign-in prompt never waits on them.
    routes.mount(f"{PREFIX}/static", StaticFiles(packages=[("zixflow_queue.service", "static")]))
    return routes
