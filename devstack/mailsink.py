"""The SMTP sink of the dev stack: every accepted message becomes one `.eml` file under `DATA_DIR/mail/`."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


class EmlWriter:
    """aiosmtpd handler: writes the message as received, with the envelope in X-Envelope-* headers kept out."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        digest = hashlib.sha256(content).hexdigest()[:12]
        name = f"{time.time_ns()}-{digest}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(content)
        tmp.rename(self.folder / name)  # readers never see half a message
        return "250 Message accepted for delivery"


class MailSink:
    """A real SMTP server (aiosmtpd) on loopback, in a thread of the calling process."""

    def __init__(self, folder: Path, port: int, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.port = port
        self.host = host
        self.controller = Controller(EmlWriter(folder), hostname=host, port=port, ready_timeout=10)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))


def main() -> None:
    """`python -m devstack.mailsink FOLDER PORT`: the sink in a process of its own (the benchmarks use it, so
    that the worker under test does not share its interpreter with the SMTP server it sends to)."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    sink = MailSink(args.folder, args.port)
    sink.start()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    sink.stop()


if __name__ == "__main__":
    main()
