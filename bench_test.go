package idtoken

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkRSAVerify is the floor: the bare RS256 signature check (hash
// included) that BenchmarkVerify wraps.
func BenchmarkRSAVerify(b *testing.B) {
	k := newRSAKey(b, "k1", 0)
	token := sign(b, k, validClaims(), nil)
	dot := strings.LastIndexByte(token, '.')
	sig, err := b64.DecodeString(token[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := k.pub.(*rsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256([]byte(token[:dot]))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is a cold RS256 2048-bit check: parse, signature, claims.
func BenchmarkVerify(b *testing.B) {
	k := newRSAKey(b, "k1", 0)
	set := mustParse(b, jwksJSON(b, k))
	v, err := NewVerifier(Policy{Algorithms: []string{"RS256"}, Issuers: []string{"https://issuer.test"}, Audiences: []string{"client-1"}})
	if err != nil {
		b.Fatal(err)
	}
	token := sign(b, k, validClaims(), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := verifyString(v, token, set, testNow); rej != nil {
			b.Fatal(rej)
		}
	}
}

// BenchmarkServeHTTP runs the handler with a valid token and a next handler
// that renders one placeholder.
func BenchmarkServeHTTP(b *testing.B) {
	k := newRSAKey(b, "k1", 0)
	path := b.TempDir() + "/jwks.json"
	writeFile(b, path, jwksJSON(b, k))
	// Pre-load the shared key set with a quiet logger so its info line does
	// not interleave with the benchmark output; Provision then reuses it.
	quiet := keySetConfig{kind: "jwks_file", location: path, minRefresh: defaultMinRefreshInterval}
	if _, err := acquireKeySet(quiet, zap.NewNop, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = releaseKeySet(quiet) })
	h := &Handler{JWKSFile: path, Audience: []string{"client-1"}}
	provisioned(b, h)
	token := sign(b, k, validClaims(), nil)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		if _, err := serve(h, r); err != nil {
			b.Fatal(err)
		}
	}
}
