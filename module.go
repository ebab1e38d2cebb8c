// Package idtoken is a Caddy HTTP handler that lets only requests carrying a
// valid id_token (a signed JWT) through, and exposes the verified claims as
// placeholders. Keys come from SAP Customer Data Cloud (Gigya), OpenID
// Connect discovery, a JWKS URL or a local JWKS file.
package idtoken

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler verifies the id_token of each request. Requests without a valid
// token are refused with 401 (403 when a `require` check fails, 503 while no
// signing key could be loaded); the error can be handled with handle_errors.
//
// After verification, `{http.auth.user.id}` holds the sub claim and
// `{http.auth.jwt.<claim>}` any claim (nested members with dots).
type Handler struct {
	// The single-issuer form: one key source and its issuer's checks at
	// the top level, one implicit trust. Mutually exclusive with Trusts.
	Trust
	// Several issuers: the token's iss chooses the one trust whose
	// allowed issuers contain it; only that trust's keys are tried.
	Trusts []Trust `json:"trust,omitempty"`

	// Clock skew tolerated on exp, nbf and iat. Default: 60s.
	Leeway *caddy.Duration `json:"leeway,omitempty"`
	// Claim checks that must all hold; a failure is 403.
	Require []ClaimRequirement `json:"require,omitempty"`
	// Scope lists: the token must carry every scope of each list, in its
	// scope or scp claim; a failure is 403 with the list in the challenge.
	RequireScope [][]string `json:"require_scope,omitempty"`
	// Refuse (401) tokens whose auth_time, or iat without one, is longer
	// ago than this, leeway applied. Default: no bound.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	// Where the token is read from. Every occurrence in every source is
	// read, and they must all be the same token (else 400). Default: the
	// Authorization header's Bearer token.
	TokenSources []TokenSource `json:"token_sources,omitempty"`
	// Let requests without any token through anonymously. A token that is
	// present but invalid is still refused.
	Optional bool `json:"optional,omitempty"`
	// Keep the token in the request passed on. Default: the header, cookie
	// or query parameter that carried it is removed, so the application
	// behind Caddy only ever sees verified claims (placeholders).
	ForwardToken bool `json:"forward_token,omitempty"`
	// Send browsers that open a page without a valid token (the 401
	// cases) to a login page; API clients keep the 401.
	LoginRedirect *LoginRedirect `json:"login_redirect,omitempty"`
	// Path of the session endpoint: a POST of a verified id_token there
	// sets it as an HttpOnly cookie, which is then read as one more token
	// source; DELETE, or GET <path>/logout, clears it. Default: none.
	SessionPath string `json:"session_path,omitempty"`
	// Name of the session cookie. Default: id_token.
	SessionCookie string `json:"session_cookie,omitempty"`
	// Domain attribute of the session cookie. Default: none (host-only).
	SessionDomain string `json:"session_domain,omitempty"`
	// Origins (scheme://host[:port]) besides the site's own that may POST
	// and DELETE the session endpoint.
	SessionOrigins []string `json:"session_origins,omitempty"`
	// Let CORS preflights (OPTIONS with Origin and
	// Access-Control-Request-Method) through without a token, so CORS
	// handling after this handler can answer them.
	PassCORSPreflight bool `json:"pass_cors_preflight,omitempty"`
	// Realm in WWW-Authenticate. Default: the request's host name.
	Realm string `json:"realm,omitempty"`

	// How many verified tokens to remember, so a token seen before skips
	// the signature check. Default: 10000; 0 turns the cache off.
	CacheSize *int `json:"cache_size,omitempty"`

	storage    certmagic.Storage         // nil: Caddy's configured storage
	trusts     []*trustedSource          // the single-issuer form's one, or one per trust block
	byIssuer   map[string]*trustedSource // with trust blocks: which trust an iss chooses
	redirector *loginRedirector          // nil: no login_redirect
	session    *sessionEndpoint          // nil: no session_path
	carriers   []TokenSource             // where tokens are read: sources() and the session cookie
	counts     *requestCounts            // the process's metrics counters
	cache      *tokenCache
	logger     *zap.Logger
	now        func() time.Time
}

