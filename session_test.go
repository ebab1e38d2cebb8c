package idtoken

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// sessionHandler is a provisioned handler with the session endpoint at
// /.idtoken/session, trusting k's JWKS.
func sessionHandler(t *testing.T, k testKey, h Handler) *Handler {
	t.Helper()
	if h.SessionPath == "" {
		h.SessionPath = "/.idtoken/session"
	}
	return claimsHandler(t, k, h)
}

// sessionPost is a same-origin POST to the session endpoint of
// http://localhost:8080.
func sessionPost(ctype, body string, headers ...[2]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://localhost:8080/.idtoken/session", strings.NewReader(body))
	r.Header.Set("Content-Type", ctype)
	r.Header.Set("Origin", "http://localhost:8080")
	for _, kv := range headers {
		if kv[1] == "" {
			r.Header.Del(kv[0])
		} else {
			r.Header.Set(kv[0], kv[1])
		}
	}
	return r
}

// jsonError decodes the endpoint's {"error", "error_description"} body.
func jsonError(t *testing.T, w *httptest.ResponseRecorder) (code, why string) {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", w.Header().Get("Content-Type"))
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return body.Error, body.Description
}

// TestSessionPost: a POSTed token is verified in full and becomes an
// HttpOnly cookie that lives as long as the token; every failure is a JSON
// error with the status the handler would give, and no cookie.
func TestSessionPost(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	other := newRSAKey(t, "k2", 1)
	good := sign(t, k1, validClaims(), nil) // exp = testNow + 5m
	form := "application/x-www-form-urlencoded"
	jsonType := "application/json"

	tests := []struct {
		name     string
		handler  Handler
		ctype    string
		body     string
		headers  [][2]string
		status   int
		location string // with 303
		cookie   string // the whole Set-Cookie line, with 303 and 204
		err      string // the JSON error code otherwise
		why      string // part of its description
	}{
		{name: "form, safe return: 303 there", ctype: form, body: "id_token=" + good + "&return=%2Fdocs%2Fa%3Fx%3D1",
			status: 303, location: "/docs/a?x=1", cookie: "id_token=" + good + "; Path=/; Max-Age=300; HttpOnly; SameSite=Lax"},
		{name: "form without return: 204", ctype: form, body: "id_token=" + good,
			status: 204, cookie: "id_token=" + good + "; Path=/; Max-Age=300; HttpOnly; SameSite=Lax"},
		{name: "JSON with charset", ctype: "application/json; charset=utf-8", body: `{"id_token":"` + good + `","return":"/x"}`,
			status: 303, location: "/x", cookie: "id_token=" + good + "; Path=/; Max-Age=300; HttpOnly; SameSite=Lax"},
		{name: "cookie name and domain", handler: Handler{SessionCookie: "sid", SessionDomain: "localhost"}, ctype: form, body: "id_token=" + good,
			status: 204, cookie: "sid=" + good + "; Path=/; Domain=localhost; Max-Age=300; HttpOnly; SameSite=Lax"},
		{name: "a domain that does not cover the host: 400, not a cookie the browser drops", handler: Handler{SessionDomain: "example.com"}, ctype: form, body: "id_token=" + good,
			status: 400, err: "invalid_request", why: "does not cover this host"},
		{name: "__Secure- cookie is Secure even on loopback http", handler: Handler{SessionCookie: "__Secure-id"}, ctype: form, body: "id_token=" + good,
			status: 204, cookie: "; HttpOnly; Secure; SameSite=Lax"},
		{name: "Max-Age is whole seconds to exp", ctype: form, body: "id_token=" + sign(t, k1, with(validClaims(), map[string]any{"exp": json.Number("1732400090.999")}), nil),
			status: 204, cookie: "Max-Age=90;"},
		{name: "optional does not make a session without a token", handler: Handler{Optional: true}, ctype: form, body: "return=%2F",
			status: 400, err: "invalid_request", why: "no id_token"},

		{name: "unsafe return //host: 204", ctype: form, body: "id_token=" + good + "&return=%2F%2Fevil.example", status: 204, cookie: "HttpOnly"},
		{name: `unsafe return /\host: 204`, ctype: form, body: "id_token=" + good + "&return=%2F%5Cevil.example", status: 204, cookie: "HttpOnly"},
		{name: "unsafe return https://host: 204", ctype: form, body: "id_token=" + good + "&return=https%3A%2F%2Fevil.example", status: 204, cookie: "HttpOnly"},
		{name: "unsafe return javascript: 204", ctype: form, body: "id_token=" + good + "&return=javascript%3Aalert(1)", status: 204, cookie: "HttpOnly"},
		{name: "unsafe return with a tab: 204", ctype: form, body: "id_token=" + good + "&return=%2F%09%2Fevil.example", status: 204, cookie: "HttpOnly"},
		{name: "unsafe return with a newline: 204", ctype: jsonType, body: `{"id_token":"` + good + `","return":"/a\r\nSet-Cookie: x=1"}`, status: 204, cookie: "HttpOnly"},

		{name: "bad signature: 401", ctype: form, body: "id_token=" + sign(t, other, validClaims(), map[string]any{"kid": "k1"}),
			status: 401, err: "invalid_token", why: ReasonSignature},
		{name: "expired: 401", ctype: form, body: "id_token=" + sign(t, k1, with(validClaims(), map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil),
			status: 401, err: "invalid_token", why: ReasonExpired},
		{name: "inside the leeway past exp: a cookie that would die at once is refused", ctype: form,
			body:   "id_token=" + sign(t, k1, with(validClaims(), map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()}), nil),
			status: 401, err: "invalid_token", why: ReasonExpired},
		{name: "issuer not allowed: 401", handler: Handler{Trust: Trust{Issuer: []string{"https://other.test"}}}, ctype: form, body: "id_token=" + good,
			status: 401, err: "invalid_token", why: ReasonIssuer},
		{name: "require fails: 403", handler: Handler{Require: []ClaimRequirement{{"role", []string{"admin"}}}}, ctype: form, body: "id_token=" + good,
			status: 403, err: "insufficient_scope", why: ReasonRequire},
		{name: "malformed token: 401", ctype: form, body: "id_token=abc", status: 401, err: "invalid_token", why: ReasonMalformed},
		{name: "token too large for a cookie: 400", ctype: form,
			body:   "id_token=" + sign(t, k1, with(validClaims(), map[string]any{"pad": strings.Repeat("p", 3000)}), nil),
			status: 400, err: "invalid_request", why: "browsers keep at most 4096 bytes"},

		{name: "no id_token: 400", ctype: form, body: "return=%2F", status: 400, err: "invalid_request", why: "no id_token"},
		{name: "empty id_token: 400", ctype: jsonType, body: `{"id_token":""}`, status: 400, err: "invalid_request", why: "no id_token"},
		{name: "two id_token fields: 400", ctype: form, body: "id_token=" + good + "&id_token=x", status: 400, err: "invalid_request", why: ReasonManyTokens},
		{name: "duplicate JSON member: 400", ctype: jsonType, body: `{"id_token":"` + good + `","id_token":"x"}`, status: 400, err: "invalid_request", why: "unreadable JSON"},
		{name: "JSON member in another case is not the token", ctype: jsonType, body: `{"ID_TOKEN":"` + good + `"}`, status: 400, err: "invalid_request", why: "no id_token"},
		{name: "JSON token not a string: 400", ctype: jsonType, body: `{"id_token":1}`, status: 400, err: "invalid_request", why: "unreadable JSON"},
		{name: "form with a semicolon: 400", ctype: form, body: "id_token=" + good + ";x=1", status: 400, err: "invalid_request", why: "unreadable form"},
		{name: "text/plain: 415", ctype: "text/plain", body: "id_token=" + good, status: 415, err: "invalid_request"},
		{name: "multipart: 415", ctype: "multipart/form-data; boundary=x", body: "--x--", status: 415, err: "invalid_request"},
		{name: "no Content-Type: 415", ctype: "", body: "id_token=" + good, status: 415, err: "invalid_request"},
		{name: "body over 32 KiB: 413", ctype: form, body: "id_token=" + good + "&pad=" + strings.Repeat("a", 32<<10), status: 413, err: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := sessionHandler(t, k1, tc.handler)
			r := sessionPost(tc.ctype, tc.body)
			if tc.ctype == "" {
				r.Header.Del("Content-Type")
			}
			w, err := serve(h, r)
			if err != nil {
				t.Fatalf("error %v: the endpoint answers itself", err)
			}
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
			cookie := w.Header().Get("Set-Cookie")
			if tc.err != "" {
				if cookie != "" {
					t.Fatalf("a refusal sets a cookie: %q", cookie)
				}
				code, why := jsonError(t, w)
				if code != tc.err || !strings.Contains(why, tc.why) {
					t.Fatalf("error %q %q, want %q with %q", code, why, tc.err, tc.why)
				}
				if tc.status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
					t.Fatal("401 without its challenge")
				}
				return
			}
			if !strings.Contains(cookie, tc.cookie) {
				t.Fatalf("Set-Cookie %q, want %q", cookie, tc.cookie)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Fatalf("Location %q, want %q", got, tc.location)
			}
			if strings.Contains(w.Body.String(), "|") {
				t.Fatal("the session request was passed on")
			}
		})
	}
}

