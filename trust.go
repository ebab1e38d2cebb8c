package idtoken

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// Trust is one issuer a route accepts: exactly one key source, and the
// checks that belong to that issuer. The single-issuer form puts one at
// the top level of the handler; several go in trust blocks, and the
// token's iss chooses among them.
type Trust struct {
	// Gigya / SAP Customer Data Cloud site API key. Keys come from
	// accounts.getJWTPublicKey; tokens must carry a matching apiKey claim.
	APIKey string `json:"api_key,omitempty"`
	// Gigya data center: us1 (default), eu1, au1, eu2, ru1, global, cn1; an
	// API domain (cn1.gigya-api.cn); or an http(s) base URL used as-is.
	DataCenter string `json:"data_center,omitempty"`
	// OpenID Connect issuer URL; keys are found through its discovery document.
	OIDCIssuer string `json:"oidc_issuer,omitempty"`
	// URL of a JWKS document.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Path of a local JWKS document.
	JWKSFile string `json:"jwks_file,omitempty"`

	// Allowed iss values. Default: the Gigya issuers for api_key, or the
	// issuer from OIDC discovery; no check for jwks_url and jwks_file.
	Issuer []string `json:"issuer,omitempty"`
	// The token's aud must contain one of these. Default: not checked.
	Audience []string `json:"audience,omitempty"`
	// Allowed signing algorithms. Default: ["RS256"]. HMAC and none are never allowed.
	Algorithms []string `json:"algorithms,omitempty"`
	// Background refresh period. Default: 1h, or the key document's
	// Cache-Control max-age clamped to [1m, 24h].
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`
	// Least time between fetches caused by unknown kids. Default: 10s.
	MinRefreshInterval caddy.Duration `json:"min_refresh_interval,omitempty"`
	// How old a key set saved in Caddy's storage may be and still be used
	// when the issuer is unreachable at start. Default: 7d; 0 turns
	// persistence off.
	MaxStale *caddy.Duration `json:"max_stale,omitempty"`

	// RFC 7638 SHA-256 thumbprints (base64url) of the only keys to use;
	// other keys in the issuer's documents are skipped. Default: any key.
	KeyThumbprints []string `json:"key_thumbprints,omitempty"`
}

// trustedSource is a provisioned Trust: its verifier and shared key set.
type trustedSource struct {
	index    int // in the trust blocks; 0 for the single-issuer form
	verifier *Verifier
	keys     *RefreshingKeySet
	keyCfg   keySetConfig
}

// isZero reports whether no field of t is set.
func (t *Trust) isZero() bool {
	return t.APIKey == "" && t.DataCenter == "" && t.OIDCIssuer == "" && t.JWKSURL == "" && t.JWKSFile == "" &&
		len(t.Issuer) == 0 && len(t.Audience) == 0 && len(t.Algorithms) == 0 && t.RefreshInterval == 0 &&
		t.MinRefreshInterval == 0 && t.MaxStale == nil && len(t.KeyThumbprints) == 0
}

// validate explains what is wrong with t; several is true in a trust
// block, where the issuer must be known without a fetch.
func (t *Trust) validate(several bool) error {
	sources := givenNames(map[string]string{"api_key": t.APIKey, "oidc_issuer": t.OIDCIssuer, "jwks_url": t.JWKSURL, "jwks_file": t.JWKSFile})
	switch {
	case len(sources) == 0:
		return errors.New("one key source is required: api_key, oidc_issuer, jwks_url or jwks_file")
	case len(sources) > 1:
		return fmt.Errorf("only one key source may be set, got %s", strings.Join(sources, " and "))
	}
	if t.DataCenter != "" && t.APIKey == "" {
		return errors.New("data_center needs api_key")
	}
	if t.APIKey != "" {
		if _, err := gigyaBaseURL(t.DataCenter); err != nil {
			return err
		}
	}
	for _, u := range []string{t.OIDCIssuer, t.JWKSURL} {
		if u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return fmt.Errorf("%q is not an http(s) URL", u)
		}
	}
	if slices.Contains(t.Issuer, "") || slices.Contains(t.Audience, "") {
		return errors.New("issuer and audience values must not be empty")
	}
	if several && (t.JWKSURL != "" || t.JWKSFile != "") && len(t.Issuer) == 0 {
		return errors.New("a trust with jwks_url or jwks_file needs issuer: the token's iss chooses the trust")
	}
	for _, alg := range t.Algorithms {
		if err := checkAlgorithm(alg); err != nil {
			return err
		}
	}
	if t.RefreshInterval < 0 || t.MinRefreshInterval < 0 || (t.MaxStale != nil && *t.MaxStale < 0) {
		return errors.New("refresh_interval, min_refresh_interval and max_stale must not be negative")
	}
	for _, tp := range t.KeyThumbprints {
		if err := checkThumbprint(tp); err != nil {
			return fmt.Errorf("key_thumbprints: %w", err)
		}
	}
	return nil
}

// givenNames are the names whose values are set, sorted: which of several
// mutually exclusive settings were given.
func givenNames(values map[string]string) []string {
	var names []string
	for name, v := range values {
		if v != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// issuers are the iss values that choose t: issuer, else the Gigya
// issuers of its API key, else its OIDC issuer (which discovery must
// confirm; compared without a trailing slash, as discovery compares it).
func (t *Trust) issuers() []string {
	switch {
	case len(t.Issuer) > 0:
		return t.Issuer
	case t.APIKey != "":
		return gigyaIssuers(t.APIKey)
	case t.OIDCIssuer != "":
		iss := strings.TrimRight(t.OIDCIssuer, "/")
		return []string{iss, iss + "/"}
	}
	return nil
}

// keySetConfig names t's shared key set.
func (t *Trust) keySetConfig() (keySetConfig, error) {
	cfg := keySetConfig{
		refreshInterval: time.Duration(t.RefreshInterval),
		minRefresh:      time.Duration(t.MinRefreshInterval),
		maxStale:        defaultMaxStale,
		pins:            pinSet(t.KeyThumbprints),
	}
	if cfg.minRefresh == 0 {
		cfg.minRefresh = defaultMinRefreshInterval
	}
	if t.MaxStale != nil {
		cfg.maxStale = time.Duration(*t.MaxStale)
	}
	switch {
	case t.APIKey != "":
		u, err := gigyaKeyURL(t.APIKey, t.DataCenter)
		if err != nil {
			return cfg, err
		}
		cfg.kind, cfg.location = "gigya", u
	case t.OIDCIssuer != "":
		cfg.kind, cfg.location = "oidc", t.OIDCIssuer
	case t.JWKSURL != "":
		cfg.kind, cfg.location = "jwks_url", t.JWKSURL
	default:
		cfg.kind, cfg.location = "jwks_file", t.JWKSFile
		cfg.maxStale = 0 // a local file is its own storage
	}
	return cfg, nil
}

// policyFor is the verification policy of trust t: its own issuer checks
// with the handler's shared ones (leeway, require, scopes, max_age).
func (h *Handler) policyFor(t *Trust) Policy {
	p := Policy{
		Algorithms: t.Algorithms,
		Issuers:    t.Issuer,
		Audiences:  t.Audience,
		Leeway:     defaultLeeway,
		APIKey:     t.APIKey,
		Require:    h.Require,

		RequireScope: h.RequireScope,
		MaxAge:       time.Duration(h.MaxAge),
	}
	if len(p.Algorithms) == 0 {
		p.Algorithms = []string{"RS256"}
	}
	if h.Leeway != nil {
		p.Leeway = time.Duration(*h.Leeway)
	}
	if t.APIKey != "" && len(p.Issuers) == 0 {
		p.Issuers = gigyaIssuers(t.APIKey)
	}
	return p
}

// policy is the single-issuer form's policy (its keySetConfig is the
// embedded Trust's).
func (h *Handler) policy() Policy { return h.policyFor(&h.Trust) }

// trustConfigs are the configured trusts: the blocks, or the top level.
func (h *Handler) trustConfigs() []Trust {
	if len(h.Trusts) > 0 {
		return h.Trusts
	}
	return []Trust{h.Trust}
}

// validateTrusts checks the single-issuer form or the trust blocks, and
// that no two trusts could accept the same iss.
func (h *Handler) validateTrusts() error {
	if len(h.Trusts) == 0 {
		return h.Trust.validate(false)
	}
	if !h.Trust.isZero() {
		return errors.New("a key source or issuer setting at the top level cannot be combined with trust blocks: move it into a trust block")
	}
	owner := map[string]int{}
	for i := range h.Trusts {
		if err := h.Trusts[i].validate(true); err != nil {
			return fmt.Errorf("trust %d: %w", i, err)
		}
		for _, iss := range h.Trusts[i].issuers() {
			if j, taken := owner[iss]; taken && j != i {
				return fmt.Errorf("trust %d and trust %d both accept iss %q: the token's iss must choose one trust", j, i, iss)
			}
			owner[iss] = i
		}
	}
	return nil
}

// provisionTrusts builds each trust's verifier and attaches its shared key
// set, starting its first fetch.
func (h *Handler) provisionTrusts(ctx caddy.Context) error {
	configs := h.trustConfigs()
	if len(h.Trusts) > 0 {
		h.byIssuer = make(map[string]*trustedSource)
	}
	for i := range configs {
		t := &configs[i]
		v, err := NewVerifier(h.policyFor(t))
		if err != nil {
			return err
		}
		cfg, err := t.keySetConfig()
		if err != nil {
			return err
		}
		var storage certmagic.Storage
		if cfg.maxStale > 0 {
			if storage = h.storage; storage == nil {
				storage = ctx.Storage()
			}
		}
		keys, err := acquireKeySet(cfg, keySetLogger, storage)
		if err != nil {
			return fmt.Errorf("loading key set: %w", err)
		}
		ts := &trustedSource{index: i, verifier: v, keys: keys, keyCfg: cfg}
		h.trusts = append(h.trusts, ts)
		if h.byIssuer != nil {
			for _, iss := range t.issuers() {
				h.byIssuer[iss] = ts
			}
		}
	}
	return nil
}

// releaseTrusts drops the handler's key sets; the last user stops each.
func (h *Handler) releaseTrusts() error {
	var errs []error
	for _, t := range h.trusts {
		errs = append(errs, releaseKeySet(t.keyCfg))
	}
	h.trusts = nil
	return errors.Join(errs...)
}

// chooseTrust finds the trust that verifies raw. With one trust, it is
// that one; with several, the token's iss, read before any signature
// check only to choose, must name one (else 401 "issuer not allowed", with
// no fetch and no signature check).
func (h *Handler) chooseTrust(raw string) (*trustedSource, *Rejection) {
	if h.byIssuer == nil {
		return h.trusts[0], nil
	}
	iss, rej := peekIssuer(raw)
	if rej != nil {
		return nil, rej
	}
	t := h.byIssuer[iss]
	if t == nil {
		return nil, unauthorized(ReasonIssuer)
	}
	return t, nil
}

// keysOf is the current key set of trust i, for the cache.
func (h *Handler) keysOf(i int) *KeySet { return h.trusts[i].keys.Current() }
