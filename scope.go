package idtoken

import (
	"fmt"
	"strings"
)

// OAuth scopes. An access token names its scopes in "scope", a
// space-delimited string (RFC 8693 section 4.2, RFC 9068 section 2.2.3),
// or in "scp", an array of strings or a space-delimited string (Azure AD,
// Okta, KrakenD's scopes matcher); scope as an array is not read.
// require_scope lines each list scopes
// the token must all carry; a scope in either claim counts.

// hasScopes reports whether the token's scope and scp claims together
// carry every scope in want. Scopes compare exactly (case-sensitive), as
// RFC 6749 section 3.3 says.
func hasScopes(c map[string]any, want []string) bool {
	for _, w := range want {
		if !claimHasScope(c["scope"], w, false) && !claimHasScope(c["scp"], w, true) {
			return false
		}
	}
	return true
}

// claimHasScope reports whether a scope or scp claim value carries s: a
// string of scopes separated by spaces (U+0020 only, RFC 6749 section
// 3.3), or, for scp, an array whose elements are each one scope.
func claimHasScope(v any, s string, arrays bool) bool {
	switch v := v.(type) {
	case string:
		for f := range strings.SplitSeq(v, " ") {
			if f == s {
				return true
			}
		}
	case []any:
		if arrays {
			for _, e := range v {
				if e == any(s) {
					return true
				}
			}
		}
	}
	return false
}

// checkScope explains why s cannot be a required scope: RFC 6749's
// scope-token is printable ASCII without space, '"' and '\', which also
// keeps it safe inside the challenge's quoted scope="..." parameter.
func checkScope(s string) error {
	if s == "" || strings.ContainsFunc(s, func(c rune) bool { return c <= ' ' || c >= 0x7f || c == '"' || c == '\\' }) {
		return fmt.Errorf("require_scope: %q is not a scope (printable ASCII without spaces, '\"' or '\\')", s)
	}
	return nil
}
