package idtoken

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-idtoken/caddy-idtoken/internal/gigyastandin"
)

// exampleSite is example.Caddyfile running in this process, as
// `idtoken-demo example` runs it, on free loopback ports.
type exampleSite struct {
	url     string // the site's origin, http://localhost:<port>
	gigya   string // the Gigya stand-in's base URL
	standin *gigyastandin.Server
	demoKey testKey // signs the tokens of the API route (its jwks_file)
}

// startExample runs example.Caddyfile against a Gigya stand-in. The
// Caddyfile's fixed ports and demo JWKS path are replaced; each
// replacement must find its text, so the test notices when the example
// changes. Caddy and the stand-in stop when the test ends.
func startExample(t *testing.T) exampleSite {
	t.Helper()
	site := fmt.Sprintf("http://localhost:%d", freePort(t))
	standin, err := gigyastandin.New(gigyastandin.DemoAPIKey, site)
	if err != nil {
		t.Fatal(err)
	}
	gigya := httptest.NewServer(standin)
	t.Cleanup(gigya.Close)

	demoKey := newRSAKey(t, "demo-1", 0)
	jwks := filepath.Join(t.TempDir(), "demo-jwks.json")
	if err := os.WriteFile(jwks, jwksJSON(t, demoKey), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	config := string(src)
	if !strings.Contains(config, "api_key "+gigyastandin.DemoAPIKey) {
		t.Fatalf("example.Caddyfile does not name the stand-in's API key %s", gigyastandin.DemoAPIKey)
	}
	for _, r := range []struct{ old, new string }{
		{"http://localhost:8080", site},
		{"http://127.0.0.1:8081", gigya.URL},
		{"example/demo-jwks.json", jwks},
	} {
		if !strings.Contains(config, r.old) {
			t.Fatalf("example.Caddyfile no longer has %q; update startExample", r.old)
		}
		config = strings.ReplaceAll(config, r.old, r.new)
	}
	loadCaddyfile(t, config)
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Error(err)
		}
	})
	return exampleSite{url: site, gigya: gigya.URL, standin: standin, demoKey: demoKey}
}

// gigyaToken logs email in at the stand-in and returns a fresh id_token,
// as the Web SDK's getJWT gets one.
func (e exampleSite) gigyaToken(t *testing.T, email string) string {
	t.Helper()
	rest := func(method string, params url.Values) map[string]any {
		params.Set("apiKey", gigyastandin.DemoAPIKey)
		resp, err := http.PostForm(e.gigya+"/"+method, params)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || env["errorCode"] != 0.0 {
			t.Fatalf("%s: %v %v", method, env, err)
		}
		return env
	}
	login := rest("accounts.login", url.Values{"loginID": {email}, "password": {gigyastandin.DemoPassword}})
	lt := login["sessionInfo"].(map[string]any)["cookieValue"].(string)
	return rest("accounts.getJWT", url.Values{"login_token": {lt}, "fields": {"email,firstName,lastName"}})["id_token"].(string)
}

// TestExampleRoutes checks the example's routes as the README's curl
// lines and a browser's requests meet them: public paths with their
// sub-paths, the API route with demo tokens, and the site's pages, which
// redirect browser navigations to the login page and answer 401 to
// everything else.
func TestExampleRoutes(t *testing.T) {
	e := startExample(t)
	now := time.Now()
	demo := sign(t, e.demoKey, map[string]any{
		"iss": "https://demo.idtoken.local", "aud": "demo", "sub": "alice", "email": "alice@example.com",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	}, nil)
	gigya := e.gigyaToken(t, "ada.lovelace@example.com")
	// A name that is markup: the pages must show it as text.
	hostile := e.gigyaToken(t, `"<img src=x onerror=alert(1)>"@example.com`)

	navigate := map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		where   string // Location
		body    string // a part of the body
	}{
		{name: "/public", path: "/public", status: 200, body: "public: no token needed"},
		{name: "/public/ is public too", path: "/public/", status: 200, body: "public: no token needed"},
		{name: "/public/x is public too", path: "/public/x", status: 200, body: "public: no token needed"},
		{name: "/publicity is not under /public", path: "/publicity", status: 401},

		{name: "API route without a token", path: "/api/", status: 401, body: "401 Unauthorized: no token"},
		{name: "API route, browser navigation: 401 too, no login_redirect there", path: "/api/", headers: navigate, status: 401},
		{name: "API route, demo token as Bearer", path: "/api/", headers: map[string]string{"Authorization": "Bearer " + demo}, status: 200, body: "hello alice <alice@example.com>"},
		{name: "API route, demo token as cookie", path: "/api/", headers: map[string]string{"Cookie": "id_token=" + demo}, status: 200, body: "hello alice <alice@example.com>"},
		{name: "API route, tampered token", path: "/api/", headers: map[string]string{"Authorization": "Bearer " + demo + "x"}, status: 401, body: "401 Unauthorized: malformed token"},
		{name: "API route, two different tokens", path: "/api/", headers: map[string]string{"Authorization": "Bearer " + demo, "Cookie": "id_token=" + demo + "x"}, status: 400},

		{name: "page, curl", path: "/", headers: map[string]string{"Accept": "*/*"}, status: 401},
		{name: "page, fetch", path: "/", headers: map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, status: 401},
		{name: "page, XHR", path: "/", headers: map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}, status: 401},
		{name: "page, browser navigation", path: "/account.html?view=claims", headers: navigate, status: 302, where: "/login/?return=%2Faccount.html%3Fview%3Dclaims"},
		{name: "page, Gigya token as Bearer", path: "/account.html", headers: map[string]string{"Authorization": "Bearer " + gigya}, status: 200, body: `<td id="claim-email">ada.lovelace@example.com</td>`},
		{name: "page, Gigya token in the session cookie", path: "/", headers: map[string]string{"Cookie": "site_session=" + gigya}, status: 200, body: `<h1 id="greeting">Hello, Ada</h1>`},
		{name: "page, demo token (another issuer)", path: "/", headers: map[string]string{"Authorization": "Bearer " + demo}, status: 401},
		{name: "page, claims are HTML-escaped", path: "/account.html", headers: map[string]string{"Cookie": "site_session=" + hostile}, status: 200, body: `&lt;img src=x onerror=alert(1)&gt;`},

		{name: "login page is public and loads the SDK", path: "/login/", headers: navigate, status: 200, body: `<script src="` + e.gigya + `/js/gigya.js?apikey=` + gigyastandin.DemoAPIKey + `"></script>`},
		{name: "login page's script is public", path: "/login/login.js", status: 200, body: "gigya.accounts.getJWT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.url+tc.path, nil)
			for name, v := range tc.headers {
				req.Header.Set(name, v)
			}
			client := &http.Client{
				Timeout:       15 * time.Second,
				Transport:     &http.Transport{DisableKeepAlives: true},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := string(raw)
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.where || !strings.Contains(body, tc.body) {
				t.Fatalf("got %d Location %q body %q\nwant %d Location %q body with %q",
					resp.StatusCode, resp.Header.Get("Location"), body, tc.status, tc.where, tc.body)
			}
			if strings.Contains(body, "<img") {
				t.Fatal("a claim reached the page as markup")
			}
		})
	}
}
