#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis servers the shared-store tests use answer on
# 127.0.0.1 (CI runs this before the tests, which must not skip there). Starts a
# server that is installed but stopped; a machine without them needs them installed.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

if command -v pg_isready >/dev/null && ! pg_up; then
  echo "start-services: starting PostgreSQL" >&2
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
fi
if command -v redis-server >/dev/null && ! redis_up; then
  echo "start-services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

for _ in $(seq 1 50); do
  if pg_up 2>/dev/null && redis_up; then break; fi
  sleep 0.2
done
pg_up || { echo "start-services: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "start-services: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }

# The tests' database (DESKMATE_TEST_POSTGRES_URL defaults to .../test).
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  createdb -h 127.0.0.1 -U postgres test
fi
echo "start-services: PostgreSQL and Redis answer on 127.0.0.1" >&2
