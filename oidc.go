package idtoken

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// discoverySource finds an OpenID provider's JWKS through its discovery
// document (OpenID Connect Discovery 1.0) and remembers jwks_uri between
// fetches, re-reading discovery when the remembered one stops working.
type discoverySource struct {
	issuer string // as configured
	client *http.Client

	// Set by discover; only the key set's refresh goroutine touches them.
	jwksURI string
	found   string // the issuer value discovery returned
}

func (s *discoverySource) String() string { return s.issuer }

func discoveryURL(issuer string) string {
	return strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
}

func (s *discoverySource) fetch(ctx context.Context, prev *KeySet) (fetched, error) {
	if s.jwksURI != "" {
		res, err := fetchKeys(ctx, s.client, s.jwksURI, prev)
		if err == nil {
			if res.set != nil {
				res.set.Issuer = s.found
			}
			return res, nil
		}
		// The remembered jwks_uri failed: the provider may have moved it.
		previous := s.jwksURI
		if derr := s.discover(ctx); derr != nil || s.jwksURI == previous {
			return res, err
		}
	} else if err := s.discover(ctx); err != nil {
		return fetched{}, err
	}
	if prev != nil && prev.Issuer != s.found {
		prev = nil // the provider now names another issuer: fetch in full
	}
	res, err := fetchKeys(ctx, s.client, s.jwksURI, prev)
	if err != nil {
		return res, err
	}
	if res.set != nil {
		res.set.Issuer = s.found
	}
	return res, nil
}

// discover reads the discovery document and checks that it speaks for the
// configured issuer (section 4.3: the issuer value must match).
func (s *discoverySource) discover(ctx context.Context) error {
	u := discoveryURL(s.issuer)
	answer, err := getDocument(ctx, s.client, u, validators{})
	if err != nil {
		return fmt.Errorf("OIDC discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(answer.body, &doc); err != nil {
		return fmt.Errorf("OIDC discovery %s: %w", u, err)
	}
	if strings.TrimRight(doc.Issuer, "/") != strings.TrimRight(s.issuer, "/") {
		return fmt.Errorf("OIDC discovery %s: issuer %q does not match configured %q", u, doc.Issuer, s.issuer)
	}
	jwks, err := url.Parse(doc.JWKSURI)
	if err != nil || (jwks.Scheme != "https" && jwks.Scheme != "http") || jwks.Host == "" {
		return fmt.Errorf("OIDC discovery %s: unusable jwks_uri %q", u, doc.JWKSURI)
	}
	if jwks.Scheme == "http" && strings.HasPrefix(s.issuer, "https://") {
		return fmt.Errorf("OIDC discovery %s: jwks_uri %q downgrades to http", u, doc.JWKSURI)
	}
	s.jwksURI, s.found = doc.JWKSURI, doc.Issuer
	return nil
}
