package idtoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxTokenLength bounds the work a client can ask for: longer tokens are
// rejected before any decoding.
const MaxTokenLength = 16 << 10

// maxKeysPerKID caps signature checks for one token when a set repeats a kid.
const maxKeysPerKID = 4

// supportedAlgs is the set of names in algorithms.
var supportedAlgs = func() map[string]bool {
	m := make(map[string]bool, len(algorithms))
	for alg := range algorithms {
		m[alg] = true
	}
	return m
}()

// Reasons a token is refused. They are shown to clients in
// error_description, so they never contain token or key material.
const (
	ReasonMissing      = "no token"
	ReasonTooLong      = "token too long"
	ReasonMalformed    = "malformed token"
	ReasonAlg          = "signing algorithm not allowed"
	ReasonCrit         = "critical header not supported"
	ReasonNoKID        = "token has no kid"
	ReasonUnknownKID   = "unknown signing key"
	ReasonKeyMismatch  = "signing key does not fit the algorithm"
	ReasonSignature    = "invalid signature"
	ReasonNoExp        = "token has no exp"
	ReasonExpired      = "token expired"
	ReasonNotYetValid  = "token not valid yet"
	ReasonIssuedFuture = "token issued in the future"
	ReasonIssuer       = "issuer not allowed"
	ReasonAudience     = "audience not allowed"
	ReasonAPIKey       = "apiKey does not match"
	ReasonRequire      = "required claim not satisfied"
	ReasonNoKeys       = "signing keys unavailable"
)

// Rejection says why a request is refused and with which HTTP status.
type Rejection struct {
	Status int
	Reason string
}

func (r *Rejection) Error() string { return r.Reason }

func unauthorized(reason string) *Rejection {
	return &Rejection{Status: http.StatusUnauthorized, Reason: reason}
}

// ClaimRequirement demands that a claim equal one of Values, or, when the
// claim is an array, contain one of them.
type ClaimRequirement struct {
	Claim  string   `json:"claim"`
	Values []string `json:"values"`
}

// Policy is what a valid token must show besides a good signature.
type Policy struct {
	// Algorithms allowed in the token header.
	Algorithms []string
	// Issuers allowed in iss. Empty: the key set's own issuer (OIDC
	// discovery) when it names one, else iss is not checked.
	Issuers []string
	// Audiences of which aud must contain at least one; empty: not checked.
	Audiences []string
	// Leeway tolerated on exp, nbf and iat.
	Leeway time.Duration
	// APIKey, when set, must equal the token's apiKey claim (Gigya).
	APIKey string
	// Require lists claim checks that must all hold (403 otherwise).
	Require []ClaimRequirement
}

// Verifier checks tokens against a policy. It does no I/O and keeps no
// state between calls, so one Verifier serves all requests concurrently.
type Verifier struct {
	policy  Policy
	allowed map[string]bool
}

// NewVerifier checks the policy's algorithms once.
func NewVerifier(p Policy) (*Verifier, error) {
	v := &Verifier{policy: p, allowed: make(map[string]bool, len(p.Algorithms))}
	for _, alg := range p.Algorithms {
		if !supportedAlgs[alg] {
			return nil, fmt.Errorf("unsupported algorithm %q", alg)
		}
		v.allowed[alg] = true
	}
	if len(v.allowed) == 0 {
		return nil, errors.New("no algorithm allowed")
	}
	return v, nil
}

// Token is a decoded but not yet verified token.
type Token struct {
	Alg, KID string
	signed   string // header.payload, the signing input
	sig      []byte
	claims   map[string]any
}

// Claim returns a top-level claim of the (possibly unverified) token, for logs.
func (t *Token) Claim(name string) string {
	s, _ := t.claims[name].(string)
	return s
}

// tokenHeader holds the JOSE header members this module acts on.
type tokenHeader struct {
	Alg  string          `json:"alg"`
	KID  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

var b64 = base64.RawURLEncoding.Strict()

// Parse decodes a compact JWS and applies every check that needs no key:
// size, shape, JSON, the algorithm allow-list and crit. Only the header
// members alg, kid and crit are read; jku, x5u, x5c and the like are ignored
// and never fetched. With a rejection, the token is nil, or holds only the
// decoded header (alg, kid) for logging.
func (v *Verifier) Parse(raw string) (*Token, *Rejection) {
	if len(raw) > MaxTokenLength {
		return nil, unauthorized(ReasonTooLong)
	}
	h, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, unauthorized(ReasonMalformed)
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") {
		return nil, unauthorized(ReasonMalformed)
	}
	hdrJSON, err := b64.DecodeString(h)
	if err != nil {
		return nil, unauthorized(ReasonMalformed)
	}
	var hdr tokenHeader
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil || !bytes.HasPrefix(bytes.TrimSpace(hdrJSON), []byte("{")) {
		return nil, unauthorized(ReasonMalformed)
	}
	tok := &Token{Alg: hdr.Alg, KID: hdr.KID}
	if !v.allowed[hdr.Alg] {
		return tok, unauthorized(ReasonAlg)
	}
	if hdr.Crit != nil {
		return tok, unauthorized(ReasonCrit)
	}
	sig, err := b64.DecodeString(s)
	if err != nil || len(sig) == 0 {
		return tok, unauthorized(ReasonMalformed)
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return tok, unauthorized(ReasonMalformed)
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return tok, unauthorized(ReasonMalformed)
	}
	tok.signed, tok.sig, tok.claims = raw[:len(h)+1+len(p)], sig, claims
	return tok, nil
}