// TestSessionCookieSecure: Secure is left out only for plain HTTP to a
// loopback host, so the offline demo works; a public host behind a
// TLS-terminating proxy keeps it.
func TestSessionCookieSecure(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	h := sessionHandler(t, k1, Handler{})
	good := sign(t, k1, validClaims(), nil)
	tests := []struct {
		name   string
		target string
		tls    bool
		secure bool
	}{
		{"http://localhost", "http://localhost:8080", false, false},
		{"http://LOCALHOST without port", "http://LOCALHOST", false, false},
		{"http://127.0.0.1", "http://127.0.0.1:8080", false, false},
		{"http://127.9.8.7", "http://127.9.8.7", false, false},
		{"http://[::1]", "http://[::1]:8080", false, false},
		{"https://localhost", "https://localhost:8443", true, true},
		{"http to a public host (TLS ended at a proxy)", "http://www.example.com", false, true},
		{"https to a public host", "https://www.example.com", true, true},
		{"http://localhost.evil.example", "http://localhost.evil.example", false, true},
		{"http://10.0.0.1", "http://10.0.0.1", false, true},
		{"a proxy sends https to 127.0.0.1 (X-Forwarded-Proto)", "http://127.0.0.1:8080", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tc.target+"/.idtoken/session", strings.NewReader("id_token="+good))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", strings.ToLower(tc.target))
			if strings.Contains(tc.name, "X-Forwarded-Proto") {
				r.Header.Set("X-Forwarded-Proto", "https")
			}
			r.TLS = nil
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w, _ := serve(h, r)
			cookie := w.Header().Get("Set-Cookie")
			if w.Code != 204 || strings.Contains(cookie, "; Secure") != tc.secure {
				t.Fatalf("status %d, Set-Cookie %q; want Secure %v", w.Code, cookie, tc.secure)
			}
		})
	}
}

