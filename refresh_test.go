package idtoken

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a clock tests move forward instead of sleeping.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// startKeySet starts a key set on url with a log observer; it is stopped
// when the test ends.
func startKeySet(t *testing.T, kind, location string, minRefresh time.Duration, clock *fakeClock) (*RefreshingKeySet, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	s, err := newRefreshingKeySet(keySetConfig{kind: kind, location: location, minRefresh: minRefresh},
		func() *zap.Logger { return logger }, clock.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destruct() })
	return s, logs
}

// waitLoaded waits for the first fetch.
func waitLoaded(t *testing.T, s *RefreshingKeySet) *KeySet {
	t.Helper()
	set := s.Refresh(context.Background())
	if set == nil {
		t.Fatal("key set did not load")
	}
	return set
}

func TestKeyRotationPickedUpByRefetch(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1))
	clock := &fakeClock{}
	s, _ := startKeySet(t, "jwks_url", is.URL, time.Minute, clock)
	if waitLoaded(t, s).Lookup("k2") != nil {
		t.Fatal("k2 present before rotation")
	}

	is.serve(http.StatusOK, jwksJSON(t, k2)) // issuer rotates: k1 removed, k2 added
	if set := s.Refresh(context.Background()); set.Lookup("k2") != nil {
		t.Fatal("refetch within min_refresh_interval was not refused")
	}
	clock.advance(time.Minute)
	set := s.Refresh(context.Background())
	if set.Lookup("k2") == nil || set.Lookup("k1") != nil {
		t.Fatalf("after refetch kids = %v, want [k2]", set.KIDs())
	}
	if got := is.hits.Load(); got != 2 {
		t.Fatalf("issuer hit %d times, want 2", got)
	}
}

func TestUnknownKIDFloodSharesOneFetch(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	clock := &fakeClock{}
	s, _ := startKeySet(t, "jwks_url", is.URL, time.Hour, clock)
	waitLoaded(t, s)

	flood := func() {
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() { s.Refresh(context.Background()) })
		}
		wg.Wait()
	}
	// Within min_refresh_interval of the first fetch: no fetch at all.
	flood()
	if got := is.hits.Load(); got != 1 {
		t.Fatalf("flood inside the rate floor caused %d fetches, want none", got-1)
	}
	// Past it, with the issuer slow: 200 concurrent triggers share one fetch.
	clock.advance(2 * time.Hour)
	block := make(chan struct{})
	is.mu.Lock()
	is.blocked = block
	is.mu.Unlock()
	go func() {
		for is.hits.Load() < 2 { // the shared fetch has reached the issuer
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let the rest of the flood queue up
		close(block)
	}()
	flood()
	if got := is.hits.Load(); got != 2 {
		t.Fatalf("flood past the rate floor caused %d fetches, want 1", got-1)
	}
}

func TestIssuerDownKeepsKeys(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	clock := &fakeClock{}
	s, logs := startKeySet(t, "jwks_url", is.URL, time.Second, clock)
	before := waitLoaded(t, s)

	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable} {
		is.serve(status, []byte("down"))
		clock.advance(time.Minute)
		if after := s.Refresh(context.Background()); after != before {
			t.Fatalf("HTTP %d replaced the key set", status)
		}
	}
	is.serve(http.StatusOK, []byte(gigyaInvalidAPIKey))
	clock.advance(time.Minute)
	if after := s.Refresh(context.Background()); after != before {
		t.Fatal("gigya error envelope replaced the key set")
	}
	warnings := logs.FilterMessage("fetching key set failed; keeping previous keys").All()
	if len(warnings) != 3 {
		t.Fatalf("%d warnings logged, want 3", len(warnings))
	}
	if reason := warnings[2].ContextMap()["error"]; reason == nil {
		t.Fatal("warning does not say why")
	}

	v, _ := NewVerifier(Policy{Algorithms: []string{"RS256"}})
	if _, rej := verifyString(v, sign(t, k1, with(validClaims(), map[string]any{"exp": time.Now().Add(time.Hour).Unix()}), nil), s.Current(), time.Now()); rej != nil {
		t.Fatalf("token refused while issuer down: %v", rej)
	}
}

