"""The deployment config file: how this installation tells people things and who answers
approvals in paper runs - not the constitution (which says *what* needs a person), but where
alerts go and what a paper run or backtest does when nobody is there.

Where it is: ``--config FILE`` > env ``ALLUSE_CONFIG`` > ``alluse.yaml`` next to the SQLite
database (the same directory) > none (no alerts are delivered; paper and backtests
auto-approve). Read with the project's safe YAML loader; every problem is reported at once,
located (``FILE:LINE:COL: code: path: message``). Secrets are never in the file, only the
names of the environment variables holding them::

    alerts:
      destinations:
        ops:   {type: slack, url_env: ALLUSE_SLACK_URL}
        hooks: {type: webhook, url: "https://example.org/alluse", secret_env: ALLUSE_HOOK_SECRET}
        mail:  {type: smtp, host: smtp.example.org, port: 587, from: alluse@example.org,
                to: [ops@example.org], username_env: ALLUSE_SMTP_USER, password_env: ALLUSE_SMTP_PASSWORD}
      routes:
        - {severities: [critical], to: [ops, mail]}
        - {kinds: [approval], to: [ops]}
        - {to: [hooks]}
      quiet_hours: {start: "22:00", end: "07:00", timezone: America/New_York}
      retry: {first_seconds: 30, max_seconds: 3600}
    approvals:
      paper: auto-approve        # person | auto-approve | auto-deny | approve-after:MINUTES
      backtest: auto-approve
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from adapters.notify.config import AlertsConfig
from constitution.errors import InvalidInput, Problem
from constitution.located import pydantic_problems
from constitution.yamlsafe import Loaded, load_file
from engine.execution.approvals import Policy, parse_policy

ENV_VAR = "ALLUSE_CONFIG"
FILE_NAME = "alluse.yaml"


class ApprovalPolicies(BaseModel):
    """Who answers approval requests when the run is not live (live: always a person)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paper: str = "auto-approve"
    backtest: str = "auto-approve"

    @field_validator("paper", "backtest")
    @classmethod
    def _policy(cls, v: str) -> str:
        parse_policy(v)
        return v

    def for_mode(self, mode: str) -> Policy:
        if mode == "live":
            return Policy()
        return parse_policy(self.backtest if mode == "backtest" else self.paper)


class DeploymentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alerts: AlertsConfig = AlertsConfig()
    approvals: ApprovalPolicies = ApprovalPolicies()
    source: str | None = None  # the file it was read from (None: built-in defaults)


DEFAULTS = DeploymentConfig()


def config_path(
    db_url: str | None, explicit: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The config file for a database (module docstring); None when there is none."""
    env = os.environ if env is None else env
    chosen = explicit or env.get(ENV_VAR)
    if chosen:
        return Path(chosen)
    if db_url is None:
        return None
    database = _sqlite_file(db_url)
    if database is None:
        return None
    beside = Path(database).expanduser().resolve().parent / FILE_NAME
    return beside if beside.exists() else None


def _sqlite_file(db_url: str) -> str | None:
    """The file a SQLite URL (or a bare path) names; None for servers and in-memory URLs."""
    if "://" not in db_url:
        return db_url
    if not db_url.startswith("sqlite:///"):
        return None
    database = db_url[len("sqlite:///") :].split("?", 1)[0]
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def load_deployment(path: str | Path | None) -> DeploymentConfig:
    """The config at ``path`` (None: the defaults). ``InvalidInput`` with every located
    problem when the file is wrong; an explicitly named file must exist."""
    if path is None:
        return DEFAULTS
    loaded = load_file(path)
    data = loaded.data if loaded.data is not None else {}
    if not isinstance(data, dict):
        raise InvalidInput([loaded.problem((), "type", "the config is a mapping")], what="config")
    try:
        config = DeploymentConfig.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        raise InvalidInput(pydantic_problems(_Untagged(exc), loaded), what="config") from None
    problems = _route_problems(config, loaded)
    if problems:
        raise InvalidInput(problems, what="config")
    return config


class _Untagged:
    """A validation error without the destination type pydantic puts in each location
    (``destinations.hooks.webhook.url`` -> ``destinations.hooks.url``): users never wrote it."""

    _TAGS = ("slack", "webhook", "smtp")

    def __init__(self, exc: ValidationError) -> None:
        self._exc = exc

    def errors(self, **kw: Any) -> list[dict[str, Any]]:
        out = []
        for err in self._exc.errors(**kw):
            loc = tuple(err["loc"])
            if len(loc) > 3 and loc[:2] == ("alerts", "destinations") and loc[3] in self._TAGS:
                loc = loc[:3] + loc[4:]
            out.append({**err, "loc": loc})
        return out


def _route_problems(config: DeploymentConfig, loaded: Loaded) -> list[Problem]:
    known = set(config.alerts.destinations)
    return [
        loaded.problem(
            ("alerts", "routes", i, "to"),
            "unknown-destination",
            f"no destination '{name}' (destinations: {', '.join(sorted(known)) or 'none'})",
        )
        for i, route in enumerate(config.alerts.routes)
        for name in route.to
        if name not in known
    ]


def missing_secrets(
    config: DeploymentConfig, env: Mapping[str, str] | None = None
) -> list[Problem]:
    """A located problem for every environment variable the destinations need that is unset."""
    env = os.environ if env is None else env
    source = config.source or FILE_NAME
    loaded = load_file(source) if config.source else None
    out = []
    for name, dest in config.alerts.destinations.items():
        for key in ("url_env", "secret_env", "username_env", "password_env"):
            var = getattr(dest, key, None)
            if var and not env.get(var):
                where = loaded.where(("alerts", "destinations", name, key)) if loaded else (1, 1)
                out.append(
                    Problem(
                        source,
                        where[0],
                        where[1],
                        "secret-not-set",
                        f"alerts.destinations.{name}.{key}",
                        f"environment variable {var} is not set",
                    )
                )
    return out
