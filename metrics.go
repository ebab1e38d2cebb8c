package idtoken

import (
	"errors"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics. The request flow only adds to atomic counters; everything else
// (labels, key-set gauges) is worked out at scrape time by a collector that
// each config registers in its own registry (ctx.GetMetricsRegistry). The
// counters live in one requestCounts per process, held in a UsagePool like
// the key sets, so they go on counting across config reloads (the new
// config acquires it before the old one releases it) instead of starting
// over, and a reload never registers anything twice.

// Outcomes of a request the handler answers or passes on; each request
// counts once.
const (
	outcomeAccepted   = iota // a token verified (also a session POST that set the cookie)
	outcomeAnonymous         // passed on by optional without a token; also a logout
	outcomeRejected          // refused: 400, 401, 403, 503, or a refused session request
	outcomeRedirected        // sent to login_redirect instead of a 401
	outcomePreflight         // a CORS preflight passed by pass_cors_preflight
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"accepted", "anonymous", "rejected", "redirected", "preflight"}

// reasonSlugs are the reason label values, one per rejection reason; index
// 0 is the empty reason of the outcomes that have none. The README lists
// them.
var reasonSlugs = [...]struct{ reason, slug string }{
	{"", ""},
	{ReasonMissing, "missing"},
	{ReasonTooLong, "too_long"},
	{ReasonMalformed, "malformed"},
	{ReasonAlg, "algorithm"},
	{ReasonCrit, "crit"},
	{ReasonNoKID, "no_kid"},
	{ReasonUnknownKID, "unknown_kid"},
	{ReasonKeyMismatch, "key_mismatch"},
	{ReasonSignature, "bad_signature"},
	{ReasonNoExp, "no_exp"},
	{ReasonExpired, "expired"},
	{ReasonNotYetValid, "not_yet_valid"},
	{ReasonIssuedFuture, "issued_in_future"},
	{ReasonIssuer, "issuer"},
	{ReasonAudience, "audience"},
	{ReasonAPIKey, "api_key"},
	{ReasonRequire, "require"},
	{ReasonScope, "scope"},
	{ReasonTooOld, "too_old"},
	{ReasonNoKeys, "no_keys"},
	{ReasonManyTokens, "many_tokens"},
	{ReasonBadQuery, "bad_query"},
	{reasonSessionRequest, "session_request"},
	{reasonCookieTooLarge, "cookie_too_large"},
}

// Reasons of session endpoint refusals that are not about a token's
// verification; metrics only (the client gets a precise description).
const (
	reasonSessionRequest = "session request refused" // origin, method, content type, body
	reasonCookieTooLarge = "cookie too large"
)

const numReasons = len(reasonSlugs)

// reasonIndex finds a reason's slot; an unknown reason (none is) counts
// under the empty reason rather than being lost.
func reasonIndex(reason string) int {
	for i, r := range reasonSlugs {
		if r.reason == reason {
			return i
		}
	}
	return 0
}

// requestCounts are the process's request and cache counters.
type requestCounts struct {
	requests [numOutcomes][numReasons]atomic.Uint64
	hits     atomic.Uint64
	misses   atomic.Uint64
}

func (*requestCounts) Destruct() error { return nil }

// counters holds the one requestCounts of the process.
var counters = caddy.NewUsagePool()

const countersKey = "idtoken.requests"

// acquireCounts returns the process's counters; pair with releaseCounts.
func acquireCounts() *requestCounts {
	v, _, _ := counters.LoadOrNew(countersKey, func() (caddy.Destructor, error) { return new(requestCounts), nil })
	return v.(*requestCounts)
}

func releaseCounts() { _, _ = counters.Delete(countersKey) }

func (c *requestCounts) count(outcome int, reason string) {
	if c != nil {
		c.requests[outcome][reasonIndex(reason)].Add(1)
	}
}

// countPassed counts a request passed on with no reason: fast, no lookup.
func (c *requestCounts) countPassed(outcome int) {
	if c != nil {
		c.requests[outcome][0].Add(1)
	}
}

func (c *requestCounts) countLookup(hit bool) {
	switch {
	case c == nil:
	case hit:
		c.hits.Add(1)
	default:
		c.misses.Add(1)
	}
}

var (
	requestsDesc = prometheus.NewDesc("caddy_idtoken_requests_total",
		"Requests the idtoken handler answered or passed on, by outcome and rejection reason.",
		[]string{"outcome", "reason"}, nil)
	cacheLookupsDesc = prometheus.NewDesc("caddy_idtoken_cache_lookups_total",
		"Lookups of tokens in the verified-token cache.", []string{"result"}, nil)
)

// metricsCollector reads the counters (and the live key sets) when the
// registry is scraped.
type metricsCollector struct{ counts *requestCounts }

func (metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- cacheLookupsDesc
	ch <- fetchesDesc
	ch <- keysDesc
	ch <- lastSuccessDesc
	ch <- staleDesc
}

func (m metricsCollector) Collect(ch chan<- prometheus.Metric) {
	for o := range numOutcomes {
		for r := range numReasons {
			n := m.counts.requests[o][r].Load()
			// Outcomes without a reason always show; a reason shows once
			// it has happened.
			if n == 0 && (r != 0 || o == outcomeRejected || o == outcomeRedirected) {
				continue
			}
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), outcomeNames[o], reasonSlugs[r].slug)
		}
	}
	ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(m.counts.hits.Load()), "hit")
	ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(m.counts.misses.Load()), "miss")
	collectKeySets(ch, liveKeySets())
}