func TestFailedFirstFetchRetriesWithBackoff(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	is.serve(http.StatusServiceUnavailable, nil)
	s, _ := startKeySet(t, "jwks_url", is.URL, time.Hour, &fakeClock{})
	if s.Refresh(context.Background()) != nil {
		t.Fatal("loaded from a failing issuer")
	}
	is.serve(http.StatusOK, jwksJSON(t, k1))
	deadline := time.Now().Add(5 * time.Second)
	for s.Current() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no retry within 5s of a failed first fetch")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUnreachableIssuerAnswersQuickly(t *testing.T) {
	is := newIssuer(t, nil)
	url := is.URL
	is.Close() // nothing listens there any more
	s, _ := startKeySet(t, "jwks_url", url, time.Hour, &fakeClock{})
	start := time.Now()
	if s.Refresh(context.Background()) != nil {
		t.Fatal("key set from a closed port")
	}
	if waited := time.Since(start); waited > fetchTimeout {
		t.Fatalf("waited %v, more than the fetch timeout", waited)
	}
}

func TestSharedKeySetFetchesOnce(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	cfg := keySetConfig{kind: "jwks_url", location: is.URL, minRefresh: time.Second}
	nop := func() *zap.Logger { return zap.NewNop() }
	a, err := acquireKeySet(cfg, nop, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquireKeySet(cfg, nop, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("same source gave two key sets")
	}
	waitLoaded(t, a)
	otherCfg := keySetConfig{kind: "jwks_url", location: is.URL, minRefresh: 2 * time.Second}
	other, err := acquireKeySet(otherCfg, nop, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other == a {
		t.Fatal("different refresh settings share a key set")
	}
	waitLoaded(t, other)
	if got := is.hits.Load(); got != 2 {
		t.Fatalf("issuer hit %d times, want 2 (one per distinct set)", got)
	}
	for _, c := range []keySetConfig{cfg, cfg, otherCfg} {
		if err := releaseKeySet(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*RefreshingKeySet{a, other} {
		select {
		case <-s.done:
		case <-time.After(time.Second):
			t.Fatal("refresh goroutine still running after the last release")
		}
	}
}

func TestRefreshAfter(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		maxAge   time.Duration
		want     time.Duration
	}{
		{"default", 0, 0, time.Hour},
		{"configured wins over max-age", 5 * time.Minute, time.Hour, 5 * time.Minute},
		{"max-age used", 0, 2 * time.Hour, 2 * time.Hour},
		{"max-age clamped up", 0, 5 * time.Second, time.Minute},
		{"max-age clamped down", 0, 72 * time.Hour, 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &RefreshingKeySet{interval: tc.interval}
			if got := s.refreshAfter(tc.maxAge); got != tc.want {
				t.Fatalf("refreshAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestJWKSFileLoadsSynchronously(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1))
	s, _ := startKeySet(t, "jwks_file", path, time.Second, &fakeClock{})
	if s.Current() == nil {
		t.Fatal("jwks_file not loaded at construction")
	}
	for name, content := range map[string]string{"missing": "", "no usable key": `{"keys":[{"kty":"oct","k":"AA"}]}`} {
		p := t.TempDir() + "/jwks.json"
		if content != "" {
			writeFile(t, p, []byte(content))
		}
		if _, err := newRefreshingKeySet(keySetConfig{kind: "jwks_file", location: p}, zap.NewNop, time.Now, nil); err == nil {
			t.Errorf("%s: jwks_file accepted", name)
		}
	}
}

// TestUnknownSourceKindRefused: the kind names the stored copy, so a kind
// the key flow does not know is a programming error, not a JWKS URL.
func TestUnknownSourceKindRefused(t *testing.T) {
	for _, kind := range []string{"", "jwks", "gigya/../oidc"} {
		if _, err := newRefreshingKeySet(keySetConfig{kind: kind, location: "http://127.0.0.1:1/"}, zap.NewNop, time.Now, nil); err == nil {
			t.Errorf("kind %q accepted", kind)
		}
	}
}

// TestFailedFetchWarningSaysWhetherKeysAreKept: "keeping previous keys" is
// only said when there are previous keys.
func TestFailedFetchWarningSaysWhetherKeysAreKept(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	tests := []struct {
		name      string
		loadFirst bool
		want      string
		haveKeys  bool
	}{
		{"first fetch fails", false, "fetching key set failed; no keys loaded", false},
		{"refresh fails after a load", true, "fetching key set failed; keeping previous keys", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := newIssuer(t, jwksJSON(t, k1))
			if !tc.loadFirst {
				is.serve(http.StatusServiceUnavailable, nil)
			}
			clock := &fakeClock{}
			s, logs := startKeySet(t, "jwks_url", is.URL, time.Second, clock)
			s.Refresh(context.Background())
			if tc.loadFirst {
				is.serve(http.StatusServiceUnavailable, nil)
				clock.advance(time.Minute)
				s.Refresh(context.Background())
			}
			failures := logs.FilterMessageSnippet("fetching key set failed").All()
			if len(failures) == 0 {
				t.Fatal("failed fetch not logged")
			}
			got := failures[0]
			if got.Message != tc.want || got.ContextMap()["have_keys"] != tc.haveKeys {
				t.Fatalf("logged %q (have_keys %v), want %q", got.Message, got.ContextMap()["have_keys"], tc.want)
			}
		})
	}
}

// TestKeyFlowLogsDurationsAsText: Caddy's JSON encoder writes zap.Duration
// as a bare number of seconds; durations are logged as text ("4s").
func TestKeyFlowLogsDurationsAsText(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	clock := &fakeClock{}
	cfg := keySetConfig{kind: "jwks_url", location: is.URL, maxStale: 7 * time.Hour}
	storedOnce(t, cfg, storage, clock)

	// Restart six hours later with the issuer down: the stored set is used,
	// then dropped once it is older than max_stale.
	is.serve(http.StatusServiceUnavailable, nil)
	clock.advance(6 * time.Hour)
	second, logs := startStoredKeySet(t, cfg, storage, clock)
	if second.Refresh(context.Background()) == nil {
		t.Fatal("stored set not restored")
	}
	clock.advance(2 * time.Hour)
	second.Refresh(context.Background())

	tests := []struct {
		message, field, want string // message: a part of it
	}{
		{"fetching key set failed", "retry_in", "1s"},
		{"issuer unreachable; serving with the stored key set", "age", "6h0m0s"},
		{"stored key set is older than max_stale; no longer using it", "max_stale", "7h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			entries := logs.FilterMessageSnippet(tc.message).All()
			if len(entries) == 0 {
				t.Fatalf("%q not logged", tc.message)
			}
			if got := entries[0].ContextMap()[tc.field]; got != tc.want {
				t.Fatalf("%s = %#v (%T), want %q", tc.field, got, got, tc.want)
			}
		})
	}
}

// TestNoStoredSetLoggedOnce: while the issuer stays down and storage holds
// nothing usable, each retry looks again, but says so only once.
func TestNoStoredSetLoggedOnce(t *testing.T) {
	is := newIssuer(t, nil)
	is.serve(http.StatusServiceUnavailable, nil)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	clock := &fakeClock{}
	s, logs := startStoredKeySet(t, keySetConfig{kind: "jwks_url", location: is.URL, maxStale: time.Hour}, storage, clock)
	for range 4 {
		if s.Refresh(context.Background()) != nil {
			t.Fatal("keys from nowhere")
		}
		clock.advance(time.Minute)
	}
	if failures := len(logs.FilterMessageSnippet("fetching key set failed").All()); failures < 4 {
		t.Fatalf("%d failed fetches, want at least 4", failures)
	}
	if n := len(logs.FilterMessage("no usable stored key set").All()); n != 1 {
		t.Fatalf("\"no usable stored key set\" logged %d times, want once", n)
	}
}

// TestLoggedKIDsAreBounded: kids come from the issuer's document, so the
// lines that list a set's kids cut each one to 64 bytes (noting its length)
// and list at most 20 of them.
func TestLoggedKIDsAreBounded(t *testing.T) {
	longKID := strings.Repeat("k", 10<<10)
	keys := []testKey{newEdKey(t, longKID)}
	for i := range 29 {
		keys = append(keys, newEdKey(t, fmt.Sprintf("kid-%02d", i)))
	}
	is := newIssuer(t, jwksJSON(t, keys...))
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	clock := &fakeClock{}
	cfg := keySetConfig{kind: "jwks_url", location: is.URL, maxStale: time.Hour}
	_, loadLogs := storedOnce(t, cfg, storage, clock)
	is.serve(http.StatusServiceUnavailable, nil)
	second, restoreLogs := startStoredKeySet(t, cfg, storage, clock)
	if second.Refresh(context.Background()) == nil {
		t.Fatal("stored set not restored")
	}

	tests := []struct {
		name    string
		logs    *observer.ObservedLogs
		message string
	}{
		{"loaded", loadLogs, "key set loaded"},
		{"restored", restoreLogs, "issuer unreachable; serving with the stored key set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entries := tc.logs.FilterMessage(tc.message).All()
			if len(entries) != 1 {
				t.Fatalf("%d %q lines, want 1", len(entries), tc.message)
			}
			fields := entries[0].ContextMap()
			if fields["count"] != int64(30) || fields["kids_not_listed"] != int64(10) {
				t.Errorf("count = %v, kids_not_listed = %v; want 30 and 10", fields["count"], fields["kids_not_listed"])
			}
			kids, _ := fields["kids"].([]any)
			if len(kids) == 0 {
				t.Fatal("no kids listed")
			}
			if len(kids) > 20 {
				t.Errorf("%d kids listed, want at most 20", len(kids))
			}
			if kids[0] != clipForLog(longKID) {
				t.Errorf("10 KiB kid logged as %.80q..., want it cut", kids[0])
			}
			for _, kid := range kids {
				if s, _ := kid.(string); len(s) > len(clipForLog(longKID)) {
					t.Fatalf("kid of %d bytes logged", len(s))
				}
			}
		})
	}
}

// TestFetchStatus: the counts, last error and times the admin API and the
// metrics read, through a load, a 304, failures and a recovery.
func TestFetchStatus(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	is.setHeader("ETag", `"v1"`)
	clock := &fakeClock{}
	s, _ := startKeySet(t, "jwks_url", is.URL, time.Hour, clock)
	waitLoaded(t, s)
	first := s.statusOf(0)

	tests := []struct {
		name      string
		issuer    func() // how the issuer answers the next fetch
		want      fetchCounts
		wantError string // a part of LastError; "" wants none
		success   bool   // LastSuccess moves
		nextIn    time.Duration
	}{
		{"304 confirms the set", func() {
			is.misbehave(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
		}, fetchCounts{OK: 1, NotModified: 1}, "", true, time.Hour},
		{"HTTP 503", func() { is.misbehave(nil); is.serve(http.StatusServiceUnavailable, []byte("down")) },
			fetchCounts{OK: 1, NotModified: 1, Error: 1}, "HTTP 503", false, time.Second},
		{"Gigya error envelope", func() { is.serve(http.StatusOK, []byte(gigyaInvalidAPIKey)) },
			fetchCounts{OK: 1, NotModified: 1, Error: 2}, "errorCode 400093", false, 2 * time.Second},
		{"recovered", func() { is.serve(http.StatusOK, jwksJSON(t, k1)) },
			fetchCounts{OK: 2, NotModified: 1, Error: 2}, "", true, time.Hour},
	}
	prev := first
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.issuer()
			clock.advance(time.Minute)
			s.refreshNow(context.Background())
			st := s.statusOf(0)
			if st.Fetches != tc.want {
				t.Errorf("fetches = %+v, want %+v", st.Fetches, tc.want)
			}
			if tc.wantError == "" && st.LastError != "" || !strings.Contains(st.LastError, tc.wantError) {
				t.Errorf("last error = %q, want %q", st.LastError, tc.wantError)
			}
			if moved := st.LastSuccess.After(prev.LastSuccess); moved != tc.success {
				t.Errorf("last success %v -> %v, want moved = %v", prev.LastSuccess, st.LastSuccess, tc.success)
			}
			if due := st.NextRefresh.Sub(clock.now()); due > tc.nextIn || due < tc.nextIn-time.Second {
				t.Errorf("next refresh due in %v, want %v", due, tc.nextIn)
			}
			if st.Set == nil || st.Set.Lookup("k1") == nil || st.Stale {
				t.Errorf("set in use: %v, stale %v; want k1, not stale", st.Set, st.Stale)
			}
			prev = st
		})
	}
	if first.Fetches != (fetchCounts{OK: 1}) || first.LastSuccess.IsZero() || first.LastError != "" {
		t.Errorf("after the first load: %+v", first.fetchStatus)
	}
}

// TestFetchStatusBoundsLastError: an error can quote what the issuer sent;
// what the status keeps of it is bounded.
func TestFetchStatusBoundsLastError(t *testing.T) {
	huge := "http://127.0.0.1/" + strings.Repeat("j", 100<<10)
	srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":"http://%s","jwks_uri":"%s\u0000"}`, r.Host, huge)
	})
	s, _ := startKeySet(t, "oidc", srv.URL, time.Hour, &fakeClock{})
	s.Refresh(context.Background())
	if got := s.statusOf(0).LastError; len(got) == 0 || len(got) > maxErrorText+30 {
		t.Fatalf("last error of %d bytes, want 1..%d", len(got), maxErrorText+30)
	}
}

