package idtoken

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLoginRedirect: a browser navigation refused with 401 is sent to the
// login page; every other request shape, and every other status, keeps the
// error with its RFC 6750 challenge.
func TestLoginRedirect(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	expired := sign(t, k1, with(validClaims(), map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil)
	good := sign(t, k1, validClaims(), nil)
	navigate := [][2]string{{"Sec-Fetch-Mode", "navigate"}, {"Accept", "text/html,*/*;q=0.8"}}

	tests := []struct {
		name     string
		handler  Handler
		method   string
		uri      string
		headers  [][2]string
		status   int    // the error's status; 0: redirected (302 written)
		location string // with status 0
	}{
		{name: "navigation without a token", headers: navigate, location: "/login?return=%2Fdocs%2Fa"},
		{name: "navigation with an expired token", headers: append(navigate, [2]string{"Authorization", "Bearer " + expired}), location: "/login?return=%2Fdocs%2Fa"},
		{name: "navigation with a malformed token", headers: append(navigate, [2]string{"Authorization", "Bearer x"}), location: "/login?return=%2Fdocs%2Fa"},
		{name: "HEAD navigation", method: http.MethodHead, headers: navigate, location: "/login?return=%2Fdocs%2Fa"},
		{name: "no Sec-Fetch-Mode, Accept lists text/html", headers: [][2]string{{"Accept", "application/xhtml+xml, text/html; q=0.9"}}, location: "/login?return=%2Fdocs%2Fa"},
		{name: "return keeps path and query, escaped as one value", uri: "/a%20b?x=1&y=%2F", headers: navigate, location: "/login?return=%2Fa%2520b%3Fx%3D1%26y%3D%252F"},
		{name: "login URL with a query gets '&'", handler: Handler{LoginRedirect: &LoginRedirect{URL: "https://login.example/start?lang=en", Param: "next"}}, headers: navigate, location: "https://login.example/start?lang=en&next=%2Fdocs%2Fa"},
		{name: "a query token does not travel to the login page", handler: Handler{TokenSources: []TokenSource{{Query: "token"}}}, uri: "/docs/a?token=" + expired + "&p=1", headers: navigate, location: "/login?return=%2Fdocs%2Fa%3Fp%3D1"},

		{name: "fetch from a page (cors mode)", headers: [][2]string{{"Sec-Fetch-Mode", "cors"}, {"Accept", "text/html"}}, status: 401},
		{name: "no-cors subresource", headers: [][2]string{{"Sec-Fetch-Mode", "no-cors"}}, status: 401},
		{name: "curl (Accept */*)", headers: [][2]string{{"Accept", "*/*"}}, status: 401},
		{name: "no Accept at all", status: 401},
		{name: "XMLHttpRequest asking for HTML", headers: [][2]string{{"Accept", "text/html"}, {"X-Requested-With", "XMLHttpRequest"}}, status: 401},
		{name: "POST navigation (a form)", method: http.MethodPost, headers: navigate, status: 401},
		{name: "two tokens stay 400", headers: append(navigate, [2]string{"Authorization", "Bearer " + good}, [2]string{"Authorization", "Bearer " + expired}), status: 400},
		{name: "require stays 403", handler: Handler{Require: []ClaimRequirement{{"role", []string{"admin"}}}}, headers: append(navigate, [2]string{"Authorization", "Bearer " + good}), status: 403},
		{name: "the login page itself is not redirected to itself", uri: "/login?return=%2F", headers: navigate, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			h.JWKSFile = path
			if h.LoginRedirect == nil {
				h.LoginRedirect = &LoginRedirect{URL: "/login"}
			}
			provisioned(t, &h)
			uri := tc.uri
			if uri == "" {
				uri = "/docs/a"
			}
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, "http://example.com"+uri, nil)
			for _, kv := range tc.headers {
				r.Header.Add(kv[0], kv[1])
			}
			w, err := serve(&h, r)
			if tc.status != 0 {
				var herr caddyhttp.HandlerError
				if !errors.As(err, &herr) || herr.StatusCode != tc.status {
					t.Fatalf("err = %v, want %d", err, tc.status)
				}
				if w.Header().Get("Location") != "" {
					t.Fatalf("Location %q on a %d", w.Header().Get("Location"), tc.status)
				}
				if tc.status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
					t.Fatal("401 without its challenge")
				}
				return
			}
			if err != nil || w.Code != http.StatusFound {
				t.Fatalf("err %v, status %d; want a 302", err, w.Code)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Fatalf("Location %q, want %q", got, tc.location)
			}
			if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Vary") != "Accept, Sec-Fetch-Mode" {
				t.Fatalf("Cache-Control %q, Vary %q", w.Header().Get("Cache-Control"), w.Header().Get("Vary"))
			}
			if w.Body.Len() != 0 {
				t.Fatalf("redirect passed on: %q", w.Body.String())
			}
		})
	}
}

