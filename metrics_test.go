package idtoken

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// sample reads one series' value from reg; 0 when it is not there.
func sample(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.GetCounter() != nil:
					return m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return len(got) == len(want)
}

// TestRequestMetrics: every request the handler answers or passes on counts
// once, under its outcome and, for refusals, the reason's slug; cache
// lookups count as hit or miss.
func TestRequestMetrics(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	good := sign(t, k1, validClaims(), nil)
	expired := sign(t, k1, with(validClaims(), map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil)
	other := sign(t, newRSAKey(t, "k1", 1), validClaims(), nil) // k1's kid, another key
	navigate := [2]string{"Sec-Fetch-Mode", "navigate"}
	form := [2]string{"Content-Type", "application/x-www-form-urlencoded"}
	origin := [2]string{"Origin", "http://localhost:8080"}

	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		headers [][2]string
		outcome string
		reason  string
		hits    float64
		misses  float64
		noKeys  bool // with the key set emptied
	}{
		{name: "valid token, first time", headers: [][2]string{{"Authorization", "Bearer " + good}}, outcome: "accepted", misses: 1},
		{name: "valid token again: cache hit", headers: [][2]string{{"Authorization", "Bearer " + good}}, outcome: "accepted", hits: 1},
		{name: "no token, API client", outcome: "rejected", reason: "missing"},
		{name: "no token, browser", headers: [][2]string{navigate}, outcome: "redirected", reason: "missing"},
		{name: "expired", headers: [][2]string{{"Authorization", "Bearer " + expired}}, outcome: "rejected", reason: "expired", misses: 1},
		{name: "malformed", headers: [][2]string{{"Authorization", "Bearer x.y.z"}}, outcome: "rejected", reason: "malformed", misses: 1},
		{name: "two tokens", headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "id_token=" + expired}}, outcome: "rejected", reason: "many_tokens"},
		{name: "preflight", method: "OPTIONS", headers: [][2]string{{"Origin", "https://a.example"}, {"Access-Control-Request-Method", "GET"}}, outcome: "preflight"},
		{name: "session POST, valid", method: "POST", target: "/.idtoken/session", body: "id_token=" + good, headers: [][2]string{form, origin}, outcome: "accepted", hits: 1},
		{name: "session POST, expired", method: "POST", target: "/.idtoken/session", body: "id_token=" + expired, headers: [][2]string{form, origin}, outcome: "rejected", reason: "expired", misses: 1},
		{name: "session POST, cross-site", method: "POST", target: "/.idtoken/session", body: "id_token=" + good, headers: [][2]string{form, {"Origin", "https://evil.example"}}, outcome: "rejected", reason: "session_request"},
		{name: "session POST, oversized cookie", method: "POST", target: "/.idtoken/session",
			body:    "id_token=" + sign(t, k1, with(validClaims(), map[string]any{"pad": strings.Repeat("p", 3000)}), nil),
			headers: [][2]string{form, origin}, outcome: "rejected", reason: "cookie_too_large", misses: 1},
		{name: "logout", target: "/.idtoken/session/logout", outcome: "anonymous"},
		{name: "no key loaded: the 503", headers: [][2]string{{"Authorization", "Bearer " + other}}, noKeys: true, outcome: "rejected", reason: "no_keys", misses: 1},
		{name: "another key under the kid: bad signature", headers: [][2]string{{"Authorization", "Bearer " + other}}, outcome: "rejected", reason: "bad_signature", misses: 1},
	}

	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{Trust: Trust{JWKSFile: path}, PassCORSPreflight: true, LoginRedirect: &LoginRedirect{URL: "/login"}, SessionPath: "/.idtoken/session"}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	h.now = func() time.Time { return testNow }
	h.logger = zap.NewNop()
	reg := ctx.GetMetricsRegistry()

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			series := map[string]string{"outcome": tc.outcome, "reason": tc.reason}
			before := sample(t, reg, "caddy_idtoken_requests_total", series)
			total := totalRequests(t, reg)
			hits := sample(t, reg, "caddy_idtoken_cache_lookups_total", map[string]string{"result": "hit"})
			misses := sample(t, reg, "caddy_idtoken_cache_lookups_total", map[string]string{"result": "miss"})

			method, target := tc.method, tc.target
			if method == "" {
				method = http.MethodGet
			}
			if target == "" {
				target = "/docs"
			}
			r := httptest.NewRequest(method, "http://localhost:8080"+target, strings.NewReader(tc.body))
			for _, kv := range tc.headers {
				r.Header.Add(kv[0], kv[1])
			}
			if tc.noKeys {
				keys := h.trusts[0].keys
				h.trusts[0].keys = staticKeys(nil)
				defer func() { h.trusts[0].keys = keys }()
			}
			_, _ = serve(h, r)

			if got := sample(t, reg, "caddy_idtoken_requests_total", series) - before; got != 1 {
				t.Errorf("%v counted %v times, want 1", series, got)
			}
			if got := totalRequests(t, reg) - total; got != 1 {
				t.Errorf("requests_total grew by %v, want 1", got)
			}
			if got := sample(t, reg, "caddy_idtoken_cache_lookups_total", map[string]string{"result": "hit"}) - hits; got != tc.hits {
				t.Errorf("%v cache hits, want %v", got, tc.hits)
			}
			if got := sample(t, reg, "caddy_idtoken_cache_lookups_total", map[string]string{"result": "miss"}) - misses; got != tc.misses {
				t.Errorf("%v cache misses, want %v", got, tc.misses)
			}
		})
	}
}

