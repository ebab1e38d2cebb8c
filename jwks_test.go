package idtoken

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// gigyaV1 is a getJWTPublicKey answer without V2=true: one bare key in the envelope.
func gigyaV1(k testKey) []byte {
	m := k.jwk()
	delete(m, "use")
	for name, v := range map[string]any{"apiVersion": 2, "callId": "a98f", "errorCode": 0, "statusCode": 200, "statusReason": "OK", "time": "2021-03-05T20:37:46.273Z"} {
		m[name] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// gigyaV2 is a getJWTPublicKey answer with V2=true: the keys array in the envelope.
func gigyaV2(keys ...testKey) []byte {
	list := make([]map[string]any, len(keys))
	for i, k := range keys {
		list[i] = k.jwk()
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": 2, "callId": "c1", "errorCode": 0, "statusCode": 200, "statusReason": "OK", "keys": list})
	return b
}

const gigyaInvalidAPIKey = `{"callId":"e5d1","errorCode":400093,"errorDetails":"Invalid ApiKey parameter","errorMessage":"Invalid ApiKey parameter","apiVersion":2,"statusCode":400,"statusReason":"Bad Request","time":"2024-01-01T00:00:00.000Z"}`

func TestParseKeyDocument(t *testing.T) {
	rsaK := newRSAKey(t, "r1", 0)
	ec256 := newECKey(t, "e256", elliptic.P256(), "ES256")
	ec384 := newECKey(t, "e384", elliptic.P384(), "ES384")
	ec521 := newECKey(t, "e521", elliptic.P521(), "ES512")
	ed := newEdKey(t, "ed")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallK := testKey{kid: "small", alg: "RS256", pub: &small.PublicKey}
	enc := rsaK.jwk()
	enc["use"] = "enc"
	enc["kid"] = "enc"
	hmac := map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
	badN := rsaK.jwk()
	badN["kid"], badN["n"] = "badn", "!!!"
	badCurve := ec256.jwk()
	badCurve["kid"], badCurve["crv"] = "bad-crv", "secp256k1"
	offCurve := ec256.jwk()
	offCurve["kid"], offCurve["y"] = "off", offCurve["x"]
	huge := rsaK.jwk()
	huge["kid"], huge["n"] = "huge", b64u(append([]byte{0xc1}, bytes.Repeat([]byte{0x35}, maxRSABits/8)...))
	algMismatch := rsaK.jwk()
	algMismatch["kid"], algMismatch["alg"] = "alg-mismatch", "ES256"
	mixed, _ := json.Marshal(map[string]any{"keys": []any{rsaK.jwk(), enc, hmac, smallK.jwk(), huge, badN, badCurve, offCurve, algMismatch, "not an object"}})

	tests := []struct {
		name    string
		doc     string
		kids    []string // usable keys, in order
		skipped int
		err     string // substring of the error; "" for success
	}{
		{name: "plain JWKS", doc: string(jwksJSON(t, rsaK, ec256, ec384, ec521, ed)), kids: []string{"r1", "e256", "e384", "e521", "ed"}},
		{name: "capitalised Keys member", doc: strings.Replace(string(jwksJSON(t, rsaK)), `"keys"`, `"Keys"`, 1), kids: []string{"r1"}},
		{name: "capitalised key members", doc: `{"keys":[{"KTY":"OKP","Crv":"Ed25519","X":"` + ed.jwk()["x"].(string) + `","Kid":"ed"}]}`, kids: []string{"ed"}},
		{name: "unknown members ignored", doc: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + ed.jwk()["x"].(string) + `","kid":"ed","x5t":"zz","extra":{"a":1}}],"other":true}`, kids: []string{"ed"}},
		{name: "member of the wrong type", doc: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + ed.jwk()["x"].(string) + `","kid":"ed","alg":7}]}`, skipped: 1, err: "no usable key"},
		{name: "key_ops without verify", doc: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + ed.jwk()["x"].(string) + `","kid":"ed","key_ops":["encrypt"]}]}`, skipped: 1, err: "no usable key"},
		{name: "key_ops with verify", doc: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + ed.jwk()["x"].(string) + `","kid":"ed","key_ops":["verify"]}]}`, kids: []string{"ed"}},
		{name: "padded base64", doc: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + ed.jwk()["x"].(string) + `=","kid":"ed"}]}`, kids: []string{"ed"}},
		{name: "mixed usable and unusable keys", doc: string(mixed), kids: []string{"r1"}, skipped: 9},
		{name: "gigya V2 envelope", doc: string(gigyaV2(rsaK)), kids: []string{"r1"}},
		{name: "gigya V1 bare key", doc: string(gigyaV1(rsaK)), kids: []string{"r1"}},
		{name: "gigya error envelope", doc: gigyaInvalidAPIKey, err: "gigya errorCode 400093: Invalid ApiKey parameter"},
		{name: "gigya errorCode as string", doc: `{"errorCode":"x","keys":[]}`, err: "errorCode is not a number"},
		{name: "no usable key", doc: `{"keys":[{"kty":"oct","k":"AA"}]}`, skipped: 1, err: "no usable key"},
		{name: "empty keys", doc: `{"keys":[]}`, err: "no usable key"},
		{name: "keys not an array", doc: `{"keys":{}}`, err: "not an array"},
		{name: "neither keys nor key", doc: `{"issuer":"x"}`, err: "no \"keys\" array"},
		{name: "not JSON", doc: `<html>`, err: "not a JSON object"},
		{name: "JSON null", doc: `null`, err: "not a JSON object"},
		{name: "keys twice in different case", doc: `{"keys":[],"Keys":[]}`, err: "appears twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, skipped, err := ParseKeyDocument([]byte(tc.doc))
			if skipped.Total() != tc.skipped {
				t.Errorf("skipped %d keys (%v), want %d", skipped.Total(), skipped, tc.skipped)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := set.KIDs(); !slices.Equal(got, tc.kids) {
				t.Fatalf("kids = %v, want %v", got, tc.kids)
			}
		})
	}
}

func TestGigyaErrorCarriesCallID(t *testing.T) {
	_, _, err := ParseKeyDocument([]byte(gigyaInvalidAPIKey))
	var gerr *GigyaError
	if !errors.As(err, &gerr) || gerr.Code != 400093 || gerr.CallID != "e5d1" {
		t.Fatalf("err = %#v", err)
	}
}

// TestGigyaErrorTextsBounded: a hostile errorCode answer of a megabyte
// makes a short error (it is logged on every failed fetch).
func TestGigyaErrorTextsBounded(t *testing.T) {
	big := strings.Repeat("x", 1<<20-200)
	doc := `{"errorCode":400093,"errorMessage":"` + big + `","errorDetails":"` + big[:1000] + `","callId":"` + big[:500] + `"}`
	_, _, err := ParseKeyDocument([]byte(doc))
	var gerr *GigyaError
	if !errors.As(err, &gerr) {
		t.Fatalf("err = %v", err)
	}
	if n := len(err.Error()); n > 1024 {
		t.Fatalf("error text is %d bytes", n)
	}
	if !strings.Contains(gerr.Message, "bytes)") || !strings.HasPrefix(gerr.Message, "xxxx") {
		t.Fatalf("message not clipped with its length: %.80q", gerr.Message)
	}
}

func TestGigyaKeyURL(t *testing.T) {
	tests := []struct {
		dc, want, err string
	}{
		{dc: "", want: "https://accounts.us1.gigya.com/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "eu1", want: "https://accounts.eu1.gigya.com/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "AU1", want: "https://accounts.au1.gigya.com/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "eu2", want: "https://accounts.eu2.gigya.com/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "ru1", want: "https://accounts.ru1.gigya.com/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "global", want: "https://accounts.global.gigya.com/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "cn1", want: "https://accounts.cn1.sapcdm.cn/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "cn1.gigya-api.cn", want: "https://accounts.cn1.gigya-api.cn/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080/accounts.getJWTPublicKey?apiKey=3_a%2Bb&V2=true"},
		{dc: "xx9", err: "unknown data_center"},
		{dc: "evil.com/path", err: "not a domain"},
		{dc: "https://", err: "not a valid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.dc, func(t *testing.T) {
			got, err := gigyaKeyURL("3_a+b", tc.dc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestSourcesFetch fetches each kind of source from loopback servers.
func TestSourcesFetch(t *testing.T) {
	k := newRSAKey(t, "k1", 0)
	client := newHTTPClient()
	defer client.CloseIdleConnections()

	t.Run("gigya V2 answer", func(t *testing.T) {
		seen := make(chan string, 1)
		srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
			seen <- r.URL.Path + "?" + r.URL.RawQuery + " " + r.UserAgent()
			_, _ = w.Write(gigyaV2(k))
		})
		u, _ := gigyaKeyURL("3_site", srv.URL)
		res, err := (&jwksSource{url: u, client: client}).fetch(context.Background(), nil)
		if err != nil || res.set.Len() != 1 {
			t.Fatalf("fetch: %v", err)
		}
		if got, want := <-seen, "/accounts.getJWTPublicKey?apiKey=3_site&V2=true caddy-idtoken/"+Version; got != want {
			t.Fatalf("request %q, want %q", got, want)
		}
	})
	t.Run("gigya V1 answer", func(t *testing.T) {
		is := newIssuer(t, gigyaV1(k))
		res, err := (&jwksSource{url: is.URL, client: client}).fetch(context.Background(), nil)
		if err != nil || res.set.KIDs()[0] != "k1" {
			t.Fatalf("fetch: %v", err)
		}
	})
	t.Run("gigya error envelope with HTTP 200", func(t *testing.T) {
		is := newIssuer(t, []byte(gigyaInvalidAPIKey))
		_, err := (&jwksSource{url: is.URL, client: client}).fetch(context.Background(), nil)
		var gerr *GigyaError
		if !errors.As(err, &gerr) || gerr.Code != 400093 {
			t.Fatalf("err = %v, want gigya 400093", err)
		}
	})
	t.Run("HTTP error status", func(t *testing.T) {
		is := newIssuer(t, jwksJSON(t, k))
		is.serve(http.StatusInternalServerError, []byte("oops"))
		if _, err := (&jwksSource{url: is.URL, client: client}).fetch(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		is := newIssuer(t, []byte(`{"keys":[`+strings.Repeat(" ", maxDocumentSize)+`]}`))
		if _, err := (&jwksSource{url: is.URL, client: client}).fetch(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cache-control max-age", func(t *testing.T) {
		is := newIssuer(t, jwksJSON(t, k))
		is.setHeader("Cache-Control", "public, max-age=600")
		res, err := (&jwksSource{url: is.URL, client: client}).fetch(context.Background(), nil)
		if err != nil || res.maxAge != 10*time.Minute {
			t.Fatalf("maxAge = %v, err %v", res.maxAge, err)
		}
	})
	t.Run("jwks file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "jwks.json")
		if err := os.WriteFile(path, jwksJSON(t, k), 0o600); err != nil {
			t.Fatal(err)
		}
		if res, err := (&fileSource{path: path}).fetch(context.Background(), nil); err != nil || res.set.Len() != 1 {
			t.Fatalf("fetch: %v", err)
		}
		if _, err := (&fileSource{path: path + ".missing"}).fetch(context.Background(), nil); err == nil {
			t.Fatal("missing file accepted")
		}
	})
}

func TestOIDCDiscovery(t *testing.T) {
	k := newRSAKey(t, "k1", 0)
	client := newHTTPClient()
	defer client.CloseIdleConnections()

	// op serves discovery and a JWKS; issuer lets a test lie about the issuer.
	type op struct {
		sync.Mutex
		discovery, jwks int
		issuer          string
		jwksPath        string
	}
	start := func(t *testing.T, o *op) string {
		srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
			o.Lock()
			defer o.Unlock()
			switch r.URL.Path {
			case "/tenant/.well-known/openid-configuration":
				o.discovery++
				iss := o.issuer
				if iss == "" {
					iss = "http://" + r.Host + "/tenant"
				}
				fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"http://%s%s","id_token_signing_alg_values_supported":["RS256"]}`, iss, r.Host, o.jwksPath)
			case o.jwksPath:
				o.jwks++
				_, _ = w.Write(jwksJSON(t, k))
			default:
				http.NotFound(w, r)
			}
		})
		return srv.URL + "/tenant"
	}

	t.Run("discovers jwks_uri and issuer", func(t *testing.T) {
		o := &op{jwksPath: "/tenant/oauth2/jwks"}
		issuerURL := start(t, o)
		src := &discoverySource{issuer: issuerURL + "/", client: client} // trailing slash aside
		for range 2 {
			res, err := src.fetch(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.set.Issuer != issuerURL {
				t.Fatalf("issuer = %q, want %q", res.set.Issuer, issuerURL)
			}
		}
		o.Lock()
		defer o.Unlock()
		if o.discovery != 1 || o.jwks != 2 {
			t.Fatalf("discovery fetched %d times, jwks %d; want 1 and 2", o.discovery, o.jwks)
		}
	})
	t.Run("issuer mismatch is a failed fetch", func(t *testing.T) {
		o := &op{jwksPath: "/jwks", issuer: "https://evil.test/tenant"}
		src := &discoverySource{issuer: start(t, o), client: client}
		if _, err := src.fetch(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("moved jwks_uri is rediscovered", func(t *testing.T) {
		o := &op{jwksPath: "/jwks-1"}
		src := &discoverySource{issuer: start(t, o), client: client}
		if _, err := src.fetch(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		o.Lock()
		o.jwksPath = "/jwks-2" // the old path now 404s
		o.Unlock()
		if _, err := src.fetch(context.Background(), nil); err != nil {
			t.Fatalf("after move: %v", err)
		}
		o.Lock()
		defer o.Unlock()
		if o.discovery != 2 || !strings.HasSuffix(src.jwksURI, "/jwks-2") {
			t.Fatalf("discovery %d times, jwks_uri %q", o.discovery, src.jwksURI)
		}
	})
}

func TestMaxAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                         0,
		"max-age=60":               time.Minute,
		"public, MAX-AGE=\"3600\"": time.Hour,
		"no-store":                 0,
		"max-age=-5":               0,
		"max-age=abc":              0,
	} {
		if got := maxAge(in); got != want {
			t.Errorf("maxAge(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestSkipReasons: each kind of unusable key is skipped with its reason
// slug and its kid, and the readable error names neither the kid nor more
// than 64 bytes of any value the document chose.
func TestSkipReasons(t *testing.T) {
	rsaK := newRSAKey(t, "r1", 0)
	ec := newECKey(t, "e1", elliptic.P256(), "ES256")
	ed := newEdKey(t, "ed")
	const kid = "KID-MARK"
	key := func(k testKey, changes map[string]any) map[string]any {
		m := k.jwk()
		m["kid"] = kid
		return with(m, changes)
	}
	huge := strings.Repeat("z", 100<<10)
	tests := []struct {
		name   string
		key    any // a JWK object, or raw JSON text
		reason string
		kid    string
	}{
		{"not an object", "just a string", skipNotObject, ""},
		{"member repeated in another case", json.RawMessage(`{"kid":"KID-MARK","kty":"OKP","KTY":"EC"}`), skipNotObject, ""},
		{"alg not a string", key(ed, map[string]any{"alg": 7}), skipMemberType, kid},
		{"kid not a string", key(ed, map[string]any{"kid": 7}), skipMemberType, ""},
		{"use enc", key(rsaK, map[string]any{"use": "enc"}), skipUse, kid},
		{"huge use", key(rsaK, map[string]any{"use": huge}), skipUse, kid},
		{"key_ops without verify", key(ed, map[string]any{"key_ops": []string{"encrypt"}}), skipKeyOps, kid},
		{"huge key_ops", key(ed, map[string]any{"key_ops": []string{huge}}), skipKeyOps, kid},
		{"alg HS256", key(rsaK, map[string]any{"alg": "HS256"}), skipAlg, kid},
		{"huge alg", key(rsaK, map[string]any{"alg": huge}), skipAlg, kid},
		{"kty oct", map[string]any{"kty": "oct", "kid": kid, "k": "c2VjcmV0"}, skipKty, kid},
		{"huge kty", map[string]any{"kty": huge, "kid": kid}, skipKty, kid},
		{"EC crv secp256k1", key(ec, map[string]any{"crv": "secp256k1"}), skipCrv, kid},
		{"OKP crv X25519", key(ed, map[string]any{"crv": "X25519"}), skipCrv, kid},
		{"RSA n not base64url", key(rsaK, map[string]any{"n": "!!!"}), skipMember, kid},
		{"OKP x missing", key(ed, map[string]any{"x": nil}), skipMember, kid},
		{"RSA exponent even", key(rsaK, map[string]any{"e": b64u([]byte{2})}), skipRSAExponent, kid},
		{"RSA exponent over 4 bytes", key(rsaK, map[string]any{"e": b64u([]byte{1, 0, 0, 0, 1})}), skipRSAExponent, kid},
		{"RSA 1024 bits", key(rsaK, map[string]any{"n": b64u(bytes.Repeat([]byte{0xc1}, 128))}), skipRSASize, kid},
		{"RSA over 8192 bits", key(rsaK, map[string]any{"n": b64u(bytes.Repeat([]byte{0xc1}, maxRSABits/8+1))}), skipRSASize, kid},
		{"EC point off the curve", key(ec, map[string]any{"y": ec.jwk()["x"]}), skipECPoint, kid},
		{"EC coordinate too short", key(ec, map[string]any{"y": b64u([]byte{1})}), skipECPoint, kid},
		{"Ed25519 key of 31 bytes", key(ed, map[string]any{"x": b64u(make([]byte, 31))}), skipEd25519Size, kid},
		{"alg that does not fit the key", key(rsaK, map[string]any{"alg": "ES256"}), skipAlgMismatch, kid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := json.Marshal(map[string]any{"keys": []any{ed.jwk(), tc.key}})
			if err != nil {
				t.Fatal(err)
			}
			_, skipped, err := ParseKeyDocument(doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(skipped) != 1 || skipped.Total() != 1 || len(skipped[0].Examples) != 1 {
				t.Fatalf("skipped = %v, want one key", skipped)
			}
			got := skipped[0].Examples[0]
			if got.Reason != tc.reason || skipped[0].Reason != tc.reason || got.KID != tc.kid || got.Index != 1 {
				t.Fatalf("skipped %+v, want reason %q, kid %q, index 1", got, tc.reason, tc.kid)
			}
			if msg := got.Err.Error(); strings.Contains(msg, kid) || len(msg) > 200 {
				t.Fatalf("error %.300q names the kid or is %d bytes long", msg, len(msg))
			}
		})
	}
}

// TestSkippedKeysStayBounded: a document of thousands of unusable keys
// yields counts and five examples, not a value per key.
func TestSkippedKeysStayBounded(t *testing.T) {
	const n = 20000
	keys := make([]string, 0, n+1)
	keys = append(keys, string(mustJSON(t, newEdKey(t, "good").jwk())))
	for i := range n {
		switch i % 3 {
		case 0:
			keys = append(keys, `{"kty":"oct"}`)
		case 1:
			keys = append(keys, `{"kty":"RSA","use":"enc"}`)
		default:
			keys = append(keys, `7`)
		}
	}
	doc := `{"keys":[` + strings.Join(keys, ",") + `]}`
	_, skipped, err := ParseKeyDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if skipped.Total() != n {
		t.Fatalf("total %d, want %d", skipped.Total(), n)
	}
	want := []struct {
		reason string
		count  int
	}{{skipKty, 6667}, {skipUse, 6667}, {skipNotObject, 6666}}
	if len(skipped) != len(want) {
		t.Fatalf("%d groups, want %d", len(skipped), len(want))
	}
	var indexes []int
	for i, g := range skipped {
		if g.Reason != want[i].reason || g.Count != want[i].count {
			t.Errorf("group %d: %q x %d, want %q x %d", i, g.Reason, g.Count, want[i].reason, want[i].count)
		}
		for _, k := range g.Examples {
			indexes = append(indexes, k.Index)
		}
	}
	slices.Sort(indexes)
	if !slices.Equal(indexes, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("examples at %v, want the first five skipped keys", indexes)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ed25519Encoding decodes a hex test vector of a 32-byte point encoding.
func ed25519Encoding(t *testing.T, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != ed25519.PublicKeySize {
		t.Fatalf("bad test vector %q", h)
	}
	return b
}

// TestEd25519SmallOrderKeysSkipped: an Ed25519 key whose point has small
// order (the identity and the other seven points of order 2, 4 or 8) lets
// anyone make signatures that verify, so it is skipped at load, also when
// encoded non-canonically. Encodings of little-endian y with the sign of x in
// the top bit; p = 2^255 - 19.
func TestEd25519SmallOrderKeysSkipped(t *testing.T) {
	good := newEdKey(t, "good")
	tests := []struct {
		name   string
		x      string // hex
		reason string
	}{
		// The eight small-order points, canonically encoded.
		{"identity (0, 1)", "0100000000000000000000000000000000000000000000000000000000000000", "ed25519 small order"},
		{"order 2 (0, -1)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "ed25519 small order"},
		{"order 4 (+sqrt(-1), 0)", "0000000000000000000000000000000000000000000000000000000000000000", "ed25519 small order"},
		{"order 4 (-sqrt(-1), 0)", "0000000000000000000000000000000000000000000000000000000000000080", "ed25519 small order"},
		{"order 8, first, x even", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", "ed25519 small order"},
		{"order 8, first, x odd", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", "ed25519 small order"},
		{"order 8, second, x even", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "ed25519 small order"},
		{"order 8, second, x odd", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "ed25519 small order"},
		// Non-canonical: y in [p, 2^255-1] that reduces to a small-order y
		// (only p and p+1: p-1 would need 2p-1, over 255 bits) ...
		{"y = p (order 4)", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "ed25519 small order"},
		{"y = p, sign set (order 4)", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "ed25519 small order"},
		{"y = p+1 (identity)", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "ed25519 small order"},
		{"y = p+1, sign set (identity)", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "ed25519 small order"},
		// ... and the sign bit set on the points whose x is 0 ("-0").
		{"identity, sign set", "0100000000000000000000000000000000000000000000000000000000000080", "ed25519 small order"},
		{"order 2, sign set", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "ed25519 small order"},
		// Not a point at all: y = 2 has no x on the curve.
		{"not on the curve", "0200000000000000000000000000000000000000000000000000000000000000", "ed25519 point"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "bad", "x": b64u(ed25519Encoding(t, tc.x))}
			doc, err := json.Marshal(map[string]any{"keys": []any{good.jwk(), bad}})
			if err != nil {
				t.Fatal(err)
			}
			set, skipped, err := ParseKeyDocument(doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := set.KIDs(); !slices.Equal(got, []string{"good"}) {
				t.Fatalf("usable kids %v, want only the generated key", got)
			}
			if len(skipped) != 1 || len(skipped[0].Examples) != 1 {
				t.Fatalf("skipped = %v, want one key", skipped)
			}
			if got := skipped[0].Examples[0]; got.Reason != tc.reason || got.KID != "bad" {
				t.Fatalf("skipped %v with reason %q, want %q", got, got.Reason, tc.reason)
			}
		})
	}
}

// TestEd25519IdentityKeyCannotForge: with the identity point as public key,
// R = identity and S = 0 is a valid Ed25519 signature of every message (the
// check [S]B = R + [k]A holds for any k). A key set holding that key must
// not load it, so such a token verifies under no key.
func TestEd25519IdentityKeyCannotForge(t *testing.T) {
	identity := ed25519Encoding(t, "0100000000000000000000000000000000000000000000000000000000000000")
	signed := b64u([]byte(`{"alg":"EdDSA","kid":"id"}`)) + "." + b64u([]byte(`{"sub":"anyone","iss":"https://issuer.test"}`))
	forged := append(slices.Clone(identity), make([]byte, 32)...) // R = identity, S = 0

	raw := &Key{ID: "id", Public: ed25519.PublicKey(identity)}
	if !raw.verifySignature("EdDSA", signed, forged) {
		t.Fatal("the forged signature does not verify under the raw identity key: this test proves nothing")
	}

	identityJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "id", "x": b64u(identity)}
	tests := []struct {
		name   string
		keys   []any
		usable bool
	}{
		{"identity key alone", []any{identityJWK}, false},
		{"identity key beside a real key", []any{newEdKey(t, "real").jwk(), identityJWK}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := json.Marshal(map[string]any{"keys": tc.keys})
			if err != nil {
				t.Fatal(err)
			}
			set, _, err := ParseKeyDocument(doc)
			if !tc.usable {
				if err == nil {
					t.Fatalf("loaded %v, want no usable key", set.KIDs())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Lookup("id"); len(got) != 0 {
				t.Fatal("identity key loaded")
			}
			for i := range set.keys {
				if set.keys[i].verifySignature("EdDSA", signed, forged) {
					t.Fatalf("forged token verifies under %q", set.keys[i].ID)
				}
			}
		})
	}
}
