package idtoken

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// minRSABits is the smallest RSA modulus accepted in a key set (RFC 7518
// section 3.3 requires 2048 bits for RS*/PS*).
const minRSABits = 2048

// maxRSABits is the largest, as in crypto/tls: preparing a key and each
// verification cost grows with the square of its size, and a key set may
// come from a hostile issuer.
const maxRSABits = 8192

// Key is one usable public verification key from a key set.
type Key struct {
	ID     string           // kid; may be empty
	Alg    string           // the key's "alg" member; empty when the set did not say
	Public crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	rsa    *rsaVerifyKey    // Public prepared for RS256/384/512; set by NewKeySet
}

// verifies reports whether t's signature is valid under k. t.Alg must fit k.
func (k *Key) verifies(t *Token) bool { return k.verifySignature(t.Alg, t.signed, t.sig) }

// fits reports whether the key may verify a token signed with alg: the key
// type must suit the algorithm family (and the curve, for EC), and a key that
// names its algorithm may only be used with that one.
func (k *Key) fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return curveAlg[pub.Curve.Params().Name] == alg
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// curveAlg maps each supported curve to the one JWS algorithm that uses it.
var curveAlg = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

// KeySet is an immutable snapshot of an issuer's usable keys. It is swapped
// atomically as a whole and never modified after it is built, so request
// goroutines read it without locks.
type KeySet struct {
	keys   []Key
	byKID  map[string][]*Key
	Issuer string    // issuer named by the source (OIDC discovery); empty if none
	Loaded time.Time // when the document was fetched
	origin origin
	gen    uint64 // set by RefreshingKeySet: distinguishes its snapshots
}

// origin records where a set's document came from: for conditional
// refreshes and for persisting it.
type origin struct {
	url         string // the document's URL (for OIDC, the jwks_uri)
	validators  validators
	raw         []byte // the document as fetched
	fromStorage bool   // restored from storage rather than fetched
}

// NewKeySet builds a snapshot from a copy of keys, preparing RSA keys for
// verification.
func NewKeySet(keys []Key) *KeySet {
	s := &KeySet{keys: slices.Clone(keys), byKID: make(map[string][]*Key, len(keys))}
	for i := range s.keys {
		k := &s.keys[i]
		if pub, ok := k.Public.(*rsa.PublicKey); ok {
			k.rsa = newRSAVerifyKey(pub)
		}
		s.byKID[k.ID] = append(s.byKID[k.ID], k)
	}
	return s
}

// reconfirmed returns a copy of s that the issuer confirmed as current at
// (HTTP 304): same keys and generation, new age, no longer "from storage".
func (s *KeySet) reconfirmed(at time.Time) *KeySet {
	c := *s
	c.Loaded = at
	c.origin.fromStorage = false
	return &c
}

// Len is the number of usable keys.
func (s *KeySet) Len() int { return len(s.keys) }

// KIDs lists the key IDs, for logs.
func (s *KeySet) KIDs() []string {
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.ID
	}
	return ids
}

// Lookup returns the keys with the given kid (a set may repeat a kid, e.g.
// one RSA and one EC key). The result must not be modified.
func (s *KeySet) Lookup(kid string) []*Key { return s.byKID[kid] }

// Only returns the set's single key, or nil when it holds more or fewer.
// A token without kid may only be checked against an unambiguous set.
func (s *KeySet) Only() *Key {
	if len(s.keys) != 1 {
		return nil
	}
	return &s.keys[0]
}

// GigyaError is the error envelope accounts.getJWTPublicKey answers with
// (HTTP 200, errorCode != 0).
type GigyaError struct {
	Code    int64
	Message string
	Details string
	CallID  string
}

func (e *GigyaError) Error() string {
	msg := fmt.Sprintf("gigya errorCode %d: %s", e.Code, e.Message)
	if e.Details != "" {
		msg += " (" + e.Details + ")"
	}
	if e.CallID != "" {
		msg += " callId=" + e.CallID
	}
	return msg
}

// ParseKeyDocument reads a key document: a JWKS ({"keys": [...]}), a Gigya
// accounts.getJWTPublicKey answer (V2: keys inside the envelope; V1: one bare
// key at top level), or a single JWK. Member names are matched
// case-insensitively and unknown members are ignored. Keys that cannot be
// used are skipped and reported in skipped; a document without any usable key
// is an error, and so is a Gigya envelope whose errorCode is not 0.
func ParseKeyDocument(data []byte) (set *KeySet, skipped []error, err error) {
	doc, err := decodeObject(data)
	if err != nil {
		return nil, nil, fmt.Errorf("key document: %w", err)
	}
	if raw, ok := doc["errorcode"]; ok {
		if gerr := gigyaError(raw, doc); gerr != nil {
			return nil, nil, gerr
		}
	}
	var rawKeys []json.RawMessage
	if raw, ok := doc["keys"]; ok {
		if err := json.Unmarshal(raw, &rawKeys); err != nil {
			return nil, nil, fmt.Errorf("key document: \"keys\" is not an array: %w", err)
		}
	} else if _, ok := doc["kty"]; ok {
		rawKeys = []json.RawMessage{data}
	} else {
		return nil, nil, errors.New("key document: no \"keys\" array and no bare key")
	}

	keys := make([]Key, 0, len(rawKeys))
	for i, raw := range rawKeys {
		k, err := parseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("key document: no usable key among %d", len(rawKeys))
	}
	return NewKeySet(keys), skipped, nil
}

