package idtoken

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Benchmarks run in parallel (b.RunParallel) and report allocations;
// compare them as ratios to BenchmarkRSAVerify and
// BenchmarkServeHTTPUnprotected, measured in the same run.

// BenchmarkRSAVerify is the floor: the bare RS256 signature check (hash
// included) that every cold verification contains.
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
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sum := sha256.Sum256([]byte(token[:dot]))
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchHandler is a handler on a jwks_file set with the given cache size.
func benchHandler(b *testing.B, cacheSize int) (*Handler, string) {
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
	h := provisioned(b, &Handler{Trust: Trust{JWKSFile: path, Audience: []string{"client-1"}, Issuer: []string{"https://issuer.test"}}, CacheSize: &cacheSize})
	return h, sign(b, k, validClaims(), nil)
}

// threeTrustHandler is benchHandler's handler with two more trusts before
// the token's own, so its iss is read to choose among three.
func threeTrustHandler(b *testing.B, cacheSize int) (*Handler, string) {
	h, token := benchHandler(b, cacheSize)
	other := b.TempDir() + "/other.json"
	writeFile(b, other, jwksJSON(b, newRSAKey(b, "o1", 1)))
	quiet := keySetConfig{kind: "jwks_file", location: other, minRefresh: defaultMinRefreshInterval}
	if _, err := acquireKeySet(quiet, zap.NewNop, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = releaseKeySet(quiet) })
	three := provisioned(b, &Handler{Trusts: []Trust{
		{JWKSFile: other, Issuer: []string{"https://one.test"}},
		{JWKSFile: other, Issuer: []string{"https://two.test"}},
		{JWKSFile: h.trusts[0].keyCfg.location, Audience: []string{"client-1"}, Issuer: []string{"https://issuer.test"}},
	}, CacheSize: &cacheSize})
	return three, token
}

// BenchmarkServeHTTPColdThreeTrusts: BenchmarkServeHTTPCold with the
// token's issuer chosen among three trusts (its iss read first).
func BenchmarkServeHTTPColdThreeTrusts(b *testing.B) {
	h, token := threeTrustHandler(b, 0)
	benchServe(b, h, token)
}

// BenchmarkServeHTTPCachedThreeTrusts: the same token again, cached.
func BenchmarkServeHTTPCachedThreeTrusts(b *testing.B) {
	h, token := threeTrustHandler(b, defaultCacheSize)
	benchServe(b, h, token)
}

// benchVerify runs the handler's verification step (cache, parse, keys,
// signature, claims) without the HTTP plumbing around it.
func benchVerify(b *testing.B, cacheSize int) {
	h, token := benchHandler(b, cacheSize)
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, rej := h.verify(r, token); rej != nil {
				b.Error(rej)
				return
			}
		}
	})
}

// BenchmarkVerifyCold: RS256 2048-bit, cache off.
func BenchmarkVerifyCold(b *testing.B) { benchVerify(b, 0) }

// BenchmarkVerifyCached: the same token again, served from the cache.
func BenchmarkVerifyCached(b *testing.B) { benchVerify(b, defaultCacheSize) }

// benchServe runs requests through mw the way Caddy does: a fresh replacer,
// vars and header map per request (the handler strips the token from the
// header), and a next handler that renders the user id.
func benchServe(b *testing.B, mw caddyhttp.MiddlewareHandler, token string) {
	base := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	base.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := discardWriter{}
		for pb.Next() {
			repl := caddy.NewReplacer()
			ctx := context.WithValue(base.Context(), caddy.ReplacerCtxKey, repl)
			ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
			r := base.WithContext(ctx)
			r.Header = base.Header.Clone()
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				_, err := w.Write([]byte(repl.ReplaceKnown("{http.auth.user.id}", "")))
				return err
			})
			if err := mw.ServeHTTP(w, r, next); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// passThrough is the unprotected route: the same plumbing, no idtoken.
type passThrough struct{}

func (passThrough) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTPUnprotected is the baseline for the ServeHTTP benchmarks.
func BenchmarkServeHTTPUnprotected(b *testing.B) {
	_, token := benchHandler(b, 0)
	benchServe(b, passThrough{}, token)
}

// BenchmarkServeHTTPCold: a valid token, cache off.
func BenchmarkServeHTTPCold(b *testing.B) {
	h, token := benchHandler(b, 0)
	benchServe(b, h, token)
}

// BenchmarkServeHTTPCached: a valid token seen before.
func BenchmarkServeHTTPCached(b *testing.B) {
	h, token := benchHandler(b, defaultCacheSize)
	benchServe(b, h, token)
}

// forgedTokens are the most expensive tokens one can build without a
// private key, one per way of making the parser work: each is 16 KiB with
// the key set's kid and a junk signature of the right length, a header at
// the parser's bounds (depth, token count, length) and the payload a
// single deep nesting that a payload-first parser would walk.
func forgedTokens(kid string) map[string]string {
	names := `{"alg":"RS256","kid":"` + kid + `"`
	for i := range 29 {
		names += fmt.Sprintf(`,"\u0062\u0062\u0062%02d":0`, i)
	}
	headers := map[string]string{
		"flat header":               `{"alg":"RS256","kid":"` + kid + `","typ":"JWT"}`,
		"escaped header":            `{"alg":"RS256","kid":"` + kid + `","x":"` + strings.Repeat(`\ud83d\ude00`, 125) + `"}`,
		"header at the token bound": `{"alg":"RS256","kid":"` + kid + `","x":[[[` + strings.Repeat(`1e99999,`, 50) + `0]]]}`,
		"escaped member names":      names + "}",
	}
	sig := b64u(make([]byte, 256))
	tokens := make(map[string]string, len(headers))
	for name, hdr := range headers {
		h := b64u([]byte(hdr))
		room := MaxTokenLength - len(h) - len(sig) - 2
		p := b64u([]byte(strings.Repeat("[", room*3/4+3)))[:room]
		tokens[name] = h + "." + p + "." + sig
	}
	return tokens
}

// BenchmarkRejectForged: each forged token is refused with "invalid
// signature" (never "malformed": the payload is not decoded first), with the
// handler's cache on as in a default config. Compare the slowest case with
// BenchmarkRSAVerify.
func BenchmarkRejectForged(b *testing.B) {
	h, _ := benchHandler(b, defaultCacheSize)
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	for name, tok := range forgedTokens("k1") {
		if len(tok) != MaxTokenLength {
			b.Fatalf("%s: %d bytes", name, len(tok))
		}
		if _, _, rej := h.verify(r, tok); rej == nil || rej.Reason != ReasonSignature {
			b.Fatalf("%s: %v, want %q", name, rej, ReasonSignature)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, rej := h.verify(r, tok); rej == nil {
						b.Error("forged token accepted")
						return
					}
				}
			})
		})
	}
}
