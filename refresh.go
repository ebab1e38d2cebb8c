package idtoken

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	defaultRefreshInterval    = time.Hour
	defaultMinRefreshInterval = 10 * time.Second
	minMaxAge, maxMaxAge      = time.Minute, 24 * time.Hour
	initialBackoff            = time.Second
)

// keySets holds one RefreshingKeySet per source and refresh settings for the
// whole process, so handlers naming the same source share one set and a
// config reload does not fetch again.
var keySets = caddy.NewUsagePool()

// keySetConfig identifies a shared key set; it is the pool key, so it
// stays comparable (pins is a string, not a slice). Handlers of one source
// that pin different keys hold different sets, since each refuses keys the
// other may use; they share the stored copy, which is the issuer's whole
// document, filtered when restored.
type keySetConfig struct {
	kind            string // "gigya", "oidc", "jwks_url" or "jwks_file"
	location        string // fetch URL, issuer URL or file path
	pins            string // pinSet(key_thumbprints); "": every usable key may be used
	refreshInterval time.Duration
	minRefresh      time.Duration
	maxStale        time.Duration // 0: do not persist
	timeout         time.Duration // per fetch; 0: fetchTimeout (tests shorten it)
}

// acquireKeySet returns the shared set for cfg, creating and starting it if
// no handler uses it yet. Each call must be paired with releaseKeySet.
// storage (nil: none) becomes the set's storage: the latest config's wins.
func acquireKeySet(cfg keySetConfig, logger func() *zap.Logger, storage certmagic.Storage) (*RefreshingKeySet, error) {
	v, loaded, err := keySets.LoadOrNew(cfg, func() (caddy.Destructor, error) {
		return newRefreshingKeySet(cfg, logger, time.Now, storage)
	})
	if err != nil {
		return nil, err
	}
	s := v.(*RefreshingKeySet)
	if loaded {
		s.setStorage(storage)
	}
	return s, nil
}

// releaseKeySet drops one reference; the last one stops the set's goroutine.
func releaseKeySet(cfg keySetConfig) error {
	_, err := keySets.Delete(cfg)
	return err
}

// liveKeySet is one entry of the keySets pool.
type liveKeySet struct {
	cfg      keySetConfig
	set      *RefreshingKeySet
	handlers int // the pool's reference count: loaded handlers using the set
}

// liveSets lists the pool's sets in a stable order: by kind, location,
// pins, then refresh settings (sets of one source with different pins or
// settings are distinct). A set released while the list is made is left out.
func liveSets() []liveKeySet {
	var live []liveKeySet
	keySets.Range(func(key, value any) bool {
		// Only collect: Range holds the pool's lock, and References takes it again.
		live = append(live, liveKeySet{cfg: key.(keySetConfig), set: value.(*RefreshingKeySet)})
		return true
	})
	kept := live[:0]
	for _, l := range live {
		if n, ok := keySets.References(l.cfg); ok {
			l.handlers = n
			kept = append(kept, l)
		}
	}
	slices.SortFunc(kept, func(a, b liveKeySet) int {
		return cmp.Or(
			cmp.Compare(a.cfg.kind, b.cfg.kind),
			cmp.Compare(a.cfg.location, b.cfg.location),
			cmp.Compare(a.cfg.pins, b.cfg.pins),
			cmp.Compare(a.cfg.refreshInterval, b.cfg.refreshInterval),
			cmp.Compare(a.cfg.minRefresh, b.cfg.minRefresh),
			cmp.Compare(a.cfg.maxStale, b.cfg.maxStale),
			cmp.Compare(a.cfg.timeout, b.cfg.timeout))
	})
	return kept
}

