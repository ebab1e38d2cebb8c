package idtoken

import "net/http"

// isPreflight reports whether r is a CORS preflight: OPTIONS with a
// non-empty Origin and Access-Control-Request-Method. Browsers never send
// credentials on one, so with pass_cors_preflight it passes on without a
// token, for Caddy's or the upstream's CORS handling to answer (Envoy's
// bypass_cors_preflight). Any other OPTIONS request is checked as usual.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}
