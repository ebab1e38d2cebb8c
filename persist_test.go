package idtoken

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// startStoredKeySet starts a key set that persists to storage.
func startStoredKeySet(t *testing.T, cfg keySetConfig, storage certmagic.Storage, clock *fakeClock) (*RefreshingKeySet, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	if cfg.minRefresh == 0 {
		cfg.minRefresh = time.Millisecond
	}
	s, err := newRefreshingKeySet(cfg, func() *zap.Logger { return logger }, clock.now, storage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destruct() })
	return s, logs
}

// storedOnce runs a key set until its first load, which saves it to
// storage, and stops it: what an earlier Caddy process left behind.
func storedOnce(t *testing.T, cfg keySetConfig, storage certmagic.Storage, clock *fakeClock) (*KeySet, *observer.ObservedLogs) {
	t.Helper()
	s, logs := startStoredKeySet(t, cfg, storage, clock)
	set := waitLoaded(t, s)
	_ = s.Destruct()
	return set, logs
}

// oidcProvider serves discovery and, at jwksPath, a JWKS; down switches
// both to 503. Its URL is the provider's issuer.
func oidcProvider(t *testing.T, jwks []byte, down *atomic.Bool, jwksPath string) string {
	srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":"http://%s","jwks_uri":"http://%s%s"}`, r.Host, r.Host, jwksPath)
		case jwksPath:
			_, _ = w.Write(jwks)
		}
	})
	return srv.URL
}

func TestRestartDuringOutageUsesStoredKeys(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	tests := []struct {
		name  string
		start func(t *testing.T, down *atomic.Bool) keySetConfig
	}{
		{"jwks_url", func(t *testing.T, down *atomic.Bool) keySetConfig {
			srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
				if down.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write(jwksJSON(t, k1))
			})
			return keySetConfig{kind: "jwks_url", location: srv.URL, maxStale: defaultMaxStale}
		}},
		{"oidc", func(t *testing.T, down *atomic.Bool) keySetConfig {
			return keySetConfig{kind: "oidc", location: oidcProvider(t, jwksJSON(t, k1), down, "/jwks"), maxStale: defaultMaxStale}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			down := &atomic.Bool{}
			cfg := tc.start(t, down)
			storage := &certmagic.FileStorage{Path: t.TempDir()}
			clock := &fakeClock{}

			fresh, _ := storedOnce(t, cfg, storage, clock)
			if !storage.Exists(context.Background(), sourceID{cfg.kind, cfg.location}.storageKey()) {
				t.Fatal("key set not saved to storage")
			}

			// Restart six days later with the issuer down.
			down.Store(true)
			clock.advance(6 * 24 * time.Hour)
			second, logs := startStoredKeySet(t, cfg, storage, clock)
			restored := second.Refresh(context.Background())
			if restored == nil || restored.Lookup("k1") == nil || !restored.origin.fromStorage {
				t.Fatal("stored key set not used while the issuer is down")
			}
			if restored.Issuer != fresh.Issuer {
				t.Fatalf("restored issuer %q, want %q", restored.Issuer, fresh.Issuer)
			}
			entries := logs.FilterMessage("issuer unreachable; serving with the stored key set").All()
			if len(entries) != 1 || entries[0].ContextMap()["age"] == nil {
				t.Fatalf("restore not logged with its age: %v", entries)
			}
			v, _ := NewVerifier(Policy{Algorithms: []string{"RS256"}})
			claims := with(validClaims(), map[string]any{"iss": fresh.Issuer, "exp": time.Now().Add(time.Hour).Unix()})
			if _, rej := verifyString(v, sign(t, k1, claims, nil), restored, time.Now()); rej != nil {
				t.Fatalf("token refused with stored keys: %v", rej)
			}

			// Two days on (eight in all) the stored set is too old and is dropped.
			clock.advance(2 * 24 * time.Hour)
			if second.Refresh(context.Background()) != nil {
				t.Fatal("stored key set still used past max_stale")
			}

			// The issuer comes back: the set is fetched again.
			down.Store(false)
			clock.advance(time.Minute)
			if set := second.Refresh(context.Background()); set == nil || set.origin.fromStorage {
				t.Fatal("no fresh key set after the issuer recovered")
			}
		})
	}
}