// keySetStatus is a point-in-time copy of one live key set's state. Nothing
// in it changes after it is made: Set is an immutable snapshot and the rest
// are copies.
type keySetStatus struct {
	Kind     string // "gigya", "oidc", "jwks_url" or "jwks_file"
	Location string // as configured: Gigya's getJWTPublicKey URL with its query, the OIDC issuer, the JWKS URL or file path
	// Source is the metrics label: Location, except that a Gigya URL loses
	// its query (apiKey=...&V2=true), so labels name the data center's
	// endpoint rather than carry a site's API key. Two live sets can
	// therefore share a Source (two Gigya sites on one data center, or one
	// location with different refresh settings): add their values up.
	Source   string
	Handlers int     // loaded handlers using the set
	Set      *KeySet // the keys in use (Len, Issuer, Loaded); nil before any loaded
	// Pins are the key_thumbprints the set keeps keys by, sorted; nil when
	// it uses every usable key. Two live sets of one location differ by
	// them (or by refresh settings). Shared with the set, which never
	// changes it.
	Pins []string
	// Stale: Set was restored from storage and the issuer has not been
	// reached since (the first fetch that reaches it, 200 or 304, replaces
	// or reconfirms it). The admin API's from_storage, the stale gauge.
	Stale bool
	fetchStatus
}

// liveKeySets returns the status of every live key set, in liveSets' order.
// It is cheap and safe to call at any time (a metrics scrape, an admin
// request): it takes the pool's read lock and each set's mutex only to
// copy a few fields, never while the key flow does I/O, and it changes no
// state.
func liveKeySets() []keySetStatus {
	live := liveSets()
	out := make([]keySetStatus, len(live))
	for i, l := range live {
		out[i] = l.set.statusOf(l.handlers)
	}
	return out
}

// statusOf copies the set's state.
func (s *RefreshingKeySet) statusOf(handlers int) keySetStatus {
	s.mu.Lock()
	fs := s.status
	s.mu.Unlock()
	set := s.current.Load()
	return keySetStatus{
		Kind:        s.id.kind,
		Location:    s.id.location,
		Source:      s.id.metricSource(),
		Handlers:    handlers,
		Set:         set,
		Pins:        s.pins,
		Stale:       set != nil && set.origin.fromStorage,
		fetchStatus: fs,
	}
}

// metricSource is the source label for the set id names (see keySetStatus.Source).
func (id sourceID) metricSource() string {
	if id.kind != "gigya" {
		return id.location
	}
	u, _, _ := strings.Cut(id.location, "?")
	return u
}

// RefreshingKeySet keeps a source's current KeySet and refreshes it in one
// background goroutine. Requests read the snapshot without locking; the
// mutex only coordinates refetch requests and guards the fetch status; it is
// never held during I/O.
type RefreshingKeySet struct {
	src         source
	id          sourceID     // the configured source; names its stored copy
	pins        keyPins      // the keys that may be used; empty: all (src applies them to what it loads)
	client      *http.Client // nil for files
	interval    time.Duration
	minInterval time.Duration
	maxStale    time.Duration
	timeout     time.Duration // bounds a fetch and a request's wait for one
	logger      func() *zap.Logger
	now         func() time.Time

	current atomic.Pointer[KeySet]
	gens    atomic.Uint64 // last generation given to a snapshot
	storage atomic.Pointer[storageRef]

	toldNoStored bool // "no usable stored key set" was logged; refresh goroutine only

	mu        sync.Mutex
	pending   chan struct{} // closed when the queued or running fetch ends
	running   bool          // the pending fetch has started
	again     chan struct{} // a forced fetch queued behind the running one; closed when it ends
	lastFetch time.Time
	stopped   bool
	wake      chan struct{} // capacity 1; holds a token only while pending != nil
	status    fetchStatus   // written by the refresh goroutine (and the constructor)

	cancel context.CancelFunc
	done   chan struct{}
}

// fetchStatus is the key flow's account of its fetches, for the admin API
// and metrics. Only the refresh goroutine writes it (and the constructor,
// before that starts), under mu; readers copy it under mu. Requests never
// touch it.
type fetchStatus struct {
	NextRefresh time.Time   // when the next scheduled fetch is due
	LastError   string      // why the last fetch failed; "" once one succeeds
	LastSuccess time.Time   // end of the last fetch that brought keys or a 304; zero before one
	Fetches     fetchCounts // every fetch since the set started
}

// fetchCounts counts fetches by result. A jwks_file's read at start counts
// as OK.
type fetchCounts struct {
	OK          uint64 // a usable key document
	NotModified uint64 // HTTP 304: the current set confirmed
	Error       uint64 // anything else (the set in use is kept)
}