// TestSessionOrigin: POST and DELETE must come from the site's own origin
// or a listed one (login CSRF); a request the browser marks cross-site only
// from a listed one.
func TestSessionOrigin(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	good := sign(t, k1, validClaims(), nil)
	h := sessionHandler(t, k1, Handler{SessionOrigins: []string{"https://login.example.com", "HTTPS://Auth.Example.com:443"}})
	tests := []struct {
		name    string
		method  string
		headers [][2]string
		status  int
		cors    bool // Access-Control-Allow-Origin echoed
	}{
		{name: "own origin", headers: [][2]string{{"Sec-Fetch-Site", "same-origin"}}, status: 204},
		{name: "own origin, host in another case", headers: [][2]string{{"Origin", "http://LocalHost:8080"}}, status: 204},
		{name: "listed origin, same-site", headers: [][2]string{{"Origin", "https://login.example.com"}, {"Sec-Fetch-Site", "same-site"}}, status: 204, cors: true},
		{name: "listed origin, cross-site", headers: [][2]string{{"Origin", "https://login.example.com"}, {"Sec-Fetch-Site", "cross-site"}}, status: 204, cors: true},
		{name: "listed with its default port written", headers: [][2]string{{"Origin", "https://auth.example.com"}}, status: 204, cors: true},
		{name: "DELETE from own origin", method: http.MethodDelete, status: 204},

		{name: "no Origin", headers: [][2]string{{"Origin", ""}}, status: 403},
		{name: "Origin null", headers: [][2]string{{"Origin", "null"}}, status: 403},
		{name: "another site", headers: [][2]string{{"Origin", "https://evil.example"}}, status: 403},
		{name: "own host, other port", headers: [][2]string{{"Origin", "http://localhost:9090"}}, status: 403},
		{name: "own host, other scheme", headers: [][2]string{{"Origin", "https://localhost:8080"}}, status: 403},
		{name: "own origin with a path", headers: [][2]string{{"Origin", "http://localhost:8080/x"}}, status: 403},
		{name: "own origin but marked cross-site", headers: [][2]string{{"Sec-Fetch-Site", "cross-site"}}, status: 403},
		{name: "listed origin's subdomain", headers: [][2]string{{"Origin", "https://x.login.example.com"}}, status: 403},
		{name: "DELETE without Origin", method: http.MethodDelete, headers: [][2]string{{"Origin", ""}}, status: 403},
		{name: "DELETE from another site", method: http.MethodDelete, headers: [][2]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}}, status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sessionPost("application/x-www-form-urlencoded", "id_token="+good, tc.headers...)
			if tc.method != "" {
				r.Method = tc.method
			}
			w, err := serve(h, r)
			if err != nil || w.Code != tc.status {
				t.Fatalf("status %d (err %v), want %d; body %s", w.Code, err, tc.status, w.Body)
			}
			if tc.status == 403 {
				if w.Header().Get("Set-Cookie") != "" {
					t.Fatal("refused, yet a cookie was set")
				}
				if code, _ := jsonError(t, w); code != "invalid_request" {
					t.Fatalf("error %q", code)
				}
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); (got != "") != tc.cors || (tc.cors && got != r.Header.Get("Origin")) {
				t.Fatalf("Access-Control-Allow-Origin %q, want it: %v", got, tc.cors)
			}
		})
	}

	t.Run("X-Forwarded-Proto from a trusted proxy", func(t *testing.T) {
		r := sessionPost("application/x-www-form-urlencoded", "id_token="+good, [2]string{"Origin", "https://localhost:8080"}, [2]string{"X-Forwarded-Proto", "https"})
		w, _ := serveTrusted(h, r, true)
		if w.Code != 204 {
			t.Fatalf("status %d, want 204", w.Code)
		}
		w, _ = serveTrusted(h, r, false)
		if w.Code != 403 {
			t.Fatalf("untrusted X-Forwarded-Proto believed: status %d", w.Code)
		}
	})
}

