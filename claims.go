package idtoken

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// authVar is the request variable holding this request's requestAuth, so
// that a second idtoken handler on the same request updates the placeholders
// instead of stacking another provider behind the first.
const authVar = "idtoken.auth"

// requestAuth resolves http.auth.* placeholders from the verified claims
// when a placeholder is asked for (see Claims.placeholder).
type requestAuth struct {
	claims *Claims // nil: passed on anonymously
}

func (a *requestAuth) replace(key string) (any, bool) {
	rest, ok := strings.CutPrefix(key, "http.auth.")
	if !ok {
		return nil, false
	}
	if a.claims == nil {
		return "", true // anonymous: every http.auth.* placeholder is empty
	}
	if name, ok := strings.CutPrefix(rest, "jwt."); ok {
		return a.claims.placeholder(name), true
	}
	switch rest {
	case "user.id":
		return a.claims.sub, true
	case "idtoken.trust":
		return a.claims.trust, true // which trust block verified the token
	}
	return nil, false
}

// setAuthPlaceholders publishes claims (nil for an anonymous request) to the
// request's placeholders.
func setAuthPlaceholders(r *http.Request, repl *caddy.Replacer, claims *Claims) {
	a, _ := caddyhttp.GetVar(r.Context(), authVar).(*requestAuth)
	if a == nil {
		a = &requestAuth{}
		caddyhttp.SetVar(r.Context(), authVar, a)
		repl.Map(a.replace)
	}
	a.claims = claims
	var sub any = ""
	if claims != nil {
		sub = claims.sub
	}
	// Set statically too: it overrides a user.id set earlier in the chain,
	// and Caddy's access log reads it for user_id.
	repl.Set("http.auth.user.id", sub)
}

// Claims are the verified claims of a token. A token that goes into the
// cache has its placeholder values rendered (and boxed for the replacer)
// once, so hits cost no rendering; others render on demand.
type Claims struct {
	m        map[string]any
	rendered map[string]any // top-level name -> rendered string; nil until prerender
	sub      any            // the sub claim as a string
	key      *Key           // the key that verified the signature
	trust    int            // index of the trust that verified it
	size     int            // estimated heap bytes of m (and of rendered, once made)
}

// newClaims wraps a verified claims tree; size is decodePayload's estimate
// of its heap use.
func newClaims(m map[string]any, key *Key, size int) *Claims {
	sub, _ := m["sub"].(string)
	return &Claims{m: m, sub: sub, key: key, size: size}
}

// prerender renders every top-level claim and adds the rendered strings to
// c.size. It must run before c is shared between requests (it writes c).
func (c *Claims) prerender() {
	c.rendered = make(map[string]any, len(c.m))
	c.size += objectCost
	for name, v := range c.m {
		r := Render(v)
		c.rendered[name] = r
		c.size += memberCost + valueCost + len(r)
	}
}

// Subject is the sub claim, or "" when it is absent or not a string.
func (c *Claims) Subject() string { return c.sub.(string) }

// placeholder returns the rendered value of a claim name or dotted path,
// and "" for a claim the token does not have.
func (c *Claims) placeholder(name string) any {
	if v, ok := c.rendered[name]; ok {
		return v
	}
	if v, ok := lookupPath(c.m, name); ok {
		return Render(v)
	}
	return ""
}

// lookupPath finds a claim by name. A claim whose own name contains dots
// (Gigya sends "data.userKey" flat) matches exactly first; otherwise the name
// is a path into nested objects ("address.country").
func lookupPath(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		if inner, ok := m[name[:i]].(map[string]any); ok {
			if v, ok := lookupPath(inner, name[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// Render formats a claim value for a placeholder: strings as-is, numbers in
// plain decimal, booleans as true/false, arrays of scalars joined with ",",
// other arrays and objects as compact JSON, null as "".
func Render(v any) string {
	if s, ok := renderScalar(v); ok {
		return s
	}
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, el := range x {
			s, ok := renderScalar(el)
			if !ok {
				return compactJSON(v)
			}
			parts[i] = s
		}
		return strings.Join(parts, ",")
	}
	return compactJSON(v)
}

// renderScalar renders strings, numbers and booleans; ok is false for
// anything else.
func renderScalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return plainNumber(x), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// plainNumber writes a JSON number without an exponent: 1.7324e+09 becomes
// 1732400000. The literal is already exact decimal, so this only moves digits.
func plainNumber(n json.Number) string {
	s := string(n)
	e := strings.IndexAny(s, "eE")
	if e < 0 {
		return s
	}
	mant, expPart := s[:e], s[e+1:]
	exp := 0
	neg := false
	switch {
	case strings.HasPrefix(expPart, "-"):
		neg, expPart = true, expPart[1:]
	case strings.HasPrefix(expPart, "+"):
		expPart = expPart[1:]
	}
	for _, c := range expPart {
		exp = exp*10 + int(c-'0')
		if exp > 400 { // beyond float64; keep the literal rather than print 400 zeros
			return s
		}
	}
	if neg {
		exp = -exp
	}
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + exp // position of the decimal point within digits
	switch {
	case point <= 0:
		digits = strings.Repeat("0", 1-point) + digits
		point = 1
	case point > len(digits):
		digits += strings.Repeat("0", point-len(digits))
	}
	whole := strings.TrimLeft(digits[:point], "0")
	if whole == "" {
		whole = "0"
	}
	fraction := strings.TrimRight(digits[point:], "0")
	if fraction == "" {
		return sign + whole
	}
	return sign + whole + "." + fraction
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
