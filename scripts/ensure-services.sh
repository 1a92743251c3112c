#!/usr/bin/env bash
# Starts PostgreSQL, Redis and RabbitMQ when they are installed but down, so service tests run
# instead of skipping. Prints what it did; never fails the build on its own (tests skip with a
# reason when a service is truly absent).
set -u

up() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_for() {
  local port=$1 name=$2
  for _ in $(seq 1 30); do up "$port" && { echo "$name: up"; return 0; }; sleep 1; done
  echo "$name: did not come up on port $port"
}

if ! up 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for 5432 PostgreSQL
fi
if ! up 6379 && command -v redis-server >/dev/null; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_for 6379 Redis
fi
if ! up 5672 && command -v rabbitmq-server >/dev/null; then
  rabbitmq-server -detached || true
  wait_for 5672 RabbitMQ
fi
for pair in 5432:PostgreSQL 6379:Redis 5672:RabbitMQ; do
  up "${pair%%:*}" && echo "${pair##*:} is available" || echo "${pair##*:} is absent: its tests will skip"
done
exit 0
