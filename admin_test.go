package idtoken

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// adminRequest sends one request to the AdminAPI's routes and answers an
// error as Caddy's admin endpoint does (its status, {"error": ...}).
// TestAdminOnCaddyAdminEndpoint checks the real endpoint.
func adminRequest(t *testing.T, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	for _, route := range (&AdminAPI{}).Routes() {
		mux.HandleFunc(route.Pattern, func(w http.ResponseWriter, r *http.Request) {
			err := route.Handler.ServeHTTP(w, r)
			if err == nil {
				return
			}
			var apiErr caddy.APIError
			if !errors.As(err, &apiErr) {
				t.Errorf("%s %s: error %v is not a caddy.APIError", method, target, err)
				apiErr.HTTPStatus = http.StatusInternalServerError
			}
			w.WriteHeader(apiErr.HTTPStatus)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		})
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(method, "http://localhost:2019"+target, nil))
	return w
}

// keySetsAnswer checks a 200 JSON answer and decodes its key sets.
func keySetsAnswer(t *testing.T, w *httptest.ResponseRecorder) []keySetView {
	t.Helper()
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var views []keySetView
	if err := json.Unmarshal(w.Body.Bytes(), &views); err != nil {
		t.Fatalf("answer is not a JSON array of key sets: %v: %s", err, w.Body)
	}
	return views
}

