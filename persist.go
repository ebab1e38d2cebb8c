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
	Source    string          `json:"source"` // the configured location (the storage key's origin)
	URL       string          `json:"url"`    // the document's URL
	FetchedAt time.Time       `json:"fetched_at"`
	Issuer    string          `json:"issuer,omitempty"`
	Document  json.RawMessage `json:"document"`
	validators
}

// storageKey is where the set for a source location is stored.
func storageKey(location string) string {
	sum := sha256.Sum256([]byte(location))
	return "idtoken/keysets/" + hex.EncodeToString(sum[:]) + ".json"
}

// saveKeySet writes set to storage.
func saveKeySet(ctx context.Context, storage certmagic.Storage, location string, set *KeySet) error {
	rec := storedKeySet{
		Source:     location,
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
	if err := storage.Store(ctx, storageKey(location), data); err != nil {
		return fmt.Errorf("storing key set: %w", err)
	}
	return nil
}

// loadKeySet reads the stored set for location, refusing one older than
// maxStale at now.
func loadKeySet(ctx context.Context, storage certmagic.Storage, location string, maxStale time.Duration, now time.Time) (*KeySet, error) {
	data, err := storage.Load(ctx, storageKey(location))
	if err != nil {
		return nil, fmt.Errorf("loading stored key set: %w", err)
	}
	var rec storedKeySet
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decoding stored key set: %w", err)
	}
	if rec.Source != location {
		return nil, fmt.Errorf("stored key set is for %q, not %q", rec.Source, location)
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