// TokenSource names one place to read the token from; exactly one field is set.
type TokenSource struct {
	// Request header; a "Bearer " prefix is stripped.
	Header string `json:"header,omitempty"`
	// Cookie name.
	Cookie string `json:"cookie,omitempty"`
	// Query parameter name.
	Query string `json:"query,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.idtoken",
		New: func() caddy.Module { return new(Handler) },
	}
}

const defaultLeeway = 60 * time.Second

// Provision builds each trust's verifier and attaches its shared key set,
// starting its first fetch; it does not wait for the network.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	if err := h.Validate(); err != nil {
		return err
	}
	cacheSize := defaultCacheSize
	if h.CacheSize != nil {
		cacheSize = *h.CacheSize
	}
	policy := h.policyFor(&Trust{}) // the shared checks
	h.cache = newTokenCache(cacheSize, policy.Leeway, policy.MaxAge)
	h.redirector = newLoginRedirector(h.LoginRedirect)
	h.session = newSessionEndpoint(h)
	h.carriers = h.sources()
	if h.session != nil && !slices.Contains(h.carriers, TokenSource{Cookie: h.session.cookie}) {
		h.carriers = append(slices.Clip(h.carriers), TokenSource{Cookie: h.session.cookie})
	}
	if err := h.provisionTrusts(ctx); err != nil {
		return err
	}
	h.counts = acquireCounts()
	if err := registerMetrics(ctx.GetMetricsRegistry(), h.counts); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	return nil
}

// keySetLogger logs for shared key sets. They outlive the config that
// created them, so they log through Caddy's current default logger rather
// than one config's.
func keySetLogger() *zap.Logger { return caddy.Log().Named("http.handlers.idtoken") }

// Validate checks the configuration for mistakes that JSON configs can make
// (the Caddyfile parser reports the same ones with line numbers).
func (h *Handler) Validate() error {
	if err := h.validateTrusts(); err != nil {
		return fmt.Errorf("idtoken: %w", err)
	}
	if h.Leeway != nil && (*h.Leeway < 0 || time.Duration(*h.Leeway) > 10*time.Minute) {
		return errors.New("idtoken: leeway must be between 0 and 10m")
	}
	if h.CacheSize != nil && *h.CacheSize < 0 {
		return errors.New("idtoken: cache_size must not be negative")
	}
	for _, r := range h.Require {
		if r.Claim == "" || len(r.Values) == 0 {
			return errors.New("idtoken: require needs a claim and at least one value")
		}
	}
	for _, scopes := range h.RequireScope {
		if len(scopes) == 0 {
			return errors.New("idtoken: require_scope needs at least one scope")
		}
		for _, sc := range scopes {
			if err := checkScope(sc); err != nil {
				return fmt.Errorf("idtoken: %w", err)
			}
		}
	}
	if h.MaxAge < 0 {
		return errors.New("idtoken: max_age must not be negative")
	}
	if h.LoginRedirect != nil {
		if err := h.LoginRedirect.validate(); err != nil {
			return fmt.Errorf("idtoken: %w", err)
		}
	}
	if err := h.validateSession(); err != nil {
		return fmt.Errorf("idtoken: %w", err)
	}
	for _, ts := range h.TokenSources {
		n := 0
		for _, v := range []string{ts.Header, ts.Cookie, ts.Query} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return errors.New("idtoken: each token source names exactly one of header, cookie or query")
		}
	}
	return nil
}

// checkAlgorithm explains why an algorithm name cannot be allowed.
func checkAlgorithm(alg string) error {
	if supported(alg) {
		return nil
	}
	if strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS") {
		return fmt.Errorf("algorithm %q is not allowed: tokens must be signed with the issuer's private key", alg)
	}
	return fmt.Errorf("unsupported algorithm %q (supported: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA)", alg)
}

// Cleanup releases the shared key set and counters; the last user stops
// the key set.
func (h *Handler) Cleanup() error {
	if h.counts != nil {
		h.counts = nil
		releaseCounts()
	}
	return h.releaseTrusts()
}

// ServeHTTP verifies the request's token and passes the request on, or
// returns a caddyhttp.Error that handle_errors can render.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if h.session.owns(r) {
		return h.serveSession(w, r)
	}
	if h.PassCORSPreflight && isPreflight(r) {
		if rej := h.passPreflight(r); rej != nil {
			return h.reject(w, r, nil, rej)
		}
		setAuthPlaceholders(r, repl, nil)
		h.counts.countPassed(outcomePreflight)
		return next.ServeHTTP(w, r)
	}
	carried, rej := h.findToken(r)
	if rej != nil {
		return h.reject(w, r, nil, rej)
	}
	if !carried.present {
		if h.Optional {
			setAuthPlaceholders(r, repl, nil)
			h.counts.countPassed(outcomeAnonymous)
			return next.ServeHTTP(w, r)
		}
		return h.reject(w, r, nil, unauthorized(ReasonMissing))
	}
	claims, tok, rej := h.verify(r, carried.token)
	if rej != nil {
		return h.reject(w, r, tok, rej)
	}
	if !h.ForwardToken {
		h.stripToken(r)
	}
	setAuthPlaceholders(r, repl, claims)
	h.counts.countPassed(outcomeAccepted)
	return next.ServeHTTP(w, r)
}

// verify returns the claims of a valid token: from the cache when it was
// verified before and still holds, else by full verification against the
// trust the token chooses, asking the key flow for a refetch when no key
// has loaded yet or the kid is unknown. tok, when not nil, is the parsed
// token, for logging a rejection.
func (h *Handler) verify(r *http.Request, raw string) (*Claims, *Token, *Rejection) {
	now := h.now()
	if h.cache != nil {
		claims := h.cache.lookup(raw, now, h.keysOf)
		h.counts.countLookup(claims != nil)
		if claims != nil {
			return claims, nil, nil
		}
	}
	t, rej := h.chooseTrust(raw)
	if rej != nil {
		return nil, nil, rej
	}
	tok, rej := t.verifier.Parse(raw)
	if rej != nil {
		return nil, tok, rej
	}
	keys := t.keys.Current()
	if keys == nil {
		keys = t.keys.RefreshSince(r.Context(), nil) // the first fetch may still be running
	}
	// Verify answers 503 when there is still no key set, or none is left
	// after the refetch below (a stored set outgrew max_stale).
	claims, rej := t.verifier.Verify(tok, keys, now)
	if rej != nil && rej.Reason == ReasonUnknownKID {
		if fresh := t.keys.RefreshSince(r.Context(), keys); fresh != keys {
			keys = fresh
			claims, rej = t.verifier.Verify(tok, keys, now)
		}
	}
	if rej != nil {
		return nil, tok, rej
	}
	claims.trust = t.index
	h.cache.store(raw, claims, keys)
	return claims, tok, nil
}

// reject logs at debug level, then sends a browser navigation refused with
// 401 to the login page, or sets the RFC 6750 challenge and returns the
// error for Caddy's error handling.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, tok *Token, rej *Rejection) error {
	h.logRejection(tok, rej)
	if rej.Status == http.StatusUnauthorized && h.redirector.wants(w, r, h.logger) {
		if h.session.carries(r) {
			// The rejected token came from the session cookie (a request
			// holds one token): it is of no more use, and the login page
			// makes a new one.
			h.session.clearCookie(w, r)
		}
		h.redirector.send(w, h.returnPath(r))
		h.counts.count(outcomeRedirected, rej.Reason)
		return nil
	}
	h.counts.count(outcomeRejected, rej.Reason)
	h.setChallenge(w, r, rej)
	return caddyhttp.Error(rej.Status, rej)
}

// logRejection logs a refused token at debug level. Before a signature
// verified, only the token's header (alg, kid) is logged: the claims of a
// token nobody signed are the sender's words.
func (h *Handler) logRejection(tok *Token, rej *Rejection) {
	c := h.logger.Check(zapcore.DebugLevel, "request rejected")
	if c == nil {
		return
	}
	fields := []zap.Field{zap.String("reason", rej.Reason), zap.Int("status", rej.Status)}
	if tok != nil {
		fields = append(fields, zap.String("alg", clipForLog(tok.Alg)), kidField("kid", tok.KID))
		if tok.claims != nil {
			fields = append(fields, zap.String("iss", tok.Claim("iss")), zap.String("sub", tok.Claim("sub")))
		}
	}
	c.Write(fields...)
}

// setChallenge sets the RFC 6750 WWW-Authenticate challenge for rej (and
// Retry-After for a 503, which has no challenge).
func (h *Handler) setChallenge(w http.ResponseWriter, r *http.Request, rej *Rejection) {
	challenge := `Bearer realm="` + quote(h.realm(r)) + `"`
	switch {
	case rej.Status == http.StatusBadRequest:
		challenge += `, error="invalid_request", error_description="` + rej.Reason + `"`
	case rej.Status == http.StatusForbidden:
		challenge += `, error="insufficient_scope", error_description="` + rej.Reason + `"`
		if rej.Scope != "" { // RFC 6750 section 3: the scope the request needs
			challenge += `, scope="` + rej.Scope + `"`
		}
	case rej.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "10")
		return
	case rej.Reason != ReasonMissing:
		challenge += `, error="invalid_token", error_description="` + rej.Reason + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
}

// realm is the configured realm or the request's host name without port.
func (h *Handler) realm(r *http.Request) string {
	if h.Realm != "" {
		return h.Realm
	}
	if host, _, err := net.SplitHostPort(r.Host); err == nil {
		return host
	}
	return r.Host
}

// quote escapes a value for an RFC 7230 quoted-string.
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