// viewAt is the one listed set at location.
func viewAt(t *testing.T, views []keySetView, location string) keySetView {
	t.Helper()
	var found []keySetView
	for _, v := range views {
		if v.Location == location {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d key sets listed at %s, want 1", len(found), location)
	}
	return found[0]
}

// thumbprints lists a view's key thumbprints.
func thumbprints(v keySetView) []string {
	var out []string
	for _, k := range v.Keys {
		out = append(out, k.Thumbprint)
	}
	return out
}

// adminTestDocument is a JWKS with the RFC 7638 example key, an EC key
// without alg, an Ed25519 key without kid and an HMAC secret (skipped), and
// the keys the admin API must list for it.
func adminTestDocument(t *testing.T) (doc []byte, secret string, want []map[string]any) {
	ec := newECKey(t, "ec-1", elliptic.P256(), "ES256").jwk()
	delete(ec, "alg")
	ed := newEdKey(t, "").jwk()
	delete(ed, "kid")
	secret = "c2VjcmV0IG9mIGFuIEhNQUMga2V5"
	doc, err := json.Marshal(map[string]any{"keys": []any{
		map[string]any{"kty": "RSA", "n": rfc7638N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"},
		ec,
		ed,
		map[string]any{"kty": "oct", "k": secret, "kid": "hmac"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want = []map[string]any{
		{"kid": "2011-04-29", "kty": "RSA", "alg": "RS256", "crv": nil, "thumbprint": rfc7638Thumbprint},
		{"kid": "ec-1", "kty": "EC", "alg": nil, "crv": "P-256", "thumbprint": canonicalThumbprint(t, ec, "crv", "kty", "x", "y")},
		{"kid": nil, "kty": "OKP", "alg": "EdDSA", "crv": "Ed25519", "thumbprint": canonicalThumbprint(t, ed, "crv", "kty", "x")},
	}
	return doc, secret, want
}

func TestAdminListsKeySets(t *testing.T) {
	doc, secret, wantKeys := adminTestDocument(t)
	tests := []struct {
		name  string
		setup func(t *testing.T) (h *Handler, kind, location, issuer, source string)
	}{
		{"jwks_url", func(t *testing.T) (*Handler, string, string, string, string) {
			is := newIssuer(t, doc)
			return &Handler{Trust: Trust{JWKSURL: is.URL}}, "jwks_url", is.URL, "", is.URL
		}},
		{"oidc", func(t *testing.T) (*Handler, string, string, string, string) {
			issuer := oidcProvider(t, doc, &atomic.Bool{}, "/jwks")
			return &Handler{Trust: Trust{OIDCIssuer: issuer}}, "oidc", issuer, issuer, issuer
		}},
		{"gigya", func(t *testing.T) (*Handler, string, string, string, string) {
			is := newIssuer(t, doc)
			endpoint := is.URL + "/accounts.getJWTPublicKey"
			return &Handler{Trust: Trust{APIKey: "3_site", DataCenter: is.URL}}, "gigya", endpoint + "?apiKey=3_site&V2=true", "", endpoint
		}},
		{"jwks_file", func(t *testing.T) (*Handler, string, string, string, string) {
			path := t.TempDir() + "/jwks.json"
			writeFile(t, path, doc)
			return &Handler{Trust: Trust{JWKSFile: path}}, "jwks_file", path, "", path
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, kind, location, issuer, source := tc.setup(t)
			h.RefreshInterval = caddy.Duration(30 * time.Minute)
			before := time.Now()
			provisioned(t, h)
			waitLoaded(t, h.trusts[0].keys)

			w := adminRequest(t, http.MethodGet, "/idtoken/keysets")
			if strings.Contains(w.Body.String(), secret) {
				t.Fatal("the answer holds an HMAC secret")
			}
			var raw []map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			for _, o := range raw {
				if o["location"] == location {
					obj = o
				}
			}
			if obj == nil {
				t.Fatalf("no key set at %s in %s", location, w.Body)
			}
			members := slices.Sorted(func(yield func(string) bool) {
				for name := range obj {
					if !yield(name) {
						return
					}
				}
			})
			wantMembers := []string{"from_storage", "handlers", "issuer", "key_thumbprints", "keys", "kind", "last_error", "loaded_at", "location", "next_refresh"}
			if !slices.Equal(members, wantMembers) {
				t.Fatalf("members %v, want %v", members, wantMembers)
			}
			var keys []map[string]any
			for _, k := range obj["keys"].([]any) {
				keys = append(keys, k.(map[string]any))
			}
			if !reflect.DeepEqual(keys, wantKeys) {
				t.Fatalf("keys\n got %v\nwant %v", keys, wantKeys)
			}

			v := viewAt(t, keySetsAnswer(t, w), location)
			wantIssuer := orNull(issuer)
			if v.Kind != kind || !reflect.DeepEqual(v.Issuer, wantIssuer) || v.LastError != nil || v.FromStorage || v.Handlers != 1 {
				t.Fatalf("kind %s issuer %v last_error %v from_storage %v handlers %d; want %s %v null false 1",
					v.Kind, deref(v.Issuer), deref(v.LastError), v.FromStorage, v.Handlers, kind, deref(wantIssuer))
			}
			if v.LoadedAt == nil || v.LoadedAt.Before(before) || v.LoadedAt.After(time.Now()) || v.LoadedAt.Location() != time.UTC {
				t.Fatalf("loaded_at %v, want a UTC time since %v", v.LoadedAt, before)
			}
			if due := v.NextRefresh.Sub(*v.LoadedAt); due < 30*time.Minute || due > 30*time.Minute+time.Second {
				t.Fatalf("next_refresh %v after loaded_at, want refresh_interval 30m", due)
			}
			if !strings.Contains(w.Body.String(), `"loaded_at":"`+v.LoadedAt.Format(time.RFC3339Nano)+`"`) {
				t.Fatalf("loaded_at not written as RFC 3339: %s", w.Body)
			}

			var st keySetStatus
			for _, s := range liveKeySets() {
				if s.Location == location {
					st = s
				}
			}
			if st.Source != source {
				t.Fatalf("metrics source %q, want %q", st.Source, source)
			}
		})
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// TestAdminRefreshPicksUpRotatedKey: after an issuer rotates, a token with
// the new kid is refused while min_refresh_interval holds refetches back,
// and accepted at once after POST /idtoken/keysets/refresh.
func TestAdminRefreshPicksUpRotatedKey(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1))
	h := provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL, MinRefreshInterval: caddy.Duration(time.Hour)}})
	waitLoaded(t, h.trusts[0].keys)
	request := func() error {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		bearer(sign(t, k2, validClaims(), nil))(r)
		_, err := serve(h, r)
		return err
	}

	is.serve(http.StatusOK, jwksJSON(t, k2))
	if request() == nil {
		t.Fatal("k2 accepted before the refresh")
	}
	hits := is.hits.Load()
	v := viewAt(t, keySetsAnswer(t, adminRequest(t, http.MethodPost, "/idtoken/keysets/refresh")), is.URL)
	if got := is.hits.Load() - hits; got != 1 {
		t.Fatalf("refresh fetched %d times, want 1", got)
	}
	want := []string{canonicalThumbprint(t, k2.jwk(), "e", "kty", "n")}
	if len(v.Keys) != 1 || deref(v.Keys[0].KID) != "k2" || !slices.Equal(thumbprints(v), want) {
		t.Fatalf("after the refresh keys %+v, want k2 with thumbprint %v", v.Keys, want)
	}
	if err := request(); err != nil {
		t.Fatalf("k2 refused after the refresh: %v", err)
	}
}

// TestAdminRefreshFailure: a failing issuer shows in last_error while the
// keys stay; the next successful fetch clears it.
func TestAdminRefreshFailure(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	tests := []struct {
		name    string
		fail    func(is *issuer)
		wantErr string
	}{
		{"HTTP 503", func(is *issuer) { is.serve(http.StatusServiceUnavailable, []byte("down")) }, "HTTP 503"},
		{"not JSON", func(is *issuer) { is.serve(http.StatusOK, []byte("<html>maintenance</html>")) }, "not a JSON object"},
		{"no usable key", func(is *issuer) { is.serve(http.StatusOK, []byte(`{"keys":[{"kty":"oct","k":"AA"}]}`)) }, "no usable key"},
		{"Gigya error", func(is *issuer) { is.serve(http.StatusOK, []byte(gigyaInvalidAPIKey)) }, "errorCode 400093"},
		{"connection dropped", func(is *issuer) {
			is.misbehave(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
		}, "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := newIssuer(t, jwksJSON(t, k1))
			h := provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL}})
			loaded := waitLoaded(t, h.trusts[0].keys)
			before := viewAt(t, keySetsAnswer(t, adminRequest(t, http.MethodGet, "/idtoken/keysets")), is.URL)

			tc.fail(is)
			failed := viewAt(t, keySetsAnswer(t, adminRequest(t, http.MethodPost, "/idtoken/keysets/refresh")), is.URL)
			if failed.LastError == nil || !strings.Contains(*failed.LastError, tc.wantErr) {
				t.Fatalf("last_error %v, want it to say %q", deref(failed.LastError), tc.wantErr)
			}
			if !slices.Equal(thumbprints(failed), thumbprints(before)) || !failed.LoadedAt.Equal(*before.LoadedAt) || h.trusts[0].keys.Current() != loaded {
				t.Fatal("a failed fetch replaced the keys")
			}
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			bearer(sign(t, k1, validClaims(), nil))(r)
			if _, err := serve(h, r); err != nil {
				t.Fatalf("token refused while the issuer fails: %v", err)
			}

			is.misbehave(nil)
			is.serve(http.StatusOK, jwksJSON(t, k1))
			recovered := viewAt(t, keySetsAnswer(t, adminRequest(t, http.MethodPost, "/idtoken/keysets/refresh")), is.URL)
			if recovered.LastError != nil || !recovered.LoadedAt.After(*before.LoadedAt) {
				t.Fatalf("after recovery last_error %v, loaded_at %v (was %v)", deref(recovered.LastError), recovered.LoadedAt, before.LoadedAt)
			}
		})
	}
}

