package idtoken

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	// Caddy keeps its data and autosaved config under these; keep them out of $HOME.
	dir, err := os.MkdirTemp("", "idtoken-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	os.Setenv("XDG_CONFIG_HOME", dir)
	before := goleak.IgnoreCurrent()
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every key set goroutine and connection must be gone once handlers are cleaned up.
		// Ignored: goroutines Caddy itself leaves behind after caddy.Stop
		// (storage lock refresher, log-file rotation), not this module's.
		err := goleak.Find(before,
			goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
			goleak.IgnoreAnyFunction("github.com/DeRuina/timberjack.(*Logger).millRun"))
		if err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// provisioned returns a handler provisioned as Caddy would, cleaned up when
// the test ends.
func provisioned(t testing.TB, h *Handler) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if h.storage == nil {
		h.storage = &certmagic.FileStorage{Path: t.TempDir()}
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h.logger = zap.NewNop()
	h.now = func() time.Time { return testNow }
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// serve runs one request through h; next writes the placeholders it sees
// (an unknown placeholder would stay literal).
func serve(h *Handler, r *http.Request) (*httptest.ResponseRecorder, error) { return serveWith(h, r) }

// serveWith is serve for any middleware.
func serveWith(h caddyhttp.MiddlewareHandler, r *http.Request) (*httptest.ResponseRecorder, error) {
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, err := w.Write([]byte(repl.ReplaceKnown("{http.auth.user.id}|{http.auth.jwt.email}|{http.auth.jwt.address.country}|{http.auth.jwt.missing}", "")))
		return err
	})
	return w, h.ServeHTTP(w, r, next)
}

