package idtoken

import (
	"crypto"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	defaultCacheSize = 10000
	// maxCacheEntryBytes bounds one entry's memory: the token, its claims
	// tree and their rendered placeholders, as estimated when it is stored.
	// Tokens whose entry would be larger are verified every time, so the
	// cache never holds more than about cache_size x 16 KiB.
	maxCacheEntryBytes = 16 << 10
	// cacheEntryOverhead is what an entry costs besides the token and its
	// claims: the entry, the Claims value and the map's node.
	cacheEntryOverhead = 512
)

// tokenCache remembers fully verified tokens, keyed by the whole token
// string, so a token seen before skips the signature check. It belongs to one
// handler: its policy (issuer, audience, require) is fixed for the cache's
// life, and a config reload starts a new one. Reads are lock-free (sync.Map);
// only eviction takes a lock, and only one evictor runs at a time.
type tokenCache struct {
	size   int
	leeway int64 // nanoseconds
	maxAge int64 // nanoseconds; 0: no max_age
	m      sync.Map
	count  atomic.Int64
	evict  sync.Mutex
}

// cacheEntry is what a hit needs: the rendered claims and what must still
// hold for them to be valid now.
type cacheEntry struct {
	claims    *Claims
	validFrom int64  // first instant (ns since the epoch) the token is valid, leeway applied
	expiresAt int64  // first instant it is expired, leeway applied
	gen       uint64 // key set generation the entry was last confirmed under
	issuer    string // that key set's own issuer (OIDC discovery)
}

// newTokenCache returns a cache of at most size tokens, or nil (no caching)
// when size is 0.
func newTokenCache(size int, leeway, maxAge time.Duration) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{size: size, leeway: leeway.Nanoseconds(), maxAge: maxAge.Nanoseconds()}
}

// lookup returns the claims of a previously verified token if they are still
// valid at now under the current key set of the trust that verified it
// (keysOf gives it): not expired, not before nbf (leeway applied), and
// the key that verified the token still in the set. Otherwise it forgets the
// entry and returns nil. A nil cache never hits.
func (c *tokenCache) lookup(raw string, now time.Time, keysOf func(trust int) *KeySet) *Claims {
	if c == nil {
		return nil
	}
	v, ok := c.m.Load(raw)
	if !ok {
		return nil
	}
	e := v.(*cacheEntry)
	keys := keysOf(e.claims.trust) // the set of the trust that verified it
	t := now.UnixNano()
	if keys == nil || t >= e.expiresAt || t < e.validFrom || !c.confirmKey(raw, e, keys) {
		c.remove(raw, e)
		return nil
	}
	return e.claims
}

// confirmKey reports whether the entry's key is still in keys. Under the
// same generation it is; after a refresh, a key equal to it must be there
// (then the entry is re-stamped so later hits are cheap again).
func (c *tokenCache) confirmKey(raw string, e *cacheEntry, keys *KeySet) bool {
	if e.gen == keys.gen {
		return true
	}
	if keys.Issuer != e.issuer {
		return false
	}
	old := e.claims.key
	for _, k := range keys.Lookup(old.ID) {
		if k.Alg == old.Alg && equalKeys(k, old) {
			fresh := *e
			fresh.gen = keys.gen
			c.m.CompareAndSwap(raw, e, &fresh)
			return true
		}
	}
	return false
}

// equalKeys compares public keys by value (snapshots re-parse them).
func equalKeys(a, b *Key) bool {
	pub, ok := a.Public.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(b.Public)
}

// store remembers a token that passed every check. Tokens whose entry
// would exceed maxCacheEntryBytes and tokens without exp (never accepted
// anyway) are skipped.
func (c *tokenCache) store(raw string, claims *Claims, keys *KeySet) {
	if c == nil || !fitsEntry(raw, claims) || claims.key == nil {
		return
	}
	exp, present, ok := numericDate(claims.m, "exp")
	if !present || !ok {
		return
	}
	nbf, present, _ := numericDate(claims.m, "nbf")
	if !present {
		nbf = math.MinInt64
	}
	claims.prerender() // adds the rendered values to claims.size
	if !fitsEntry(raw, claims) {
		claims.rendered = nil // not shared: rendered on demand like any uncached token
		return
	}
	expiresAt := satAdd(exp, c.leeway)
	if c.maxAge > 0 {
		// With max_age the token also ends when it grows too old: the
		// first instant checkAge refuses it.
		start, ok := ageStart(claims.m)
		if !ok || start == nil {
			return
		}
		expiresAt = min(expiresAt, satAdd(satAdd(*start, c.maxAge), c.leeway+1))
	}
	e := &cacheEntry{
		claims:    claims,
		validFrom: satAdd(nbf, -c.leeway),
		expiresAt: expiresAt,
		gen:       keys.gen,
		issuer:    keys.Issuer,
	}
	// Clone: raw may share memory with a larger header or cookie string.
	if _, loaded := c.m.LoadOrStore(strings.Clone(raw), e); !loaded {
		if c.count.Add(1) > int64(c.size) {
			c.evictSome()
		}
	}
}

func (c *tokenCache) remove(raw string, e *cacheEntry) {
	if c.m.CompareAndDelete(raw, e) {
		c.count.Add(-1)
	}
}

// evictSome makes room: it drops expired entries and then arbitrary ones
// (sync.Map iterates in hash order, so this is close to random eviction)
// until the cache is an eighth below its size, which spreads the cost of a
// sweep over many inserts.
func (c *tokenCache) evictSome() {
	if !c.evict.TryLock() {
		return // another goroutine is already making room
	}
	defer c.evict.Unlock()
	target := int64(c.size - c.size/8)
	now := time.Now().UnixNano()
	c.m.Range(func(k, v any) bool {
		if e := v.(*cacheEntry); now >= e.expiresAt {
			c.remove(k.(string), e)
		}
		return true
	})
	c.m.Range(func(k, v any) bool {
		if c.count.Load() <= target {
			return false
		}
		c.remove(k.(string), v.(*cacheEntry))
		return true
	})
}

// fitsEntry reports whether an entry for raw and claims stays within
// maxCacheEntryBytes, as far as claims.size has been counted.
func fitsEntry(raw string, claims *Claims) bool {
	return cacheEntryOverhead+len(raw)+claims.size <= maxCacheEntryBytes
}

// satAdd is a+b, saturated to the int64 range (claims may sit at its ends).
func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// Len is the number of cached tokens.
func (c *tokenCache) Len() int {
	if c == nil {
		return 0
	}
	return int(c.count.Load())
}
