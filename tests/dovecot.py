"""A real IMAP server for the tests: Dovecot from Debian's packages (`dovecot-imapd`), on a free loopback port.

Its whole state lives in one directory: the config, base_dir (sockets, pid), state, logs and the maildirs. It
runs in the foreground (`dovecot -F -c CONFIG`) as a child of the test process, with one user from a
passwd-file and every mailbox owned by the uid/gid running the tests (root in CI, hence `first_valid_uid = 0`).
Loopback only, so no TLS and plaintext LOGIN is allowed.

`capabilities` replaces what the server announces after login (Dovecot's `imap_capability`): a server without
IDLE or MOVE, such as some older Exchange and hosted servers, is the same Dovecot announcing less.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from devstack.process import free_port, spawn, stop

USER = "checkins@firm.example"
PASSWORD = "s3cret with spaces & @/?"  # what a URL must percent-encode (no colon: the passwd-file separator)


def dovecot_binary() -> str:
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("dovecot is not installed: apt-get install -y --no-install-recommends dovecot-imapd")
    return found


class Dovecot:
    def __init__(self, port: int | None = None, *, capabilities: str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="engage-dovecot-"))
        self.root.chmod(0o711)
        self.port = port or free_port()
        self.capabilities = capabilities
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, mailbox: str = "INBOX", **query: str) -> str:
        from urllib.parse import quote, urlencode

        q = f"?{urlencode(query)}" if query else ""
        return f"imap://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@{self.host}:{self.port}/{mailbox}{q}"

    def _config(self) -> Path:
        if os.getuid() == 0:  # the package's unprivileged users run Dovecot's own processes
            internal, login = "dovecot", "dovenull"
            mail_user = pwd.getpwnam("nobody")
        else:
            mail_user = pwd.getpwuid(os.getuid())
            internal = login = mail_user.pw_name
        uid, gid = mail_user.pw_uid, mail_user.pw_gid
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        os.chown(self.root / "mail", uid, gid)
        passwd = self.root / "passwd"
        passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        passwd.chmod(0o644)  # read by the auth process, which runs as the internal user
        capability = f"imap_capability = {self.capabilities}\n" if self.capabilities is not None else ""
        config = self.root / "dovecot.conf"
        config.write_text(f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = /dev/stderr
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {uid}
first_valid_gid = {gid}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{self.root}/mail/%n
mail_uid = {uid}
mail_gid = {gid}
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = home={self.root}/mail/%n
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
        return config

    def start(self, timeout: float = 15.0) -> None:
        config = self._config()
        self.proc = spawn([dovecot_binary(), "-F", "-c", str(config)], log_path=self.root / "dovecot.log")
        self._wait_banner(timeout)

    def _wait_banner(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    sock.settimeout(2)
                    if sock.recv(512).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"dovecot sent no banner on {self.host}:{self.port} within {timeout:.0f} s: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the server; its mail stays, for a restart."""
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