// decodeClaims decodes a payload that must be exactly one JSON object.
// Numbers stay json.Number so they render without float rounding.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	if claims == nil {
		return nil, errors.New("payload is null")
	}
	// Only JSON whitespace may follow the object (dec.Token would report a
	// stray "}" as an error, not as data).
	if len(bytes.Trim(payload[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, errors.New("data after the payload object")
	}
	return claims, nil
}

// Verify checks t's signature against keys and its claims against the
// policy at time now. A rejection with ReasonUnknownKID means the set may be
// out of date; the caller decides whether to refetch and try again.
func (v *Verifier) Verify(t *Token, keys *KeySet, now time.Time) (*Claims, *Rejection) {
	key, rej := v.checkSignature(t, keys)
	if rej != nil {
		return nil, rej
	}
	if rej := v.checkClaims(t.claims, keys, now); rej != nil {
		return nil, rej
	}
	return newClaims(t.claims, key), nil
}

// checkSignature returns the key whose signature t carries.
func (v *Verifier) checkSignature(t *Token, keys *KeySet) (*Key, *Rejection) {
	var candidates []*Key
	if t.KID == "" {
		only := keys.Only()
		if only == nil {
			return nil, unauthorized(ReasonNoKID)
		}
		candidates = []*Key{only}
	} else {
		candidates = keys.Lookup(t.KID)
		if len(candidates) == 0 {
			return nil, unauthorized(ReasonUnknownKID)
		}
	}
	tried := 0
	for _, k := range candidates {
		if !k.fits(t.Alg) {
			continue
		}
		if tried++; tried > maxKeysPerKID {
			break
		}
		if k.verifies(t) {
			return k, nil
		}
	}
	if tried == 0 {
		return nil, unauthorized(ReasonKeyMismatch)
	}
	return nil, unauthorized(ReasonSignature)
}

func (v *Verifier) checkClaims(c map[string]any, keys *KeySet, now time.Time) *Rejection {
	p := &v.policy
	leeway := p.Leeway.Seconds()
	t := float64(now.UnixNano()) / 1e9

	exp, present, ok := numericDate(c, "exp")
	switch {
	case !ok:
		return unauthorized(ReasonMalformed)
	case !present:
		return unauthorized(ReasonNoExp)
	case t >= exp+leeway:
		return unauthorized(ReasonExpired)
	}
	if nbf, present, ok := numericDate(c, "nbf"); !ok {
		return unauthorized(ReasonMalformed)
	} else if present && t+leeway < nbf {
		return unauthorized(ReasonNotYetValid)
	}
	if iat, present, ok := numericDate(c, "iat"); !ok {
		return unauthorized(ReasonMalformed)
	} else if present && iat > t+leeway {
		return unauthorized(ReasonIssuedFuture)
	}

	issuers := p.Issuers
	if len(issuers) == 0 && keys.Issuer != "" {
		issuers = []string{keys.Issuer}
	}
	if len(issuers) > 0 {
		iss, _ := c["iss"].(string)
		if !slices.Contains(issuers, iss) {
			return unauthorized(ReasonIssuer)
		}
	}
	if len(p.Audiences) > 0 && !audienceMatches(c["aud"], p.Audiences) {
		return unauthorized(ReasonAudience)
	}
	if p.APIKey != "" {
		if k, _ := c["apiKey"].(string); k != p.APIKey {
			return unauthorized(ReasonAPIKey)
		}
	}
	for _, req := range p.Require {
		if !claimSatisfies(c[req.Claim], req.Values) {
			return &Rejection{Status: http.StatusForbidden, Reason: ReasonRequire}
		}
	}
	return nil
}

// numericDate reads a NumericDate claim (RFC 7519 section 2). ok is false
// when the claim is present but not a finite number.
func numericDate(c map[string]any, name string) (value float64, present, ok bool) {
	raw, present := c[name]
	if !present {
		return 0, false, true
	}
	n, isNum := raw.(json.Number)
	if !isNum {
		return 0, true, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, true, false
	}
	return f, true, true
}

// audienceMatches reports whether aud (a string or an array of strings)
// holds one of the allowed audiences.
func audienceMatches(aud any, allowed []string) bool {
	switch a := aud.(type) {
	case string:
		return slices.Contains(allowed, a)
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && slices.Contains(allowed, s) {
				return true
			}
		}
	}
	return false
}

// claimSatisfies reports whether a scalar claim equals one of values, or an
// array claim contains one. Numbers and booleans compare in their rendered
// form (1732400000, true); objects never match.
func claimSatisfies(claim any, values []string) bool {
	if arr, ok := claim.([]any); ok {
		for _, el := range arr {
			if s, ok := renderScalar(el); ok && slices.Contains(values, s) {
				return true
			}
		}
		return false
	}
	s, ok := renderScalar(claim)
	return ok && slices.Contains(values, s)
}
