#!/usr/bin/env bash
# Load benchmark: a real Caddy (./cmd/caddy) on loopback, measured with wrk.
# Runs, in three alternating rounds so every run sees the same machine:
#   (a) a plain `respond` route (sent the same token, so requests are byte-identical to (b))
#   (b) the same route behind idtoken, one valid token (served from the cache)
#   (c) the same with cache_size 0 (every request verifies the RS256 signature)
#   (d) a pool of distinct valid tokens larger than the cache (cache_size 1000, 3000 tokens)
#   (g) (b) on a route with three trust blocks, the token's issuer the last of them
#   (h) (c) on that route: the issuer is read from the payload before each signature check
# and then, on the route of (c), in two alternating rounds:
#   (e) forged 16 KiB tokens: valid kid, costly JSON payload, junk signature (all 401)
#   (f) valid 16 KiB tokens signed with the demo key, padded to the same length (all 200)
# A 16 KiB token is never cached (its entry is over the cache's 16 KiB bound), so both verify every request. (e)/(f) is
# forged over valid throughput: 1.0 means a forged token costs the server no
# more than a valid one of the same length; the target is at least 0.8.
# Prints requests/s, p50/p99 latency, each run's ratio to (a), and (e)/(f).
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
# 16 KiB tokens (the module's limit) for (e) and (f): forged ones cycle through
# the variants of cmd/idtoken-loadtest (deep, wide, escapes, escaped-names, dupes).
go run ./cmd/idtoken-loadtest/bigtokens -dir "$work" -kind forged -n 200 > "$work/forged.txt"
go run ./cmd/idtoken-loadtest/bigtokens -dir "$work" -kind valid -n 200 -ttl 2h \
	-iss https://demo.idtoken.local -aud demo > "$work/big.txt"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port); pb=$(port); pc=$(port); pd=$(port); pg=$(port); ph=$(port)
# Two more issuers for the three-trust route, with keys of their own.
"$work/caddy" idtoken keygen --alg ES256 --out "$work/t1" >/dev/null 2>&1
"$work/caddy" idtoken keygen --alg EdDSA --out "$work/t2" >/dev/null 2>&1
trusted() { # port cache_size
	cat <<CADDY
http://127.0.0.1:$1 {
	idtoken {
		trust {
			jwks_file $work/t1/idtoken-jwks.json
			issuer https://one.idtoken.local
			algorithms ES256
		}
		trust {
			jwks_file $work/t2/idtoken-jwks.json
			issuer https://two.idtoken.local
			algorithms EdDSA
		}
		trust {
			jwks_file $work/demo-jwks.json
			issuer https://demo.idtoken.local
			audience demo
		}
		cache_size $2
	}
	respond "ok {http.auth.user.id}" 200
}
CADDY
}
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
	trusted "$pg" 10000
	trusted "$ph" 0
} > "$work/Caddyfile"
XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work "$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$pa/" >/dev/null && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$pa/" >/dev/null || { echo "caddy did not start:" >&2; cat "$work/caddy.log" >&2; exit 1; }

# wrk script: each request carries a token drawn from $TOKENS (if set). With
# $WANT set, every answer must have that status: the run prints how many did
# not (a response hook costs wrk some time, so (a)-(d) go without it).
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
local want = tonumber(os.getenv("WANT") or "")
if want then
  unexpected, answered = 0, 0
  response = function(status)
    answered = answered + 1
    if status ~= want then unexpected = unexpected + 1 end
  end
  local threads = {}
  setup = function(thread) threads[#threads + 1] = thread end
  done = function()
    local u, a = 0, 0
    for _, t in ipairs(threads) do u, a = u + t:get("unexpected"), a + t:get("answered") end
    io.write(string.format("answers %d unexpected %d\n", a, u))
  end
end
LUA

# Check every protected route answers 200 before measuring anything.
for p in $pb $pc $pd $pg $ph; do
	curl -fs -H "Authorization: Bearer $(cat "$work/one.txt")" "http://127.0.0.1:$p/" >/dev/null
done
# Check each 16 KiB token: length, then valid ones get 200 and forged ones 401
# for a bad signature (so the kid was found and the signature checked).
# One curl process sends them all (a curl config with one section per token).
check16k() { # tokens-file status reason
	awk 'length($0) < 16383 || length($0) > 16384 { print FILENAME ": a token of " length($0) " characters, not 16 KiB" > "/dev/stderr"; exit 1 }' "$1"
	awk -v url="http://127.0.0.1:$pc/" '{
		if (NR > 1) print "next"
		print "url = \"" url "\""
		print "header = \"Authorization: Bearer " $0 "\""
		print "output = \"/dev/null\""
		print "write-out = \"%{http_code} %header{www-authenticate}\\n\""
	}' "$1" > "$work/check.curl"
	curl -s -K "$work/check.curl" > "$work/check.out" || true
	awk -v want="$2" -v reason="$3" -v n="$(wc -l < "$1")" -v file="$(basename "$1")" '
		$1 != want || (reason != "" && index($0, "error_description=\"" reason "\"") == 0) {
			print file ": a token got \"" $0 "\", want " want (reason != "" ? " (" reason ")" : "") > "/dev/stderr"; bad = 1; exit 1
		}
		END { if (!bad && NR != n) { print file ": " NR " answers to " n " tokens" > "/dev/stderr"; exit 1 } }' "$work/check.out"
}
echo "checking the 16 KiB tokens ..." >&2
check16k "$work/big.txt" 200 ""
check16k "$work/forged.txt" 401 "invalid signature"

