package idtoken

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Version is sent in the User-Agent of every key fetch.
const Version = "0.1.0"

const (
	// fetchTimeout bounds one whole fetch (discovery included) and how long
	// a request waits for one.
	fetchTimeout = 10 * time.Second
	// maxDocumentSize caps a key or discovery document.
	maxDocumentSize = 1 << 20
	// maxRedirects bounds redirects followed by a key fetch.
	maxRedirects = 3
)

// fetched is what one successful fetch yields.
type fetched struct {
	set     *KeySet
	skipped []error       // unusable keys left out of set
	maxAge  time.Duration // Cache-Control max-age, 0 when absent
}

// source fetches a key set from one place. Implementations: jwksSource (a
// JWKS or Gigya URL), discoverySource (OIDC) and fileSource.
type source interface {
	fetch(ctx context.Context) (fetched, error)
	String() string // the URL or path, for logs
}

// newHTTPClient returns a client with its own transport, so a key set's idle
// connections close with it, and a redirect policy that never downgrades.
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "https" && via[len(via)-1].URL.Scheme == "https" {
				return fmt.Errorf("refusing redirect from https to %s", req.URL.Scheme)
			}
			return nil
		},
	}
}

// getDocument GETs url and returns its body (at most maxDocumentSize bytes)
// and the Cache-Control max-age, if any. Anything but HTTP 200 is an error.
func getDocument(ctx context.Context, client *http.Client, url string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("fetching %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "caddy-idtoken/"+Version)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("fetching %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := readCapped(resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("fetching %s: %w", url, err)
	}
	return body, maxAge(resp.Header.Get("Cache-Control")), nil
}

// readCapped reads all of r, failing rather than truncating past maxDocumentSize.
func readCapped(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxDocumentSize {
		return nil, fmt.Errorf("document larger than %d bytes", maxDocumentSize)
	}
	return body, nil
}

// maxAge extracts max-age from a Cache-Control header; 0 if absent or invalid.
func maxAge(cacheControl string) time.Duration {
	for _, directive := range strings.Split(cacheControl, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(directive), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
		if err != nil || secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(365*24*3600))) * time.Second
	}
	return 0
}

// jwksSource fetches a key document from a URL: a JWKS, or a Gigya
// accounts.getJWTPublicKey answer (ParseKeyDocument reads both).
type jwksSource struct {
	url    string
	client *http.Client
}

func (s *jwksSource) String() string { return s.url }

func (s *jwksSource) fetch(ctx context.Context) (fetched, error) {
	return fetchKeys(ctx, s.client, s.url)
}

// fetchKeys GETs and parses one key document.
func fetchKeys(ctx context.Context, client *http.Client, url string) (fetched, error) {
	body, age, err := getDocument(ctx, client, url)
	if err != nil {
		return fetched{}, err
	}
	set, skipped, err := ParseKeyDocument(body)
	if err != nil {
		return fetched{skipped: skipped}, fmt.Errorf("%s: %w", url, err)
	}
	return fetched{set: set, skipped: skipped, maxAge: age}, nil
}

// fileSource reads a key document from a local file.
type fileSource struct {
	path string
}

func (s *fileSource) String() string { return s.path }

func (s *fileSource) fetch(context.Context) (fetched, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return fetched{}, fmt.Errorf("reading JWKS file: %w", err)
	}
	defer f.Close()
	body, err := readCapped(f)
	if err != nil {
		return fetched{}, fmt.Errorf("reading JWKS file %s: %w", s.path, err)
	}
	set, skipped, err := ParseKeyDocument(body)
	if err != nil {
		return fetched{skipped: skipped}, fmt.Errorf("JWKS file %s: %w", s.path, err)
	}
	return fetched{set: set, skipped: skipped}, nil
}