// totalRequests sums every caddy_idtoken_requests_total series.
func totalRequests(t *testing.T, reg prometheus.Gatherer) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == "caddy_idtoken_requests_total" {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestEveryReasonHasASlug: each rejection reason counts under its own
// label value, so a new reason cannot silently count as "".
func TestEveryReasonHasASlug(t *testing.T) {
	seen := map[string]bool{}
	for i, r := range reasonSlugs {
		if i > 0 && (r.slug == "" || seen[r.slug] || reasonIndex(r.reason) != i) {
			t.Errorf("reason %q: slug %q duplicate or empty", r.reason, r.slug)
		}
		seen[r.slug] = true
	}
	for _, reason := range []string{ReasonMissing, ReasonTooLong, ReasonMalformed, ReasonAlg, ReasonCrit, ReasonNoKID, ReasonUnknownKID,
		ReasonKeyMismatch, ReasonSignature, ReasonNoExp, ReasonExpired, ReasonNotYetValid, ReasonIssuedFuture, ReasonIssuer,
		ReasonAudience, ReasonAPIKey, ReasonRequire, ReasonNoKeys, ReasonManyTokens, ReasonBadQuery} {
		if reasonIndex(reason) == 0 {
			t.Errorf("reason %q has no slug", reason)
		}
	}
}

// scrape reads Caddy's admin /metrics: series (name and labels as written)
// to value, for the caddy_idtoken_ families.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, body := roundTrip(t, mustRequest(t, http.MethodGet, admin+"/metrics", ""))
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, "caddy_idtoken_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMetricsEndToEnd scrapes a real Caddy's admin /metrics after a
// scripted mix of requests, reloads it, and checks that counting goes on
// without a reset or a double count, and that a source no config uses any
// more is gone.
func TestMetricsEndToEnd(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	isA, isB := newIssuer(t, jwksJSON(t, k1)), newIssuer(t, jwksJSON(t, k1))
	site, adminPort := freePort(t), freePort(t)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	config := func(withB bool) string {
		b := ""
		if withB {
			b = fmt.Sprintf("\thandle /b/* {\n\t\tidtoken {\n\t\t\tjwks_url %s\n\t\t}\n\t\trespond b\n\t}\n", isB.URL)
		}
		return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
}
http://127.0.0.1:%d {
%s	handle {
		idtoken {
			jwks_url %s
			login_redirect /login
			session_path /.idtoken/session
		}
		respond "hello {http.auth.user.id}"
	}
}
`, adminPort, site, b, isA.URL)
	}
	defer stopCaddyWithAdmin(t)
	loadCaddyfile(t, config(true))

	claims := with(validClaims(), map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	good := sign(t, k1, claims, nil)
	expired := sign(t, k1, with(claims, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), nil)
	base := fmt.Sprintf("http://127.0.0.1:%d", site)
	send := func(path string, headers ...string) {
		r := mustRequest(t, http.MethodGet, base+path, "")
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Add(headers[i], headers[i+1])
		}
		client := &http.Client{
			Timeout:       15 * time.Second,
			Transport:     &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Wait for both sources' first fetch, so the fetch counts are settled.
	deadline := time.Now().Add(10 * time.Second)
	for scrape(t, admin)[`caddy_idtoken_keyset_keys{source="`+isB.URL+`"}`] != 1 || scrape(t, admin)[`caddy_idtoken_keyset_keys{source="`+isA.URL+`"}`] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("key sets not loaded: %v", scrape(t, admin))
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := scrape(t, admin)

	send("/", "Authorization", "Bearer "+good)                                // accepted, cache miss
	send("/x", "Authorization", "Bearer "+good)                               // accepted, cache hit
	send("/", "Authorization", "Bearer "+expired)                             // rejected expired, miss
	send("/")                                                                 // rejected missing
	send("/", "Sec-Fetch-Mode", "navigate")                                   // redirected missing
	send("/", "Authorization", "Bearer "+good, "Cookie", "id_token="+expired) // rejected many_tokens
	send("/b/1", "Authorization", "Bearer "+good)                             // accepted on B, miss (B has its own cache)

	after := scrape(t, admin)
	want := map[string]float64{
		`caddy_idtoken_requests_total{outcome="accepted",reason=""}`:               3,
		`caddy_idtoken_requests_total{outcome="rejected",reason="expired"}`:        1,
		`caddy_idtoken_requests_total{outcome="rejected",reason="missing"}`:        1,
		`caddy_idtoken_requests_total{outcome="redirected",reason="missing"}`:      1,
		`caddy_idtoken_requests_total{outcome="rejected",reason="many_tokens"}`:    1,
		`caddy_idtoken_requests_total{outcome="anonymous",reason=""}`:              0,
		`caddy_idtoken_requests_total{outcome="preflight",reason=""}`:              0,
		`caddy_idtoken_cache_lookups_total{result="hit"}`:                          1,
		`caddy_idtoken_cache_lookups_total{result="miss"}`:                         3,
		`caddy_idtoken_keyset_fetches_total{result="ok",source="` + isA.URL + `"}`: 0,
	}
	for series, delta := range want {
		if _, ok := after[series]; !ok {
			t.Errorf("%s missing from /metrics", series)
		} else if got := after[series] - before[series]; got != delta {
			t.Errorf("%s grew by %v, want %v", series, got, delta)
		}
	}
	for _, src := range []string{isA.URL, isB.URL} {
		for series, v := range map[string]float64{
			`caddy_idtoken_keyset_fetches_total{result="ok",source="` + src + `"}`:           1,
			`caddy_idtoken_keyset_fetches_total{result="error",source="` + src + `"}`:        0,
			`caddy_idtoken_keyset_fetches_total{result="not_modified",source="` + src + `"}`: 0,
			`caddy_idtoken_keyset_keys{source="` + src + `"}`:                                1,
			`caddy_idtoken_keyset_stale{source="` + src + `"}`:                               0,
		} {
			if after[series] != v {
				t.Errorf("%s = %v, want %v", series, after[series], v)
			}
		}
		if ts := after[`caddy_idtoken_keyset_last_success_timestamp_seconds{source="`+src+`"}`]; ts < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("last success of %s at %v", src, ts)
		}
	}

	// A reload that drops source B: counting goes on where it was, and B's
	// series are gone.
	loadCaddyfile(t, config(false))
	reloaded := scrape(t, admin)
	for series, v := range after {
		if strings.Contains(series, isB.URL) {
			if _, ok := reloaded[series]; ok {
				t.Errorf("%s still there after its source was unloaded", series)
			}
		} else if strings.HasPrefix(series, "caddy_idtoken_requests_total") || strings.HasPrefix(series, "caddy_idtoken_cache_lookups_total") {
			if reloaded[series] != v {
				t.Errorf("%s = %v after reload, want %v (no reset, no double count)", series, reloaded[series], v)
			}
		}
	}
	send("/", "Authorization", "Bearer "+good)
	accepted := `caddy_idtoken_requests_total{outcome="accepted",reason=""}`
	if got := scrape(t, admin)[accepted] - reloaded[accepted]; got != 1 {
		t.Errorf("one request after reload counted %v times", got)
	}
}

// TestKeySetSeriesShareASource: live sets with one source label add their
// fetch counts up and take the largest gauge, so the registry never sees a
// duplicate series.
func TestKeySetSeriesShareASource(t *testing.T) {
	set := &KeySet{keys: []Key{{}, {}}}
	now := time.Unix(1732400000, 0)
	live := []keySetStatus{
		{Source: "https://accounts.eu1.gigya.com/accounts.getJWTPublicKey", Set: set, fetchStatus: fetchStatus{LastSuccess: now, Fetches: fetchCounts{OK: 2, Error: 1}}},
		{Source: "https://accounts.eu1.gigya.com/accounts.getJWTPublicKey", Stale: true, fetchStatus: fetchStatus{Fetches: fetchCounts{OK: 1, NotModified: 4}}},
		{Source: "/etc/jwks.json", Set: &KeySet{keys: []Key{{}}}},
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(keySetOnly(live))
	src := map[string]string{"source": "https://accounts.eu1.gigya.com/accounts.getJWTPublicKey"}
	for name, want := range map[string]float64{
		"caddy_idtoken_keyset_keys":                           2,
		"caddy_idtoken_keyset_stale":                          1,
		"caddy_idtoken_keyset_last_success_timestamp_seconds": 1732400000,
	} {
		if got := sample(t, reg, name, src); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for result, want := range map[string]float64{"ok": 3, "not_modified": 4, "error": 1} {
		if got := sample(t, reg, "caddy_idtoken_keyset_fetches_total", map[string]string{"source": src["source"], "result": result}); got != want {
			t.Errorf("fetches %s = %v, want %v", result, got, want)
		}
	}
	if got := sample(t, reg, "caddy_idtoken_keyset_stale", map[string]string{"source": "/etc/jwks.json"}); got != 0 {
		t.Errorf("file source stale = %v", got)
	}
}

// keySetOnly collects the key-set series of a fixed status list.
type keySetOnly []keySetStatus

func (keySetOnly) Describe(ch chan<- *prometheus.Desc) {
	ch <- fetchesDesc
	ch <- keysDesc
	ch <- lastSuccessDesc
	ch <- staleDesc
}

func (k keySetOnly) Collect(ch chan<- prometheus.Metric) { collectKeySets(ch, k) }