var (
	fetchesDesc = prometheus.NewDesc("caddy_idtoken_keyset_fetches_total",
		"Fetches of key sets, by configured source and result (ok, not_modified, error).", []string{"source", "result"}, nil)
	keysDesc = prometheus.NewDesc("caddy_idtoken_keyset_keys",
		"Usable keys in the current key set of a source.", []string{"source"}, nil)
	lastSuccessDesc = prometheus.NewDesc("caddy_idtoken_keyset_last_success_timestamp_seconds",
		"When a fetch of the source last brought keys or confirmed them (304); 0 before one did.", []string{"source"}, nil)
	staleDesc = prometheus.NewDesc("caddy_idtoken_keyset_stale",
		"1 while the source's keys were restored from storage because the issuer cannot be reached, else 0.", []string{"source"}, nil)
)

// sourceSamples are one source's key-set values. Several live sets can
// share a source label (two Gigya sites on one data center, or one location
// under two refresh settings during a reload): their fetch counts add up,
// and the gauges take the largest value (the same keys, the latest
// success, stale if any is).
type sourceSamples struct {
	fetches           fetchCounts
	keys, lastSuccess float64
	stale             float64
}

// collectKeySets emits the series of the live key sets: a source that no
// loaded config uses any more has no live set, so its series are gone.
func collectKeySets(ch chan<- prometheus.Metric, live []keySetStatus) {
	bySource := map[string]*sourceSamples{}
	var order []string
	for _, st := range live {
		v := bySource[st.Source]
		if v == nil {
			v = new(sourceSamples)
			bySource[st.Source] = v
			order = append(order, st.Source)
		}
		v.fetches.OK += st.Fetches.OK
		v.fetches.NotModified += st.Fetches.NotModified
		v.fetches.Error += st.Fetches.Error
		if st.Set != nil {
			v.keys = max(v.keys, float64(st.Set.Len()))
		}
		if !st.LastSuccess.IsZero() {
			v.lastSuccess = max(v.lastSuccess, float64(st.LastSuccess.UnixNano())/1e9)
		}
		if st.Stale {
			v.stale = 1
		}
	}
	for _, source := range order {
		v := bySource[source]
		ch <- prometheus.MustNewConstMetric(fetchesDesc, prometheus.CounterValue, float64(v.fetches.OK), source, "ok")
		ch <- prometheus.MustNewConstMetric(fetchesDesc, prometheus.CounterValue, float64(v.fetches.NotModified), source, "not_modified")
		ch <- prometheus.MustNewConstMetric(fetchesDesc, prometheus.CounterValue, float64(v.fetches.Error), source, "error")
		ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, v.keys, source)
		ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue, v.lastSuccess, source)
		ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, v.stale, source)
	}
}

// registerMetrics registers the collector in a config's registry once; the
// other handlers of the config find it there.
func registerMetrics(reg *prometheus.Registry, counts *requestCounts) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(metricsCollector{counts})
	var already prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &already) {
		return err
	}
	return nil
}
