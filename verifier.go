package idtoken

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
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

// supported reports whether this module can verify alg.
func supported(alg string) bool {
	_, ok := algorithms[alg]
	return ok
}

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
	ReasonScope        = "required scope missing"
	ReasonTooOld       = "token too old"
	ReasonNoKeys       = "signing keys unavailable"
	ReasonManyTokens   = "more than one token"
	ReasonBadQuery     = "unreadable query string"
)

// Rejection says why a request is refused and with which HTTP status.
type Rejection struct {
	Status int
	Reason string
	Scope  string // ReasonScope: the scopes of the require_scope line that failed
}

func (r *Rejection) Error() string { return r.Reason }

func unauthorized(reason string) *Rejection {
	return &Rejection{Status: http.StatusUnauthorized, Reason: reason}
}

func badRequest(reason string) *Rejection {
	return &Rejection{Status: http.StatusBadRequest, Reason: reason}
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
	// RequireScope lists scope sets the token must each carry all of, in
	// scope or scp (403 otherwise).
	RequireScope [][]string
	// MaxAge bounds the time since auth_time (or iat without it); 0: no bound.
	MaxAge time.Duration
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
		if !supported(alg) {
			return nil, fmt.Errorf("unsupported algorithm %q", alg)
		}
		v.allowed[alg] = true
	}
	if len(v.allowed) == 0 {
		return nil, errors.New("no algorithm allowed")
	}
	return v, nil
}

// Token is a compact JWS whose header has been decoded and checked; its
// payload is decoded only once the signature verifies.
type Token struct {
	Alg, KID string
	signed   string // header.payload, the signing input
	payload  string // the base64url payload part
	sig      []byte
	claims   map[string]any // set by Verify once the signature verified
}

// Claim returns a top-level string claim of a token whose signature
// verified, for logs; "" before that: the claims of a token nobody signed
// are the sender's words.
func (t *Token) Claim(name string) string {
	s, _ := t.claims[name].(string)
	return s
}

// Parse applies every check that needs no key, in order: length, alphabet
// and shape, header decoding, the algorithm allow-list and crit. Only the
// header members alg, kid and crit are acted on; jku, x5u, x5c and the like
// are ignored and never fetched. The payload is not decoded here. With a
// rejection, the token is nil, or holds only the header (alg, kid) for
// logging.
func (v *Verifier) Parse(raw string) (*Token, *Rejection) {
	if len(raw) > MaxTokenLength {
		return nil, unauthorized(ReasonTooLong)
	}
	h, p, s, ok := splitCompact(raw)
	if !ok || len(h) > maxHeaderLength {
		return nil, unauthorized(ReasonMalformed)
	}
	hdrJSON, err := b64.DecodeString(h)
	if err != nil {
		return nil, unauthorized(ReasonMalformed)
	}
	hdr, err := decodeHeader(hdrJSON)
	if err != nil {
		return nil, unauthorized(ReasonMalformed)
	}
	tok := &Token{Alg: hdr.alg, KID: hdr.kid}
	if !v.allowed[hdr.alg] {
		return tok, unauthorized(ReasonAlg)
	}
	if hdr.crit {
		return tok, unauthorized(ReasonCrit)
	}
	sig, err := b64.DecodeString(s)
	if err != nil || len(sig) == 0 {
		return tok, unauthorized(ReasonMalformed)
	}
	tok.signed, tok.payload, tok.sig = raw[:len(h)+1+len(p)], p, sig
	return tok, nil
}

