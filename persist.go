package idtoken

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/caddyserver/certmagic"
)

// defaultMaxStale is how old a stored key set may be and still be used when
// the issuer cannot be reached at start.
const defaultMaxStale = 7 * 24 * time.Hour

// storedKeySet is what is written to Caddy's storage after each successful
// fetch, so a restart during an issuer outage (or another node sharing the
// storage) can serve with the last good keys.
type storedKeySet struct {
	Kind      string          `json:"kind"`   // the source's kind (keySetConfig.kind)
	Source    string          `json:"source"` // the configured location
	URL       string          `json:"url"`    // the document's URL
	FetchedAt time.Time       `json:"fetched_at"`
	Issuer    string          `json:"issuer,omitempty"`
	Document  json.RawMessage `json:"document"`
	validators
}

// sourceID names a configured key source by kind and location. A stored set
// is keyed and checked by both: a jwks_url and an oidc source may be
// configured with the same string, and a plain JWKS record (which names no
// issuer) restored for an OpenID provider would drop the issuer its keys
// are bound to.
type sourceID struct {
	kind     string // "gigya", "oidc", "jwks_url" or "jwks_file"
	location string // fetch URL, issuer URL or file path
}

// storageKey is where the set for id is stored: one folder per kind, the
// location hashed (it is a URL, not a file name).
func (id sourceID) storageKey() string {
	sum := sha256.Sum256([]byte(id.location))
	return "idtoken/keysets/" + id.kind + "/" + hex.EncodeToString(sum[:]) + ".json"
}

// saveKeySet writes set, fetched from id, to storage.
func saveKeySet(ctx context.Context, storage certmagic.Storage, id sourceID, set *KeySet) error {
	rec := storedKeySet{
		Kind:       id.kind,
		Source:     id.location,
		URL:        set.origin.url,
		FetchedAt:  set.Loaded.UTC(),
		Issuer:     set.Issuer,
		Document:   set.origin.raw,
		validators: set.origin.validators,
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding stored key set: %w", err)
	}
	if err := storage.Store(ctx, id.storageKey(), data); err != nil {
		return fmt.Errorf("storing key set: %w", err)
	}
	return nil
}

// loadKeySet reads the stored set for id, refusing a record written for
// another kind or location, and one older than maxStale at now.
func loadKeySet(ctx context.Context, storage certmagic.Storage, id sourceID, maxStale time.Duration, now time.Time) (*KeySet, error) {
	data, err := storage.Load(ctx, id.storageKey())
	if err != nil {
		return nil, fmt.Errorf("loading stored key set: %w", err)
	}
	var rec storedKeySet
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decoding stored key set: %w", err)
	}
	if rec.Kind != id.kind || rec.Source != id.location {
		return nil, fmt.Errorf("stored key set is for %s %q, not %s %q", rec.Kind, rec.Source, id.kind, id.location)
	}
	if id.kind == "oidc" && rec.Issuer == "" {
		return nil, fmt.Errorf("stored key set for OIDC issuer %q names no issuer", id.location)
	}
	if age := now.Sub(rec.FetchedAt); age > maxStale {
		return nil, fmt.Errorf("stored key set is %s old, more than max_stale %s", age.Round(time.Second), maxStale)
	}
	set, _, err := ParseKeyDocument(rec.Document)
	if err != nil {
		return nil, fmt.Errorf("stored key set: %w", err)
	}
	set.Issuer = rec.Issuer
	set.Loaded = rec.FetchedAt
	set.origin = origin{url: rec.URL, validators: rec.validators, raw: rec.Document, fromStorage: true}
	return set, nil
}