// TestAdminRoutes: ?location= refreshes one set, an unknown location is
// 404, other methods are 405, and every 200 lists every set.
func TestAdminRoutes(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	a, b := newIssuer(t, jwksJSON(t, k1)), newIssuer(t, jwksJSON(t, k1))
	for _, is := range []*issuer{a, b} {
		waitLoaded(t, provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL}}).trusts[0].keys)
	}
	refresh := "/idtoken/keysets/refresh"
	tests := []struct {
		name         string
		method       string
		target       string
		status       int
		allow        string // Allow header of a 405
		fetchA       int64
		fetchB       int64
		errorMention string
	}{
		{"list", http.MethodGet, "/idtoken/keysets", 200, "", 0, 0, ""},
		{"refresh all", http.MethodPost, refresh, 200, "", 1, 1, ""},
		{"refresh one", http.MethodPost, refresh + "?location=" + url.QueryEscape(a.URL), 200, "", 1, 0, ""},
		{"refresh the other", http.MethodPost, refresh + "?location=" + url.QueryEscape(b.URL), 200, "", 0, 1, ""},
		{"unknown location", http.MethodPost, refresh + "?location=" + url.QueryEscape(a.URL+"/other"), 404, "", 0, 0, a.URL + "/other"},
		{"empty location", http.MethodPost, refresh + "?location=", 404, "", 0, 0, "no live key set"},
		{"GET refresh", http.MethodGet, refresh, 405, "POST", 0, 0, "GET"},
		{"POST list", http.MethodPost, "/idtoken/keysets", 405, "GET", 0, 0, "POST"},
		{"DELETE list", http.MethodDelete, "/idtoken/keysets", 405, "GET", 0, 0, "DELETE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hitsA, hitsB := a.hits.Load(), b.hits.Load()
			w := adminRequest(t, tc.method, tc.target)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if fa, fb := a.hits.Load()-hitsA, b.hits.Load()-hitsB; fa != tc.fetchA || fb != tc.fetchB {
				t.Errorf("fetched %d and %d times, want %d and %d", fa, fb, tc.fetchA, tc.fetchB)
			}
			if tc.status != 200 {
				if !strings.Contains(w.Body.String(), tc.errorMention) {
					t.Errorf("error %s does not mention %q", w.Body, tc.errorMention)
				}
				return
			}
			views := keySetsAnswer(t, w)
			for _, is := range []*issuer{a, b} {
				if v := viewAt(t, views, is.URL); len(v.Keys) != 1 || v.LastError != nil {
					t.Errorf("%s listed as %+v", is.URL, v)
				}
			}
		})
	}
}