// gigyaError turns a non-zero errorCode into a *GigyaError.
func gigyaError(rawCode json.RawMessage, doc map[string]json.RawMessage) error {
	var code json.Number
	if err := json.Unmarshal(rawCode, &code); err != nil {
		return fmt.Errorf("gigya answer: errorCode is not a number: %w", err)
	}
	n, err := code.Int64()
	if err != nil {
		return fmt.Errorf("gigya answer: errorCode %q is not an integer", code)
	}
	if n == 0 {
		return nil
	}
	return &GigyaError{
		Code:    n,
		Message: stringMember(doc, "errormessage"),
		Details: stringMember(doc, "errordetails"),
		CallID:  stringMember(doc, "callid"),
	}
}

// decodeObject decodes a JSON object into its members with lower-cased names.
// Two members whose names differ only in case make the object ambiguous.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if raw == nil {
		return nil, errors.New("not a JSON object: null")
	}
	members := make(map[string]json.RawMessage, len(raw))
	for name, v := range raw {
		lower := strings.ToLower(name)
		if _, dup := members[lower]; dup {
			return nil, fmt.Errorf("member %q appears twice with different case", lower)
		}
		members[lower] = v
	}
	return members, nil
}

// stringMember returns a string member, or "" if absent or not a string.
func stringMember(obj map[string]json.RawMessage, name string) string {
	var s string
	if raw, ok := obj[name]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// parseJWK turns one JWK (RFC 7517) into a Key, or explains why it cannot be used.
func parseJWK(data []byte) (Key, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return Key{}, err
	}
	// A member of the wrong type makes the key ambiguous: skip it rather
	// than read it as absent (a non-string alg must not lift the alg limit).
	for _, name := range []string{"kid", "alg", "use", "kty", "crv", "n", "e", "x", "y"} {
		if raw, ok := obj[name]; ok && (len(raw) == 0 || raw[0] != '"') {
			return Key{}, fmt.Errorf("member %q is not a string", name)
		}
	}
	k := Key{ID: stringMember(obj, "kid"), Alg: stringMember(obj, "alg")}
	if use := stringMember(obj, "use"); use != "" && use != "sig" {
		return k, fmt.Errorf("kid %q: use %q is not \"sig\"", k.ID, use)
	}
	if raw, ok := obj["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil || !slices.Contains(ops, "verify") {
			return k, fmt.Errorf("kid %q: key_ops %s does not allow \"verify\"", k.ID, raw)
		}
	}
	if k.Alg != "" && !supportedAlgs[k.Alg] {
		return k, fmt.Errorf("kid %q: unsupported alg %q", k.ID, k.Alg)
	}
	switch kty := stringMember(obj, "kty"); kty {
	case "RSA":
		k.Public, err = rsaKey(obj)
	case "EC":
		k.Public, err = ecKey(obj)
	case "OKP":
		k.Public, err = okpKey(obj)
	default:
		err = fmt.Errorf("unsupported kty %q", kty)
	}
	if err != nil {
		return k, fmt.Errorf("kid %q: %w", k.ID, err)
	}
	if k.Alg != "" && !k.fits(k.Alg) {
		return k, fmt.Errorf("kid %q: alg %q does not suit the key type", k.ID, k.Alg)
	}
	return k, nil
}

func rsaKey(obj map[string]json.RawMessage) (*rsa.PublicKey, error) {
	n, err := b64Member(obj, "n")
	if err != nil {
		return nil, err
	}
	e, err := b64Member(obj, "e")
	if err != nil {
		return nil, err
	}
	e = bytes.TrimLeft(e, "\x00")
	if len(e) == 0 || len(e) > 4 {
		return nil, errors.New("RSA exponent out of range")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("RSA exponent %d is not usable", exp)
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits is under %d", bits, minRSABits)
	} else if bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits is over %d", bits, maxRSABits)
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

func ecKey(obj map[string]json.RawMessage) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch crv := stringMember(obj, "crv"); crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported EC crv %q", crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := b64Member(obj, "x")
	if err != nil {
		return nil, err
	}
	y, err := b64Member(obj, "y")
	if err != nil {
		return nil, err
	}
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("EC coordinates must be %d bytes", size)
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pub, nil
}

func okpKey(obj map[string]json.RawMessage) (ed25519.PublicKey, error) {
	if crv := stringMember(obj, "crv"); crv != "Ed25519" {
		return nil, fmt.Errorf("unsupported OKP crv %q", crv)
	}
	x, err := b64Member(obj, "x")
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("Ed25519 key must be %d bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// b64Member decodes a base64url member. Padding is tolerated: some issuers add it.
func b64Member(obj map[string]json.RawMessage, name string) ([]byte, error) {
	s := strings.TrimRight(stringMember(obj, name), "=")
	if s == "" {
		return nil, fmt.Errorf("member %q missing or empty", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %q: %w", name, err)
	}
	return b, nil
}