func TestStoredKeySetLimits(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	tests := []struct {
		name     string
		maxStale time.Duration
		age      time.Duration
		stored   bool // saved at all
		used     bool // restored after the restart
	}{
		{"fresh enough", time.Hour, 59 * time.Minute, true, true},
		{"older than max_stale", time.Hour, 61 * time.Minute, true, false},
		{"persistence off", 0, 0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storage := &certmagic.FileStorage{Path: t.TempDir()}
			clock := &fakeClock{}
			cfg := keySetConfig{kind: "jwks_url", location: is.URL, maxStale: tc.maxStale}
			is.serve(http.StatusOK, jwksJSON(t, k1))
			storedOnce(t, cfg, storage, clock)
			if got := storage.Exists(context.Background(), sourceID{"jwks_url", is.URL}.storageKey()); got != tc.stored {
				t.Fatalf("stored = %v, want %v", got, tc.stored)
			}

			is.serve(http.StatusInternalServerError, nil)
			clock.advance(tc.age)
			second, _ := startStoredKeySet(t, cfg, storage, clock)
			if got := second.Refresh(context.Background()) != nil; got != tc.used {
				t.Fatalf("stored set used = %v, want %v", got, tc.used)
			}
		})
	}
}

func TestStoredKeySetRecord(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	is.setHeader("ETag", `"v1"`)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	s, _ := startStoredKeySet(t, keySetConfig{kind: "jwks_url", location: is.URL, maxStale: time.Hour}, storage, &fakeClock{})
	waitLoaded(t, s)
	_ = s.Destruct() // the save follows the load; stopping waits for it
	data, err := storage.Load(context.Background(), sourceID{"jwks_url", is.URL}.storageKey())
	if err != nil {
		t.Fatal(err)
	}
	var rec storedKeySet
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Kind != "jwks_url" || rec.Source != is.URL || rec.URL != is.URL || rec.ETag != `"v1"` || rec.FetchedAt.IsZero() || len(rec.Document) == 0 {
		t.Fatalf("stored record = %+v", rec)
	}

	// A record found under another source's key (copied there, or written by
	// an older version) is not trusted.
	tests := []struct {
		name string
		id   sourceID
		err  string
	}{
		{"another location", sourceID{"jwks_url", "http://elsewhere.test"}, "is for jwks_url"},
		{"another kind", sourceID{"oidc", is.URL}, "is for jwks_url"},
		{"gigya kind", sourceID{"gigya", is.URL}, "is for jwks_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := storage.Store(context.Background(), tc.id.storageKey(), data); err != nil {
				t.Fatal(err)
			}
			if _, err := loadKeySet(context.Background(), storage, tc.id, time.Hour, time.Now()); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
	t.Run("oidc record without issuer", func(t *testing.T) {
		id := sourceID{"oidc", is.URL}
		rec := rec
		rec.Kind = "oidc"
		forged, _ := json.Marshal(rec)
		if err := storage.Store(context.Background(), id.storageKey(), forged); err != nil {
			t.Fatal(err)
		}
		if _, err := loadKeySet(context.Background(), storage, id, time.Hour, time.Now()); err == nil || !strings.Contains(err.Error(), "names no issuer") {
			t.Fatalf("err = %v, want refusal", err)
		}
	})
}

// TestStorageKeyPerKind: the same location under two kinds is two records.
func TestStorageKeyPerKind(t *testing.T) {
	const loc = "https://issuer.test"
	keys := map[string]bool{}
	for _, kind := range []string{"gigya", "oidc", "jwks_url", "jwks_file"} {
		keys[sourceID{kind, loc}.storageKey()] = true
	}
	if len(keys) != 4 {
		t.Fatalf("storage keys %v, want one per kind", keys)
	}
}

func TestConditionalRefresh(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	var conditional, unconditional atomic.Int64
	srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		etagOK := r.Header.Get("If-None-Match") == `"v1"`
		dateOK := r.Header.Get("If-Modified-Since") == "Mon, 02 Jan 2006 15:04:05 GMT"
		if etagOK && dateOK {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		unconditional.Add(1)
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		_, _ = w.Write(jwksJSON(t, k1))
	})
	clock := &fakeClock{}
	s, logs := startKeySet(t, "jwks_url", srv.URL, time.Second, clock)
	before := waitLoaded(t, s)
	for range 3 {
		clock.advance(time.Minute)
		after := s.Refresh(context.Background())
		if after.gen != before.gen || !slices.Equal(after.KIDs(), before.KIDs()) {
			t.Fatal("304 replaced the keys")
		}
		if !after.Loaded.After(before.Loaded) {
			t.Fatal("304 did not count as a fresh fetch")
		}
		before = after
	}
	if conditional.Load() != 3 || unconditional.Load() != 1 {
		t.Fatalf("conditional %d, unconditional %d; want 3 and 1", conditional.Load(), unconditional.Load())
	}
	if n := len(logs.FilterMessage("fetching key set failed; keeping previous keys").All()); n != 0 {
		t.Fatalf("304 logged as %d failures", n)
	}
}

