package idtoken

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	jsonv2 "github.com/go-json-experiment/json"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The session endpoint turns a verified id_token into an HttpOnly cookie, so
// a browser holds it where page scripts cannot read it. The token stays the
// credential: no server-side state, no new secret, nothing to replicate
// across a cluster. The cookie lives exactly as long as the token (Max-Age),
// and is read back as one more token source, checked on every request like
// any other carrier.

const (
	defaultSessionCookie = "id_token"
	// maxSessionBody bounds a POST to the session endpoint: a form or JSON
	// object holding one token and a return path.
	maxSessionBody = 32 << 10
	// maxCookieBytes is what browsers keep of one cookie (name, value and
	// attributes, RFC 6265 section 6.1); a longer one is dropped silently.
	maxCookieBytes = 4096
	logoutSuffix   = "/logout"
)

// sessionEndpoint is the provisioned session_* configuration.
type sessionEndpoint struct {
	path       string          // POST creates the cookie, DELETE clears it
	logoutPath string          // GET clears it and redirects: a plain link logs out
	cookie     string          // the cookie's name
	prefixed   bool            // a __Secure- or __Host- name: always Secure
	domain     string          // its Domain attribute; "" for host-only
	origins    map[string]bool // session_origins, normalized: also allowed to POST and DELETE
}

// newSessionEndpoint provisions the session_* fields Validate has checked;
// nil when session_path is not set.
func newSessionEndpoint(h *Handler) *sessionEndpoint {
	if h.SessionPath == "" {
		return nil
	}
	s := &sessionEndpoint{
		path:       h.SessionPath,
		logoutPath: strings.TrimSuffix(h.SessionPath, "/") + logoutSuffix,
		cookie:     h.SessionCookie,
		domain:     h.SessionDomain,
		origins:    make(map[string]bool, len(h.SessionOrigins)),
	}
	if s.cookie == "" {
		s.cookie = defaultSessionCookie
	}
	s.prefixed = hasPrefixFold(s.cookie, "__Secure-") || hasPrefixFold(s.cookie, "__Host-")
	for _, o := range h.SessionOrigins {
		origin, _ := parseOrigin(o)
		s.origins[origin] = true
	}
	return s
}

// owns reports whether the session endpoint answers r itself.
func (s *sessionEndpoint) owns(r *http.Request) bool {
	return s != nil && (r.URL.Path == s.path || r.URL.Path == s.logoutPath)
}

// serveSession answers a request for the session endpoint; it never passes
// one on. Failures are written as JSON for the login page's script.
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request) error {
	s := h.session
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == s.logoutPath {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return h.methodNotAllowed(w, "GET, HEAD")
		}
		s.clearCookie(w, r)
		h.counts.countPassed(outcomeAnonymous)
		back := r.URL.Query().Get("return")
		if !safeReturn(back) {
			back = "/"
		}
		w.Header().Set("Location", back)
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	switch r.Method {
	case http.MethodPost:
		if !h.sessionOriginAllowed(w, r) {
			return nil
		}
		h.createSession(w, r)
	case http.MethodDelete:
		if !h.sessionOriginAllowed(w, r) {
			return nil
		}
		s.clearCookie(w, r)
		h.counts.countPassed(outcomeAnonymous)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodOptions:
		if !s.answerPreflight(w, r) {
			return h.methodNotAllowed(w, "POST, DELETE")
		}
		h.counts.countPassed(outcomePreflight)
	default:
		return h.methodNotAllowed(w, "POST, DELETE")
	}
	return nil
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	h.refuseSession(w, http.StatusMethodNotAllowed, "method not allowed", reasonSessionRequest)
	return nil
}

