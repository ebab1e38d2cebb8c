package idtoken

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestHostileIssuer loads a good key set, then lets the issuer misbehave and
// checks that each failure keeps the previous keys, ends within the fetch
// timeout, costs a bounded number of requests and is logged with its reason.
func TestHostileIssuer(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	const timeout = 500 * time.Millisecond
	tests := []struct {
		name    string
		bad     http.HandlerFunc
		reason  string // in the logged error
		maxHits int64  // requests the failed refresh may cost
	}{
		{
			name: "slow drip body longer than the timeout",
			bad: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"keys":[`))
				for {
					select {
					case <-r.Context().Done():
						return
					case <-time.After(50 * time.Millisecond):
						_, _ = w.Write([]byte(" "))
						w.(http.Flusher).Flush()
					}
				}
			},
			reason: "context deadline exceeded", maxHits: 1,
		},
		{
			name: "endless body",
			bad: func(w http.ResponseWriter, r *http.Request) {
				chunk := []byte(strings.Repeat(" ", 32<<10))
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			reason: "document larger than 1048576 bytes", maxHits: 1,
		},
		{
			name: "multi-GiB Content-Length",
			bad: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5368709120")
				_, _ = w.Write([]byte(`{"keys":[`))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			reason: "Content-Length 5368709120 exceeds", maxHits: 1,
		},
		{
			name: "redirect loop",
			bad: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/loop", http.StatusFound)
			},
			reason: "more than 3 redirects", maxHits: 4,
		},
		{
			name: "HTTP 503",
			bad: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
			},
			reason: "HTTP 503", maxHits: 1,
		},
		{
			name:   "invalid JSON",
			bad:    func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"keys":[{"kty":`)) },
			reason: "not a JSON object", maxHits: 1,
		},
		{
			name:   "valid JSON of the wrong shape",
			bad:    func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"keys":"k1"}`)) },
			reason: "not an array", maxHits: 1,
		},
		{
			name:   "JSON array instead of object",
			bad:    func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwksJSON(t, k1)[8:]) },
			reason: "not a JSON object", maxHits: 1,
		},
		{
			name: "only unusable keys",
			bad: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"}]}`))
			},
			reason: "no usable key", maxHits: 1,
		},
		{
			// Preparing (or using) a 4-Mbit key would take minutes of CPU.
			name: "RSA modulus filling the body",
			bad: func(w http.ResponseWriter, r *http.Request) {
				n := b64u(append(bytes.Repeat([]byte{0xab}, 600<<10), 0x01))
				_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","kid":"k1","e":"AQAB","n":"` + n + `"}]}`))
			},
			reason: "no usable key", maxHits: 1,
		},
		{
			name:   "gigya error envelope",
			bad:    func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(gigyaInvalidAPIKey)) },
			reason: "errorCode 400093", maxHits: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := newIssuer(t, jwksJSON(t, k1))
			core, logs := observer.New(zapcore.WarnLevel)
			logger := zap.New(core)
			clock := &fakeClock{}
			s, err := newRefreshingKeySet(keySetConfig{kind: "jwks_url", location: is.URL, minRefresh: time.Second, timeout: timeout},
				func() *zap.Logger { return logger }, clock.now, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destruct()
			before := waitLoaded(t, s)

			is.misbehave(tc.bad)
			hits := is.hits.Load()
			clock.advance(time.Minute)
			start := time.Now()
			after := s.Refresh(context.Background())
			if waited := time.Since(start); waited > timeout+time.Second {
				t.Errorf("refresh took %v, timeout is %v", waited, timeout)
			}
			if after != before {
				t.Error("previous keys replaced by a failed fetch")
			}
			if cost := is.hits.Load() - hits; cost > tc.maxHits {
				t.Errorf("failed refresh made %d requests, want at most %d", cost, tc.maxHits)
			}
			// A waiter may give up at the same moment as the fetch times out;
			// the warning follows within moments.
			var warnings []observer.LoggedEntry
			for deadline := time.Now().Add(time.Second); len(warnings) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				warnings = logs.FilterMessage("fetching key set failed; keeping previous keys").All()
			}
			if len(warnings) != 1 {
				t.Fatalf("%d warnings, want 1", len(warnings))
			}
			if got := warnings[0].ContextMap()["error"].(string); !strings.Contains(got, tc.reason) {
				t.Errorf("logged error %q does not say %q", got, tc.reason)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	plain := serveFunc(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwksJSON(t, k1)) })
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/downgrade":
			http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
		case "/hop1":
			http.Redirect(w, r, "/hop2", http.StatusFound)
		case "/hop2":
			http.Redirect(w, r, "/jwks", http.StatusMovedPermanently)
		case "/jwks":
			_, _ = w.Write(jwksJSON(t, k1))
		}
	}))
	defer secure.Close()
	client := newHTTPClient()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	defer client.CloseIdleConnections()

	tests := []struct {
		name, url, err string
	}{
		{"two hops within https", secure.URL + "/hop1", ""},
		{"https to http refused", secure.URL + "/downgrade", "refusing redirect from https to http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&jwksSource{url: tc.url, client: client}).fetch(context.Background(), nil)
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestIssuerRecoversAfterErrors(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	is.misbehave(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusInternalServerError)
	})
	s, _ := startKeySet(t, "jwks_url", is.URL, time.Hour, &fakeClock{})
	time.Sleep(1500 * time.Millisecond) // first try at 0 s, retry at 1 s
	is.misbehave(nil)
	deadline := time.Now().Add(5 * time.Second)
	for s.Current() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s.Current() == nil {
		t.Fatal("not recovered within the backoff")
	}
	// 0 s, 1 s fail; 3 s succeeds: backoff keeps the count small.
	if hits := is.hits.Load(); hits > 4 {
		t.Fatalf("%d requests while the issuer was failing, want at most 4", hits)
	}
}

