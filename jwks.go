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
	"strconv"
	"strings"
	"time"

	"filippo.io/edwards25519"
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
	thumb  string           // RFC 7638 thumbprint of Public; set by NewKeySet
	pos    int              // position in its document's key list, for a SkippedKey when pinning drops it
}

// Thumbprint is the key's RFC 7638 SHA-256 JWK thumbprint (base64url, no
// padding), computed once when its set was built; "" for a Key that did not
// come from NewKeySet.
func (k *Key) Thumbprint() string { return k.thumb }

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
// verification and computing each key's thumbprint.
func NewKeySet(keys []Key) *KeySet {
	s := &KeySet{keys: slices.Clone(keys), byKID: make(map[string][]*Key, len(keys))}
	for i := range s.keys {
		k := &s.keys[i]
		if pub, ok := k.Public.(*rsa.PublicKey); ok {
			k.rsa = newRSAVerifyKey(pub)
		}
		k.thumb = thumbprint(k.Public)
		s.byKID[k.ID] = append(s.byKID[k.ID], k)
	}
	return s
}

// subset returns a set of the keys keep accepts, in order, with s's
// issuer, age and origin (not its generation: a RefreshingKeySet stamps the
// sets it publishes). The keys keep the RSA form and thumbprint NewKeySet
// prepared: filtering a large document does not redo that work.
func (s *KeySet) subset(keep func(*Key) bool) *KeySet {
	c := &KeySet{Issuer: s.Issuer, Loaded: s.Loaded, origin: s.origin}
	for i := range s.keys {
		if keep(&s.keys[i]) {
			c.keys = append(c.keys, s.keys[i])
		}
	}
	c.byKID = make(map[string][]*Key, len(c.keys))
	for i := range c.keys {
		k := &c.keys[i]
		c.byKID[k.ID] = append(c.byKID[k.ID], k)
	}
	return c
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

// maxGigyaText bounds errorMessage and errorDetails as kept and logged;
// Gigya's own are a sentence or two.
const maxGigyaText = 256

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
// used are skipped and summarised in skipped; a document without any usable
// key is an error, and so is a Gigya envelope whose errorCode is not 0.
func ParseKeyDocument(data []byte) (set *KeySet, skipped SkippedKeys, err error) {
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
			skipped.add(SkippedKey{Index: i, KID: k.ID, Reason: skipReason(err), Err: err})
			continue
		}
		k.pos = i
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("key document: no usable key among %d", len(rawKeys))
	}
	return NewKeySet(keys), skipped, nil
}

// Reasons a key is skipped: short fixed slugs, so that logs can count them
// (SkippedKey.Err says exactly what is wrong).
const (
	skipNotObject         = "not an object"          // not a JSON object, or a member repeated in another case
	skipMemberType        = "member not a string"    // kid, alg, use, kty, crv, n, e, x or y of another JSON type
	skipUse               = "use not sig"            // use present and not "sig"
	skipKeyOps            = "key_ops without verify" // key_ops present and not allowing "verify"
	skipAlg               = "unsupported alg"        // alg not one this module verifies (HS256, none, ...)
	skipKty               = "unsupported kty"        // kty not RSA, EC or OKP (oct: HMAC secrets)
	skipCrv               = "unsupported crv"        // EC crv not P-256/384/521, OKP crv not Ed25519
	skipMember            = "bad member"             // n, e, x or y missing, empty or not base64url
	skipRSAExponent       = "rsa exponent"           // e over 4 bytes, even, or under 3
	skipRSASize           = "rsa size"               // modulus under 2048 or over 8192 bits
	skipECPoint           = "ec point"               // coordinates of the wrong size, or a point off the curve
	skipEd25519Size       = "ed25519 size"           // x not 32 bytes
	skipEd25519Point      = "ed25519 point"          // x does not decode to a point on the curve
	skipEd25519SmallOrder = "ed25519 small order"    // a point of order 1, 2, 4 or 8: anyone can sign for it
	skipAlgMismatch       = "alg does not fit"       // alg names an algorithm the key type cannot do
	skipNotPinned         = "not pinned"             // usable, but its thumbprint is not in key_thumbprints (pinning.go)
	skipUnclassified      = "unusable"               // never expected: an error without a reason
)