// createSession verifies a posted token with the handler's full policy
// (optional does not apply) and sets it as the session cookie.
func (h *Handler) createSession(w http.ResponseWriter, r *http.Request) {
	token, back, status, why := readSessionPost(w, r)
	if why != "" {
		h.refuseSession(w, status, why, reasonSessionRequest)
		return
	}
	claims, tok, rej := h.verify(r, token)
	if rej == nil {
		// Verified, but the cookie must be one the browser keeps: alive
		// for at least a second (a token inside the leeway past exp would
		// make a cookie that dies at once) and within the size browsers keep.
		exp, _, _ := numericDate(claims.m, "exp")
		if maxAge := (exp - h.now().UnixNano()) / 1e9; maxAge < 1 {
			rej = unauthorized(ReasonExpired)
		} else if !h.session.coversHost(r.Host) {
			why := "session_domain " + h.session.domain + " does not cover this host: browsers would refuse the cookie"
			h.refuseSession(w, http.StatusBadRequest, why, reasonSessionRequest)
			return
		} else if cookie := h.session.cookieLine(token, maxAge, h.session.secure(r)); len(cookie) > maxCookieBytes {
			why := fmt.Sprintf("the token makes a %d-byte cookie; browsers keep at most %d bytes", len(cookie), maxCookieBytes)
			h.refuseSession(w, http.StatusBadRequest, why, reasonCookieTooLarge)
			return
		} else {
			w.Header().Add("Set-Cookie", cookie)
			h.counts.countPassed(outcomeAccepted)
			if c := h.logger.Check(zapcore.DebugLevel, "session cookie set"); c != nil {
				c.Write(zap.Any("sub", claims.sub), zap.Int64("max_age", maxAge))
			}
			if safeReturn(back) {
				w.Header().Set("Location", back)
				w.WriteHeader(http.StatusSeeOther)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	h.logRejection(tok, rej)
	h.counts.count(outcomeRejected, rej.Reason)
	h.setChallenge(w, r, rej)
	code := "invalid_token"
	switch rej.Status {
	case http.StatusForbidden:
		code = "insufficient_scope"
	case http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case http.StatusBadRequest:
		code = "invalid_request"
	}
	writeJSONError(w, rej.Status, code, rej.Reason)
}

// readSessionPost reads the token and return path of a session POST: a
// form or a JSON object, at most maxSessionBody bytes, each field once.
// A refusal has its status and a description.
func readSessionPost(w http.ResponseWriter, r *http.Request) (token, back string, status int, why string) {
	if r.ContentLength > maxSessionBody {
		return "", "", http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxSessionBody)
	}
	ctypes := r.Header.Values("Content-Type")
	var media string
	if len(ctypes) == 1 {
		media, _, _ = mime.ParseMediaType(ctypes[0])
	}
	if media != "application/x-www-form-urlencoded" && media != "application/json" {
		return "", "", http.StatusUnsupportedMediaType, "send application/x-www-form-urlencoded or application/json"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSessionBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return "", "", http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxSessionBody)
	case err != nil:
		return "", "", http.StatusBadRequest, "unreadable request body"
	}
	if media == "application/json" {
		// Strict: valid UTF-8, exact member names, no duplicates.
		var post struct {
			IDToken string `json:"id_token"`
			Return  string `json:"return"`
		}
		if err := jsonv2.Unmarshal(body, &post); err != nil {
			return "", "", http.StatusBadRequest, "unreadable JSON body"
		}
		token, back = post.IDToken, post.Return
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return "", "", http.StatusBadRequest, "unreadable form body"
		}
		if len(form["id_token"]) > 1 {
			return "", "", http.StatusBadRequest, ReasonManyTokens
		}
		if len(form["return"]) > 1 {
			return "", "", http.StatusBadRequest, "more than one return"
		}
		token, back = form.Get("id_token"), form.Get("return")
	}
	if token == "" {
		return "", "", http.StatusBadRequest, "no id_token in the request body"
	}
	return token, back, 0, ""
}

// sessionOriginAllowed refuses (403) a POST or DELETE that may come from
// another site: a forged login (CSRF) would put the attacker's token in
// the victim's browser. The Origin must be this site's own or one listed in
// session_origins, and a request the browser marks cross-site must come
// from a listed one. Browsers send Origin on every POST and DELETE, so a
// request without one is refused too.
func (h *Handler) sessionOriginAllowed(w http.ResponseWriter, r *http.Request) bool {
	s := h.session
	why := ""
	origins := r.Header.Values("Origin")
	switch {
	case len(origins) != 1 || normalizeOrigin(origins[0]) == "":
		why = "request without a usable Origin"
	case s.origins[normalizeOrigin(origins[0])]:
		w.Header().Add("Vary", "Origin")
		w.Header().Set("Access-Control-Allow-Origin", origins[0])
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		return true
	case !crossSiteAllowed(r):
		why = "cross-site request from an origin not in session_origins"
	case normalizeOrigin(origins[0]) != ownOrigin(r):
		why = "origin not allowed"
	default:
		return true
	}
	h.refuseSession(w, http.StatusForbidden, why, reasonSessionRequest)
	return false
}

