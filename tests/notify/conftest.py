"""Local servers for the notifier tests: an SMTP server (aiosmtpd) collecting what it
accepts; the HTTP server is pytest-httpserver's ``httpserver`` fixture."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """What the SMTP server accepted; ``hold`` makes it wait before answering DATA."""

    def __init__(self):
        self.messages: list[Message] = []
        self.received = threading.Event()
        self.hold = threading.Event()
        self.hold.set()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        self.received.set()
        while not self.hold.is_set():  # a stalled server: the message is here, no answer yet
            import asyncio

            await asyncio.sleep(0.05)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    inbox.hold.set()
    controller.stop()