// maxErrorText bounds LastError: an error can quote what a hostile issuer
// sent (a jwks_uri from a 1 MiB discovery document).
const maxErrorText = 1024

// storageRef boxes a storage so it can be swapped atomically.
type storageRef struct{ certmagic.Storage }

// newSource builds the source of cfg's kind, keeping only the keys cfg
// pins, with the HTTP client it uses (nil for a file) for the caller to
// close.
func newSource(cfg keySetConfig) (source, *http.Client, error) {
	src, client, err := newUnpinnedSource(cfg)
	if err != nil || cfg.pins == "" {
		return src, client, err
	}
	return pinnedSource{source: src, pins: parsePins(cfg.pins)}, client, nil
}

// newUnpinnedSource builds the source of cfg's kind, which loads every
// usable key.
func newUnpinnedSource(cfg keySetConfig) (source, *http.Client, error) {
	switch cfg.kind {
	case "jwks_file":
		return &fileSource{path: cfg.location}, nil, nil
	case "oidc":
		client := newHTTPClient()
		return &discoverySource{issuer: cfg.location, client: client}, client, nil
	case "gigya", "jwks_url":
		client := newHTTPClient()
		return &jwksSource{url: cfg.location, client: client}, client, nil
	}
	// The kind names the stored copy: an unknown one is a programming error.
	return nil, nil, fmt.Errorf("unknown key source kind %q", cfg.kind)
}

// newRefreshingKeySet starts a key set; now is its clock for the refetch
// rate floor and stored-set age (tests move it instead of sleeping).
func newRefreshingKeySet(cfg keySetConfig, logger func() *zap.Logger, now func() time.Time, storage certmagic.Storage) (*RefreshingKeySet, error) {
	s := &RefreshingKeySet{
		id:          sourceID{kind: cfg.kind, location: cfg.location},
		pins:        parsePins(cfg.pins),
		interval:    cfg.refreshInterval,
		minInterval: cfg.minRefresh,
		maxStale:    cfg.maxStale,
		timeout:     cmp.Or(cfg.timeout, fetchTimeout),
		logger:      logger,
		now:         now,
		wake:        make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	s.setStorage(storage)
	if s.minInterval <= 0 {
		s.minInterval = defaultMinRefreshInterval
	}
	var err error
	if s.src, s.client, err = newSource(cfg); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	first := time.Duration(0)
	if cfg.kind == "jwks_file" {
		// A local file has nothing to wait for: load it now so a bad file
		// is a configuration error.
		res, err := s.src.fetch(ctx, nil)
		s.logSkipped(res)
		if err != nil {
			cancel()
			return nil, err
		}
		res.set.Loaded = s.now()
		s.current.Store(s.stamp(res.set))
		s.logLoaded(res.set)
		s.lastFetch = s.now()
		first = s.refreshAfter(0)
		s.status.Fetches.OK++
		s.status.LastSuccess = s.lastFetch
	} else {
		// Requests that arrive before the first fetch ends wait for it.
		s.pending = make(chan struct{})
	}
	s.status.NextRefresh = s.now().Add(first)
	go s.run(ctx, first)
	return s, nil
}

// Current is the latest key set, or nil if none has loaded yet.
func (s *RefreshingKeySet) Current() *KeySet { return s.current.Load() }

// Refresh asks for a fetch (used when a token names an unknown kid, or no key
// has loaded yet) and waits for it, at most until ctx ends or the fetch
// timeout passes. A fetch already running or queued is shared; a new one starts only
// if the last ended at least min_refresh_interval ago, so a flood of random
// kids cannot become a flood of fetches. It returns the key set current after
// the wait.
func (s *RefreshingKeySet) Refresh(ctx context.Context) *KeySet {
	return s.RefreshSince(ctx, s.current.Load())
}

// RefreshSince is Refresh for a caller that found seen (nil: none) wanting:
// when another set was installed since the caller looked, that one is
// returned without a fetch. A request that read "no keys" or "unknown kid"
// just before a fetch ended must not start another one.
func (s *RefreshingKeySet) RefreshSince(ctx context.Context, seen *KeySet) *KeySet {
	s.await(ctx, s.requestFetch(false, seen))
	return s.current.Load()
}

// refreshNow is an operator's "fetch now" (the admin API): it ignores
// min_refresh_interval, and the fetch it waits for starts after the call,
// so keys an issuer published just before are seen. Callers that arrive
// together share one fetch: a fetch queued but not started is joined; one
// already running is followed by one more fetch, shared by every forced
// call that arrives while it runs. It waits like Refresh, at most the fetch
// timeout.
func (s *RefreshingKeySet) refreshNow(ctx context.Context) {
	s.await(ctx, s.requestFetch(true, nil))
}

// await waits until ch (nil: nothing to wait for) is closed, ctx ends or the
// fetch timeout passes.
func (s *RefreshingKeySet) await(ctx context.Context, ch <-chan struct{}) {
	if ch == nil {
		return
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-ctx.Done():
	case <-t.C:
	}
}

// requestFetch returns a channel closed when the fetch serving this request
// ends, or nil when no fetch will happen (rate floor, or stopped). A forced
// request skips the rate floor and does not join a fetch already running.
// An unforced one needs none when the set is no longer seen, the set its
// caller found wanting (the set and lastFetch change together, under mu).
func (s *RefreshingKeySet) requestFetch(force bool, seen *KeySet) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !force && s.current.Load() != seen:
		return nil
	case s.pending != nil && force && s.running:
		if s.again == nil {
			s.again = make(chan struct{})
		}
		return s.again
	case s.pending != nil:
		return s.pending
	case s.stopped, !force && s.now().Sub(s.lastFetch) < s.minInterval:
		return nil
	}
	s.pending = make(chan struct{})
	s.wake <- struct{}{} // cannot block: wake is empty whenever pending is nil
	return s.pending
}

