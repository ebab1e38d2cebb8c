package gigyastandin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	idtoken "github.com/caddy-idtoken/caddy-idtoken"
)

const site = "http://localhost:8080"

func newStandin(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(DemoAPIKey, site)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// call makes a REST call as the Web SDK does: a form POST from the site's
// page. It returns the HTTP status, the headers and the decoded envelope.
func call(t *testing.T, srv *httptest.Server, method, origin string, params url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/"+method, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s: answer is not JSON: %v", method, err)
	}
	return resp.StatusCode, resp.Header, env
}

func form(pairs ...string) url.Values {
	v := url.Values{"apiKey": {DemoAPIKey}}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Set(pairs[i], pairs[i+1])
	}
	return v
}

func login(t *testing.T, srv *httptest.Server, email string) string {
	t.Helper()
	_, _, env := call(t, srv, "accounts.login", site, form("loginID", email, "password", DemoPassword))
	info, _ := env["sessionInfo"].(map[string]any)
	token, _ := info["cookieValue"].(string)
	if env["errorCode"] != 0.0 || token == "" || info["cookieName"] != "glt_"+DemoAPIKey {
		t.Fatalf("login: %v", env)
	}
	return token
}

// TestRESTErrors: every failure is Gigya's envelope with HTTP 200.
func TestRESTErrors(t *testing.T) {
	_, srv := newStandin(t)
	tests := []struct {
		name, method, origin string
		params               url.Values
		code                 float64
	}{
		{"wrong password", "accounts.login", site, form("loginID", "ada@example.com", "password", "secret"), 403042},
		{"loginID not an email address", "accounts.login", site, form("loginID", "ada", "password", DemoPassword), 403042},
		{"no password", "accounts.login", site, form("loginID", "ada@example.com"), 400002},
		{"unknown API key", "accounts.login", site, url.Values{"apiKey": {"3_other"}, "loginID": {"ada@example.com"}, "password": {DemoPassword}}, 400093},
		{"page of another origin", "accounts.login", "http://evil.example", form("loginID", "ada@example.com", "password", DemoPassword), 403007},
		{"getJWT without a login token", "accounts.getJWT", site, form(), 403005},
		{"getJWT with an unknown login token", "accounts.getJWT", site, form("login_token", "st2.s.nope"), 403005},
		{"getAccountInfo without a login token", "accounts.getAccountInfo", site, form(), 403005},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, env := call(t, srv, tc.method, tc.origin, tc.params)
			if status != http.StatusOK || env["errorCode"] != tc.code || env["statusCode"] != float64(int(tc.code)/1000) || env["errorMessage"] == "" || env["callId"] == "" {
				t.Fatalf("got HTTP %d %v, want HTTP 200 with errorCode %v", status, env, tc.code)
			}
		})
	}
}

// TestCORS: the site's pages may read answers; other origins may not.
func TestCORS(t *testing.T) {
	_, srv := newStandin(t)
	tests := []struct {
		name, origin, allow string
	}{
		{"the site", site, site},
		{"another origin", "http://localhost:9999", ""},
		{"no origin (a server)", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, h, _ := call(t, srv, "accounts.getAccountInfo", tc.origin, form())
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.allow {
				t.Fatalf("Access-Control-Allow-Origin = %q, want %q", got, tc.allow)
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatal("credentials allowed: the login token travels in the body, never in cookies of the stand-in")
			}
		})
	}
}