func TestServeHTTP(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	claims := with(validClaims(), map[string]any{"email": "a@example.com", "address": map[string]any{"country": "DE"}, "role": "user"})
	good := sign(t, k1, claims, nil)
	expired := sign(t, k1, with(claims, map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil)

	tests := []struct {
		name      string
		handler   Handler
		prepare   func(r *http.Request)
		status    int    // 0: passed on to next
		body      string // next's output when passed on
		challenge string // WWW-Authenticate on rejection
	}{
		{
			name: "bearer token passes with placeholders", prepare: bearer(good),
			body: "user-123|a@example.com|DE|",
		},
		{
			name: "no token", prepare: func(*http.Request) {},
			status: 401, challenge: `Bearer realm="example.com"`,
		},
		{
			name: "other auth scheme is no token", prepare: header("Authorization", "Basic dTpw"),
			status: 401, challenge: `Bearer realm="example.com"`,
		},
		{
			name: "expired token", prepare: bearer(expired),
			status: 401, challenge: `Bearer realm="example.com", error="invalid_token", error_description="token expired"`,
		},
		{
			name: "garbage token", prepare: bearer("not-a-jwt"),
			status: 401, challenge: `Bearer realm="example.com", error="invalid_token", error_description="malformed token"`,
		},
		{
			name: "require fails with 403", handler: Handler{Require: []ClaimRequirement{{"role", []string{"admin"}}}}, prepare: bearer(good),
			status: 403, challenge: `Bearer realm="example.com", error="insufficient_scope", error_description="required claim not satisfied"`,
		},
		{
			name: "configured realm", handler: Handler{Realm: `my "realm"`}, prepare: func(*http.Request) {},
			status: 401, challenge: `Bearer realm="my \"realm\""`,
		},
		{
			name: "cookie source", handler: Handler{TokenSources: []TokenSource{{Cookie: "id_token"}}},
			prepare: func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "id_token", Value: good}) },
			body:    "user-123|a@example.com|DE|",
		},
		{
			name: "query source", handler: Handler{TokenSources: []TokenSource{{Query: "t"}}},
			prepare: func(r *http.Request) { r.URL.RawQuery = "t=" + good },
			body:    "user-123|a@example.com|DE|",
		},
		{
			name: "custom header strips Bearer", handler: Handler{TokenSources: []TokenSource{{Header: "X-Id-Token"}}},
			prepare: header("X-Id-Token", "Bearer "+good),
			body:    "user-123|a@example.com|DE|",
		},
		{
			name: "every source is read: two different tokens are 400", handler: Handler{TokenSources: []TokenSource{{Cookie: "id_token"}, {Header: "X-Id-Token"}}},
			prepare: func(r *http.Request) {
				r.Header.Set("X-Id-Token", expired)
				r.AddCookie(&http.Cookie{Name: "id_token", Value: good})
			},
			status: 400, challenge: `Bearer realm="example.com", error="invalid_request", error_description="more than one token"`,
		},
		{
			name: "configured sources exclude Authorization", handler: Handler{TokenSources: []TokenSource{{Cookie: "id_token"}}},
			prepare: bearer(good),
			status:  401, challenge: `Bearer realm="example.com"`,
		},
		{
			name: "optional without token passes anonymously", handler: Handler{Optional: true},
			prepare: func(*http.Request) {}, body: "|||",
		},
		{
			name: "optional with invalid token is refused", handler: Handler{Optional: true}, prepare: bearer(expired),
			status: 401, challenge: `Bearer realm="example.com", error="invalid_token", error_description="token expired"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			h.JWKSFile = path
			provisioned(t, &h)
			r := httptest.NewRequest(http.MethodGet, "http://example.com:8443/", nil)
			tc.prepare(r)
			w, err := serve(&h, r)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := w.Body.String(); got != tc.body {
					t.Fatalf("placeholders = %q, want %q", got, tc.body)
				}
				return
			}
			var herr caddyhttp.HandlerError
			if !errors.As(err, &herr) || herr.StatusCode != tc.status {
				t.Fatalf("err = %v, want HandlerError %d", err, tc.status)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if w.Body.Len() != 0 {
				t.Fatalf("rejected request reached next: %q", w.Body.String())
			}
		})
	}
}

func bearer(token string) func(*http.Request) { return header("Authorization", "Bearer "+token) }

func header(name, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

// TestServeHTTPWithoutKeys: with no key loaded, a token gets 503 but a
// missing token is still 401.
func TestServeHTTPWithoutKeys(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, nil)
	url := is.URL
	is.Close()
	h := provisioned(t, &Handler{Trust: Trust{JWKSURL: url}})

	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	_, err := serve(h, r)
	if herr := (caddyhttp.HandlerError{}); !errors.As(err, &herr) || herr.StatusCode != 401 {
		t.Fatalf("no token: %v, want 401", err)
	}
	r = httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	bearer(sign(t, k1, validClaims(), nil))(r)
	w, err := serve(h, r)
	if herr := (caddyhttp.HandlerError{}); !errors.As(err, &herr) || herr.StatusCode != 503 {
		t.Fatalf("token without keys: %v, want 503", err)
	}
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

// TestServeHTTPRotation: a token signed with a key the issuer added after the
// first load is accepted after one refetch.
func TestServeHTTPRotation(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1))
	h := provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL, MinRefreshInterval: caddy.Duration(time.Nanosecond)}})
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	bearer(sign(t, k1, validClaims(), nil))(r)
	if _, err := serve(h, r); err != nil {
		t.Fatalf("k1: %v", err)
	}
	is.serve(http.StatusOK, jwksJSON(t, k1, k2))
	r = httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	bearer(sign(t, k2, validClaims(), nil))(r)
	if _, err := serve(h, r); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if got := is.hits.Load(); got != 2 {
		t.Fatalf("issuer hit %d times, want 2", got)
	}
	r = httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	bearer(sign(t, testKey{kid: "k3", alg: "RS256", priv: k2.priv}, validClaims(), nil))(r)
	_, err := serve(h, r)
	if err == nil || !strings.Contains(err.Error(), ReasonUnknownKID) {
		t.Fatalf("unknown kid after refetch: %v", err)
	}
}

// TestServeHTTPSources runs a request through a handler for each kind of
// key source, served from loopback.
func TestServeHTTPSources(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	const apiKey = "3_site"
	gigyaClaims := with(validClaims(), map[string]any{"iss": "https://fidm.gigya.com/jwt/" + apiKey + "/", "apiKey": apiKey, "aud": nil})
	oldGigyaClaims := with(gigyaClaims, map[string]any{"iss": "https://fidm.gigya.com/jwt/" + apiKey})

	// op serves OIDC discovery naming itself as issuer, and a JWKS.
	op := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = w.Write([]byte(`{"issuer":"http://` + r.Host + `","jwks_uri":"http://` + r.Host + `/jwks"}`))
		case "/jwks":
			_, _ = w.Write(jwksJSON(t, k1))
		default:
			http.NotFound(w, r)
		}
	})
	gigyaFor := func(body []byte) string {
		return serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/accounts.getJWTPublicKey" || r.URL.Query().Get("apiKey") != apiKey {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write(body)
		}).URL
	}
	v2, v1, gigyaErr := gigyaFor(gigyaV2(k1)), gigyaFor(gigyaV1(k1)), gigyaFor([]byte(gigyaInvalidAPIKey))

	tests := []struct {
		name    string
		handler Handler
		claims  map[string]any
		status  int // 0: accepted
	}{
		{"gigya V2", Handler{Trust: Trust{APIKey: apiKey, DataCenter: v2}}, gigyaClaims, 0},
		{"gigya V1", Handler{Trust: Trust{APIKey: apiKey, DataCenter: v1}}, gigyaClaims, 0},
		{"gigya issuer without trailing slash", Handler{Trust: Trust{APIKey: apiKey, DataCenter: v2}}, oldGigyaClaims, 0},
		{"gigya wrong apiKey", Handler{Trust: Trust{APIKey: apiKey, DataCenter: v2}}, with(gigyaClaims, map[string]any{"apiKey": "3_other"}), 401},
		{"gigya apiKey checked with issuer override", Handler{Trust: Trust{APIKey: apiKey, DataCenter: v2, Issuer: []string{"https://issuer.test"}}}, with(validClaims(), map[string]any{"apiKey": "3_other"}), 401},
		{"gigya foreign issuer", Handler{Trust: Trust{APIKey: apiKey, DataCenter: v2}}, with(gigyaClaims, map[string]any{"iss": "https://issuer.test"}), 401},
		{"gigya error envelope means no keys", Handler{Trust: Trust{APIKey: apiKey, DataCenter: gigyaErr}}, gigyaClaims, 503},
		{"oidc discovered issuer", Handler{Trust: Trust{OIDCIssuer: op.URL}}, with(validClaims(), map[string]any{"iss": op.URL}), 0},
		{"oidc other issuer", Handler{Trust: Trust{OIDCIssuer: op.URL}}, validClaims(), 401},
		{"jwks_url checks no issuer by default", Handler{Trust: Trust{JWKSURL: op.URL + "/jwks"}}, with(validClaims(), map[string]any{"iss": "anything"}), 0},
		{"jwks_url with issuer", Handler{Trust: Trust{JWKSURL: op.URL + "/jwks", Issuer: []string{"https://issuer.test"}}}, with(validClaims(), map[string]any{"iss": "anything"}), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			provisioned(t, &h)
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			bearer(sign(t, k1, tc.claims, nil))(r)
			w, err := serve(&h, r)
			if tc.status == 0 {
				if err != nil || w.Body.String() != "user-123|||" {
					t.Fatalf("refused: %v (body %q)", err, w.Body.String())
				}
				return
			}
			var herr caddyhttp.HandlerError
			if !errors.As(err, &herr) || herr.StatusCode != tc.status {
				t.Fatalf("err = %v, want %d", err, tc.status)
			}
		})
	}
}

// TestRejectionLogged: each rejection is logged at debug level with the
// reason and what is known of the token, never the token itself.
func TestRejectionLogged(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	h := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}})
	core, logs := observer.New(zapcore.DebugLevel)
	h.logger = zap.New(core)

	long := strings.Repeat("k", 1000)
	tests := []struct {
		name, token, reason, kid, sub string
	}{
		{"alg not allowed", sign(t, testKey{kid: "k9", alg: "HS256", priv: []byte("secret")}, validClaims(), nil), ReasonAlg, "k9", ""},
		// Before the signature verified, the claims are the sender's words: no iss or sub.
		{"bad signature", sign(t, testKey{kid: "k1", alg: "RS256", priv: rsaTestKey(t, 1)}, validClaims(), nil), ReasonSignature, "k1", ""},
		{"unknown kid cut to 64 bytes", sign(t, testKey{kid: long, alg: "RS256", priv: rsaTestKey(t, 1)}, validClaims(), nil), ReasonUnknownKID, clipForLog(long), ""},
		{"signed but expired", sign(t, k1, with(validClaims(), map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil), ReasonExpired, "k1", "user-123"},
		{"garbage", "not-a-token", ReasonMalformed, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			bearer(tc.token)(r)
			if _, err := serve(h, r); err == nil {
				t.Fatal("accepted")
			}
			entries := logs.TakeAll()
			if len(entries) != 1 || entries[0].Level != zapcore.DebugLevel || entries[0].Message != "request rejected" {
				t.Fatalf("log entries %v", entries)
			}
			fields := entries[0].ContextMap()
			if fields["reason"] != tc.reason || (tc.kid != "" && fields["kid"] != tc.kid) {
				t.Fatalf("logged %v", fields)
			}
			if sub, logged := fields["sub"]; (tc.sub == "" && logged) || (tc.sub != "" && sub != tc.sub) {
				t.Fatalf("logged sub %v (present %v), want %q", sub, logged, tc.sub)
			}
			if _, logged := fields["iss"]; logged != (tc.sub != "") {
				t.Fatalf("iss logged = %v, want %v", logged, tc.sub != "")
			}
			for _, v := range fields {
				if s, ok := v.(string); ok && len(s) > 20 && strings.Contains(tc.token, s) {
					t.Fatalf("token material logged: %q", s)
				}
			}
		})
	}
}

// TestSecondHandlerUpdatesPlaceholders: when two idtoken handlers run on one
// request (an optional one for the site, a strict one for a route), the
// placeholders show the last verification, not the first.
func TestSecondHandlerUpdatesPlaceholders(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	outer := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, Optional: true, TokenSources: []TokenSource{{Cookie: "site"}}})
	inner := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, TokenSources: []TokenSource{{Header: "X-Api-Token"}}})

	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	r.Header.Set("X-Api-Token", sign(t, k1, with(validClaims(), map[string]any{"sub": "api-user", "email": "api@example.com"}), nil))
	// The outer handler passes on anonymously (no cookie), then the inner one verifies.
	w, err := serveWith(chain{outer, inner}, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Body.String(); got != "api-user|api@example.com||" {
		t.Fatalf("placeholders = %q, want the inner handler's claims", got)
	}
}

// chain runs two middlewares in order, as a Caddy route does.
type chain [2]caddyhttp.MiddlewareHandler

func (c chain) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return c[0].ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return c[1].ServeHTTP(w, r, next)
	}))
}