// run is the refresh goroutine: one fetch at a time, on schedule or on request.
func (s *RefreshingKeySet) run(ctx context.Context, first time.Duration) {
	defer close(s.done)
	timer := time.NewTimer(first)
	defer timer.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.stopped = true
			for _, ch := range []chan struct{}{s.pending, s.again} {
				if ch != nil {
					close(ch)
				}
			}
			s.pending, s.again = nil, nil
			s.mu.Unlock()
			return
		case <-timer.C:
		case <-s.wake:
			// a request queued a fetch; s.pending is set
		}
		s.mu.Lock()
		if s.pending == nil { // the schedule's fetch; requests may join it
			s.pending = make(chan struct{})
		}
		s.running = true
		s.mu.Unlock()
		timer.Reset(s.fetchOnce(ctx, &backoff))
	}
}

// fetchOnce fetches, installs the result or keeps the previous set, wakes
// the waiters and returns when the next scheduled fetch is due.
func (s *RefreshingKeySet) fetchOnce(ctx context.Context, backoff *time.Duration) time.Duration {
	prev := s.current.Load()
	fctx, cancel := context.WithTimeout(ctx, s.timeout)
	res, err := s.src.fetch(fctx, prev)
	cancel()
	s.logSkipped(res)

	var next time.Duration
	switch {
	case err == nil && res.notModified:
		// The issuer confirmed the current set: it is as good as fetched now.
		res.set = prev.reconfirmed(s.now())
		*backoff = 0
		next = s.refreshAfter(res.maxAge)
	case err == nil:
		res.set.Loaded = s.now()
		*backoff = 0
		next = s.refreshAfter(res.maxAge)
	default:
		*backoff = min(max(*backoff*2, initialBackoff), s.maxInterval())
		next = *backoff
		if ctx.Err() != nil {
			break // stopping: the failure is ours, not the issuer's
		}
		msg := "fetching key set failed; keeping previous keys"
		if prev == nil {
			msg = "fetching key set failed; no keys loaded"
		}
		s.logger().Warn(msg,
			zap.String("source", s.src.String()),
			zap.Error(err),
			zap.Bool("have_keys", prev != nil),
			durationField("retry_in", next))
		// Before waking the waiters, so they see a restored set.
		s.fallBackToStorage(ctx, prev)
	}

	// Installing the set and ending the pending fetch happen together: a
	// request that still saw the old set either joins a fetch that has not
	// installed yet or, once this one has, may start a new one.
	s.mu.Lock()
	switch {
	case err == nil && res.notModified:
		s.current.Store(res.set) // same keys: same generation
		s.status.Fetches.NotModified++
	case err == nil:
		s.current.Store(s.stamp(res.set))
		s.status.Fetches.OK++
	default:
		s.status.Fetches.Error++
		s.status.LastError = clip(err.Error(), maxErrorText)
	}
	s.lastFetch = s.now()
	if err == nil {
		s.status.LastError = ""
		s.status.LastSuccess = s.lastFetch
	}
	s.status.NextRefresh = s.lastFetch.Add(next)
	if s.pending != nil {
		close(s.pending)
		s.pending = nil
	}
	s.running = false
	select { // a wake sent for the fetch that just ended is spent
	case <-s.wake:
	default:
	}
	if s.again != nil { // forced calls arrived during this fetch: one more
		s.pending, s.again = s.again, nil
		s.wake <- struct{}{}
	}
	s.mu.Unlock()

	if err == nil {
		if !res.notModified {
			s.logLoaded(res.set)
		}
		s.persist(ctx, res.set) // after a 304 too: the stored copy's age restarts
	}
	return next
}

