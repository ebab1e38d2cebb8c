package idtoken

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("idtoken", parseCaddyfile)
	// Right after basic_auth: authentication runs before request_header,
	// reverse_proxy, file_server and respond, with no order line needed.
	httpcaddyfile.RegisterDirectiveOrder("idtoken", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	idtoken [<matcher>] {
//	    api_key      <gigya_api_key>
//	    data_center  <name|domain|url>
//	    oidc_issuer  <issuer_url>
//	    jwks_url     <url>
//	    jwks_file    <path>
//	    issuer       <iss>...
//	    audience     <aud>...
//	    algorithms   <alg>...
//	    leeway       <duration>
//	    require      <claim> <value>...
//	    require_scope <scope>...
//	    max_age      <duration>
//	    from_header  <name>
//	    from_cookie  <name>
//	    from_query   <name>
//	    optional
//	    forward_token
//	    login_redirect <url> [<param>]
//	    session_path   <path>
//	    session_cookie <name>
//	    session_domain <domain>
//	    session_origins <origin>...
//	    pass_cors_preflight
//	    realm        <realm>
//	    refresh_interval     <duration>
//	    min_refresh_interval <duration>
//	    max_stale            <duration>
//	    key_thumbprints      <thumbprint>...
//	    trust {
//	        <key source, issuer, audience, algorithms, refresh_interval,
//	         min_refresh_interval, max_stale, key_thumbprints>
//	    }
//	    cache_size           <n>
//	}
//
// Every mistake is reported at the line of the subdirective that makes it,
// so the checks Validate makes for JSON configs are made here too, as each
// subdirective is read; only a block without a key source is reported at
// the idtoken line. Validate runs last as a backstop.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	directiveLine := *d // for errors about the block as a whole
	// Likewise session_cookie, session_domain and session_origins need a
	// session_path that may come later; the first of them is kept.
	var sessionLine *caddyfile.Dispenser
	sessionSetting := func() {
		if sessionLine == nil {
			at := *d
			sessionLine = &at
		}
	}
	top := trustParser{t: &h.Trust}
	var trustLines []caddyfile.Dispenser // where each trust block starts
	given := map[string]bool{}           // single-valued subdirectives seen
	for d.NextBlock(0) {
		sub := d.Val()
		switch sub {
		case "login_redirect", "session_path", "session_cookie", "session_domain", "max_age":
			if given[sub] {
				return d.Errf("%s: given twice", sub)
			}
			given[sub] = true
		}
		var err error
		switch sub {
		case "trust":
			at := *d
			var t Trust
			if err = parseTrustBlock(d, &t); err == nil {
				h.Trusts = append(h.Trusts, t)
				trustLines = append(trustLines, at)
			}
		case "leeway":
			if err = optionalDurationArg(d, &h.Leeway); err == nil && time.Duration(*h.Leeway) > maxLeeway {
				err = d.Errf("leeway: must be between 0 and 10m, got %v", time.Duration(*h.Leeway))
			}
		case "require":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("require: want <claim> <value> [<value>...]")
			}
			if args[0] == "" {
				return d.Errf("require: the claim name must not be empty")
			}
			h.Require = append(h.Require, ClaimRequirement{Claim: args[0], Values: args[1:]})
		case "require_scope":
			var scopes []string
			if err = someArgs(d, &scopes); err == nil {
				for _, sc := range scopes {
					if err = argCheck(d, checkScope(sc)); err != nil {
						break
					}
				}
				h.RequireScope = append(h.RequireScope, scopes)
			}
		case "max_age":
			if err = durationArg(d, &h.MaxAge); err == nil && h.MaxAge == 0 {
				err = d.Err("max_age: must be longer than 0 (leave it out for no bound)")
			}
		case "from_header", "from_cookie", "from_query":
			var name string
			if err = oneArg(d, &name); err == nil {
				if name == "" {
					return d.Errf("%s: the name must not be empty", sub)
				}
				h.TokenSources = append(h.TokenSources, tokenSource(sub, name))
			}
		case "optional":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Optional = true
		case "forward_token":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ForwardToken = true
		case "login_redirect":
			args := d.RemainingArgs()
			if len(args) == 0 || len(args) > 2 {
				return d.Errf("login_redirect: want <url> [<param>]")
			}
			h.LoginRedirect = &LoginRedirect{URL: args[0]}
			if len(args) == 2 {
				h.LoginRedirect.Param = args[1]
			}
			if verr := h.LoginRedirect.validate(); verr != nil {
				return d.Err(verr.Error())
			}
		case "session_path":
			if err = oneArg(d, &h.SessionPath); err == nil {
				err = argCheck(d, checkSessionPath(h.SessionPath))
			}
		case "session_cookie":
			sessionSetting()
			if err = oneArg(d, &h.SessionCookie); err == nil {
				err = argCheck(d, checkCookieName(h.SessionCookie))
			}
			if err == nil {
				err = argCheck(d, checkHostPrefix(h.SessionCookie, h.SessionDomain))
			}
		case "session_domain":
			sessionSetting()
			if err = oneArg(d, &h.SessionDomain); err == nil {
				err = argCheck(d, checkCookieDomain(h.SessionDomain))
			}
			if err == nil {
				err = argCheck(d, checkHostPrefix(h.SessionCookie, h.SessionDomain))
			}
		case "session_origins":
			sessionSetting()
			if err = someArgs(d, &h.SessionOrigins); err == nil {
				for _, o := range h.SessionOrigins {
					if _, oerr := parseOrigin(o); oerr != nil {
						err = d.Errf("session_origins: %v", oerr)
						break
					}
				}
			}
		case "pass_cors_preflight":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.PassCORSPreflight = true
		case "realm":
			err = oneArg(d, &h.Realm)
		case "cache_size":
			var n string
			if err = oneArg(d, &n); err == nil {
				size, perr := strconv.Atoi(n)
				if perr != nil || size < 0 {
					return d.Errf("cache_size: %q is not a count of tokens", n)
				}
				h.CacheSize = &size
			}
		default:
			var handled bool
			if handled, err = top.parse(d, sub); !handled {
				return d.Errf("unrecognized idtoken subdirective %q", sub)
			}
		}
		if err != nil {
			return err
		}
	}
	if err := top.finish(); err != nil {
		return err
	}
	if len(h.Trusts) > 0 && top.first != nil {
		return top.first.Errf("%s: the key source and its issuer settings go into the trust blocks when there are any", top.first.Val())
	}
	if err := h.validateTrusts(); err != nil && len(h.Trusts) > 1 {
		// Only the overlap of two trusts is left to find (each block was
		// checked as it was read): reported at the later block's line.
		return trustLines[len(trustLines)-1].Err(err.Error())
	}
	if sessionLine != nil && h.SessionPath == "" {
		return sessionLine.Errf("%s needs session_path: it configures the session endpoint", sessionLine.Val())
	}
	if err := h.Validate(); err != nil {
		return directiveLine.Err(err.Error())
	}
	return nil
}

