package idtoken

import (
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// rfc7638N is the modulus of the example key in RFC 7638 section 3.1.
const rfc7638N = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"

// rfc7638Thumbprint is that key's thumbprint as the RFC gives it (section 3.1).
const rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

// thumbprintOf parses one JWK and builds a set from it, as a fetch does.
func thumbprintOf(t *testing.T, jwk string) string {
	t.Helper()
	set, _, err := ParseKeyDocument([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	return set.Only().Thumbprint()
}

func TestThumbprintPublishedExamples(t *testing.T) {
	// The RFC 7638 key with its leading zero octet restored: 0xd2 has its top bit set,
	// so some encoders write n as 00 d2 ...
	n, err := base64.RawURLEncoding.DecodeString(rfc7638N)
	if err != nil {
		t.Fatal(err)
	}
	zeroN := base64.RawURLEncoding.EncodeToString(append([]byte{0}, n...))
	tests := []struct {
		name string
		jwk  string
		want string
	}{
		{"RFC 7638 section 3.1",
			`{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`, rfc7638Thumbprint},
		{"RFC 7638 key, other kid, members reordered, no alg",
			`{"e":"AQAB","kid":"other","n":"` + rfc7638N + `","kty":"RSA","use":"sig"}`, rfc7638Thumbprint},
		{"RFC 7638 key, members in other case, padded",
			`{"KTY":"RSA","N":"` + rfc7638N + `=","E":"AQAB"}`, rfc7638Thumbprint},
		{"RFC 7638 key, leading zero octets in n and e",
			`{"kty":"RSA","n":"` + zeroN + `","e":"AAEAAQ"}`, rfc7638Thumbprint},
		{"RFC 8037 appendix A.3 (Ed25519)",
			`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := thumbprintOf(t, tc.jwk); got != tc.want {
				t.Fatalf("thumbprint = %s, want %s", got, tc.want)
			}
		})
	}
}

// canonicalThumbprint computes RFC 7638 from a JWK as the RFC describes it,
// independently of thumbprint: keep the required members, serialise them
// with sorted names and no white space (what encoding/json does for a
// map), hash with SHA-256.
func canonicalThumbprint(t *testing.T, jwk map[string]any, required ...string) string {
	t.Helper()
	members := map[string]any{}
	for _, name := range required {
		members[name] = jwk[name]
	}
	data, err := json.Marshal(members)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestThumbprintGeneratedKeys(t *testing.T) {
	tests := []struct {
		name     string
		key      testKey
		required []string
		kty, crv string
	}{
		{"RSA", newRSAKey(t, "r", 0), []string{"e", "kty", "n"}, "RSA", ""},
		{"P-256", newECKey(t, "p256", elliptic.P256(), "ES256"), []string{"crv", "kty", "x", "y"}, "EC", "P-256"},
		{"P-384", newECKey(t, "p384", elliptic.P384(), "ES384"), []string{"crv", "kty", "x", "y"}, "EC", "P-384"},
		{"P-521", newECKey(t, "p521", elliptic.P521(), "ES512"), []string{"crv", "kty", "x", "y"}, "EC", "P-521"},
		{"Ed25519", newEdKey(t, "ed"), []string{"crv", "kty", "x"}, "OKP", "Ed25519"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jwk := tc.key.jwk()
			set, _, err := ParseKeyDocument(jwksJSON(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			k := set.Only()
			want := canonicalThumbprint(t, jwk, tc.required...)
			if got := k.Thumbprint(); got != want {
				t.Fatalf("thumbprint = %s, want %s", got, want)
			}
			if len(want) != 43 || strings.ContainsAny(want, "+/=") {
				t.Fatalf("thumbprint %q is not unpadded base64url of 32 bytes", want)
			}
			if kty, crv := jwkType(k.Public); kty != tc.kty || crv != tc.crv {
				t.Fatalf("jwkType = %q, %q; want %q, %q", kty, crv, tc.kty, tc.crv)
			}
			if other, dup := seen[want]; dup {
				t.Fatalf("same thumbprint as %s", other)
			}
			seen[want] = tc.name
		})
	}
}

func TestThumbprintOfHandBuiltKey(t *testing.T) {
	k := Key{ID: "x", Public: newEdKey(t, "x").pub}
	if k.Thumbprint() != "" {
		t.Fatal("a Key not built by NewKeySet has a thumbprint")
	}
	if NewKeySet([]Key{k}).Only().Thumbprint() == "" {
		t.Fatal("NewKeySet did not compute the thumbprint")
	}
	if got := thumbprint("not a key"); got != "" {
		t.Fatalf("thumbprint of an unknown key type = %q, want empty", got)
	}
}
