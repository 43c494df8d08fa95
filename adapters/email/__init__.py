"""Email out, one job a module: render.py (subject, text and html from the templates), headers.py (header values
and the Message-ID), mime.py (the MIME message), send.py (SMTP, once per Message-ID through the outbox)."""
