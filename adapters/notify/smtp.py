"""E-mail over SMTP (smtplib): one message per alert.

The Message-ID is derived from the dedupe key, so a resent alert is the same message to a
mail store (and the key is also in the ``X-AllUse-Key`` header)."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage

from adapters.notify.config import SmtpDestination
from engine.records.alerts import Alert, DeliveryFailed

KEY_HEADER = "X-AllUse-Key"


def message_id(key: str) -> str:
    return "<" + re.sub(r"[^A-Za-z0-9.-]", ".", key) + "@alluse.invalid>"


class SmtpNotifier:
    def __init__(self, name: str, dest: SmtpDestination, login: tuple[str, str] | None = None):
        self.name = name
        self._dest = dest
        self._login = login

    def message(self, alert: Alert) -> EmailMessage:
        m = EmailMessage()
        m["Subject"] = alert.text()
        m["From"] = self._dest.sender
        m["To"] = ", ".join(self._dest.to)
        m["Message-ID"] = message_id(alert.key)
        m[KEY_HEADER] = alert.key
        m.set_content(f"{alert.title}\n\n{alert.message}\n\nkind {alert.kind}, mode {alert.mode}\n")
        return m

    def send(self, alert: Alert) -> None:
        d = self._dest
        try:
            with self._connect() as server:
                if d.security == "starttls":
                    server.starttls(context=ssl.create_default_context())
                if self._login is not None:
                    server.login(*self._login)
                server.send_message(self.message(alert))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{self.name}: {type(exc).__name__}") from None

    def _connect(self) -> smtplib.SMTP:
        d = self._dest
        if d.security == "ssl":
            return smtplib.SMTP_SSL(
                d.host, d.port, timeout=d.timeout_seconds, context=ssl.create_default_context()
            )
        return smtplib.SMTP(d.host, d.port, timeout=d.timeout_seconds)
