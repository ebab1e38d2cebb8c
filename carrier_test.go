package idtoken

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
)

// passed is what the next handler saw of a request passed on.
type passed struct {
	header     http.Header
	rawQuery   string
	requestURI string
	user       string
}

// serveRecording runs r through h and returns what next saw (nil when the
// request was not passed on).
func serveRecording(t *testing.T, h *Handler, r *http.Request) (*passed, error) {
	t.Helper()
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	r = r.WithContext(context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{}))
	var seen *passed
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = &passed{r.Header.Clone(), r.URL.RawQuery, r.RequestURI, repl.ReplaceKnown("{http.auth.user.id}", "")}
		return nil
	})
	err := h.ServeHTTP(httptest.NewRecorder(), r, next)
	return seen, err
}

// TestOneTokenPerRequest: every occurrence of the token in every configured
// carrier is read; copies of one token are one token, two different tokens
// are 400; the Bearer scheme is read as RFC 6750 writes it; after
// verification the carriers are gone, unless forward_token keeps them.
func TestOneTokenPerRequest(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	good := sign(t, k1, validClaims(), nil)
	other := sign(t, k1, with(validClaims(), map[string]any{"sub": "mallory"}), nil)
	forged := good[:strings.LastIndexByte(good, '.')+1] + "AAAA"

	cookie := []TokenSource{{Cookie: "id_token"}}
	query := []TokenSource{{Query: "token"}}
	header := []TokenSource{{Header: "X-Id-Token"}}
	cookieAndBearer := []TokenSource{{Cookie: "id_token"}, {Header: "Authorization"}}

	tests := []struct {
		name     string
		sources  []TokenSource
		optional bool
		forward  bool
		headers  [][2]string // added in order, so a name may repeat
		uri      string      // default "/p"
		status   int         // 0: passed on
		reason   string
		check    func(t *testing.T, p *passed)
	}{
		// Two different tokens, wherever they are.
		{name: "two cookies of the name, different tokens", sources: cookie,
			headers: [][2]string{{"Cookie", "id_token=" + good + "; id_token=" + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "same cookie in two Cookie headers, different tokens", sources: cookie,
			headers: [][2]string{{"Cookie", "id_token=" + good}, {"Cookie", "a=1; id_token=" + other}}, status: 400, reason: ReasonManyTokens},
		{name: "cookie hidden after a comma, as Python reads it", sources: cookie,
			headers: [][2]string{{"Cookie", "id_token=" + good + "; a=1, id_token=" + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "cookie with spaces around '=' as Python reads it", sources: cookie,
			headers: [][2]string{{"Cookie", "id_token=" + good + "; id_token = " + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "query parameter twice, different tokens", sources: query,
			uri: "/p?token=" + good + "&token=" + forged, status: 400, reason: ReasonManyTokens},
		{name: "query parameter with an escaped name", sources: query,
			uri: "/p?token=" + good + "&t%6Fken=" + forged, status: 400, reason: ReasonManyTokens},
		{name: "query with a ';' segment Go's parser would drop", sources: query,
			uri: "/p?token=" + good + "&x=1;token=" + forged, status: 400, reason: ReasonBadQuery},
		{name: "query with a bad escape", sources: query,
			uri: "/p?token=" + good + "&x=%zz", status: 400, reason: ReasonBadQuery},
		{name: "two Authorization headers, different tokens",
			headers: [][2]string{{"Authorization", "Bearer " + good}, {"Authorization", "Bearer " + other}}, status: 400, reason: ReasonManyTokens},
		{name: "custom header twice, different tokens", sources: header,
			headers: [][2]string{{"X-Id-Token", good}, {"X-Id-Token", forged}}, status: 400, reason: ReasonManyTokens},
		{name: "cookie and header disagree", sources: cookieAndBearer,
			headers: [][2]string{{"Cookie", "id_token=" + good}, {"Authorization", "Bearer " + other}}, status: 400, reason: ReasonManyTokens},
		{name: "empty Bearer next to a token", sources: cookieAndBearer,
			headers: [][2]string{{"Cookie", "id_token=" + good}, {"Authorization", "Bearer"}}, status: 400, reason: ReasonManyTokens},

		// The Bearer scheme.
		{name: "Bearer then a tab is a token, not anonymous", optional: true,
			headers: [][2]string{{"Authorization", "Bearer\t" + good}},
			check:   func(t *testing.T, p *passed) { wantUser(t, p, "user-123") }},
		{name: "bearer in lower case then several spaces",
			headers: [][2]string{{"Authorization", "bearer   " + good}},
			check:   func(t *testing.T, p *passed) { wantUser(t, p, "user-123") }},
		{name: "Bearer with a forged token is refused even when optional", optional: true,
			headers: [][2]string{{"Authorization", "Bearer\t" + forged}}, status: 401, reason: ReasonSignature},
		{name: "Bearer alone is a malformed token, not anonymous", optional: true,
			headers: [][2]string{{"Authorization", "Bearer"}}, status: 401, reason: ReasonMalformed},
		{name: "Bearer and spaces is a malformed token", optional: true,
			headers: [][2]string{{"Authorization", "Bearer   "}}, status: 401, reason: ReasonMalformed},
		{name: "another scheme is no token",
			headers: [][2]string{{"Authorization", "Basic dTpw"}}, status: 401, reason: ReasonMissing},
		{name: "Bearer glued to the token is a malformed Bearer credential", optional: true,
			headers: [][2]string{{"Authorization", "Bearer" + good}}, status: 401, reason: ReasonMalformed},
		{name: "Bearer then a colon", optional: true,
			headers: [][2]string{{"Authorization", "Bearer:" + good}}, status: 401, reason: ReasonMalformed},
		{name: "Bearer then a no-break space, as Python's split reads it", optional: true,
			headers: [][2]string{{"Authorization", "Bearer\u00a0" + forged}}, status: 401, reason: ReasonMalformed},
		{name: "a list of credentials with a Bearer among them", optional: true,
			headers: [][2]string{{"Authorization", "Basic YTpi, Bearer " + forged}}, status: 401, reason: ReasonMalformed},
		{name: "a JWS under another scheme", optional: true,
			headers: [][2]string{{"Authorization", "JWT " + good}}, status: 401, reason: ReasonMalformed},
		{name: "a bare JWS as Authorization", optional: true,
			headers: [][2]string{{"Authorization", good}}, status: 401, reason: ReasonMalformed},
		{name: "cookie after a space, as Python's SimpleCookie reads it", sources: cookieAndBearer,
			headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "x=1 id_token=" + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "cookie after a tab", sources: cookieAndBearer,
			headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "x=1\tid_token=" + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "cookie after a space on an optional route is a token", sources: cookie, optional: true,
			headers: [][2]string{{"Cookie", "x=1 id_token=" + forged}}, status: 401, reason: ReasonSignature},
		{name: "cookie named with a dot, as PHP reads it", sources: cookieAndBearer,
			headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "a=1; id.token=" + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "cookie named with a space, as PHP reads it", sources: cookieAndBearer,
			headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "a=1; id token=" + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "cookie named as a PHP array", sources: cookieAndBearer,
			headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "id_token[]=" + forged}}, status: 400, reason: ReasonManyTokens},
		{name: "query name with a leading '+', as PHP reads it", sources: query,
			uri: "/p?token=" + good + "&+token=" + forged, status: 400, reason: ReasonManyTokens},
		{name: "query name ended by a NUL", sources: query,
			uri: "/p?token=" + good + "&token%00=" + forged, status: 400, reason: ReasonManyTokens},
		{name: "query name as a PHP array", sources: query,
			uri: "/p?token=" + good + "&token[]=" + forged, status: 400, reason: ReasonManyTokens},
		{name: "a cookie value Go and PHP read on past a comma", sources: cookie, forward: true,
			headers: [][2]string{{"Cookie", "id_token=" + good + ","}}, status: 400, reason: ReasonManyTokens},
		{name: "doubled quotes around a cookie are not one pair", sources: cookie,
			headers: [][2]string{{"Cookie", `id_token=""` + good + `""`}}, status: 401, reason: ReasonMalformed},
		{name: "an opening quote alone is kept", sources: cookie,
			headers: [][2]string{{"Cookie", `id_token="` + good}}, status: 401, reason: ReasonMalformed},
		{name: "empty cookie is no token", sources: cookie, optional: true,
			headers: [][2]string{{"Cookie", "id_token=; a=1"}},
			check:   func(t *testing.T, p *passed) { wantUser(t, p, "") }},

		// Copies of one token are one token; stripping.
		{name: "same token as cookie and header: both stripped", sources: cookieAndBearer,
			headers: [][2]string{{"Cookie", "a=1; id_token=" + good + `; b="x y"`}, {"Authorization", "Bearer " + good}},
			check: func(t *testing.T, p *passed) {
				wantUser(t, p, "user-123")
				wantHeader(t, p, "Authorization", nil)
				wantHeader(t, p, "Cookie", []string{`a=1; b="x y"`})
			}},
		{name: "same cookie twice: every copy stripped, other headers' pairs byte for byte", sources: cookie,
			headers: [][2]string{{"Cookie", "id_token=" + good + ";  z=9"}, {"Cookie", "id_token=" + good}, {"Cookie", "a=1;b=2"}},
			check:   func(t *testing.T, p *passed) { wantHeader(t, p, "Cookie", []string{"z=9", "a=1;b=2"}) }},
		{name: "cookie after a comma is stripped too", sources: cookie,
			headers: [][2]string{{"Cookie", "a=1, id_token=" + good + "; b=2"}},
			check:   func(t *testing.T, p *passed) { wantHeader(t, p, "Cookie", []string{"a=1; b=2"}) }},
		{name: "mangled and spaced names are stripped too; a ',' ending a value stays", sources: cookie,
			headers: [][2]string{{"Cookie", "prefs=a,; id.token=" + good + "; x=1 id_token=" + good + "; id token=" + good + "; z=2"}},
			check:   func(t *testing.T, p *passed) { wantHeader(t, p, "Cookie", []string{"prefs=a,; x=1; z=2"}) }},
		{name: "default: Authorization stripped",
			headers: [][2]string{{"Authorization", "Bearer " + good}},
			check:   func(t *testing.T, p *passed) { wantHeader(t, p, "Authorization", nil) }},
		{name: "Authorization that carried the token goes, every line of it",
			headers: [][2]string{{"Authorization", "Basic dTpw"}, {"Authorization", "Bearer " + good}},
			check:   func(t *testing.T, p *passed) { wantHeader(t, p, "Authorization", nil) }},
		{name: "Authorization that did not carry the token stays", sources: cookieAndBearer,
			headers: [][2]string{{"Authorization", "Basic dTpw"}, {"Cookie", "id_token=" + good}},
			check:   func(t *testing.T, p *passed) { wantHeader(t, p, "Authorization", []string{"Basic dTpw"}) }},
		{name: "query names PHP reads as the parameter are stripped", sources: query,
			uri: "/p?a=1&token=" + good + "&token[]=" + good + "&+token=" + good + "&b=2",
			check: func(t *testing.T, p *passed) {
				if p.rawQuery != "a=1&b=2" {
					t.Fatalf("query %q", p.rawQuery)
				}
			}},
		{name: "custom header stripped", sources: header,
			headers: [][2]string{{"X-Id-Token", "Bearer " + good}},
			check:   func(t *testing.T, p *passed) { wantHeader(t, p, "X-Id-Token", nil) }},
		{name: "query parameter stripped, others kept in order", sources: query,
			uri: "/p?a=1&token=" + good + "&b=%20x&token=" + good + "&c",
			check: func(t *testing.T, p *passed) {
				if p.rawQuery != "a=1&b=%20x&c" || p.requestURI != "/p?a=1&b=%20x&c" {
					t.Fatalf("query %q, RequestURI %q", p.rawQuery, p.requestURI)
				}
			}},
		{name: "query left empty: no '?' in RequestURI", sources: query,
			uri: "/p?token=" + good,
			check: func(t *testing.T, p *passed) {
				if p.rawQuery != "" || p.requestURI != "/p" {
					t.Fatalf("query %q, RequestURI %q", p.rawQuery, p.requestURI)
				}
			}},

		// forward_token keeps the carriers: the one verified token.
		{name: "forward_token keeps cookie and header", sources: cookieAndBearer, forward: true,
			headers: [][2]string{{"Cookie", "a=1; id_token=" + good}, {"Authorization", "Bearer " + good}},
			check: func(t *testing.T, p *passed) {
				wantHeader(t, p, "Authorization", []string{"Bearer " + good})
				wantHeader(t, p, "Cookie", []string{"a=1; id_token=" + good})
			}},
		{name: "forward_token keeps the query", sources: query, forward: true,
			uri: "/p?token=" + good + "&a=1",
			check: func(t *testing.T, p *passed) {
				if p.rawQuery != "token="+good+"&a=1" || p.requestURI != "/p?token="+good+"&a=1" {
					t.Fatalf("query %q, RequestURI %q", p.rawQuery, p.requestURI)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, TokenSources: tc.sources, Optional: tc.optional, ForwardToken: tc.forward})
			uri := tc.uri
			if uri == "" {
				uri = "/p"
			}
			r := httptest.NewRequest(http.MethodGet, "http://example.com"+uri, nil)
			r.RequestURI = uri // origin form, as a server sees it
			for _, kv := range tc.headers {
				r.Header.Add(kv[0], kv[1])
			}
			p, err := serveRecording(t, h, r)
			if tc.status != 0 {
				var herr caddyhttp.HandlerError
				if !errors.As(err, &herr) || herr.StatusCode != tc.status || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("err = %v, want %d %q", err, tc.status, tc.reason)
				}
				if p != nil {
					t.Fatal("rejected request was passed on")
				}
				return
			}
			if err != nil || p == nil {
				t.Fatalf("not passed on: %v", err)
			}
			tc.check(t, p)
		})
	}
}

func wantUser(t *testing.T, p *passed, user string) {
	t.Helper()
	if p.user != user {
		t.Fatalf("user %q, want %q", p.user, user)
	}
}

func wantHeader(t *testing.T, p *passed, name string, want []string) {
	t.Helper()
	if got := p.header.Values(name); !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", name, got, want)
	}
}

// TestManyTokensChallenge: the 400 carries the RFC 6750 invalid_request
// challenge and is a caddyhttp error, like the other rejections.
func TestManyTokensChallenge(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	h := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, Realm: "site"})
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	r.Header.Add("Authorization", "Bearer "+sign(t, k1, validClaims(), nil))
	r.Header.Add("Authorization", "Bearer x.y.z")
	w, err := serve(h, r)
	var herr caddyhttp.HandlerError
	if !errors.As(err, &herr) || herr.StatusCode != http.StatusBadRequest {
		t.Fatalf("err = %v, want a 400 HandlerError", err)
	}
	want := `Bearer realm="site", error="invalid_request", error_description="more than one token"`
	if got := w.Header().Get("WWW-Authenticate"); got != want {
		t.Fatalf("WWW-Authenticate = %q, want %q", got, want)
	}
}

