package idtoken

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
)

// testKey is a signing key with its kid, for tests.
type testKey struct {
	kid  string
	alg  string
	priv any
	pub  any
}

var (
	rsaMu   sync.Mutex
	rsaPool []*rsa.PrivateKey
)

// rsaTestKey returns the i-th RSA key, generated once per test binary
// (2048-bit generation is slow enough to share).
func rsaTestKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaMu.Lock()
	defer rsaMu.Unlock()
	for len(rsaPool) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaPool = append(rsaPool, k)
	}
	return rsaPool[i]
}

func newRSAKey(t testing.TB, kid string, i int) testKey {
	k := rsaTestKey(t, i)
	return testKey{kid: kid, alg: "RS256", priv: k, pub: &k.PublicKey}
}

func newECKey(t testing.TB, kid string, curve elliptic.Curve, alg string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: alg, priv: k, pub: &k.PublicKey}
}

func newEdKey(t testing.TB, kid string) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: "EdDSA", priv: priv, pub: pub}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk renders the public half of k as a JWK object.
func (k testKey) jwk() map[string]any {
	m := map[string]any{"kid": k.kid, "use": "sig", "alg": k.alg}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64u(pub.N.Bytes())
		m["e"] = b64u(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		point, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		size := (len(point) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = pub.Curve.Params().Name
		m["x"] = b64u(point[1 : 1+size])
		m["y"] = b64u(point[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64u(pub)
	}
	return m
}

// jwksJSON builds a JWKS document from keys.
func jwksJSON(t testing.TB, keys ...testKey) []byte {
	t.Helper()
	list := make([]map[string]any, len(keys))
	for i, k := range keys {
		list[i] = k.jwk()
	}
	b, err := json.Marshal(map[string]any{"keys": list})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes a compact JWS of claims with k; extra header members are merged in.
func sign(t testing.TB, k testKey, claims map[string]any, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), jwt.MapClaims(claims))
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testNow is the fixed clock of verifier tests.
var testNow = time.Unix(1732400000, 0)

// validClaims returns claims that pass a default policy at testNow.
func validClaims() map[string]any {
	return map[string]any{
		"iss": "https://issuer.test",
		"sub": "user-123",
		"aud": "client-1",
		"iat": testNow.Add(-time.Minute).Unix(),
		"exp": testNow.Add(5 * time.Minute).Unix(),
	}
}

// with returns a copy of m with changes applied; a nil value deletes.
func with(m map[string]any, changes map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// issuer is a local key server whose answer can be changed while it runs.
type issuer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	header  http.Header
	hits    atomic.Int64
	blocked chan struct{}    // when non-nil, requests wait for it to close
	bad     http.HandlerFunc // when non-nil, answers instead of body/status
}

func newIssuer(t testing.TB, body []byte) *issuer {
	t.Helper()
	is := &issuer{body: body, status: http.StatusOK, header: http.Header{}}
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		is.mu.Lock()
		body, status, block, bad := is.body, is.status, is.blocked, is.bad
		for name, v := range is.header {
			w.Header()[name] = v
		}
		is.mu.Unlock()
		if bad != nil {
			bad(w, r)
			return
		}
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(is.Close)
	return is
}

// serveFunc starts a loopback server for fn; it is closed when the test ends.
func serveFunc(t testing.TB, fn http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return srv
}

// misbehave makes h answer every request (nil: back to the configured body).
func (is *issuer) misbehave(h http.HandlerFunc) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.bad = h
}

func (is *issuer) setHeader(name, value string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.header.Set(name, value)
}

func (is *issuer) serve(status int, body []byte) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.status, is.body = status, body
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// caddy1ns is a min_refresh_interval that never holds a refetch back.
const caddy1ns = caddy.Duration(time.Nanosecond)
