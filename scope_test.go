package idtoken

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// claimsHandler is a provisioned handler trusting k1 with extra settings.
func claimsHandler(t *testing.T, k testKey, h Handler) *Handler {
	t.Helper()
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k))
	h.JWKSFile = path
	return provisioned(t, &h)
}

// status runs token through h: 0 when passed on, else the error's status;
// and the challenge.
func status(t *testing.T, h *Handler, token string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w, err := serve(h, r)
	var herr caddyhttp.HandlerError
	if errors.As(err, &herr) {
		return herr.StatusCode, w.Header().Get("WWW-Authenticate")
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, ""
}

// TestRequireScope: every scope of every require_scope line must be in the
// token's scope (space-delimited) or scp (array or string) claim, compared
// exactly; a failure is 403 naming the failed line's scopes.
func TestRequireScope(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	tests := []struct {
		name      string
		lines     [][]string
		claims    map[string]any
		status    int
		challenge string
	}{
		{name: "scope string", lines: [][]string{{"read", "write"}}, claims: map[string]any{"scope": "openid read write"}},
		{name: "scp array", lines: [][]string{{"read", "write"}}, claims: map[string]any{"scp": []any{"write", "read"}}},
		{name: "scp string", lines: [][]string{{"read"}}, claims: map[string]any{"scp": "read"}},
		{name: "mixed: one in each claim", lines: [][]string{{"read", "write"}}, claims: map[string]any{"scope": "read", "scp": []any{"write"}}},
		{name: "extra spaces", lines: [][]string{{"read", "write"}}, claims: map[string]any{"scope": "  read   write  "}},
		{name: "a tab does not separate scopes", lines: [][]string{{"read"}}, claims: map[string]any{"scope": "write\tread"}, status: 403},
		{name: "a no-break space does not separate scopes", lines: [][]string{{"read"}}, claims: map[string]any{"scope": "write\u00a0read"}, status: 403},
		{name: "an scp element is one scope, not split", lines: [][]string{{"read"}}, claims: map[string]any{"scp": []any{"admin read"}}, status: 403},
		{name: "scope as an array is not read", lines: [][]string{{"read"}}, claims: map[string]any{"scope": []any{"read"}}, status: 403},
		{name: "several lines all hold", lines: [][]string{{"read"}, {"admin"}}, claims: map[string]any{"scope": "read admin"}},

		{name: "missing scope", lines: [][]string{{"read", "write"}}, claims: map[string]any{"scope": "read"}, status: 403,
			challenge: `Bearer realm="example.com", error="insufficient_scope", error_description="required scope missing", scope="read write"`},
		{name: "no scope claims", lines: [][]string{{"read"}}, claims: map[string]any{}, status: 403},
		{name: "case-sensitive", lines: [][]string{{"Read"}}, claims: map[string]any{"scope": "read"}, status: 403},
		{name: "a substring is not a scope", lines: [][]string{{"read"}}, claims: map[string]any{"scope": "reader"}, status: 403},
		{name: "scp array of non-strings", lines: [][]string{{"1"}}, claims: map[string]any{"scp": []any{1}}, status: 403},
		{name: "scope as an array is not read as scope", lines: [][]string{{"read"}}, claims: map[string]any{"scope": map[string]any{"read": true}}, status: 403},
		{name: "the second line fails: its scopes in the challenge", lines: [][]string{{"read"}, {"admin", "ops"}}, claims: map[string]any{"scope": "read ops"}, status: 403,
			challenge: `Bearer realm="example.com", error="insufficient_scope", error_description="required scope missing", scope="admin ops"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := claimsHandler(t, k1, Handler{RequireScope: tc.lines})
			got, challenge := status(t, h, sign(t, k1, with(validClaims(), tc.claims), nil))
			if got != tc.status || (tc.challenge != "" && challenge != tc.challenge) {
				t.Fatalf("status %d, challenge %q; want %d %q", got, challenge, tc.status, tc.challenge)
			}
		})
	}
}

// TestTokenMaxAge: auth_time, else iat, must be no longer ago than max_age,
// leeway applied; a token with neither is refused; a cached token stops
// being accepted when it grows too old.
func TestTokenMaxAge(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	ago := func(d time.Duration) int64 { return testNow.Add(-d).Unix() }
	tests := []struct {
		name   string
		claims map[string]any
		status int
	}{
		{name: "recent auth_time", claims: map[string]any{"auth_time": ago(5 * time.Minute)}},
		{name: "old auth_time", claims: map[string]any{"auth_time": ago(2 * time.Hour)}, status: 401},
		{name: "auth_time wins over a recent iat", claims: map[string]any{"auth_time": ago(2 * time.Hour), "iat": ago(time.Minute)}, status: 401},
		{name: "recent auth_time wins over an old iat", claims: map[string]any{"auth_time": ago(time.Minute), "iat": ago(2 * time.Hour)}},
		{name: "no auth_time: recent iat", claims: map[string]any{"iat": ago(time.Minute)}},
		{name: "no auth_time: old iat", claims: map[string]any{"iat": ago(2 * time.Hour)}, status: 401},
		{name: "within the leeway past max_age", claims: map[string]any{"auth_time": ago(time.Hour + 30*time.Second)}},
		{name: "just past max_age and leeway", claims: map[string]any{"auth_time": ago(time.Hour + 61*time.Second)}, status: 401},
		{name: "neither claim", claims: map[string]any{"iat": nil}, status: 401},
		{name: "auth_time not a number", claims: map[string]any{"auth_time": "yesterday"}, status: 401},
		{name: "auth_time in the future never grows old: refused", claims: map[string]any{"auth_time": testNow.Add(1e9 * time.Second).Unix()}, status: 401},
		{name: "auth_time within the leeway ahead", claims: map[string]any{"auth_time": testNow.Add(30 * time.Second).Unix()}},
		{name: "auth_time far beyond int64 nanoseconds", claims: map[string]any{"auth_time": 1e300}, status: 401},
	}
	h := claimsHandler(t, k1, Handler{MaxAge: caddy.Duration(time.Hour)})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, challenge := status(t, h, sign(t, k1, with(validClaims(), tc.claims), nil))
			if got != tc.status {
				t.Fatalf("status %d (%s), want %d", got, challenge, tc.status)
			}
		})
	}

	t.Run("a cached token grows too old", func(t *testing.T) {
		tok := sign(t, k1, with(validClaims(), map[string]any{"auth_time": ago(59 * time.Minute), "exp": testNow.Add(time.Hour).Unix()}), nil)
		if got, _ := status(t, h, tok); got != 0 {
			t.Fatalf("fresh: %d", got)
		}
		h.now = func() time.Time { return testNow.Add(2*time.Minute + time.Second) } // 61 min since login, over leeway
		defer func() { h.now = func() time.Time { return testNow } }()
		if got, challenge := status(t, h, tok); got != 401 {
			t.Fatalf("served from the cache after max_age: %d %s", got, challenge)
		}
	})
}
