#!/bin/sh
# First start of the postgres volume only (docker-entrypoint-initdb.d): one role per tenant of this server.
#   temporal - may create databases: temporal-sql-tool creates `temporal` and `temporal_visibility` itself.
#   engage   - owns the `engage` database (the app's event log and read models; migrations run in the worker).
# Passwords come from the environment of the postgres service (see docker-compose.yml).
set -e

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" -v engage_password="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE ROLE engage LOGIN PASSWORD :'engage_password';
CREATE DATABASE engage OWNER engage;
SQL