// argCheck reports err, a check of the current subdirective's argument, at
// its line.
func argCheck(d *caddyfile.Dispenser, err error) error {
	if err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// trustParser reads the subdirectives of one trust, at the top level or
// in a trust block, and keeps what can only be judged once the block is
// read.
type trustParser struct {
	t      *Trust
	source string               // the key source subdirective seen
	dc     *caddyfile.Dispenser // where data_center is: api_key may come after it
	first  *caddyfile.Dispenser // the first trust subdirective, for "not with trust blocks"
}

// parse reads sub when it is a trust subdirective; handled is false when
// it is not one.
func (p *trustParser) parse(d *caddyfile.Dispenser, sub string) (handled bool, err error) {
	t, at := p.t, *d
	switch sub {
	case "api_key":
		err = p.setSource(d, sub, &t.APIKey)
	case "oidc_issuer":
		if err = p.setSource(d, sub, &t.OIDCIssuer); err == nil {
			err = httpURLArg(d, sub, t.OIDCIssuer)
		}
	case "jwks_url":
		if err = p.setSource(d, sub, &t.JWKSURL); err == nil {
			err = httpURLArg(d, sub, t.JWKSURL)
		}
	case "jwks_file":
		err = p.setSource(d, sub, &t.JWKSFile)
	case "data_center":
		p.dc = &at
		if err = oneArg(d, &t.DataCenter); err == nil {
			if _, berr := gigyaBaseURL(t.DataCenter); berr != nil {
				err = d.Errf("data_center: %v", berr)
			}
		}
	case "issuer":
		err = someArgs(d, &t.Issuer)
	case "audience":
		err = someArgs(d, &t.Audience)
	case "algorithms":
		if err = someArgs(d, &t.Algorithms); err == nil {
			for _, alg := range t.Algorithms {
				if aerr := checkAlgorithm(alg); aerr != nil {
					err = d.Errf("algorithms: %v", aerr)
					break
				}
			}
		}
	case "refresh_interval":
		err = durationArg(d, &t.RefreshInterval)
	case "min_refresh_interval":
		err = durationArg(d, &t.MinRefreshInterval)
	case "max_stale":
		err = optionalDurationArg(d, &t.MaxStale)
	case "key_thumbprints":
		if err = someArgs(d, &t.KeyThumbprints); err == nil {
			for _, tp := range t.KeyThumbprints {
				if cerr := checkThumbprint(tp); cerr != nil {
					err = d.Errf("key_thumbprints: %v", cerr)
					break
				}
			}
		}
	default:
		return false, nil
	}
	if p.first == nil {
		p.first = &at
	}
	return true, err
}

func (p *trustParser) setSource(d *caddyfile.Dispenser, name string, field *string) error {
	if p.source != "" {
		return d.Errf("%s: only one key source may be set (%s was set already)", name, p.source)
	}
	p.source = name
	if err := oneArg(d, field); err != nil {
		return err
	}
	if *field == "" {
		return d.Errf("%s: must not be empty", name)
	}
	return nil
}

// finish reports what needs the whole block: data_center without api_key.
func (p *trustParser) finish() error {
	if p.dc != nil && p.t.DataCenter != "" && p.t.APIKey == "" {
		return p.dc.Err("data_center needs api_key: it only says where a Gigya site's keys are")
	}
	return nil
}

// parseTrustBlock reads a trust { ... } block into t. Only trust
// subdirectives belong there; the rest applies to every trust.
func parseTrustBlock(d *caddyfile.Dispenser, t *Trust) error {
	at := *d
	if d.NextArg() {
		return d.ArgErr()
	}
	p := trustParser{t: t}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		handled, err := p.parse(d, sub)
		if err != nil {
			return err
		}
		if !handled {
			return d.Errf("trust: %q does not belong in a trust block: only a key source and its issuer settings do; the rest applies to every trust at the top level", sub)
		}
	}
	if err := p.finish(); err != nil {
		return err
	}
	if err := t.validate(true); err != nil {
		return at.Errf("trust: %v", err)
	}
	return nil
}