// serveTrusted is serve, with Caddy's trusted_proxy variable set.
func serveTrusted(h *Handler, r *http.Request, trusted bool) (*httptest.ResponseRecorder, error) {
	return serveWith(middlewareFunc(func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		caddyhttp.SetVar(r.Context(), caddyhttp.TrustedProxyVarKey, trusted)
		return h.ServeHTTP(w, r, next)
	}), r.Clone(r.Context()))
}

type middlewareFunc func(http.ResponseWriter, *http.Request, caddyhttp.Handler) error

func (f middlewareFunc) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return f(w, r, next)
}

// TestSessionEndSession: DELETE and GET <path>/logout clear the cookie with
// the attributes it was set with; other methods get 405 with Allow; a
// listed origin's preflight is answered.
func TestSessionEndSession(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	h := sessionHandler(t, k1, Handler{SessionCookie: "sid", SessionDomain: "example.com", SessionOrigins: []string{"https://login.example.com"}})
	const cleared = "sid=; Path=/; Domain=example.com; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
	tests := []struct {
		name     string
		method   string
		target   string
		headers  [][2]string
		status   int
		cookie   string
		location string
		allow    string
	}{
		{name: "DELETE", method: "DELETE", target: "/.idtoken/session", headers: [][2]string{{"Origin", "https://www.example.com"}}, status: 204, cookie: cleared},
		{name: "logout link", method: "GET", target: "/.idtoken/session/logout", status: 303, cookie: cleared, location: "/"},
		{name: "logout with a safe return", method: "GET", target: "/.idtoken/session/logout?return=%2Fbye%3Fx%3D1", status: 303, cookie: cleared, location: "/bye?x=1"},
		{name: "logout with //evil.example", method: "GET", target: "/.idtoken/session/logout?return=%2F%2Fevil.example", status: 303, cookie: cleared, location: "/"},
		{name: "logout with https://evil", method: "GET", target: "/.idtoken/session/logout?return=https%3A%2F%2Fevil", status: 303, cookie: cleared, location: "/"},
		{name: "logout HEAD", method: "HEAD", target: "/.idtoken/session/logout", status: 303, cookie: cleared, location: "/"},
		{name: "logout POST: 405", method: "POST", target: "/.idtoken/session/logout", status: 405, allow: "GET, HEAD"},
		{name: "GET the endpoint: 405", method: "GET", target: "/.idtoken/session", status: 405, allow: "POST, DELETE"},
		{name: "PUT: 405", method: "PUT", target: "/.idtoken/session", headers: [][2]string{{"Origin", "https://www.example.com"}}, status: 405, allow: "POST, DELETE"},
		{name: "OPTIONS from an unlisted origin: 405", method: "OPTIONS", target: "/.idtoken/session",
			headers: [][2]string{{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}}, status: 405, allow: "POST, DELETE"},
		{name: "preflight from a listed origin", method: "OPTIONS", target: "/.idtoken/session",
			headers: [][2]string{{"Origin", "https://login.example.com"}, {"Access-Control-Request-Method", "POST"}}, status: 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "https://www.example.com"+tc.target, nil)
			r.TLS = &tls.ConnectionState{}
			for _, kv := range tc.headers {
				r.Header.Set(kv[0], kv[1])
			}
			w, err := serve(h, r)
			if err != nil || w.Code != tc.status {
				t.Fatalf("status %d (err %v), want %d", w.Code, err, tc.status)
			}
			if got := w.Header().Get("Set-Cookie"); got != tc.cookie {
				t.Fatalf("Set-Cookie %q, want %q", got, tc.cookie)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Fatalf("Location %q, want %q", got, tc.location)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// TestSessionCookieIsATokenSource: the session cookie is read after the
// configured sources, counts toward "one token", is stripped before the
// request goes on, and a browser sent to the login page with a rejected
// one has it cleared.
func TestSessionCookieIsATokenSource(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	good := sign(t, k1, validClaims(), nil)
	expired := sign(t, k1, with(validClaims(), map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil)
	navigate := [2]string{"Sec-Fetch-Mode", "navigate"}
	const cleared = "id_token=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
	tests := []struct {
		name    string
		handler Handler
		headers [][2]string
		status  int    // 0: passed on
		cookie  string // Set-Cookie
	}{
		{name: "session cookie alone", headers: [][2]string{{"Cookie", "a=1; id_token=" + good}}},
		{name: "same token in Authorization and the cookie", headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "id_token=" + good}}},
		{name: "different tokens in Authorization and the cookie: 400", headers: [][2]string{{"Authorization", "Bearer " + good}, {"Cookie", "id_token=" + expired}}, status: 400},
		{name: "the session cookie is also a configured source", handler: Handler{TokenSources: []TokenSource{{Cookie: "id_token"}}}, headers: [][2]string{{"Cookie", "id_token=" + good}}},
		{name: "configured header, then the cookie", handler: Handler{TokenSources: []TokenSource{{Header: "X-Token"}}}, headers: [][2]string{{"X-Token", good}, {"Cookie", "id_token=" + expired}}, status: 400},
		{name: "expired cookie, API request: 401, cookie kept", handler: Handler{LoginRedirect: &LoginRedirect{URL: "/login"}}, headers: [][2]string{{"Cookie", "id_token=" + expired}}, status: 401},
		{name: "expired cookie, navigation: redirect clears it", handler: Handler{LoginRedirect: &LoginRedirect{URL: "/login"}}, headers: [][2]string{navigate, {"Cookie", "id_token=" + expired}}, status: 302, cookie: cleared},
		{name: "expired bearer, navigation: redirect, no cookie to clear", handler: Handler{LoginRedirect: &LoginRedirect{URL: "/login"}}, headers: [][2]string{navigate, {"Authorization", "Bearer " + expired}}, status: 302},
		{name: "no token, navigation: redirect, nothing cleared", handler: Handler{LoginRedirect: &LoginRedirect{URL: "/login"}}, headers: [][2]string{navigate}, status: 302},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := sessionHandler(t, k1, tc.handler)
			r := httptest.NewRequest(http.MethodGet, "https://www.example.com/docs", nil)
			for _, kv := range tc.headers {
				r.Header.Add(kv[0], kv[1])
			}
			w, err := serve(h, r)
			status := w.Code
			var herr caddyhttp.HandlerError
			if errors.As(err, &herr) {
				status = herr.StatusCode
			} else if status == 200 {
				status = 0
			}
			if status != tc.status {
				t.Fatalf("status %d (err %v), want %d", status, err, tc.status)
			}
			if got := w.Header().Get("Set-Cookie"); got != tc.cookie {
				t.Fatalf("Set-Cookie %q, want %q", got, tc.cookie)
			}
			if tc.status == 0 {
				if w.Body.String() != "user-123|||" {
					t.Fatalf("placeholders %q", w.Body.String())
				}
				if strings.Contains(r.Header.Get("Cookie"), "id_token") {
					t.Fatalf("session cookie passed on: %q", r.Header.Get("Cookie"))
				}
			}
		})
	}
}