// crossSiteAllowed is false when the browser says the request is
// cross-site (Sec-Fetch-Site), or says something unreadable.
func crossSiteAllowed(r *http.Request) bool {
	site := r.Header.Values("Sec-Fetch-Site")
	return len(site) == 0 || (len(site) == 1 && !strings.EqualFold(strings.TrimSpace(site[0]), "cross-site"))
}

// answerPreflight answers the CORS preflight of a listed origin's POST or
// DELETE, so a login page on another origin of the site can call the
// endpoint with fetch. It reports false for anything else.
func (s *sessionEndpoint) answerPreflight(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	if !s.origins[normalizeOrigin(origin)] || (method != http.MethodPost && method != http.MethodDelete) {
		return false
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Access-Control-Allow-Credentials", "true")
	hdr.Set("Access-Control-Allow-Methods", "POST, DELETE")
	hdr.Set("Access-Control-Allow-Headers", "Content-Type")
	hdr.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// cookieLine is the Set-Cookie value for token. The token is a verified
// compact JWS (base64url and dots), so it needs no quoting.
func (s *sessionEndpoint) cookieLine(token string, maxAge int64, secure bool) string {
	var b strings.Builder
	b.WriteString(s.cookie)
	b.WriteByte('=')
	b.WriteString(token)
	b.WriteString("; Path=/")
	if s.domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(s.domain)
	}
	b.WriteString("; Max-Age=")
	b.WriteString(strconv.FormatInt(maxAge, 10))
	b.WriteString("; HttpOnly")
	if secure {
		b.WriteString("; Secure")
	}
	b.WriteString("; SameSite=Lax")
	return b.String()
}

// clearCookie expires the session cookie, with the attributes it was set
// with (a cookie is only replaced by one of the same name, path and domain).
func (s *sessionEndpoint) clearCookie(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Set-Cookie", s.cookieLine("", 0, s.secure(r)))
}

// coversHost reports whether a browser would accept the cookie's Domain
// from hostport: the host is the domain or below it (RFC 6265 section
// 5.3, step 6).
func (s *sessionEndpoint) coversHost(hostport string) bool {
	if s.domain == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	domain := strings.ToLower(strings.TrimPrefix(s.domain, "."))
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// carries reports whether r holds a non-empty session cookie.
func (s *sessionEndpoint) carries(r *http.Request) bool {
	if s == nil {
		return false
	}
	var f found
	addCookie(&f, r, s.cookie)
	return f.present
}

// secure tells whether the cookie gets Secure. Only a plain-HTTP request
// to a loopback host goes without, so the offline demo works on
// http://localhost (browsers treat loopback as a secure context anyway).
// Anything that says HTTPS keeps it: TLS, a proxy's X-Forwarded-Proto (a
// proxy that rewrites Host to 127.0.0.1 must not cost the flag; believing
// an untrusted one here only ever adds it), an https Origin; and so does a
// __Secure- or __Host- name, which browsers drop without it.
func (s *sessionEndpoint) secure(r *http.Request) bool {
	return r.TLS != nil || !isLoopbackHost(r.Host) || s.prefixed ||
		strings.Contains(strings.ToLower(strings.Join(r.Header.Values("X-Forwarded-Proto"), ",")), "https") ||
		hasPrefixFold(r.Header.Get("Origin"), "https:")
}

func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// safeReturn reports whether back is a path on this site: it starts with
// one '/' (not "//" or "/\", which browsers read as another host), and
// holds no control characters (browsers drop tabs and newlines, which could
// turn "/\t/evil" into "//evil").
func safeReturn(back string) bool {
	return strings.HasPrefix(back, "/") && !strings.HasPrefix(back, "//") && !strings.HasPrefix(back, `/\`) &&
		!strings.ContainsFunc(back, func(c rune) bool { return c < ' ' || c == 0x7f })
}

// ownOrigin is the request's own origin, scheme://host[:port] as a browser
// writes it: the scheme of the connection (or X-Forwarded-Proto from a
// proxy listed in Caddy's trusted_proxies) and the Host header.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if trustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return normalizeOrigin(scheme + "://" + r.Host)
}

// trustedProxy reports whether Caddy found r to come from one of its
// trusted_proxies, whose X-Forwarded-* headers may be believed.
func trustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// normalizeOrigin lowercases an origin and drops its scheme's default port,
// as browsers serialize origins; "" when o is not an origin.
func normalizeOrigin(o string) string {
	origin, err := parseOrigin(o)
	if err != nil {
		return ""
	}
	return origin
}

// parseOrigin reads scheme://host[:port] with an http(s) scheme and
// nothing else (no path, query, fragment or user), normalized.
func parseOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not an origin: %v", o, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q is not an origin: want http:// or https://", o)
	case u.Host == "" || strings.HasSuffix(u.Host, ":") || u.User != nil || u.Opaque != "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(o, "?#"):
		return "", fmt.Errorf("%q is not an origin: want scheme://host[:port] and nothing more", o)
	case net.ParseIP(u.Hostname()) == nil && !isHostName(u.Hostname()):
		return "", fmt.Errorf("%q is not an origin: %q is not a host name", o, u.Hostname())
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q is not an origin: port %s is out of range", o, port)
		}
	}
	host := strings.ToLower(u.Host)
	if port := u.Port(); (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return u.Scheme + "://" + host, nil
}

// writeJSONError writes {"error": code, "error_description": why}.
func writeJSONError(w http.ResponseWriter, status int, code, why string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": why})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// refuseSession answers a session request refused apart from a token's
// verification: logged at debug level, counted under reason, and a JSON
// invalid_request error.
func (h *Handler) refuseSession(w http.ResponseWriter, status int, why, reason string) {
	if c := h.logger.Check(zapcore.DebugLevel, "session request refused"); c != nil {
		c.Write(zap.String("reason", why), zap.Int("status", status))
	}
	h.counts.count(outcomeRejected, reason)
	writeJSONError(w, status, "invalid_request", why)
}

// validateSession explains why the session_* settings cannot be used.
func (h *Handler) validateSession() error {
	if h.SessionPath == "" {
		switch {
		case h.SessionCookie != "":
			return errors.New("session_cookie needs session_path")
		case h.SessionDomain != "":
			return errors.New("session_domain needs session_path")
		case len(h.SessionOrigins) > 0:
			return errors.New("session_origins needs session_path")
		}
		return nil
	}
	if err := checkSessionPath(h.SessionPath); err != nil {
		return err
	}
	if err := checkCookieName(h.SessionCookie); h.SessionCookie != "" && err != nil {
		return err
	}
	if err := checkCookieDomain(h.SessionDomain); h.SessionDomain != "" && err != nil {
		return err
	}
	if err := checkHostPrefix(h.SessionCookie, h.SessionDomain); err != nil {
		return err
	}
	for _, o := range h.SessionOrigins {
		if _, err := parseOrigin(o); err != nil {
			return fmt.Errorf("session_origins: %w", err)
		}
	}
	return nil
}

// checkSessionPath wants an absolute path without query, fragment, white
// space or control characters: the endpoint matches it exactly.
func checkSessionPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//"):
		return fmt.Errorf("session_path: %q must be a path starting with a single /", p)
	case p == "/" || path.Clean(p) != strings.TrimSuffix(p, "/"):
		return fmt.Errorf("session_path: %q must be a clean path below / (no //, . or .. segments)", p)
	case strings.ContainsAny(p, "?#%") || strings.ContainsFunc(p, func(c rune) bool { return c <= ' ' || c == 0x7f }):
		return fmt.Errorf("session_path: %q must be a plain path (no query, fragment, escapes, spaces or control characters)", p)
	}
	return nil
}

// checkHostPrefix refuses a Domain on a __Host- cookie, which browsers
// (matching the prefix in any case) would drop.
func checkHostPrefix(name, domain string) error {
	if hasPrefixFold(name, "__Host-") && domain != "" {
		return errors.New("session_domain: a __Host- cookie must be host-only (browsers refuse it with a Domain)")
	}
	return nil
}

// checkCookieName wants an RFC 6265 cookie name (an RFC 7230 token).
func checkCookieName(name string) error {
	if name == "" || strings.ContainsFunc(name, func(c rune) bool {
		return c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c)
	}) {
		return fmt.Errorf("session_cookie: %q is not a cookie name (letters, digits and !#$%%&'*+-.^_`|~)", name)
	}
	return nil
}

// checkCookieDomain wants a host name (a leading dot, which browsers
// ignore, is allowed).
func checkCookieDomain(domain string) error {
	if !isHostName(strings.TrimPrefix(domain, ".")) {
		return fmt.Errorf("session_domain: %q is not a domain name", domain)
	}
	return nil
}

// isHostName reports whether s is a DNS name: dot-separated labels of
// letters, digits and '-'.
func isHostName(s string) bool {
	return s != "" && !strings.HasPrefix(s, ".") && !strings.HasSuffix(s, ".") && !strings.Contains(s, "..") &&
		!strings.ContainsFunc(s, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.')
		})
}