// TestLoginRedirectReturnRoundTrips: the login page reads the parameter
// back and gets exactly the request's path and query.
func TestLoginRedirectReturnRoundTrips(t *testing.T) {
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, newRSAKey(t, "k1", 0)))
	h := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, LoginRedirect: &LoginRedirect{URL: "/login"}})
	for _, uri := range []string{"/a%20b?x=1&y=%2F", "/", "/%E2%82%AC/x?q=a+b&r=%26", "/p?"} {
		r := httptest.NewRequest(http.MethodGet, "http://example.com"+uri, nil)
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		w, _ := serve(h, r)
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || w.Code != http.StatusFound {
			t.Fatalf("%s: status %d, Location %q", uri, w.Code, w.Header().Get("Location"))
		}
		back := loc.Query().Get("return")
		again := httptest.NewRequest(http.MethodGet, "http://example.com"+back, nil)
		if again.URL.EscapedPath() != r.URL.EscapedPath() || again.URL.RawQuery != r.URL.RawQuery {
			t.Fatalf("%s came back as %q", uri, back)
		}
	}
}

// TestLoginRedirectLoopWarnsOnce: a login page behind the handler gets the
// 401, and the handler says why once, not on every request.
func TestLoginRedirectLoopWarnsOnce(t *testing.T) {
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, newRSAKey(t, "k1", 0)))
	h := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, LoginRedirect: &LoginRedirect{URL: "https://example.com/signin?x=1"}})
	core, logs := observer.New(zapcore.WarnLevel)
	h.logger = zap.New(core)
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/signin", nil)
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		if _, err := serve(h, r); err == nil {
			t.Fatal("login page request passed")
		}
	}
	if n := logs.FilterMessageSnippet("login page is behind").Len(); n != 1 {
		t.Fatalf("%d loop warnings, want 1", n)
	}
}

// TestLoginRedirectCaddyfile: the subdirective, its default parameter, and
// its mistakes reported at its own line.
func TestLoginRedirectCaddyfile(t *testing.T) {
	adapt := func(body string) (string, error) {
		src := "http://example.com {\n\tidtoken {\n\t\tjwks_file x.json\n" + body + "\t}\n}\n"
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
		return string(cfg), err
	}
	cfg, err := adapt("\t\tlogin_redirect /login next\n")
	if err != nil || !strings.Contains(cfg, `"login_redirect":{"param":"next","url":"/login"}`) {
		t.Fatalf("adapt: %v\n%s", err, cfg)
	}
	cfg, err = adapt("\t\tlogin_redirect https://login.example/\n")
	if err != nil || !strings.Contains(cfg, `"login_redirect":{"url":"https://login.example/"}`) {
		t.Fatalf("adapt: %v\n%s", err, cfg)
	}
	for _, bad := range []string{"login", "//evil.example/login", `/\evil`, "javascript:alert(1)", "https:///x", "/login#top", "/login a&b", "", "/a b c"} {
		_, err := adapt("\t\tlogin_redirect " + quoteArg(bad) + "\n")
		if err == nil || !strings.Contains(err.Error(), "Caddyfile:4") {
			t.Errorf("login_redirect %q: %v, want an error at Caddyfile:4", bad, err)
		}
	}
}

// quoteArg writes s as one Caddyfile argument.
func quoteArg(s string) string {
	if s == "" || strings.ContainsAny(s, " \"") {
		if strings.Count(s, " ") == 1 && !strings.Contains(s, `"`) {
			return s // two arguments on purpose
		}
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}