// TestDuplicateKIDsTriesAtMostFour: a set repeating a kid is searched, but a
// token never costs more than four signature checks.
func TestDuplicateKIDsTriesAtMostFour(t *testing.T) {
	var keys []testKey
	for i := range 6 {
		keys = append(keys, newRSAKey(t, "dup", i))
	}
	set := mustParse(t, jwksJSON(t, keys...))
	v, _ := NewVerifier(Policy{Algorithms: []string{"RS256"}})
	for i, k := range keys {
		_, rej := verifyString(v, sign(t, k, validClaims(), nil), set, testNow)
		if accepted := rej == nil; accepted != (i < maxKeysPerKID) {
			t.Errorf("key %d of 6 with the same kid: accepted = %v", i, accepted)
		}
	}
}

// TestRevokedKeyRejected: removing a key from the set is how issuers revoke
// it; tokens it signed are refused after the next refresh.
func TestRevokedKeyRejected(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1, k2))
	h := provisioned(t, &Handler{Trust: Trust{JWKSURL: is.URL, MinRefreshInterval: caddy1ns}})
	token := sign(t, k1, validClaims(), nil)
	request := func() error {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		bearer(token)(r)
		_, err := serve(h, r)
		return err
	}
	if err := request(); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	is.serve(http.StatusOK, jwksJSON(t, k2))
	h.trusts[0].keys.Refresh(context.Background()) // the next refresh, scheduled or triggered
	if err := request(); err == nil || !strings.Contains(err.Error(), ReasonUnknownKID) {
		t.Fatalf("after revocation: %v, want %q", err, ReasonUnknownKID)
	}
}