// stamp gives set the next generation, before it is published.
func (s *RefreshingKeySet) stamp(set *KeySet) *KeySet {
	set.gen = s.gens.Add(1)
	return set
}

// setStorage makes storage (nil: none) the one sets are saved to and restored from.
func (s *RefreshingKeySet) setStorage(storage certmagic.Storage) {
	if storage == nil || s.maxStale <= 0 {
		s.storage.Store(nil)
		return
	}
	s.storage.Store(&storageRef{storage})
}

// persist saves a freshly fetched set, so a restart during an issuer outage
// can still verify tokens.
func (s *RefreshingKeySet) persist(ctx context.Context, set *KeySet) {
	ref := s.storage.Load()
	if ref == nil || set.origin.raw == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := saveKeySet(sctx, ref.Storage, s.id, set); err != nil {
		s.logger().Warn("saving key set to storage failed", zap.String("source", s.src.String()), zap.Error(err))
	}
}

// fallBackToStorage runs after a failed fetch. With no keys at all, it
// restores the stored set if it is younger than max_stale; a restored set
// that has grown older than max_stale is dropped.
func (s *RefreshingKeySet) fallBackToStorage(ctx context.Context, prev *KeySet) {
	ref := s.storage.Load()
	switch {
	case ref == nil:
		return
	case prev != nil && prev.origin.fromStorage && s.now().Sub(prev.Loaded) > s.maxStale:
		s.current.CompareAndSwap(prev, nil)
		s.logger().Warn("stored key set is older than max_stale; no longer using it",
			zap.String("source", s.src.String()), durationField("max_stale", s.maxStale))
		return
	case prev != nil:
		return
	}
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	set, err := s.loadStored(sctx, ref.Storage)
	if err != nil {
		// Retries while the issuer is down look again (another node may
		// have stored a set since) but say why only the first time.
		if !s.toldNoStored {
			s.toldNoStored = true
			s.logger().Debug("no usable stored key set", zap.String("source", s.src.String()), zap.Error(err))
		}
		return
	}
	if s.current.CompareAndSwap(nil, s.stamp(set)) {
		s.logger().Warn("issuer unreachable; serving with the stored key set", append([]zap.Field{
			zap.String("source", s.src.String()),
			durationField("age", s.now().Sub(set.Loaded).Round(time.Second)),
		}, keyListFields(set)...)...)
	}
}