// TestStaleWhileServingStoredSet: a set restored from storage because the
// issuer is down is stale until a fetch reaches the issuer.
func TestStaleWhileServingStoredSet(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	clock := &fakeClock{}
	cfg := keySetConfig{kind: "jwks_url", location: is.URL, maxStale: time.Hour}
	storedOnce(t, cfg, storage, clock)

	is.serve(http.StatusServiceUnavailable, nil)
	s, _ := startStoredKeySet(t, cfg, storage, clock)
	s.Refresh(context.Background())
	st := s.statusOf(0)
	if !st.Stale || st.Set == nil || st.LastError == "" || !st.LastSuccess.IsZero() || st.Fetches != (fetchCounts{Error: 1}) {
		t.Fatalf("restored during an outage: stale %v, last error %q, last success %v, fetches %+v",
			st.Stale, st.LastError, st.LastSuccess, st.Fetches)
	}
	is.serve(http.StatusOK, jwksJSON(t, k1))
	s.refreshNow(context.Background())
	if st := s.statusOf(0); st.Stale || st.LastError != "" || st.LastSuccess.IsZero() {
		t.Fatalf("after the issuer recovered: stale %v, last error %q, last success %v", st.Stale, st.LastError, st.LastSuccess)
	}
}

// TestForcedRefresh: an operator's refresh ignores min_refresh_interval, and
// forced calls that arrive while a fetch runs share one fetch after it
// (which sees what the issuer serves after the call), while requests join
// the running one.
func TestForcedRefresh(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1))
	s, _ := startKeySet(t, "jwks_url", is.URL, time.Hour, &fakeClock{})
	waitLoaded(t, s)

	s.Refresh(context.Background())
	if got := is.hits.Load(); got != 1 {
		t.Fatalf("a request inside min_refresh_interval fetched: %d hits", got)
	}
	s.refreshNow(context.Background())
	if got := is.hits.Load(); got != 2 {
		t.Fatalf("forced refresh inside min_refresh_interval: %d hits, want 2", got)
	}

	block := make(chan struct{})
	is.mu.Lock()
	is.blocked = block
	is.mu.Unlock()
	running := s.requestFetch(true, nil)
	for is.hits.Load() < 3 { // the fetch is at the issuer
		time.Sleep(time.Millisecond)
	}
	is.serve(http.StatusOK, jwksJSON(t, k2)) // rotated after that fetch was sent
	if ch := s.requestFetch(false, s.Current()); ch != running {
		t.Fatal("a request did not join the running fetch")
	}
	after := s.requestFetch(true, nil)
	if after == running {
		t.Fatal("a forced refresh joined the fetch that was already running")
	}
	for range 20 {
		if ch := s.requestFetch(true, nil); ch != after {
			t.Fatal("forced refreshes during one fetch do not share the next")
		}
	}
	close(block)
	for _, ch := range []<-chan struct{}{running, after} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("fetch did not end")
		}
	}
	if got := is.hits.Load(); got != 4 {
		t.Fatalf("issuer hit %d times, want 4 (load, forced, running, one shared after it)", got)
	}
	if s.Current().Lookup("k2") == nil {
		t.Fatal("the fetch after the forced call did not pick up the rotated key")
	}
}