// TestTokenHeadersNeverFetched: jku, x5u and x5c point at an attacker's
// server and kid tries path tricks; only the configured URL is ever fetched.
func TestTokenHeadersNeverFetched(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	attackerKey := newRSAKey(t, "evil", 1)
	var attackerHits atomic.Int64
	attacker := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		_, _ = w.Write(jwksJSON(t, attackerKey))
	})
	var mu sync.Mutex
	var paths []string
	issuerSrv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.RequestURI())
		mu.Unlock()
		_, _ = w.Write(jwksJSON(t, k1))
	})
	h := provisioned(t, &Handler{Trust: Trust{JWKSURL: issuerSrv.URL + "/jwks", MinRefreshInterval: caddy1ns}})

	tokens := map[string]string{
		"jku to attacker":  sign(t, attackerKey, validClaims(), map[string]any{"jku": attacker.URL + "/jwks"}),
		"x5u to attacker":  sign(t, attackerKey, validClaims(), map[string]any{"x5u": attacker.URL + "/cert.pem"}),
		"x5c embedded":     sign(t, attackerKey, validClaims(), map[string]any{"x5c": []string{"MIIBogus"}}),
		"kid path tricks":  sign(t, testKey{kid: "../../admin?x=1#", alg: "RS256", priv: attackerKey.priv}, validClaims(), nil),
		"kid URL":          sign(t, testKey{kid: attacker.URL, alg: "RS256", priv: attackerKey.priv}, validClaims(), nil),
		"known kid forged": sign(t, testKey{kid: "k1", alg: "RS256", priv: attackerKey.priv}, validClaims(), map[string]any{"jku": attacker.URL}),
	}
	for name, token := range tokens {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			bearer(token)(r)
			if _, err := serve(h, r); err == nil {
				t.Fatal("accepted a token signed by a key the issuer never published")
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Fatalf("attacker's server was contacted %d times", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if p != "/jwks" {
			t.Fatalf("issuer asked for %q; only the configured /jwks may be fetched", p)
		}
	}
}

// TestUnusableKeysLogOneWarning: a document full of unusable keys (here
// 1000 of two kinds, each with a 300-byte kid) costs one warning per fetch
// giving the counts by reason and at most five examples, not a line per key.
func TestUnusableKeysLogOneWarning(t *testing.T) {
	good := newEdKey(t, "good")
	rsaK := newRSAKey(t, "r1", 0)
	bad := func(i int) map[string]any {
		kid := fmt.Sprintf("bad-%04d-%s", i, strings.Repeat("x", 300))
		if i%2 == 0 {
			return map[string]any{"kty": "oct", "kid": kid, "k": "c2VjcmV0"}
		}
		enc := rsaK.jwk()
		enc["kid"], enc["use"] = kid, "enc"
		return enc
	}
	tests := []struct {
		name   string
		usable bool // the document also holds a good key
	}{
		{"alongside a usable key", true},
		{"no usable key: a failed fetch", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var keys []any
			if tc.usable {
				keys = append(keys, good.jwk())
			}
			for i := range 1000 {
				keys = append(keys, bad(i))
			}
			doc, err := json.Marshal(map[string]any{"keys": keys})
			if err != nil {
				t.Fatal(err)
			}
			if len(doc) > maxDocumentSize {
				t.Fatalf("test document of %d bytes is over the fetch limit", len(doc))
			}
			is := newIssuer(t, doc)

			var out bytes.Buffer
			jsonCore := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&out), zapcore.DebugLevel)
			obsCore, logs := observer.New(zapcore.DebugLevel)
			logger := zap.New(zapcore.NewTee(jsonCore, obsCore))
			s, err := newRefreshingKeySet(keySetConfig{kind: "jwks_url", location: is.URL, minRefresh: time.Hour},
				func() *zap.Logger { return logger }, time.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			loaded := s.Refresh(context.Background()) != nil
			_ = s.Destruct() // the fetch's last line is written by then
			if loaded != tc.usable {
				t.Fatalf("loaded = %v, want %v", loaded, tc.usable)
			}

			warnings := logs.FilterMessageSnippet("unusable key").All()
			if len(warnings) != 1 {
				t.Fatalf("%d warnings about unusable keys, want 1", len(warnings))
			}
			fields := warnings[0].ContextMap()
			if fields["skipped"] != int64(1000) {
				t.Errorf("skipped = %v, want 1000", fields["skipped"])
			}
			// fmt prints maps sorted by key, and numbers whatever their Go type.
			wantReasons := map[string]int{"unsupported kty": 500, "use not sig": 500}
			if got, want := fmt.Sprint(fields["reasons"]), fmt.Sprint(wantReasons); got != want {
				t.Errorf("reasons = %s, want %s", got, want)
			}
			examples, _ := fields["examples"].([]any)
			if len(examples) == 0 || len(examples) > 5 {
				t.Fatalf("%d examples, want 1 to 5", len(examples))
			}
			for _, e := range examples {
				ex, _ := e.(map[string]any)
				kid, _ := ex["kid"].(string)
				if !strings.HasPrefix(kid, "bad-") || len(kid) > maxLoggedValue+20 || ex["reason"] == nil || ex["error"] == nil {
					t.Errorf("example %v: want a cut kid, a reason and an error", ex)
				}
			}
			if out.Len() > 8<<10 {
				t.Errorf("logged %d bytes for one fetch, want at most 8 KiB", out.Len())
			}
		})
	}
}