// TestAdminConcurrentRefreshesShareOneFetch: refreshes that arrive while
// one is fetching share a single fetch after it, which sees the keys the
// issuer serves by then.
func TestAdminConcurrentRefreshesShareOneFetch(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1))
	h := provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL}})
	waitLoaded(t, h.trusts[0].keys)

	block := make(chan struct{})
	is.mu.Lock()
	is.blocked = block
	is.mu.Unlock()
	first := make(chan []keySetView, 1)
	go func() { first <- keySetsAnswer(t, adminRequest(t, http.MethodPost, "/idtoken/keysets/refresh")) }()
	for is.hits.Load() < 2 { // the first refresh's fetch is at the issuer
		time.Sleep(time.Millisecond)
	}
	is.serve(http.StatusOK, jwksJSON(t, k2)) // the issuer rotates after that fetch was sent

	const n = 20
	answers := make([][]keySetView, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = keySetsAnswer(t, adminRequest(t, http.MethodPost, "/idtoken/keysets/refresh")) })
	}
	time.Sleep(100 * time.Millisecond) // let them all arrive during the blocked fetch
	close(block)
	wg.Wait()

	if got := is.hits.Load(); got != 3 {
		t.Fatalf("issuer hit %d times, want 3 (load, the first refresh, one shared by %d more)", got, n)
	}
	if v := viewAt(t, <-first, is.URL); deref(v.Keys[0].KID) != "k1" {
		t.Fatalf("first refresh answered %+v, want k1 (fetched before the rotation)", v.Keys)
	}
	for i, views := range answers {
		if v := viewAt(t, views, is.URL); len(v.Keys) != 1 || deref(v.Keys[0].KID) != "k2" {
			t.Fatalf("refresh %d answered keys %+v, want k2", i, v.Keys)
		}
	}
}

// TestAdminHandlerCounts: handlers counts the loaded handlers sharing a set;
// one location with other refresh settings is another set.
func TestAdminHandlerCounts(t *testing.T) {
	is := newIssuer(t, jwksJSON(t, newRSAKey(t, "k1", 0)))
	handlersAt := func(t *testing.T) []int {
		t.Helper()
		var counts []int
		for _, v := range keySetsAnswer(t, adminRequest(t, http.MethodGet, "/idtoken/keysets")) {
			if v.Location == is.URL {
				counts = append(counts, v.Handlers)
			}
		}
		return counts
	}
	// One storage for all: a shared set saves to the latest handler's, which
	// must outlive the subtest.
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	waitLoaded(t, provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL}, storage: storage}).trusts[0].keys)
	t.Run("three handlers, two settings", func(t *testing.T) {
		provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL}, storage: storage})
		waitLoaded(t, provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL, MinRefreshInterval: caddy.Duration(time.Hour)}, storage: storage}).trusts[0].keys)
		// Sorted by refresh settings: the default 10s floor, then 1h.
		if got := handlersAt(t); !slices.Equal(got, []int{2, 1}) {
			t.Fatalf("handlers %v, want [2 1]", got)
		}
	})
	if got := handlersAt(t); !slices.Equal(got, []int{1}) {
		t.Fatalf("after two handlers were cleaned up: handlers %v, want [1]", got)
	}
}