// verify checks a token as caddy-idtoken does with api_key, and returns
// its header and its claims.
func verify(t *testing.T, s *Server, srv *httptest.Server, raw string) (*idtoken.Token, map[string]any) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/accounts.getJWTPublicKey?apiKey=" + DemoAPIKey + "&V2=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, _ := io.ReadAll(resp.Body)
	keys, _, err := idtoken.ParseKeyDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := idtoken.NewVerifier(idtoken.Policy{Algorithms: []string{"RS256"}, Issuers: []string{s.Issuer()}, APIKey: DemoAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	tok, rej := v.Parse(raw)
	if rej != nil {
		t.Fatalf("parse: %v", rej)
	}
	if _, rej := v.Verify(tok, keys, time.Now()); rej != nil {
		t.Fatalf("verify: %v", rej)
	}
	_, payload, _ := strings.Cut(raw, ".")
	payload, _, _ = strings.Cut(payload, ".")
	data, _ := base64.RawURLEncoding.DecodeString(payload)
	var claims map[string]any
	if err := json.Unmarshal(data, &claims); err != nil {
		t.Fatal(err)
	}
	return tok, claims
}

func getJWT(t *testing.T, srv *httptest.Server, params url.Values) string {
	t.Helper()
	_, _, env := call(t, srv, "accounts.getJWT", site, params)
	raw, _ := env["id_token"].(string)
	if env["errorCode"] != 0.0 || raw == "" {
		t.Fatalf("getJWT: %v", env)
	}
	return raw
}

// TestGetJWT: a logged-in page gets tokens that caddy-idtoken's Gigya key
// source and policy accept, with the claims Gigya writes.
func TestGetJWT(t *testing.T) {
	s, srv := newStandin(t)
	lt := login(t, srv, "ada.lovelace@example.com")
	tests := []struct {
		name     string
		params   url.Values
		lifetime float64
		claims   map[string]any // nil: absent
	}{
		{"defaults: 300 s, no profile fields", form("login_token", lt), 300,
			map[string]any{"sub": UID("ada.lovelace@example.com"), "apiKey": DemoAPIKey, "iss": "https://fidm.gigya.com/jwt/" + DemoAPIKey + "/", "email": nil}},
		{"expiration and fields", form("login_token", lt, "expiration", "60", "fields", "email, firstName,lastName,password"), 60,
			map[string]any{"email": "ada.lovelace@example.com", "firstName": "Ada", "lastName": "Lovelace", "password": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, claims := verify(t, s, srv, getJWT(t, srv, tc.params))
			if tok.KID != s.KID() || tok.Alg != "RS256" {
				t.Fatalf("header kid %q alg %q", tok.KID, tok.Alg)
			}
			for name, want := range tc.claims {
				if got := claims[name]; got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			iat, _ := claims["iat"].(float64)
			if exp, _ := claims["exp"].(float64); exp-iat != tc.lifetime || claims["auth_time"] == nil {
				t.Errorf("exp - iat = %v, want %v; auth_time %v", exp-iat, tc.lifetime, claims["auth_time"])
			}
		})
	}

	t.Run("expiration out of range", func(t *testing.T) {
		for _, bad := range []string{"0", "-5", "x", "86401"} {
			if _, _, env := call(t, srv, "accounts.getJWT", site, form("login_token", lt, "expiration", bad)); env["errorCode"] != 400006.0 {
				t.Errorf("expiration %q: %v", bad, env)
			}
		}
	})

	t.Run("getAccountInfo names the person", func(t *testing.T) {
		_, _, env := call(t, srv, "accounts.getAccountInfo", site, form("login_token", lt))
		profile, _ := env["profile"].(map[string]any)
		if env["UID"] != UID("ada.lovelace@example.com") || profile["firstName"] != "Ada" {
			t.Fatalf("%v", env)
		}
	})

	t.Run("logout ends the session", func(t *testing.T) {
		call(t, srv, "accounts.logout", site, form("login_token", lt))
		if _, _, env := call(t, srv, "accounts.getJWT", site, form("login_token", lt)); env["errorCode"] != 403005.0 {
			t.Fatalf("getJWT after logout: %v", env)
		}
	})
}

// TestSessionEnds: a login token is good for SessionLifetime, not longer.
func TestSessionEnds(t *testing.T) {
	s, srv := newStandin(t)
	start := time.Now()
	s.now = func() time.Time { return start }
	lt := login(t, srv, "ada@example.com")
	s.now = func() time.Time { return start.Add(SessionLifetime - time.Second) }
	getJWT(t, srv, form("login_token", lt))
	s.now = func() time.Time { return start.Add(SessionLifetime) }
	if _, _, env := call(t, srv, "accounts.getJWT", site, form("login_token", lt)); env["errorCode"] != 403005.0 {
		t.Fatalf("getJWT after the session's end: %v", env)
	}
}

// TestKeyDocument: accounts.getJWTPublicKey answers as Gigya does, and
// caddy-idtoken reads it, in both shapes, and its error too.
func TestKeyDocument(t *testing.T) {
	s, srv := newStandin(t)
	tests := []struct {
		name, query string
		code        int64 // 0: a key set with the signing key
	}{
		{"V2", "?apiKey=" + DemoAPIKey + "&V2=true", 0},
		{"V1", "?apiKey=" + DemoAPIKey, 0},
		{"unknown API key", "?apiKey=3_other&V2=true", 400093},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + "/accounts.getJWTPublicKey" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			doc, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d, want 200 (Gigya answers 200 even on errors)", resp.StatusCode)
			}
			keys, _, err := idtoken.ParseKeyDocument(doc)
			var gerr *idtoken.GigyaError
			switch {
			case tc.code != 0 && (!errors.As(err, &gerr) || gerr.Code != tc.code):
				t.Fatalf("got %v, want gigya errorCode %d", err, tc.code)
			case tc.code == 0 && (err != nil || len(keys.Lookup(s.KID())) != 1):
				t.Fatalf("got %v, %v; want the signing key %q", keys, err, s.KID())
			}
		})
	}
}

// TestSDK: the Web SDK stand-in is served as JavaScript and names the
// calls the example's login page makes.
func TestSDK(t *testing.T) {
	_, srv := newStandin(t)
	resp, err := srv.Client().Get(srv.URL + "/js/gigya.js?apikey=" + DemoAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, name := range []string{"showScreenSet", "getJWT", "logout", "onGigyaServiceReady", "glt_"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("gigya.js lacks %s", name)
		}
	}
}
