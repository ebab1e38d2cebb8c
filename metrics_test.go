package idtoken

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	}

	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{JWKSFile: path, PassCORSPreflight: true, LoginRedirect: &LoginRedirect{URL: "/login"}, SessionPath: "/.idtoken/session"}
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