// TestPassCORSPreflight: with pass_cors_preflight a preflight passes on
// anonymously, with every token carrier removed; any other OPTIONS, and
// every preflight without the setting, is checked as usual.
func TestPassCORSPreflight(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	good := sign(t, k1, validClaims(), nil)
	preflight := [][2]string{{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"}}
	tests := []struct {
		name    string
		pass    bool
		method  string
		headers [][2]string
		body    string
		query   string
		status  int // 0: passed on anonymously
	}{
		{name: "preflight", pass: true, method: "OPTIONS", headers: preflight},
		{name: "preflight with a forged token: passed on without it", pass: true, method: "OPTIONS", headers: append(preflight, [2]string{"Authorization", "Bearer forged.x.y"})},
		{name: "preflight with a valid token: passed on anonymously", pass: true, method: "OPTIONS", headers: append(preflight, [2]string{"Authorization", "Bearer " + good})},
		{name: "OPTIONS without Access-Control-Request-Method", pass: true, method: "OPTIONS", headers: preflight[:1], status: 401},
		{name: "OPTIONS without Origin", pass: true, method: "OPTIONS", headers: preflight[1:], status: 401},
		{name: "OPTIONS with empty Origin", pass: true, method: "OPTIONS", headers: [][2]string{{"Origin", ""}, {"Access-Control-Request-Method", "POST"}}, status: 401},
		{name: "GET with preflight headers", pass: true, method: "GET", headers: preflight, status: 401},
		{name: "preflight without the setting", method: "OPTIONS", headers: preflight, status: 401},
		{name: "OPTIONS with a body is no preflight", pass: true, method: "OPTIONS", headers: preflight, body: `{"amount":1000}`, status: 401},
		{name: "Origin that is not an origin", pass: true, method: "OPTIONS", headers: [][2]string{{"Origin", "anything"}, {"Access-Control-Request-Method", "POST"}}, status: 401},
		{name: "request method that is not a method", pass: true, method: "OPTIONS", headers: [][2]string{{"Origin", "https://a.example"}, {"Access-Control-Request-Method", "PO ST"}}, status: 401},
		{name: "Origin null (sandboxed page) is a preflight", pass: true, method: "OPTIONS", headers: [][2]string{{"Origin", "null"}, {"Access-Control-Request-Method", "POST"}}},
		{name: "method override headers are removed", pass: true, method: "OPTIONS", headers: append(preflight, [2]string{"X-HTTP-Method-Override", "POST"})},
		{name: "query token in an unreadable query: 400", pass: true, method: "OPTIONS", query: "?id_token=FORGED;", headers: preflight, status: 400},
		{name: "query token removed", pass: true, method: "OPTIONS", query: "?id_token=FORGED&a=1", headers: preflight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/jwks.json"
			writeFile(t, path, jwksJSON(t, k1))
			h := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, PassCORSPreflight: tc.pass, TokenSources: []TokenSource{{Header: "Authorization"}, {Query: "id_token"}}})
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(tc.method, "https://api.example/x"+tc.query, body)
			for _, kv := range tc.headers {
				r.Header.Set(kv[0], kv[1])
			}
			w, err := serve(h, r)
			var herr caddyhttp.HandlerError
			if tc.status != 0 {
				if !errors.As(err, &herr) || herr.StatusCode != tc.status {
					t.Fatalf("err %v, want %d", err, tc.status)
				}
				return
			}
			if err != nil || w.Body.String() != "|||" {
				t.Fatalf("err %v, placeholders %q; want passed on anonymously", err, w.Body.String())
			}
			if r.Header.Get("Authorization") != "" || strings.Contains(r.URL.RawQuery, "id_token") {
				t.Fatal("a token travelled on with a preflight")
			}
			if r.Header.Get("X-HTTP-Method-Override") != "" {
				t.Fatal("a method override travelled on with a preflight")
			}
		})
	}
}