# round name round port tokens-file seconds [status]: one wrk run; with a
# status, every answer must have it (a response hook costs wrk some time, so
# (a)-(d) go without one and only refuse non-2xx answers); prints
# "name requests seconds p50-ms p99-ms".
round() {
	local out="$work/$1$2.out"
	TOKENS=$4 WANT=${6:-} wrk -t1 -c"$conns" -d"$5s" --latency -s "$work/tokens.lua" "http://127.0.0.1:$3/" > "$out"
	if [ -n "${6:-}" ] && ! grep -q "^answers [1-9][0-9]* unexpected 0\$" "$out"; then
		echo "run $1 (round $2) got answers other than $6:" >&2; cat "$out" >&2; exit 1
	fi
	if [ -z "${6:-}" ] && grep -q "Non-2xx" "$out"; then
		echo "run $1 (round $2) got non-2xx answers:" >&2; cat "$out" >&2; exit 1
	fi
	awk -v name="$1" '
		function ms(v) {
			if (v ~ /us$/) return v / 1000
			if (v ~ /ms$/) return v + 0
			if (v ~ /s$/) return v * 1000
			if (v ~ /m$/) return v * 60000
			return v * 3600000
		}
		/ requests in / { n = $1; t = $4 + 0 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		END { print name, n, t, p50, p99 }' "$out"
}

# (a)-(d) alternate in three rounds of a third of $secs each, and (e) and
# (f) in two rounds of half, so every run sees the same machine (two cores
# shared with wrk: a drift in the machine's speed falls on all runs alike).
third=$(( secs >= 6 ? secs / 3 : 2 )); half=$(( (secs + 1) / 2 ))
# Each round starts two runs later than the one before, so no run is
# always the last of a round, where a slowdown during the round falls.
runs=(a b c d g h)
declare -A rport=([a]=$pa [b]=$pb [c]=$pc [d]=$pd [g]=$pg [h]=$ph)
declare -A rtokens=([a]=one [b]=one [c]=one [d]=pool [g]=one [h]=one) # (a) sends (b)'s bytes
for r in 1 2 3; do
	for k in 0 1 2 3 4 5; do
		name=${runs[$(( (k + 2 * (r - 1)) % 6 ))]}
		round "$name" "$r" "${rport[$name]}" "$work/${rtokens[$name]}.txt" "$third"
	done
done > "$work/rounds"
for r in 1 2; do
	round e "$r" "$pc" "$work/forged.txt" "$half" 401
	round f "$r" "$pc" "$work/big.txt" "$half" 200
done >> "$work/rounds"
# Requests/s over all rounds; p50 and p99 are the highest round's.
awk '
	{ n[$1] += $2; t[$1] += $3; if ($4 > p50[$1]) p50[$1] = $4; if ($5 > p99[$1]) p99[$1] = $5 }
	END { for (k in n) printf "%s %.2f %.2fms %.2fms\n", k, n[k] / t[k], p50[k], p99[k] }' "$work/rounds" | sort > "$work/results"

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
	e) label="(e) forged 16 KiB tokens, cache_size 0 (401)" ;;
	f) label="(f) valid 16 KiB tokens, cache_size 0 (200)" ;;
	g) label="(g) three trusts, one token (cached)" ;;
	h) label="(h) three trusts, cache_size 0" ;;
	esac
	printf '%-46s %12s %10s %10s %8s\n' "$label" "$rps" "$p50" "$p99" "$(awk -v r="$rps" -v b="$base" 'BEGIN { printf "%.2f", r / b }')"
done < "$work/results"
awk -v half="$half" -v third="$third" '
	{ r[$1] = r[$1] sprintf(" %.0f", $2 / $3) }
	END {
		printf "(a)-(d), (g), (h): three alternating rounds of %ss each (requests/s: a%s, b%s, c%s, d%s, g%s, h%s)\n", third, r["a"], r["b"], r["c"], r["d"], r["g"], r["h"]
		printf "(e) and (f): two alternating rounds of %ss each (requests/s: e%s, f%s); p50/p99 are the highest round'"'"'s\n", half, r["e"], r["f"]
	}' "$work/rounds"
awk '
	$1 == "e" { e = $2 }
	$1 == "f" { f = $2 }
	$1 == "b" { b = $2 }
	$1 == "c" { c = $2 }
	$1 == "g" { g = $2 }
	$1 == "h" { h = $2 }
	END {
		printf "forged/valid (e)/(f): %.2f  (target: at least 0.80; 1.00: a forged token costs no more than a valid one)\n", e / f
		printf "three trusts over one: cached (g)/(b) %.2f, uncached (h)/(c) %.2f  (target: uncached at least 0.95)\n", g / b, h / c
	}' "$work/results"
