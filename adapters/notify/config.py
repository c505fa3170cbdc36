"""Alert routing, as the deployment config file declares it (``alerts:`` in alluse.yaml).

Destinations (by name), routes (which severities and kinds go to which destinations) and
quiet hours. Secrets are never in the file: it names the environment variables that hold them
(``url_env``, ``secret_env``, ``password_env``), read when the notifiers are built.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.records.alerts import SEVERITIES, Alert, Severity

EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
Seconds = Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SlackDestination(_Model):
    """A Slack incoming webhook; its URL is a secret (it carries the token)."""

    type: Literal["slack"]
    url_env: EnvName = Field(description="Environment variable holding the webhook URL.")
    timeout_seconds: Seconds = 10.0


class WebhookDestination(_Model):
    """A JSON webhook: the body is signed with HMAC-SHA256 (header X-AllUse-Signature)."""

    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    url_env: EnvName | None = Field(
        default=None, description="Environment variable holding the URL (instead of url)."
    )
    secret_env: EnvName = Field(description="Environment variable holding the signing secret.")
    timeout_seconds: Seconds = 10.0

    @model_validator(mode="after")
    def _one_url(self) -> Self:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        return self


class SmtpDestination(_Model):
    """E-mail over SMTP (smtplib)."""

    type: Literal["smtp"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    sender: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    to: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = Field(min_length=1)
    timeout_seconds: Seconds = 10.0

    @model_validator(mode="after")
    def _login_pair(self) -> Self:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together")
        return self


Destination = Annotated[
    SlackDestination | WebhookDestination | SmtpDestination, Field(discriminator="type")
]


class Route(_Model):
    """Alerts of these severities and kinds go to these destinations (empty: any)."""

    to: tuple[str, ...] = Field(min_length=1)
    severities: tuple[Severity, ...] = ()
    kinds: tuple[str, ...] = ()

    def matches(self, alert: Alert) -> bool:
        return (not self.severities or alert.severity in self.severities) and (
            not self.kinds or alert.kind in self.kinds
        )


class QuietHours(_Model):
    """Between start and end (local time) alerts wait, except those of the listed severities."""

    start: time
    end: time
    timezone: str = "America/New_York"
    except_severities: tuple[Severity, ...] = ("critical",)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    def release(self, alert: Alert, now: datetime) -> datetime:
        """When ``alert`` may go: now, or the end of the quiet period it falls in."""
        if alert.severity in self.except_severities or self.start == self.end:
            return now
        local = now.astimezone(ZoneInfo(self.timezone))
        t = local.time()
        inside = (
            (self.start <= t < self.end)
            if self.start < self.end
            else not (self.end <= t < self.start)
        )
        if not inside:
            return now
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)


class Retry(_Model):
    """Exponential backoff between attempts: first, 2x first, 4x ... capped at max. Delivery
    never gives up: an alert is kept until a destination takes it."""

    first_seconds: Seconds = 30.0
    max_seconds: Seconds = 3600.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.first_seconds * 2 ** max(attempts - 1, 0), self.max_seconds)
        )


class AlertsConfig(_Model):
    destinations: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")], Destination] = Field(
        default_factory=dict
    )
    routes: tuple[Route, ...] = ()
    quiet_hours: QuietHours | None = None
    retry: Retry = Retry()

    def destinations_for(self, alert: Alert) -> tuple[str, ...]:
        return tuple(sorted({d for r in self.routes if r.matches(alert) for d in r.to}))

    def first_attempt(self, alert: Alert, now: datetime) -> datetime:
        return self.quiet_hours.release(alert, now) if self.quiet_hours else now


NO_ALERTS = AlertsConfig()
__all__ = ["SEVERITIES", "AlertsConfig", "NO_ALERTS", "Route", "QuietHours", "Retry"]