// SkippedKey is one unusable key of a key document.
type SkippedKey struct {
	Index  int    // position in the document's key list
	KID    string // as the document wrote it, "" when absent or not a string; log it cut (clipForLog)
	Reason string // one of the skip* slugs above, e.g. "unsupported kty"
	Err    error  // what exactly is wrong; quotes no kid and at most 64 bytes of any value
	// Thumbprint is the key's RFC 7638 thumbprint when the key itself was
	// usable (skipped for not being pinned), so an operator can tell which
	// key to pin; "" for a key that could not be read.
	Thumbprint string
}

func (k SkippedKey) String() string {
	if k.Thumbprint != "" {
		return fmt.Sprintf("key %d (kid %q, thumbprint %s): %v", k.Index, clipForLog(k.KID), k.Thumbprint, k.Err)
	}
	return fmt.Sprintf("key %d (kid %q): %v", k.Index, clipForLog(k.KID), k.Err)
}

// maxSkipExamples is how many skipped keys a SkippedKeys keeps in full.
const maxSkipExamples = 5

// SkippedKeys summarises a document's unusable keys: one group per reason,
// in the order the reasons first appear. Its size does not grow with the
// document: a 1 MiB document of bad keys yields counts and the first
// maxSkipExamples keys, not an error value per key.
type SkippedKeys []SkipGroup

// SkipGroup counts the keys skipped for one reason.
type SkipGroup struct {
	Reason   string
	Count    int
	Examples []SkippedKey // the first of them, maxSkipExamples across all groups
}

// Total is the number of skipped keys.
func (s SkippedKeys) Total() int {
	n := 0
	for _, g := range s {
		n += g.Count
	}
	return n
}

// add counts k, keeping it as an example while fewer than maxSkipExamples are kept.
func (s *SkippedKeys) add(k SkippedKey) {
	kept, at := 0, -1
	for i, g := range *s {
		kept += len(g.Examples)
		if g.Reason == k.Reason {
			at = i
		}
	}
	if at < 0 {
		*s = append(*s, SkipGroup{Reason: k.Reason})
		at = len(*s) - 1
	}
	g := &(*s)[at]
	g.Count++
	if kept < maxSkipExamples {
		g.Examples = append(g.Examples, k)
	}
}

// unusableKey is why parseJWK refused a key: a skip* reason for counting
// and the detail for people.
type unusableKey struct {
	reason string
	err    error
}

func (e *unusableKey) Error() string { return e.err.Error() }
func (e *unusableKey) Unwrap() error { return e.err }

// unusable is an unusableKey for reason, its detail formatted like fmt.Errorf.
func unusable(reason, format string, args ...any) error {
	return &unusableKey{reason: reason, err: fmt.Errorf(format, args...)}
}

// skipReason is the reason slug carried by err.
func skipReason(err error) string {
	var u *unusableKey
	if errors.As(err, &u) {
		return u.reason
	}
	return skipUnclassified
}

