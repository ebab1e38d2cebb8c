#!/usr/bin/env bash
# Load benchmark: a real Caddy (./cmd/caddy) on loopback, measured with wrk.
# Runs, for a fixed time each:
#   (a) a plain `respond` route (sent the same token, so requests are byte-identical to (b))
#   (b) the same route behind idtoken, one valid token (served from the cache)
#   (c) the same with cache_size 0 (every request verifies the RS256 signature)
#   (d) a pool of distinct valid tokens larger than the cache (cache_size 1000, 3000 tokens)
# and prints requests/s, p50/p99 latency and each run's ratio to (a).
# Needs Go and wrk (apt-get install -y wrk). Usage: bench/load.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "bench/load.sh needs wrk: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill "${caddy_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "building ./cmd/caddy and demo tokens ..." >&2
go build -o "$work/caddy" ./cmd/caddy
go run ./cmd/idtoken-demo keys -dir "$work" 2>/dev/null
go run ./cmd/idtoken-demo token -dir "$work" -ttl 2h > "$work/one.txt"
go run ./cmd/idtoken-demo token -dir "$work" -ttl 2h -n 3000 -sub user > "$work/pool.txt"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port); pb=$(port); pc=$(port); pd=$(port)
protected() { # port cache_size
	cat <<CADDY
http://127.0.0.1:$1 {
	idtoken {
		jwks_file $work/demo-jwks.json
		issuer https://demo.idtoken.local
		audience demo
		cache_size $2
	}
	respond "ok {http.auth.user.id}" 200
}
CADDY
}
{
	cat <<CADDY
{
	admin off
	persist_config off
	auto_https off
	storage file_system $work/storage
}
http://127.0.0.1:$pa {
	respond "ok {http.auth.user.id}" 200
}
CADDY
	protected "$pb" 10000
	protected "$pc" 0
	protected "$pd" 1000
} > "$work/Caddyfile"
XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work "$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$pa/" >/dev/null && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$pa/" >/dev/null || { echo "caddy did not start:" >&2; cat "$work/caddy.log" >&2; exit 1; }

# wrk script: each request carries a token drawn from $TOKENS (if set).
cat > "$work/tokens.lua" <<'LUA'
local tokens = {}
local path = os.getenv("TOKENS")
if path and path ~= "" then
  for line in io.lines(path) do tokens[#tokens + 1] = line end
end
request = function()
  if #tokens == 0 then return wrk.format("GET", "/") end
  return wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] })
end
LUA

# Check every protected route answers 200 before measuring anything.
for p in $pb $pc $pd; do
	curl -fs -H "Authorization: Bearer $(cat "$work/one.txt")" "http://127.0.0.1:$p/" >/dev/null
done

run() { # name port tokens-file
	TOKENS=$3 wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$work/tokens.lua" "http://127.0.0.1:$2/" > "$work/$1.out"
	if grep -q "Non-2xx" "$work/$1.out"; then
		echo "run $1 got non-2xx answers:" >&2; cat "$work/$1.out" >&2; exit 1
	fi
	awk -v name="$1" '
		/Requests\/sec/ { rps = $2 }
		$1 == "50%" { p50 = $2 }
		$1 == "99%" { p99 = $2 }
		END { print name, rps, p50, p99 }' "$work/$1.out"
}

{
	run a "$pa" "$work/one.txt" # same request bytes as (b): only the handler differs
	run b "$pb" "$work/one.txt"
	run c "$pc" "$work/one.txt"
	run d "$pd" "$work/pool.txt"
} > "$work/results"

echo
echo "caddy-idtoken load benchmark: ${secs}s per run, $conns connections, wrk -t1, $(nproc) cores"
printf '%-46s %12s %10s %10s %8s\n' run "requests/s" p50 p99 "vs (a)"
base=$(awk '$1 == "a" { print $2 }' "$work/results")
while read -r name rps p50 p99; do
	case $name in
	a) label="(a) plain respond" ;;
	b) label="(b) idtoken, one token (cached)" ;;
	c) label="(c) idtoken, cache_size 0" ;;
	d) label="(d) idtoken, 3000 tokens, cache_size 1000" ;;
	esac
	printf '%-46s %12s %10s %10s %8s\n' "$label" "$rps" "$p50" "$p99" "$(awk -v r="$rps" -v b="$base" 'BEGIN { printf "%.2f", r / b }')"
done < "$work/results"