// TestValidateSession: a JSON config makes the same mistakes a Caddyfile
// can; Validate refuses them.
func TestValidateSession(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		want string // "" when valid
	}{
		{name: "every setting", h: Handler{SessionPath: "/s", SessionCookie: "__Secure-id", SessionDomain: ".example.com", SessionOrigins: []string{"https://a.example:8443", "http://[::1]:3000"}}},
		{name: "cookie without path", h: Handler{SessionCookie: "sid"}, want: "session_cookie needs session_path"},
		{name: "domain without path", h: Handler{SessionDomain: "example.com"}, want: "session_domain needs session_path"},
		{name: "origins without path", h: Handler{SessionOrigins: []string{"https://a.example"}}, want: "session_origins needs session_path"},
		{name: "relative path", h: Handler{SessionPath: "s"}, want: "must be a path"},
		{name: "path with a space", h: Handler{SessionPath: "/a b"}, want: "plain path"},
		{name: "path with an escape", h: Handler{SessionPath: "/a%2Fb"}, want: "plain path"},
		{name: "cookie name with '='", h: Handler{SessionPath: "/s", SessionCookie: "a=b"}, want: "not a cookie name"},
		{name: "domain with a slash", h: Handler{SessionPath: "/s", SessionDomain: "example.com/x"}, want: "not a domain name"},
		{name: "__Host- cookie with a domain", h: Handler{SessionPath: "/s", SessionCookie: "__Host-id", SessionDomain: "example.com"}, want: "host-only"},
		{name: "origin with a trailing colon", h: Handler{SessionPath: "/s", SessionOrigins: []string{"https://a.example:"}}, want: "not an origin"},
		{name: "origin null", h: Handler{SessionPath: "/s", SessionOrigins: []string{"null"}}, want: "not an origin"},
		{name: "origin port 0", h: Handler{SessionPath: "/s", SessionOrigins: []string{"http://a.example:0"}}, want: "out of range"},
		{name: "origin port 99999", h: Handler{SessionPath: "/s", SessionOrigins: []string{"http://a.example:99999"}}, want: "out of range"},
		{name: "session_path /", h: Handler{SessionPath: "/"}, want: "clean path below /"},
		{name: "session_path with ..", h: Handler{SessionPath: "/a/../b"}, want: "clean path"},
		{name: "session_path with //", h: Handler{SessionPath: "/a//b"}, want: "clean path"},
		{name: "session_path with a trailing slash", h: Handler{SessionPath: "/a/"}},
		{name: "__host- in another case with a domain", h: Handler{SessionPath: "/s", SessionCookie: "__host-id", SessionDomain: "example.com"}, want: "host-only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.JWKSFile = "x"
			err := tc.h.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
