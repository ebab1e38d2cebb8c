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
	set         *KeySet       // nil when notModified
	skipped     SkippedKeys   // unusable keys left out of set
	maxAge      time.Duration // Cache-Control max-age, 0 when absent
	notModified bool          // HTTP 304: the previous set is still current
}

// source fetches a key set from one place. Implementations: jwksSource (a
// JWKS or Gigya URL), discoverySource (OIDC) and fileSource. prev is the
// current set, or nil; its validators make the request conditional.
type source interface {
	fetch(ctx context.Context, prev *KeySet) (fetched, error)
	String() string // the URL or path, for logs
}

// validators are a document's HTTP cache validators, sent back on refresh
// as If-None-Match and If-Modified-Since.
type validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// document is one HTTP answer.
type document struct {
	body        []byte
	maxAge      time.Duration
	validators  validators
	notModified bool
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

// getDocument GETs url, conditionally when cond holds validators. The body
// is at most maxDocumentSize bytes; anything but HTTP 200 or, for a
// conditional request, 304 is an error.
func getDocument(ctx context.Context, client *http.Client, url string, cond validators) (document, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return document{}, fmt.Errorf("fetching %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "caddy-idtoken/"+Version)
	req.Header.Set("Accept", "application/json")
	if cond.ETag != "" {
		req.Header.Set("If-None-Match", cond.ETag)
	}
	if cond.LastModified != "" {
		req.Header.Set("If-Modified-Since", cond.LastModified)
	}
	resp, err := client.Do(req)
	if err != nil {
		return document{}, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	doc := document{maxAge: maxAge(resp.Header.Get("Cache-Control"))}
	switch {
	case resp.StatusCode == http.StatusNotModified && cond != (validators{}):
		doc.notModified = true
		return doc, nil
	case resp.StatusCode != http.StatusOK:
		return document{}, fmt.Errorf("fetching %s: HTTP %d", url, resp.StatusCode)
	case resp.ContentLength > maxDocumentSize:
		return document{}, fmt.Errorf("fetching %s: Content-Length %d exceeds %d bytes", url, resp.ContentLength, maxDocumentSize)
	}
	if doc.body, err = readCapped(resp.Body); err != nil {
		return document{}, fmt.Errorf("fetching %s: %w", url, err)
	}
	doc.validators = validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	return doc, nil
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

func (s *jwksSource) fetch(ctx context.Context, prev *KeySet) (fetched, error) {
	return fetchKeys(ctx, s.client, s.url, prev)
}

// fetchKeys GETs and parses one key document, conditionally when prev came
// from the same URL.
func fetchKeys(ctx context.Context, client *http.Client, url string, prev *KeySet) (fetched, error) {
	var cond validators
	if prev != nil && prev.origin.url == url {
		cond = prev.origin.validators
	}
	doc, err := getDocument(ctx, client, url, cond)
	if err != nil {
		return fetched{}, err
	}
	if doc.notModified {
		return fetched{notModified: true, maxAge: doc.maxAge}, nil
	}
	set, skipped, err := ParseKeyDocument(doc.body)
	if err != nil {
		return fetched{skipped: skipped}, fmt.Errorf("%s: %w", url, err)
	}
	set.origin = origin{url: url, validators: doc.validators, raw: doc.body}
	return fetched{set: set, skipped: skipped, maxAge: doc.maxAge}, nil
}

// fileSource reads a key document from a local file.
type fileSource struct {
	path string
}

func (s *fileSource) String() string { return s.path }

func (s *fileSource) fetch(context.Context, *KeySet) (fetched, error) {
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
