#!/bin/sh
# One-shot (temporalio/admin-tools): create Temporal's two databases and bring their schemas to the version of
# this image. Safe to run again: `create` fails only because the database exists, setup-schema skips a versioned
# schema, update-schema applies only what is missing.
set -eu

SCHEMA=/etc/temporal/schema/postgresql/v12
sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

until nc -z "$POSTGRES_SEEDS" "$DB_PORT"; do
  echo "waiting for postgres at $POSTGRES_SEEDS:$DB_PORT"
  sleep 1
done

for pair in "$DBNAME:temporal" "$VISIBILITY_DBNAME:visibility"; do
  db=${pair%%:*}
  dir=${pair##*:}
  sql --db "$db" create || echo "database $db exists"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "temporal schemas are current"