// TestStoredSetReconfirmedBy304: after a restart on stored keys, an issuer
// answering 304 to the stored ETag makes the set current again, so it is no
// longer subject to max_stale.
func TestStoredSetReconfirmedBy304(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	var down atomic.Bool
	srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case down.Load():
			http.Error(w, "down", http.StatusServiceUnavailable)
		case r.Header.Get("If-None-Match") == `"v1"`:
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("ETag", `"v1"`)
			_, _ = w.Write(jwksJSON(t, k1))
		}
	})
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	clock := &fakeClock{}
	cfg := keySetConfig{kind: "jwks_url", location: srv.URL, maxStale: 2 * time.Hour}
	storedOnce(t, cfg, storage, clock)

	down.Store(true)
	clock.advance(time.Hour)
	second, _ := startStoredKeySet(t, cfg, storage, clock)
	if set := second.Refresh(context.Background()); set == nil || !set.origin.fromStorage {
		t.Fatal("stored set not restored")
	}
	down.Store(false)
	clock.advance(time.Minute)
	if set := second.Refresh(context.Background()); set == nil || set.origin.fromStorage {
		t.Fatal("304 did not reconfirm the stored set")
	}
	// Well past max_stale of the original fetch, with the issuer down again:
	// the reconfirmed set stays.
	down.Store(true)
	clock.advance(90 * time.Minute)
	if second.Refresh(context.Background()) == nil {
		t.Fatal("reconfirmed set dropped as stale")
	}
}

// TestStoredKeySetKeyedByKind: a jwks_url source and an oidc source may be
// configured with the same string. The plain JWKS record carries no issuer,
// so it must never be restored for the OIDC source (nor the other way round):
// each kind has its own record, and a record is only restored for its kind.
func TestStoredKeySetKeyedByKind(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	var down atomic.Bool
	// One server answers as a JWKS URL (at /) and as an OpenID provider whose
	// issuer is that same URL.
	location := oidcProvider(t, jwksJSON(t, k1), &down, "/")
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	clock := &fakeClock{}
	jwksCfg := keySetConfig{kind: "jwks_url", location: location, maxStale: time.Hour}
	oidcCfg := keySetConfig{kind: "oidc", location: location, maxStale: time.Hour}
	start := func(cfg keySetConfig) *KeySet {
		s, _ := startStoredKeySet(t, cfg, storage, clock)
		set := s.Refresh(context.Background())
		_ = s.Destruct() // waits for the save that follows a load
		return set
	}

	if set := start(jwksCfg); set == nil || set.Issuer != "" {
		t.Fatal("jwks_url source did not load")
	}
	down.Store(true)
	if set := start(oidcCfg); set != nil {
		t.Fatalf("oidc source restored the jwks_url record (issuer %q)", set.Issuer)
	}

	// With both kinds saved, each restores its own record.
	down.Store(false)
	if set := start(oidcCfg); set == nil || set.Issuer != location {
		t.Fatal("oidc source did not load with its issuer")
	}
	keys, err := storage.List(context.Background(), "idtoken/keysets", true)
	if err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, k := range keys {
		if info, err := storage.Stat(context.Background(), k); err == nil && info.IsTerminal {
			records = append(records, k)
		}
	}
	if len(records) != 2 {
		t.Fatalf("stored records %v, want one per kind", records)
	}
	down.Store(true)
	tests := []struct {
		name   string
		cfg    keySetConfig
		issuer string
	}{
		{"jwks_url restores its record", jwksCfg, ""},
		{"oidc restores its record", oidcCfg, location},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := start(tc.cfg)
			if set == nil || !set.origin.fromStorage || set.Issuer != tc.issuer {
				t.Fatalf("restored %+v, want a stored set with issuer %q", set, tc.issuer)
			}
		})
	}
}