// TestLiveKeySets: every set in the pool, in a stable order, with its
// handler count and its metrics source.
func TestLiveKeySets(t *testing.T) {
	is := newIssuer(t, jwksJSON(t, newRSAKey(t, "k1", 0)))
	gigyaURL := is.URL + "/accounts.getJWTPublicKey?apiKey=3_abc&V2=true"
	configs := []keySetConfig{ // in the order liveKeySets lists them
		{kind: "gigya", location: gigyaURL, minRefresh: time.Hour},
		{kind: "jwks_url", location: is.URL + "/a", minRefresh: time.Hour},
		{kind: "jwks_url", location: is.URL + "/a", minRefresh: 2 * time.Hour},
		{kind: "jwks_url", location: is.URL + "/b", minRefresh: time.Hour},
	}
	wantSource := []string{is.URL + "/accounts.getJWTPublicKey", is.URL + "/a", is.URL + "/a", is.URL + "/b"}
	wantHandlers := []int{1, 2, 1, 3}
	for i := len(configs) - 1; i >= 0; i-- { // acquired out of order
		for range wantHandlers[i] {
			if _, err := acquireKeySet(configs[i], zap.NewNop, nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = releaseKeySet(configs[i]) })
		}
	}
	var got []keySetStatus
	for _, st := range liveKeySets() {
		if strings.HasPrefix(st.Location, is.URL) {
			got = append(got, st)
		}
	}
	if len(got) != len(configs) {
		t.Fatalf("%d live sets, want %d", len(got), len(configs))
	}
	for i, st := range got {
		if st.Kind != configs[i].kind || st.Location != configs[i].location || st.Source != wantSource[i] || st.Handlers != wantHandlers[i] {
			t.Errorf("set %d: %s %s source %s handlers %d; want %s %s source %s handlers %d", i,
				st.Kind, st.Location, st.Source, st.Handlers, configs[i].kind, configs[i].location, wantSource[i], wantHandlers[i])
		}
	}
}

// TestRefreshSinceNewerSet: a caller that found a set wanting gets the set
// installed since it looked, without a fetch (a request that read "no keys"
// just before the first fetch ended must not start a second one).
func TestRefreshSinceNewerSet(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	s, err := newRefreshingKeySet(keySetConfig{kind: "jwks_url", location: is.URL, minRefresh: time.Nanosecond}, zap.NewNop, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destruct()
	first := s.RefreshSince(context.Background(), nil)
	if first == nil || is.hits.Load() != 1 {
		t.Fatalf("first load: set %v, %d fetches", first, is.hits.Load())
	}
	if got := s.RefreshSince(context.Background(), nil); got != first || is.hits.Load() != 1 {
		t.Fatalf("a caller that saw no set fetched again: %d fetches", is.hits.Load())
	}
	if got := s.RefreshSince(context.Background(), first); got == nil || is.hits.Load() != 2 {
		t.Fatalf("a caller that saw the current set did not fetch: %d fetches", is.hits.Load())
	}
}