// TestNoKeySetAfterRefetchIs503: when the refetch an unknown kid asks for
// drops a stored key set older than max_stale, no set is left: 503, not a
// nil dereference.
func TestNoKeySetAfterRefetchIs503(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	clock := &fakeClock{}
	cfg := keySetConfig{kind: "jwks_url", location: is.URL, maxStale: 7 * 24 * time.Hour}

	storedOnce(t, cfg, storage, clock)

	is.serve(http.StatusServiceUnavailable, nil)
	clock.advance(6 * 24 * time.Hour)
	keys, _ := startStoredKeySet(t, cfg, storage, clock)
	if set := keys.Refresh(t.Context()); set == nil || !set.origin.fromStorage {
		t.Fatal("stored key set not restored")
	}
	clock.advance(2 * 24 * time.Hour) // now older than max_stale

	p := Policy{Algorithms: []string{"RS256"}, Leeway: time.Minute}
	v, err := NewVerifier(p)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{trusts: oneTrust(v, keys), now: time.Now}
	token := sign(t, newRSAKey(t, "k2", 1), with(validClaims(), map[string]any{"exp": time.Now().Add(time.Hour).Unix()}), nil)
	_, rej := verifyRequest(h, token)
	if rej == nil || rej.Status != http.StatusServiceUnavailable || rej.Reason != ReasonNoKeys {
		t.Fatalf("rejection %v, want 503 %q", rej, ReasonNoKeys)
	}
}