// TestAdminOnCaddyAdminEndpoint runs a real Caddy whose config says nothing
// about the module: Caddy mounts every admin.api module on its admin
// endpoint. An operator refreshes after a rotation and the site accepts
// the new key at once.
func TestAdminOnCaddyAdminEndpoint(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1))
	adminPort, site := freePort(t), freePort(t)
	defer stopCaddyWithAdmin(t)
	loadCaddyfile(t, fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	persist_config off
	auto_https off
	http_port %[2]d
	storage file_system %[4]s
}
http://127.0.0.1:%[2]d {
	idtoken {
		jwks_url %[3]s
		min_refresh_interval 1h
	}
	respond "hello {http.auth.user.id}"
}
`, adminPort, site, is.URL, t.TempDir()))

	claims := with(validClaims(), map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	siteURL := fmt.Sprintf("http://127.0.0.1:%d/", site)
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	call := func(method, path string) (*http.Response, string) {
		req, err := http.NewRequest(method, adminURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return roundTrip(t, req)
	}
	decode := func(body string) []keySetView {
		var views []keySetView
		if err := json.Unmarshal([]byte(body), &views); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return views
	}

	if r := get(t, siteURL, sign(t, k1, claims, nil)); r.status != 200 {
		t.Fatalf("k1 token: %d %s", r.status, r.body)
	}
	resp, body := call(http.MethodGet, "/idtoken/keysets")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET keysets: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if v := viewAt(t, decode(body), is.URL); v.Handlers != 1 || len(v.Keys) != 1 || deref(v.Keys[0].KID) != "k1" {
		t.Fatalf("listed %+v, want one handler and k1", v)
	}

	is.serve(http.StatusOK, jwksJSON(t, k2))
	if r := get(t, siteURL, sign(t, k2, claims, nil)); r.status != 401 {
		t.Fatalf("k2 token before the refresh: %d, want 401", r.status)
	}
	resp, body = call(http.MethodPost, "/idtoken/keysets/refresh?location="+url.QueryEscape(is.URL))
	if resp.StatusCode != 200 {
		t.Fatalf("POST refresh: %d %s", resp.StatusCode, body)
	}
	if v := viewAt(t, decode(body), is.URL); len(v.Keys) != 1 || deref(v.Keys[0].KID) != "k2" {
		t.Fatalf("after the refresh listed %+v, want k2", v.Keys)
	}
	if r := get(t, siteURL, sign(t, k2, claims, nil)); r.status != 200 || r.body != "hello user-123" {
		t.Fatalf("k2 token after the refresh: %d %q", r.status, r.body)
	}

	errorTests := []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"unknown location", http.MethodPost, "/idtoken/keysets/refresh?location=" + url.QueryEscape("https://nowhere.test/jwks"), 404, ""},
		{"GET refresh", http.MethodGet, "/idtoken/keysets/refresh", 405, "POST"},
		{"PUT list", http.MethodPut, "/idtoken/keysets", 405, "GET"},
	}
	for _, tc := range errorTests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(tc.method, tc.path)
			var answer struct {
				Error string `json:"error"`
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow ||
				json.Unmarshal([]byte(body), &answer) != nil || answer.Error == "" {
				t.Fatalf("%d, Allow %q, body %s; want %d, Allow %q and a JSON error", resp.StatusCode, resp.Header.Get("Allow"), body, tc.status, tc.allow)
			}
		})
	}
}

// TestAdminRefreshWaitIsBounded: a refresh against an issuer that never
// answers returns after the fetch timeout, with the set still listed.
func TestAdminRefreshWaitIsBounded(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	cfg := keySetConfig{kind: "jwks_url", location: is.URL, minRefresh: time.Hour, timeout: 300 * time.Millisecond}
	s, err := acquireKeySet(cfg, keySetLogger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseKeySet(cfg) })
	waitLoaded(t, s)

	block := make(chan struct{})
	defer close(block)
	is.mu.Lock()
	is.blocked = block
	is.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://localhost:2019/idtoken/keysets/refresh", nil)
	w := httptest.NewRecorder()
	if err := (&AdminAPI{}).refresh(w, r); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("refresh waited %v for a silent issuer", waited)
	}
	if v := viewAt(t, keySetsAnswer(t, w), is.URL); len(v.Keys) != 1 {
		t.Fatalf("listed %+v", v)
	}
}
