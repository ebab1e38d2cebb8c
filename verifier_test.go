package idtoken

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signRaw signs arbitrary header and payload bytes, for tokens golang-jwt
// would refuse to build.
func signRaw(t testing.TB, k testKey, header, payload string) string {
	t.Helper()
	input := b64u([]byte(header)) + "." + b64u([]byte(payload))
	sig, err := jwt.GetSigningMethod(k.alg).Sign(input, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64u(sig)
}

// matrixCase is one row of the rejection matrix: a token, the key set and
// policy changes it is checked with, and the expected outcome.
type matrixCase struct {
	name   string
	token  string
	set    *KeySet
	policy func(*Policy)
	status int    // 0: accepted
	reason string // expected rejection reason
}

// rejectionMatrix holds one case per reason a token is refused, plus the
// accepted shapes, shared by the verifier and cache tests.
type rejectionMatrix struct {
	cases []matrixCase
	base  Policy
	keys  *KeySet
}

// setup returns the verifier, policy and key set a case runs with.
func (m rejectionMatrix) setup(t *testing.T, tc matrixCase) (*Verifier, Policy, *KeySet) {
	p := m.base
	if tc.policy != nil {
		tc.policy(&p)
	}
	v, err := NewVerifier(p)
	if err != nil {
		t.Fatal(err)
	}
	set := m.keys
	if tc.set != nil {
		set = tc.set
	}
	return v, p, set
}

func newRejectionMatrix(t *testing.T) rejectionMatrix {
	rsa1 := newRSAKey(t, "k1", 0)
	other := newRSAKey(t, "k1", 1) // same kid, different key: a forgery attempt
	ec := newECKey(t, "ec1", elliptic.P256(), "ES256")
	ed := newEdKey(t, "ed1")
	keys := mustParse(t, jwksJSON(t, rsa1, ec, ed))
	single := mustParse(t, jwksJSON(t, rsa1))

	base := Policy{
		Algorithms: []string{"RS256", "ES256", "EdDSA"},
		Issuers:    []string{"https://issuer.test"},
		Audiences:  []string{"client-1", "client-2"},
		Leeway:     60 * time.Second,
		Require: []ClaimRequirement{
			{Claim: "groups", Values: []string{"admin", "ops"}},
			{Claim: "email_verified", Values: []string{"true"}},
		},
	}
	good := with(validClaims(), map[string]any{"groups": []string{"staff", "admin"}, "email_verified": true})
	now := testNow.Unix()
	noKID := rsa1
	noKID.kid = ""
	rsaAsEC := rsa1
	rsaAsEC.kid = "ec1"
	pubDER, err := x509.MarshalPKIXPublicKey(rsa1.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacConfused := testKey{kid: "k1", alg: "HS256", priv: pubPEM}
	valid := sign(t, rsa1, good, nil)
	parts := strings.Split(valid, ".")
	goodJSON, _ := json.Marshal(good)

	tests := []matrixCase{
		{name: "valid RS256", token: valid},
		{name: "valid ES256", token: sign(t, ec, good, nil)},
		{name: "valid EdDSA", token: sign(t, ed, good, nil)},
		{name: "jku and x5u headers are ignored", token: sign(t, rsa1, good, map[string]any{"jku": "http://127.0.0.1:1/evil", "x5u": "http://127.0.0.1:1/x"})},
		{name: "no kid with single-key set", token: sign(t, noKID, good, nil), set: single},
		{name: "exp within leeway", token: sign(t, rsa1, with(good, map[string]any{"exp": now - 30}), nil)},
		{name: "nbf within leeway", token: sign(t, rsa1, with(good, map[string]any{"nbf": now + 30}), nil)},
		{name: "aud array containing allowed", token: sign(t, rsa1, with(good, map[string]any{"aud": []string{"x", "client-2"}}), nil)},
		{name: "fractional exp", token: sign(t, rsa1, with(good, map[string]any{"exp": float64(now) + 100.5}), nil)},

		{name: "too long", token: strings.Repeat("a", MaxTokenLength+1), status: 401, reason: ReasonTooLong},
		{name: "two parts", token: parts[0] + "." + parts[1], status: 401, reason: ReasonMalformed},
		{name: "four parts", token: valid + ".x", status: 401, reason: ReasonMalformed},
		{name: "header not base64", token: "!!!." + parts[1] + "." + parts[2], status: 401, reason: ReasonMalformed},
		{name: "header not JSON", token: b64u([]byte("nope")) + "." + parts[1] + "." + parts[2], status: 401, reason: ReasonMalformed},
		{name: "header JSON array", token: b64u([]byte(`["RS256"]`)) + "." + parts[1] + "." + parts[2], status: 401, reason: ReasonMalformed},
		{name: "padded signature", token: valid + "==", status: 401, reason: ReasonMalformed},
		{name: "empty signature", token: parts[0] + "." + parts[1] + ".", status: 401, reason: ReasonMalformed},
		{name: "payload is an array", token: signRaw(t, rsa1, `{"alg":"RS256","kid":"k1"}`, `[1,2]`), status: 401, reason: ReasonMalformed},
		{name: "payload is null", token: signRaw(t, rsa1, `{"alg":"RS256","kid":"k1"}`, `null`), status: 401, reason: ReasonMalformed},
		{name: "payload with trailing data", token: signRaw(t, rsa1, `{"alg":"RS256","kid":"k1"}`, string(goodJSON)+`{}`), status: 401, reason: ReasonMalformed},
		{name: "payload with a stray brace", token: signRaw(t, rsa1, `{"alg":"RS256","kid":"k1"}`, string(goodJSON)+`}`), status: 401, reason: ReasonMalformed},
		{name: "payload with trailing whitespace", token: signRaw(t, rsa1, `{"alg":"RS256","kid":"k1"}`, string(goodJSON)+" \r\n")},
		{name: "alg none", token: b64u([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + ".", status: 401, reason: ReasonAlg},
		{name: "alg none with signature", token: b64u([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + "." + parts[2], status: 401, reason: ReasonAlg},
		{name: "alg confusion HS256 keyed with RSA public key", token: sign(t, hmacConfused, good, nil), status: 401, reason: ReasonAlg},
		{name: "alg not in allow-list", token: sign(t, testKey{kid: "k1", alg: "RS384", priv: rsa1.priv}, good, nil), status: 401, reason: ReasonAlg},
		{name: "crit header", token: sign(t, rsa1, good, map[string]any{"crit": []string{"exp"}}), status: 401, reason: ReasonCrit},
		{name: "unknown kid", token: sign(t, testKey{kid: "nope", alg: "RS256", priv: rsa1.priv}, good, nil), status: 401, reason: ReasonUnknownKID},
		{name: "no kid with several keys", token: sign(t, noKID, good, nil), status: 401, reason: ReasonNoKID},
		{name: "kid of a key of another type", token: sign(t, rsaAsEC, good, nil), status: 401, reason: ReasonKeyMismatch},
		{name: "signed by another key", token: sign(t, other, good, nil), status: 401, reason: ReasonSignature},
		{name: "tampered payload", token: parts[0] + "." + b64u([]byte(strings.Replace(string(goodJSON), "user-123", "admin", 1))) + "." + parts[2], status: 401, reason: ReasonSignature},
		{name: "missing exp", token: sign(t, rsa1, with(good, map[string]any{"exp": nil}), nil), status: 401, reason: ReasonNoExp},
		{name: "exp not a number", token: sign(t, rsa1, with(good, map[string]any{"exp": "tomorrow"}), nil), status: 401, reason: ReasonMalformed},
		{name: "expired beyond leeway", token: sign(t, rsa1, with(good, map[string]any{"exp": now - 61}), nil), status: 401, reason: ReasonExpired},
		{name: "expired with zero leeway", token: sign(t, rsa1, with(good, map[string]any{"exp": now}), nil), policy: func(p *Policy) { p.Leeway = 0 }, status: 401, reason: ReasonExpired},
		{name: "nbf in the future", token: sign(t, rsa1, with(good, map[string]any{"nbf": now + 61}), nil), status: 401, reason: ReasonNotYetValid},
		{name: "iat in the future", token: sign(t, rsa1, with(good, map[string]any{"iat": now + 120}), nil), status: 401, reason: ReasonIssuedFuture},
		{name: "wrong iss", token: sign(t, rsa1, with(good, map[string]any{"iss": "https://evil.test"}), nil), status: 401, reason: ReasonIssuer},
		{name: "missing iss", token: sign(t, rsa1, with(good, map[string]any{"iss": nil}), nil), status: 401, reason: ReasonIssuer},
		{name: "wrong aud", token: sign(t, rsa1, with(good, map[string]any{"aud": "client-9"}), nil), status: 401, reason: ReasonAudience},
		{name: "aud array without allowed", token: sign(t, rsa1, with(good, map[string]any{"aud": []string{"a", "b"}}), nil), status: 401, reason: ReasonAudience},
		{name: "gigya apiKey mismatch", token: sign(t, rsa1, with(good, map[string]any{"apiKey": "3_other"}), nil), policy: func(p *Policy) { p.APIKey = "3_site" }, status: 401, reason: ReasonAPIKey},
		{name: "gigya apiKey missing", token: valid, policy: func(p *Policy) { p.APIKey = "3_site" }, status: 401, reason: ReasonAPIKey},
		{name: "gigya apiKey match", token: sign(t, rsa1, with(good, map[string]any{"apiKey": "3_site"}), nil), policy: func(p *Policy) { p.APIKey = "3_site" }},
		{name: "require array lacks value", token: sign(t, rsa1, with(good, map[string]any{"groups": []string{"staff"}}), nil), status: 403, reason: ReasonRequire},
		{name: "require claim missing", token: sign(t, rsa1, with(good, map[string]any{"groups": nil}), nil), status: 403, reason: ReasonRequire},
		{name: "require second line fails", token: sign(t, rsa1, with(good, map[string]any{"email_verified": false}), nil), status: 403, reason: ReasonRequire},
		{name: "require scalar equals", token: sign(t, rsa1, with(good, map[string]any{"groups": "ops"}), nil)},
		{name: "require a nested claim by dotted name", token: sign(t, rsa1, with(good, map[string]any{"data": map[string]any{"role": "admin"}}), nil), policy: requireRole},
		{name: "require a flat dotted claim before the path", token: sign(t, rsa1, with(good, map[string]any{"data.role": "admin", "data": map[string]any{"role": "user"}}), nil), policy: requireRole},
		{name: "require a nested claim that differs", token: sign(t, rsa1, with(good, map[string]any{"data": map[string]any{"role": "user"}}), nil), policy: requireRole, status: 403, reason: ReasonRequire},
	}
	tests = append(tests, strictCases(t, rsa1, good)...)
	return rejectionMatrix{cases: tests, base: base, keys: keys}
}

func requireRole(p *Policy) {
	p.Require = append(p.Require, ClaimRequirement{Claim: "data.role", Values: []string{"admin"}})
}

// strictCases are the matrix rows for strict JOSE parsing: each token is
// properly signed (or carries a junk signature where that is the point), so
// the verdict comes from the parsing rule alone.
func strictCases(t *testing.T, k testKey, good map[string]any) []matrixCase {
	hdr := `{"alg":"RS256","kid":"k1"}`
	goodJSON, _ := json.Marshal(good)
	payload := string(goodJSON)
	valid := signRaw(t, k, hdr, payload)
	dot := strings.IndexByte(valid, '.')
	exp := fmt.Sprintf(`"exp":%d`, testNow.Add(5*time.Minute).Unix())
	withExp := func(lit string) string { return strings.Replace(payload, exp, `"exp":`+lit, 1) }
	withMember := func(member string) string { return payload[:len(payload)-1] + "," + member + "}" }
	junkSig := func(h, p string) string {
		return b64u([]byte(h)) + "." + b64u([]byte(p)) + "." + b64u(make([]byte, 256))
	}
	noLeeway := func(p *Policy) { p.Leeway = 0 }
	nested := func(depth int) string {
		return `{"alg":"RS256","kid":"k1","x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
	}
	return []matrixCase{
		// One token, one spelling.
		{name: "token re-spelled with a newline", token: valid[:dot+5] + "\n" + valid[dot+5:], status: 401, reason: ReasonMalformed},
		{name: "token re-spelled with a carriage return", token: valid[:10] + "\r" + valid[10:], status: 401, reason: ReasonMalformed},
		{name: "token with a space", token: valid[:10] + " " + valid[10:], status: 401, reason: ReasonMalformed},
		{name: "token in standard base64", token: strings.NewReplacer("-", "+", "_", "/").Replace(valid), status: 401, reason: ReasonMalformed},

		// Member names are exact, unique, and the text valid Unicode.
		{name: "header names are case-sensitive", token: signRaw(t, k, `{"ALG":"RS256","KID":"k1"}`, payload), status: 401, reason: ReasonAlg},
		{name: "alg none beside Alg RS256", token: signRaw(t, k, `{"alg":"none","Alg":"RS256","kid":"k1"}`, payload), status: 401, reason: ReasonAlg},
		{name: "duplicate alg in the header", token: signRaw(t, k, `{"alg":"RS256","alg":"RS256","kid":"k1"}`, payload), status: 401, reason: ReasonMalformed},
		{name: "duplicate kid in the header", token: signRaw(t, k, `{"alg":"RS256","kid":"k1","kid":"k2"}`, payload), status: 401, reason: ReasonMalformed},
		{name: "header kid not a string", token: signRaw(t, k, `{"alg":"RS256","kid":1}`, payload), status: 401, reason: ReasonMalformed},
		{name: "escaped member name in the header", token: signRaw(t, k, `{"\u0061lg":"RS256","kid":"k1"}`, payload)},
		{name: "duplicate claim", token: signRaw(t, k, hdr, withMember(`"sub":"admin"`)), status: 401, reason: ReasonMalformed},
		{name: "duplicate member in a nested claim", token: signRaw(t, k, hdr, withMember(`"address":{"c":"DE","c":"US"}`)), status: 401, reason: ReasonMalformed},
		{name: "invalid UTF-8 in a claim", token: signRaw(t, k, hdr, withMember("\"name\":\"\xff\"")), status: 401, reason: ReasonMalformed},
		{name: "escaped unpaired surrogate in a claim", token: signRaw(t, k, hdr, withMember(`"name":"\ud800"`)), status: 401, reason: ReasonMalformed},
		{name: "escaped surrogate pair in a claim", token: signRaw(t, k, hdr, withMember(`"name":"\ud83d\ude00"`))},
		{name: "claims nested too deep", token: signRaw(t, k, hdr, withMember(`"x":`+strings.Repeat("[", maxPayloadDepth)+strings.Repeat("]", maxPayloadDepth))), status: 401, reason: ReasonMalformed},

		// The header is small and flat.
		{name: "header at the nesting bound", token: signRaw(t, k, nested(maxHeaderDepth), payload)},
		{name: "header nested too deep", token: signRaw(t, k, nested(maxHeaderDepth+1), payload), status: 401, reason: ReasonMalformed},
		{name: "header with too many members", token: signRaw(t, k, `{"alg":"RS256","kid":"k1","x":[`+strings.Repeat("0,", maxHeaderTokens)+`0]}`, payload), status: 401, reason: ReasonMalformed},
		{name: "header too long", token: signRaw(t, k, `{"alg":"RS256","kid":"k1","x":"`+strings.Repeat("a", maxHeaderLength)+`"}`, payload), status: 401, reason: ReasonMalformed},
		{name: "header followed by another value", token: signRaw(t, k, hdr+`{}`, payload), status: 401, reason: ReasonMalformed},
		{name: "header null", token: signRaw(t, k, `null`, payload), status: 401, reason: ReasonMalformed},

		// Signature before claims: an unsigned payload is never decoded.
		{name: "junk signature over a payload that is not JSON", token: junkSig(hdr, `{"sub":`), status: 401, reason: ReasonSignature},
		{name: "junk signature over a deeply nested payload", token: junkSig(hdr, strings.Repeat("[", 5000)), status: 401, reason: ReasonSignature},

		// NumericDates are exact decimals, never rounded through a float.
		{name: "exp a tenth of a nanosecond after now", token: signRaw(t, k, hdr, withExp(fmt.Sprintf("%d.0000000001", testNow.Unix()))), policy: noLeeway},
		{name: "exp exactly now", token: signRaw(t, k, hdr, withExp(fmt.Sprintf("%d.000", testNow.Unix()))), policy: noLeeway, status: 401, reason: ReasonExpired},
		{name: "exp with an exponent", token: signRaw(t, k, hdr, withExp(fmt.Sprintf("%de-3", testNow.Add(time.Minute).Unix()*1000)))},
		{name: "exp beyond the float range", token: signRaw(t, k, hdr, withExp("1e400")), status: 401, reason: ReasonMalformed},
		{name: "exp far in the future saturates", token: signRaw(t, k, hdr, withExp("1e300"))},
		{name: "exp hugely negative", token: signRaw(t, k, hdr, withExp("-1e300")), status: 401, reason: ReasonExpired},
	}
}

func TestVerifyRejectionMatrix(t *testing.T) {
	m := newRejectionMatrix(t)
	for _, tc := range m.cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _, set := m.setup(t, tc)
			claims, rej := verifyString(v, tc.token, set, testNow)
			if tc.status == 0 {
				if rej != nil {
					t.Fatalf("rejected with %d %q, want accepted", rej.Status, rej.Reason)
				}
				if claims.Subject() != "user-123" {
					t.Fatalf("subject = %q", claims.Subject())
				}
				return
			}
			if rej == nil {
				t.Fatalf("accepted, want %d %q", tc.status, tc.reason)
			}
			if rej.Status != tc.status || rej.Reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q", rej.Status, rej.Reason, tc.status, tc.reason)
			}
		})
	}
}

// verifyString runs Parse and Verify as the handler does.
func verifyString(v *Verifier, raw string, keys *KeySet, now time.Time) (*Claims, *Rejection) {
	tok, rej := v.Parse(raw)
	if rej != nil {
		return nil, rej
	}
	return v.Verify(tok, keys, now)
}

func mustParse(t testing.TB, doc []byte) *KeySet {
	t.Helper()
	set, skipped, err := ParseKeyDocument(doc)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("ParseKeyDocument: %v (skipped %v)", err, skipped)
	}
	return set
}

func TestVerifyIssuerFromKeySet(t *testing.T) {
	k := newRSAKey(t, "k1", 0)
	set := mustParse(t, jwksJSON(t, k))
	set.Issuer = "https://op.test"
	v, err := NewVerifier(Policy{Algorithms: []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iss  any
		want bool
	}{{"https://op.test", true}, {"https://op.test/", false}, {nil, false}, {"https://other.test", false}} {
		_, rej := verifyString(v, sign(t, k, with(validClaims(), map[string]any{"iss": tc.iss}), nil), set, testNow)
		if (rej == nil) != tc.want {
			t.Errorf("iss %v: rejection %v, want accepted=%v", tc.iss, rej, tc.want)
		}
	}
}

func TestVerifyDuplicateKIDTriesEachKey(t *testing.T) {
	a, b := newRSAKey(t, "dup", 0), newRSAKey(t, "dup", 1)
	set := mustParse(t, jwksJSON(t, a, b))
	v, _ := NewVerifier(Policy{Algorithms: []string{"RS256"}})
	for _, k := range []testKey{a, b} {
		if _, rej := verifyString(v, sign(t, k, validClaims(), nil), set, testNow); rej != nil {
			t.Errorf("key %p: %v", k.priv, rej)
		}
	}
}

func TestNewVerifierRefusesSymmetricAndNone(t *testing.T) {
	for _, alg := range []string{"HS256", "HS512", "none", "", "RS1"} {
		if _, err := NewVerifier(Policy{Algorithms: []string{alg}}); err == nil {
			t.Errorf("NewVerifier(%q) accepted", alg)
		}
	}
}

// TestRejectForgedWorkBounded: each of BenchmarkRejectForged's tokens (the
// most expensive one can build without a private key) is refused for its
// signature, never after decoding its payload: refusing it allocates about
// as much as refusing the same header over a two-byte payload, whatever the
// 16 KiB payload holds. (The payload-first parser refused some of these as
// malformed after walking them, and allocated per nesting level.)
func TestRejectForgedWorkBounded(t *testing.T) {
	h, _, _ := oneKeyHandler(t, defaultCacheSize)
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	refuse := func(name, tok string) float64 {
		if _, _, rej := h.verify(r, tok); rej == nil || rej.Reason != ReasonSignature {
			t.Fatalf("%s: %v, want %q", name, rej, ReasonSignature)
		}
		return testing.AllocsPerRun(20, func() { h.verify(r, tok) })
	}
	for name, tok := range forgedTokens("k1") {
		parts := strings.Split(tok, ".")
		small := parts[0] + "." + b64u([]byte("{}")) + "." + parts[2]
		big, base := refuse(name, tok), refuse(name+" (small payload)", small)
		// Sixteen allocations of slack: under -race sync.Pool drops a
		// random share of what it is given, so counts wobble by several
		// (seen: 46 against 41); a payload-walking parser adds thousands.
		if big > base+16 || big > 80 {
			t.Errorf("%s: %.0f allocations to refuse, %.0f with a two-byte payload", name, big, base)
		}
	}
}
