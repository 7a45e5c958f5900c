#!/usr/bin/env bash
# The cluster's Redis on the Ray head node: bound to the head's private address (workers must reach it)
# and loopback, always with a password (generated once, kept in ~/.worldvla/redis.conf, mode 0600).
# Prints the URL jobs take through WORLDVLA_REDIS_URL; also writes it to ~/.worldvla/redis_url.
set -euo pipefail
dir="$HOME/.worldvla"
port="${WORLDVLA_REDIS_PORT:-6390}"
mkdir -p "$dir/redis-data"
chmod 700 "$dir"
ip="$(hostname -I | awk '{print $1}')"
if [ ! -f "$dir/redis_password" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=' > "$dir/redis_password")
fi
password="$(cat "$dir/redis_password")"
(umask 077; cat > "$dir/redis.conf" <<CONF
bind 127.0.0.1 $ip
protected-mode yes
port $port
requirepass "$password"
dir "$dir/redis-data"
appendonly yes
save ""
daemonize yes
logfile "$dir/redis.log"
CONF
)
redis-server "$dir/redis.conf"
echo "redis://:$password@$ip:$port/0" > "$dir/redis_url"
chmod 600 "$dir/redis_url"
cat "$dir/redis_url"