// maxLeeway is the most clock skew Validate accepts (10m in its messages).
const maxLeeway = 10 * time.Minute

// httpURLArg checks that a URL subdirective's value is an http(s) URL, as
// Validate does, while the dispenser still points at its line.
func httpURLArg(d *caddyfile.Dispenser, sub, u string) error {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return d.Errf("%s: %q is not an http(s) URL", sub, u)
	}
	return nil
}

func tokenSource(sub, name string) TokenSource {
	switch sub {
	case "from_header":
		return TokenSource{Header: name}
	case "from_cookie":
		return TokenSource{Cookie: name}
	}
	return TokenSource{Query: name}
}

// oneArg reads exactly one argument for the current subdirective.
func oneArg(d *caddyfile.Dispenser, into *string) error {
	sub := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: missing argument", sub)
	}
	*into = d.Val()
	if d.NextArg() {
		return d.Errf("%s: too many arguments", sub)
	}
	return nil
}

// someArgs appends one or more arguments.
func someArgs(d *caddyfile.Dispenser, into *[]string) error {
	sub := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("%s: missing argument", sub)
	}
	*into = append(*into, args...)
	return nil
}

// durationArg reads one duration in Caddy's syntax (30s, 1h, 2d).
func durationArg(d *caddyfile.Dispenser, into *caddy.Duration) error {
	sub := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: invalid duration %q: %v", sub, s, err)
	}
	if dur < 0 {
		return d.Errf("%s: duration must not be negative", sub)
	}
	*into = caddy.Duration(dur)
	return nil
}

// optionalDurationArg reads a duration for a field where 0 differs from unset.
func optionalDurationArg(d *caddyfile.Dispenser, into **caddy.Duration) error {
	var dur caddy.Duration
	if err := durationArg(d, &dur); err != nil {
		return err
	}
	*into = &dur
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
