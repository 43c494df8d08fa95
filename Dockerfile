# The engage worker (default) and, with `engage inbox` as the command, the inbound reply server.
#   docker build -t engage .
#   docker run --env-file .env engage                  # the worker: python -m worker
#   docker run --env-file .env engage engage inbox     # the inbound SMTP server for replies
# Configuration is ENGAGE_* environment variables only (schemas/settings.py); docker-compose.yml sets them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package is built from: no .venv, var/ or tests in the image.
COPY pyproject.toml README.md worker.py ./
COPY workflows ./workflows
COPY activities ./activities
COPY schemas ./schemas
COPY domain ./domain
COPY adapters ./adapters
COPY store ./store
COPY cli ./cli
COPY devstack ./devstack
# A regular (non-editable) install: the code runs from site-packages, /src is not needed afterwards.
RUN pip install . && rm -rf /src

RUN useradd --system --create-home --uid 10001 engage
USER engage
WORKDIR /home/engage

# Graceful shutdown: the worker drains on SIGTERM (worker.py), within compose's stop_grace_period.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "worker"]