// Verify checks t's signature against keys, then decodes the payload and
// checks the claims against the policy at time now. A rejection with
// ReasonUnknownKID means the set may be out of date; the caller decides
// whether to refetch and try again. A nil key set is ReasonNoKeys.
func (v *Verifier) Verify(t *Token, keys *KeySet, now time.Time) (*Claims, *Rejection) {
	if keys == nil {
		return nil, &Rejection{Status: http.StatusServiceUnavailable, Reason: ReasonNoKeys}
	}
	key, rej := v.checkSignature(t, keys)
	if rej != nil {
		return nil, rej
	}
	payload, err := b64.DecodeString(t.payload)
	if err != nil {
		return nil, unauthorized(ReasonMalformed)
	}
	claims, size, err := decodePayload(payload)
	if err != nil {
		return nil, unauthorized(ReasonMalformed)
	}
	t.claims = claims
	if rej := v.checkClaims(claims, keys, now); rej != nil {
		return nil, rej
	}
	return newClaims(claims, key, size), nil
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
	// Whole nanoseconds compared with exact ceilings of the claims: the
	// same verdict as comparing the decimal literals themselves.
	t, leeway := now.UnixNano(), p.Leeway.Nanoseconds()

	exp, present, ok := numericDate(c, "exp")
	switch {
	case !ok:
		return unauthorized(ReasonMalformed)
	case !present:
		return unauthorized(ReasonNoExp)
	case t-leeway >= exp:
		return unauthorized(ReasonExpired)
	}
	if nbf, present, ok := numericDate(c, "nbf"); !ok {
		return unauthorized(ReasonMalformed)
	} else if present && t+leeway < nbf {
		return unauthorized(ReasonNotYetValid)
	}
	if iat, present, ok := numericDate(c, "iat"); !ok {
		return unauthorized(ReasonMalformed)
	} else if present && t+leeway < iat {
		return unauthorized(ReasonIssuedFuture)
	}
	if p.MaxAge > 0 {
		if rej := checkAge(c, t, leeway, p.MaxAge); rej != nil {
			return rej
		}
	}

	issuers := p.Issuers
	if len(issuers) == 0 && keys.Issuer != "" {
		issuers = []string{keys.Issuer}
	}
	iss, isString := c["iss"].(string)
	if _, present := c["iss"]; present && !isString {
		return unauthorized(ReasonMalformed) // RFC 7519 section 4.1.1: a string
	}
	if len(issuers) > 0 {
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
		// The same lookup as the placeholders: exact name, then a dotted path.
		claim, _ := lookupPath(c, req.Claim)
		if !claimSatisfies(claim, req.Values) {
			return &Rejection{Status: http.StatusForbidden, Reason: ReasonRequire}
		}
	}
	for _, scopes := range p.RequireScope {
		if !hasScopes(c, scopes) {
			return &Rejection{Status: http.StatusForbidden, Reason: ReasonScope, Scope: strings.Join(scopes, " ")}
		}
	}
	return nil
}

// checkAge refuses a token whose login (auth_time, or iat when there is
// none) is more than maxAge before t, the clock, leeway applied. A token
// with neither claim cannot show its age, so it is refused too, and so is
// a login in the future, which would never grow old.
func checkAge(c map[string]any, t, leeway int64, maxAge time.Duration) *Rejection {
	start, ok := ageStart(c)
	switch {
	case !ok:
		return unauthorized(ReasonMalformed)
	case start == nil:
		return unauthorized(ReasonTooOld)
	case *start > satAdd(t, leeway):
		return unauthorized(ReasonIssuedFuture)
	case satAdd(*start, maxAge.Nanoseconds()) < t-leeway:
		return unauthorized(ReasonTooOld)
	}
	return nil
}

// ageStart is the instant a token's age counts from: auth_time, else iat;
// nil when it has neither. ok is false for a claim that is not a number.
func ageStart(c map[string]any) (start *int64, ok bool) {
	for _, name := range []string{"auth_time", "iat"} {
		ns, present, ok := numericDate(c, name)
		if !ok {
			return nil, false
		}
		if present {
			return &ns, true
		}
	}
	return nil, true
}

// numericDate reads a NumericDate claim (RFC 7519 section 2) as the
// smallest whole nanosecond since the epoch that is not before it. The
// decimal literal is converted exactly, never through a float, so for a
// clock of whole nanoseconds n, "n >= claim" and "n >= ceiling" agree.
// Values beyond the int64 range saturate. ok is false when the claim is
// present but not a number, or its exponent is beyond float64's range.
func numericDate(c map[string]any, name string) (ns int64, present, ok bool) {
	raw, present := c[name]
	if !present {
		return 0, false, true
	}
	n, isNum := raw.(json.Number)
	if !isNum {
		return 0, true, false
	}
	ns, ok = ceilNanos(string(n))
	return ns, true, ok
}

// ceilNanos is ceil(lit * 1e9) for a JSON number literal, saturated to the
// int64 range.
func ceilNanos(lit string) (int64, bool) {
	if sec, err := strconv.ParseInt(lit, 10, 64); err == nil {
		switch {
		case sec > math.MaxInt64/int64(time.Second):
			return math.MaxInt64, true
		case sec < math.MinInt64/int64(time.Second):
			return math.MinInt64, true
		}
		return sec * 1e9, true
	}
	// Fractions and exponents: exact rational arithmetic, with the exponent
	// bounded first (big.Rat would otherwise compute 10^e for any e).
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(lit[i+1:])
		if err != nil || e > 308 || e < -400 {
			return 0, false
		}
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return 0, false
	}
	r.Mul(r, big.NewRat(1e9, 1))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 { // truncated toward zero: round a positive value up
		q.Add(q, big.NewInt(1))
	}
	switch {
	case q.IsInt64():
		return q.Int64(), true
	case q.Sign() > 0:
		return math.MaxInt64, true
	}
	return math.MinInt64, true
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
