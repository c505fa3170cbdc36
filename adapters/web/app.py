"""The dashboard: a FastAPI application over one database, read-only.

``create_app(ServeConfig(db_url=...))`` builds it: server-rendered pages (Jinja2 templates, a
little plain JavaScript for the replay button) and a JSON API under ``/api`` whose OpenAPI
document is at ``/openapi.json``. Pages and API call the same builders (``adapters.web.views``)
on one ``ReadOnlyDatabase``: no writer's lease, short read transactions, so a running daemon
is never blocked. The hash chain is verified once, in a background thread, when the server
starts; ``/readyz`` says "not ready" until that is done.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict

from adapters.storage.readers import DecisionFilter, ReadOnlyDatabase
from adapters.web import audit_glue, views
from adapters.web.audit_glue import ChainStatus, ReplayView
from adapters.web.ops import (
    ChainHolder,
    DatabaseCollector,
    Readiness,
    SchedulerStatus,
    readiness,
    scheduler_status,
)
from adapters.web.security import TokenMiddleware
from engine.clock import Clock, WallClock

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ServeConfig:
    db_url: str
    token: str | None = None
    reports_dir: Path | None = None  # HTML reports listed on /reports (default: beside the db)
    writes_allowed: bool = False
    verify_at_start: bool = True


class Overview(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database: str
    ledger_mode: str | None
    mode_reason: str
    latched: bool
    market_mode: str | None
    as_of: str | None
    accounts: list[views.AccountView]
    total_equity: float | None
    decisions: dict[str, int]
    latest: list[views.DecisionSummary]
    chain: ChainStatus | None
    scheduler: SchedulerStatus


class Ledger(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    balances: dict[str, dict[str, float]]  # account -> bucket -> dollars
    orders: list[views.OrderView]
    fills: list[views.FillView]


class Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    size: int
    url: str


# --------------------------------------------------------------------------- state


class _State:
    def __init__(self, config: ServeConfig, clock: Clock):
        self.config = config
        self.clock = clock
        self.db = ReadOnlyDatabase.open(config.db_url)
        self.chain = ChainHolder()
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector(self.db, clock, self.chain))

    def verify(self) -> None:
        try:
            self.chain.status = audit_glue.verify(self.db, self.clock)
        except Exception as exc:  # noqa: BLE001 - a log that cannot be read is a broken chain, said
            self.chain.status = ChainStatus(
                ok=False,
                count=0,
                head_seq=0,
                head_hash="",
                problem=str(exc),
                verified_at=self.clock.now().isoformat(),
                checkpoint=None,
                checkpoint_note=audit_glue.NO_CHECKPOINTS,
            )


def _state(request: Request) -> _State:
    return request.app.state.alluse


State = Annotated[_State, Depends(_state)]


# --------------------------------------------------------------------------- queries


def overview(s: _State) -> Overview:
    latest = s.db.latest_decision()
    accounts = views.accounts(s.db, latest)
    mode = s.db.mode()
    equities = [a.equity for a in accounts if a.equity is not None and a.status == "active"]
    return Overview(
        database=s.db.display_url,
        ledger_mode=mode[0] if mode else None,
        mode_reason=mode[1] if mode else "",
        latched=mode[2] if mode else False,
        market_mode=latest.decision.get("derived", {}).get("market", {}).get("mode")
        if latest
        else None,
        as_of=latest.decision.get("as_of") if latest else None,
        accounts=accounts,
        total_equity=round(sum(equities), 2) if equities else None,
        decisions=s.db.decision_count(),
        latest=views.decisions(s.db, DecisionFilter(limit=10)),
        chain=s.chain.status,
        scheduler=scheduler_status(s.db),
    )


NEW_YORK = ZoneInfo("America/New_York")


def _when(text: str | None, field: str) -> datetime | None:
    """An ISO datetime (UTC when it has no offset), or a date: midnight in New York, the
    trading day the decisions are dated by."""
    if not text:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=NEW_YORK)
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            status_code=422, detail=f"{field}: not an ISO date or datetime: {text!r}"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class DecisionQuery(BaseModel):
    since: str | None = None
    until: str | None = None
    account: str | None = None
    rule: str | None = None
    kind: str | None = None
    verdict: str | None = None
    q: str | None = None
    mode: str | None = None
    before: int | None = None
    limit: int = 50

    def to_filter(self) -> DecisionFilter:
        if self.verdict not in (None, "", "approved", "denied"):
            raise HTTPException(status_code=422, detail="verdict: approved or denied")
        return DecisionFilter(
            since=_when(self.since, "since"),
            until=_when(self.until, "until"),
            account=self.account or None,
            rule=self.rule or None,
            kind=self.kind or None,
            verdict=self.verdict or None,
            text=self.q or None,
            mode=self.mode or None,
            before_seq=self.before,
            limit=self.limit,
        )


Filters = Annotated[DecisionQuery, Query()]


def ledger(s: _State) -> Ledger:
    balances: dict[str, dict[str, float]] = {}
    for (account, bucket), amount in sorted(s.db.balances().items()):
        if not account.startswith("@"):  # the ledger's external accounts (capital, market, fees)
            balances.setdefault(account, {})[bucket] = round(amount, 2)
    orders = s.db.orders()
    fills = s.db.fills()
    return Ledger(
        balances=balances,
        orders=[
            views.OrderView(
                client_order_id=o.client_order_id,
                account=o.account,
                side=o.side,
                quantity=o.quantity,
                contract=o.contract_key,
                limit_price=o.limit_price,
                state=o.state,
                filled=o.filled,
                avg_fill_price=o.avg_fill_price,
                reason=o.reason,
            )
            for o in orders[-200:]
        ],
        fills=[views.fill_view(f) for f in fills[-200:]][::-1],
    )


def reports(s: _State) -> list[Report]:
    folder = _reports_dir(s)
    if folder is None or not folder.is_dir():
        return []
    return [
        Report(name=p.name, size=p.stat().st_size, url=f"/reports/{p.name}")
        for p in sorted(folder.glob("*.html"))
    ]


def _reports_dir(s: _State) -> Path | None:
    if s.config.reports_dir is not None:
        return s.config.reports_dir
    database = s.db.engine.url.database or ""
    path = database.removeprefix("file:").split("?")[0]
    return Path(path).parent if path and path != ":memory:" else None


# --------------------------------------------------------------------------- API


def api_router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["api"])
    _decision_api(api)
    _book_api(api)
    return api


def _decision_api(api: APIRouter) -> None:
    @api.get("/overview", response_model=Overview)
    def get_overview(s: State) -> Overview:
        return overview(s)

    @api.get("/decisions", response_model=list[views.DecisionSummary])
    def get_decisions(s: State, f: Filters) -> list[views.DecisionSummary]:
        return views.decisions(s.db, f.to_filter())

    @api.get(
        "/decisions/{ident}",
        response_model=views.DecisionDetail,
        responses={404: {"description": "no such decision"}},
    )
    def get_decision(s: State, ident: str) -> views.DecisionDetail:
        found = views.decision_detail(s.db, ident)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no decision {ident!r} in the audit log")
        return found

    @api.post(
        "/decisions/{ident}/replay",
        response_model=ReplayView,
        responses={404: {"description": "no such decision"}},
    )
    def post_replay(s: State, ident: str) -> ReplayView:
        """Re-evaluate the decision's recorded facts under its recorded constitution and compare.
        Nothing is written: replay only reads."""
        result = audit_glue.replay_decision(s.db, s.clock, ident)
        if result is None:
            raise HTTPException(status_code=404, detail=f"no decision {ident!r} in the audit log")
        return result

    @api.get("/chain", response_model=ChainStatus | None)
    def get_chain(s: State) -> ChainStatus | None:
        """The verification made at start (null while it runs)."""
        return s.chain.status


def _book_api(api: APIRouter) -> None:
    @api.get("/accounts", response_model=list[views.AccountView])
    def get_accounts(s: State) -> list[views.AccountView]:
        return views.accounts(s.db, s.db.latest_decision())

    @api.get("/positions", response_model=list[views.PositionView])
    def get_positions(s: State) -> list[views.PositionView]:
        return views.positions(s.db)

    @api.get("/ledger", response_model=Ledger)
    def get_ledger(s: State) -> Ledger:
        return ledger(s)

    @api.get("/alerts", response_model=list[views.AlertView])
    def get_alerts(s: State, limit: int = 200) -> list[views.AlertView]:
        return views.alerts(s.db, max(1, min(limit, 1000)))

    @api.get("/reports", response_model=list[Report])
    def get_reports(s: State) -> list[Report]:
        return reports(s)


def ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz", tags=["ops"], response_model=Readiness, responses={503: {"model": Readiness}}
    )
    def readyz(s: State) -> Response:
        result = readiness(s.db, s.chain.status)
        return JSONResponse(
            result.model_dump(mode="json"), status_code=200 if result.ready else 503
        )

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics(s: State) -> Response:
        return Response(generate_latest(s.registry), media_type=CONTENT_TYPE_LATEST)


# --------------------------------------------------------------------------- pages


Render = Callable[..., HTMLResponse]


def page_routes(app: FastAPI, templates: Jinja2Templates) -> None:
    def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        context = {"page": name.removesuffix(".html"), **values}
        return templates.TemplateResponse(request, name, context, status_code=status)

    _review_pages(app, render)
    _book_pages(app, render)


def _review_pages(app: FastAPI, render: Render) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_overview(request: Request, s: State) -> HTMLResponse:
        return render(request, "overview.html", o=overview(s))

    @app.get("/decisions", response_class=HTMLResponse, include_in_schema=False)
    def page_decisions(request: Request, s: State, f: Filters) -> HTMLResponse:
        return render(request, "decisions.html", rows=views.decisions(s.db, f.to_filter()), f=f)

    @app.get("/decisions/{ident}", response_class=HTMLResponse, include_in_schema=False)
    def page_decision(request: Request, s: State, ident: str) -> HTMLResponse:
        found = views.decision_detail(s.db, ident)
        if found is None:
            return render(request, "missing.html", status=404, what=f"decision {ident}")
        return render(request, "decision.html", d=found)


def _book_pages(app: FastAPI, render: Render) -> None:
    @app.get("/positions", response_class=HTMLResponse, include_in_schema=False)
    def page_positions(request: Request, s: State) -> HTMLResponse:
        return render(
            request,
            "positions.html",
            positions=views.positions(s.db),
            accounts=views.accounts(s.db, s.db.latest_decision()),
            ledger=ledger(s),
        )

    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    def page_alerts(request: Request, s: State) -> HTMLResponse:
        return render(request, "alerts.html", alerts=views.alerts(s.db))

    @app.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def page_reports(request: Request, s: State) -> HTMLResponse:
        return render(request, "reports.html", reports=reports(s), folder=_reports_dir(s))

    @app.get("/reports/{name}", include_in_schema=False)
    def report_file(s: State, name: str) -> FileResponse:
        known = {r.name for r in reports(s)}
        folder = _reports_dir(s)
        if name not in known or folder is None:  # only files the listing shows: no path tricks
            raise HTTPException(status_code=404, detail="no such report")
        return FileResponse(folder / name, media_type="text/html")


def create_app(config: ServeConfig, clock: Clock | None = None) -> FastAPI:
    state = _State(config, clock or WallClock())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.verify_at_start:
            threading.Thread(target=state.verify, name="alluse-verify", daemon=True).start()
        yield
        state.db.close()

    app = FastAPI(
        title="ALL-USE dashboard",
        version="1",
        description="Read-only review of an ALL-USE database: decisions, positions, ledger, alerts, reports.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's Swagger and ReDoc pages load their scripts from a CDN
        redoc_url=None,
    )
    app.state.alluse = state
    app.state.config = config
    if config.token:
        app.add_middleware(TokenMiddleware, token=config.token)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["money"] = lambda x: "n/a" if x is None else f"{x:,.2f}"
    app.include_router(api_router())
    ops_routes(app)
    page_routes(app, templates)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app