// loadStored reads the stored set, keeping only the keys the set pins: the
// stored document may have been saved before the pin, or by a handler of
// the same source that pins other keys.
func (s *RefreshingKeySet) loadStored(ctx context.Context, storage certmagic.Storage) (*KeySet, error) {
	set, err := loadKeySet(ctx, storage, s.id, s.maxStale, s.now())
	if err != nil {
		return nil, err
	}
	var unpinned SkippedKeys // the restore's warning lists the kids in use; the fetch's names the others
	if set, err = s.pins.keep(set, &unpinned); err != nil {
		return nil, fmt.Errorf("stored key set: %w", err)
	}
	return set, nil
}

func (s *RefreshingKeySet) logLoaded(set *KeySet) {
	s.logger().Info("key set loaded", append([]zap.Field{zap.String("source", s.src.String())}, keyListFields(set)...)...)
}

// maxLoggedKIDs bounds how many kids one log line lists: a 1 MiB document
// can hold thousands of keys.
const maxLoggedKIDs = 20

// keyListFields describes set's keys for a log line: how many, the first
// maxLoggedKIDs kids (each cut with clipForLog) and how many were not listed.
func keyListFields(set *KeySet) []zap.Field {
	fields := []zap.Field{zap.Int("count", set.Len()), zap.Array("kids", loggedKIDs{set})}
	if n := set.Len() - maxLoggedKIDs; n > 0 {
		fields = append(fields, zap.Int("kids_not_listed", n))
	}
	return fields
}

// loggedKIDs writes the first maxLoggedKIDs kids of a set, cut.
type loggedKIDs struct{ set *KeySet }

func (l loggedKIDs) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, k := range l.set.keys[:min(len(l.set.keys), maxLoggedKIDs)] {
		enc.AppendString(clipForLog(k.ID))
	}
	return nil
}

// logSkipped writes one warning for a fetch's unusable keys, however many:
// the count per reason and a few examples.
func (s *RefreshingKeySet) logSkipped(res fetched) {
	if len(res.skipped) == 0 {
		return
	}
	s.logger().Warn("skipping unusable keys",
		zap.String("source", s.src.String()),
		zap.Int("skipped", res.skipped.Total()),
		zap.Object("reasons", skipCounts(res.skipped)),
		zap.Array("examples", skipExamples(res.skipped)))
}

// skipCounts logs the number of skipped keys per reason.
type skipCounts SkippedKeys

func (c skipCounts) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, g := range c {
		enc.AddInt(g.Reason, g.Count)
	}
	return nil
}

// skipExamples logs the skipped keys a summary kept, kids cut.
type skipExamples SkippedKeys

func (x skipExamples) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	var keys []SkippedKey // at most maxSkipExamples
	for _, g := range x {
		keys = append(keys, g.Examples...)
	}
	slices.SortFunc(keys, func(a, b SkippedKey) int { return cmp.Compare(a.Index, b.Index) })
	for _, k := range keys {
		if err := enc.AppendObject(skipExample(k)); err != nil {
			return err
		}
	}
	return nil
}

// skipExample logs one skipped key; with its thumbprint when it has one (a
// key that is not pinned), so an operator can tell which key it is.
type skipExample SkippedKey

func (k skipExample) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddInt("index", k.Index)
	enc.AddString("kid", clipForLog(k.KID))
	if k.Thumbprint != "" {
		enc.AddString("thumbprint", k.Thumbprint)
	}
	enc.AddString("reason", k.Reason)
	enc.AddString("error", k.Err.Error())
	return nil
}

// refreshAfter is the delay before the next scheduled fetch after a success:
// refresh_interval if configured, else the answer's max-age clamped to
// [1m, 24h], else one hour.
func (s *RefreshingKeySet) refreshAfter(maxAge time.Duration) time.Duration {
	switch {
	case s.interval > 0:
		return s.interval
	case maxAge > 0:
		return min(max(maxAge, minMaxAge), maxMaxAge)
	}
	return defaultRefreshInterval
}

// maxInterval caps the failure backoff.
func (s *RefreshingKeySet) maxInterval() time.Duration {
	if s.interval > 0 {
		return s.interval
	}
	return defaultRefreshInterval
}

// Destruct stops the refresh goroutine and closes idle connections; the
// UsagePool calls it when the last handler using the set is cleaned up.
func (s *RefreshingKeySet) Destruct() error {
	s.cancel()
	<-s.done
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	return nil
}
