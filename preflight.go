package idtoken

import (
	"net/http"
	"strings"
)

// isPreflight reports whether r is a CORS preflight as a browser sends one:
// OPTIONS, an Origin that is an origin (or "null"), an
// Access-Control-Request-Method that is a method name, and no body.
// Browsers never send credentials on one, so with pass_cors_preflight it
// passes on without a token, for Caddy's or the upstream's CORS handling to
// answer (Envoy's bypass_cors_preflight). Anything else, including an
// OPTIONS with a body, is checked as usual: an anonymous request must not
// be able to carry a payload to the application.
func isPreflight(r *http.Request) bool {
	if r.Method != http.MethodOptions || r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	origins, methods := r.Header.Values("Origin"), r.Header.Values("Access-Control-Request-Method")
	if len(origins) != 1 || len(methods) != 1 || !isMethodName(methods[0]) {
		return false
	}
	return origins[0] == "null" || normalizeOrigin(origins[0]) != ""
}

// isMethodName reports whether m is an RFC 9110 method (a token).
func isMethodName(m string) bool {
	return m != "" && !strings.ContainsFunc(m, func(c rune) bool {
		return c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c)
	})
}

// methodOverrides are headers some frameworks read as the request's real
// method; a preflight passed on anonymously must not carry one.
var methodOverrides = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// passPreflight readies a preflight to pass on anonymously: every token
// carrier is checked as on any request (a query another parser could read
// differently is still a 400) and removed, and so are method overrides.
func (h *Handler) passPreflight(r *http.Request) *Rejection {
	if _, rej := h.findToken(r); rej != nil {
		return rej
	}
	h.stripToken(r)
	for _, name := range methodOverrides {
		r.Header.Del(name)
	}
	return nil
}