// quoted quotes a value a key document chose, cut like a kid: an error
// about a key must not carry a megabyte of it into the log.
func quoted(s string) string { return strconv.Quote(clipForLog(s)) }

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
	// The texts go into a warning on every failed fetch: a hostile answer
	// (up to 1 MiB) must not become a megabyte of log.
	return &GigyaError{
		Code:    n,
		Message: clip(stringMember(doc, "errormessage"), maxGigyaText),
		Details: clip(stringMember(doc, "errordetails"), maxGigyaText),
		CallID:  clipForLog(stringMember(doc, "callid")),
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
			return nil, fmt.Errorf("member %s appears twice with different case", quoted(lower))
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

// parseJWK turns one JWK (RFC 7517) into a Key, or explains why it cannot be
// used with an *unusableKey. The returned Key carries the kid even then.
func parseJWK(data []byte) (Key, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return Key{}, &unusableKey{reason: skipNotObject, err: err}
	}
	k := Key{ID: stringMember(obj, "kid"), Alg: stringMember(obj, "alg")}
	// A member of the wrong type makes the key ambiguous: skip it rather
	// than read it as absent (a non-string alg must not lift the alg limit).
	for _, name := range []string{"kid", "alg", "use", "kty", "crv", "n", "e", "x", "y"} {
		if raw, ok := obj[name]; ok && (len(raw) == 0 || raw[0] != '"') {
			return k, unusable(skipMemberType, "member %q is not a string", name)
		}
	}
	if use := stringMember(obj, "use"); use != "" && use != "sig" {
		return k, unusable(skipUse, "use %s is not \"sig\"", quoted(use))
	}
	if raw, ok := obj["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil || !slices.Contains(ops, "verify") {
			return k, unusable(skipKeyOps, "key_ops %s does not allow \"verify\"", clipForLog(string(raw)))
		}
	}
	if k.Alg != "" && !supported(k.Alg) {
		return k, unusable(skipAlg, "unsupported alg %s", quoted(k.Alg))
	}
	switch kty := stringMember(obj, "kty"); kty {
	case "RSA":
		k.Public, err = rsaKey(obj)
	case "EC":
		k.Public, err = ecKey(obj)
	case "OKP":
		k.Public, err = okpKey(obj)
	default:
		err = unusable(skipKty, "unsupported kty %s", quoted(kty))
	}
	if err != nil {
		return k, err
	}
	if k.Alg != "" && !k.fits(k.Alg) {
		return k, unusable(skipAlgMismatch, "alg %q does not suit the key type", k.Alg)
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
		return nil, unusable(skipRSAExponent, "RSA exponent out of range")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, unusable(skipRSAExponent, "RSA exponent %d is not usable", exp)
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < minRSABits {
		return nil, unusable(skipRSASize, "RSA modulus of %d bits is under %d", bits, minRSABits)
	} else if bits > maxRSABits {
		return nil, unusable(skipRSASize, "RSA modulus of %d bits is over %d", bits, maxRSABits)
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
		return nil, unusable(skipCrv, "unsupported EC crv %s", quoted(crv))
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
		return nil, unusable(skipECPoint, "EC coordinates must be %d bytes", size)
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, unusable(skipECPoint, "EC point: %w", err)
	}
	return pub, nil
}

func okpKey(obj map[string]json.RawMessage) (ed25519.PublicKey, error) {
	if crv := stringMember(obj, "crv"); crv != "Ed25519" {
		return nil, unusable(skipCrv, "unsupported OKP crv %s", quoted(crv))
	}
	x, err := b64Member(obj, "x")
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, unusable(skipEd25519Size, "Ed25519 key must be %d bytes", ed25519.PublicKeySize)
	}
	// SetBytes accepts non-canonical encodings (y >= p, x = 0 with the sign
	// bit set), as crypto/ed25519 does when it verifies, so every encoding
	// of a small-order point is caught here.
	point, err := new(edwards25519.Point).SetBytes(x)
	if err != nil {
		return nil, unusable(skipEd25519Point, "Ed25519 key is not a point on the curve")
	}
	// A point of small order (the identity and seven others) makes [k]A
	// vanish or cycle: with the identity, R = identity and S = 0 is a valid
	// signature of every message. Multiplying by the cofactor 8 sends
	// exactly those points to the identity.
	if new(edwards25519.Point).MultByCofactor(point).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, unusable(skipEd25519SmallOrder, "Ed25519 key is a point of small order")
	}
	return ed25519.PublicKey(x), nil
}

// b64Member decodes a base64url member. Padding is tolerated: some issuers add it.
func b64Member(obj map[string]json.RawMessage, name string) ([]byte, error) {
	s := strings.TrimRight(stringMember(obj, name), "=")
	if s == "" {
		return nil, unusable(skipMember, "member %q missing or empty", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, unusable(skipMember, "member %q: %w", name, err)
	}
	return b, nil
}
