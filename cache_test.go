package idtoken

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// staticKeys is a key source that holds one set and never fetches, so the
// handler's verify path can run against any set.
func staticKeys(set *KeySet) *RefreshingKeySet {
	s := &RefreshingKeySet{stopped: true, now: time.Now}
	s.current.Store(set)
	return s
}

// cachingHandler is a handler with a verifier, a cache of size tokens and a
// fixed key set, whose clock stands at now.
func cachingHandler(v *Verifier, p Policy, set *KeySet, now time.Time, size int) *Handler {
	return &Handler{trusts: oneTrust(v, staticKeys(set)), cache: newTokenCache(size, p.Leeway, p.MaxAge), now: func() time.Time { return now }}
}

// oneKeyHandler is a caching handler on a set holding only k1, RS256 allowed.
func oneKeyHandler(t *testing.T, size int) (*Handler, testKey, time.Time) {
	k1 := newRSAKey(t, "k1", 0)
	p := Policy{Algorithms: []string{"RS256"}, Leeway: time.Minute}
	v, err := NewVerifier(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return cachingHandler(v, p, mustParse(t, jwksJSON(t, k1)), now, size), k1, now
}

func verifyRequest(h *Handler, raw string) (*Claims, *Rejection) {
	claims, _, rej := h.verify(httptest.NewRequest(http.MethodGet, "http://example.com/", nil), raw)
	return claims, rej
}

// TestCacheMatchesMissOnRejectionMatrix runs every case of the rejection
// matrix through the handler's verify twice with the cache on, and once with
// it off: all three answers must agree, the second accepted answer must come
// from the cache, and no rejected token may be cached.
func TestCacheMatchesMissOnRejectionMatrix(t *testing.T) {
	m := newRejectionMatrix(t)
	for _, tc := range m.cases {
		t.Run(tc.name, func(t *testing.T) {
			v, p, set := m.setup(t, tc)
			h := cachingHandler(v, p, set, testNow, 100)
			uncached := &Handler{trusts: oneTrust(v, staticKeys(set)), now: h.now}

			want, wantRej := verifyRequest(uncached, tc.token)
			miss, missRej := verifyRequest(h, tc.token)
			hitBefore := h.cache.lookup(tc.token, testNow, only(set)) != nil
			hit, hitRej := verifyRequest(h, tc.token)

			for _, got := range []*Rejection{missRej, hitRej} {
				if !reflect.DeepEqual(got, wantRej) {
					t.Fatalf("rejection %+v with cache, %+v without", got, wantRej)
				}
			}
			if wantRej != nil {
				if h.cache.Len() != 0 {
					t.Fatalf("rejected token cached (%s)", wantRej.Reason)
				}
				return
			}
			if !hitBefore {
				t.Fatal("accepted token not served from the cache the second time")
			}
			for _, got := range []*Claims{miss, hit} {
				if got.Subject() != want.Subject() || len(got.m) != len(want.m) {
					t.Fatalf("claims %v with cache, %v without", got.m, want.m)
				}
				for name := range want.m {
					if g, w := got.placeholder(name), want.placeholder(name); g != w {
						t.Fatalf("{http.auth.jwt.%s} = %q with cache, %q without", name, g, w)
					}
				}
			}
		})
	}
}

func TestCacheExpiryWhileCached(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	set := mustParse(t, jwksJSON(t, k1))
	p := Policy{Algorithms: []string{"RS256"}, Leeway: 30 * time.Second}
	v, _ := NewVerifier(p)
	exp := testNow.Add(10 * time.Second)
	token := sign(t, k1, with(validClaims(), map[string]any{"exp": exp.Unix(), "nbf": testNow.Add(20 * time.Second).Unix()}), nil)
	h := cachingHandler(v, p, set, testNow, 100)
	if _, rej := verifyRequest(h, token); rej != nil {
		t.Fatal(rej)
	}
	tests := []struct {
		name string
		at   time.Time
		hit  bool
	}{
		{"before nbf within leeway", testNow, true},
		{"before exp", exp.Add(-time.Second), true},
		{"after exp within leeway", exp.Add(29 * time.Second), true},
		{"exp plus leeway", exp.Add(30 * time.Second), false},
		{"long expired", exp.Add(time.Hour), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if hit := h.cache.lookup(token, tc.at, only(set)) != nil; hit != tc.hit {
				t.Fatalf("hit = %v, want %v", hit, tc.hit)
			}
		})
	}
	if h.cache.Len() != 0 {
		t.Fatal("expired entry not dropped")
	}
	h.now = func() time.Time { return exp.Add(time.Hour) }
	if _, rej := verifyRequest(h, token); rej == nil || rej.Reason != ReasonExpired {
		t.Fatalf("expired token after cache: %v", rej)
	}
	// nbf in the cache: a token whose nbf is ahead by less than the leeway
	// is served from the cache only while nbf - leeway has passed.
	early := testNow.Add(-40 * time.Second) // nbf is 60 s after this: beyond the 30 s leeway
	if h.cache.lookup(token, early, only(set)) != nil {
		t.Fatal("cache served a token before nbf")
	}
}

func TestCacheKeyRemovalWhileCached(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	p := Policy{Algorithms: []string{"RS256"}, Leeway: time.Minute}
	v, _ := NewVerifier(p)
	stamped := func(gen uint64, issuer string, keys ...testKey) *KeySet {
		s := mustParse(t, jwksJSON(t, keys...))
		s.gen, s.Issuer = gen, issuer
		return s
	}
	first := stamped(1, "", k1, k2)
	token := sign(t, k1, validClaims(), nil)
	h := cachingHandler(v, p, first, testNow, 100)
	if _, rej := verifyRequest(h, token); rej != nil {
		t.Fatal(rej)
	}
	tests := []struct {
		name string
		set  *KeySet
		hit  bool
	}{
		{"same snapshot", first, true},
		{"refreshed set still holding the key", stamped(2, "", k2, k1), true},
		{"re-stamped entry under the new generation", stamped(2, "", k2, k1), true},
		{"issuer named by discovery changed", stamped(3, "https://other.test", k1, k2), false},
		{"key removed", stamped(4, "", k2), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if hit := h.cache.lookup(token, testNow, only(tc.set)) != nil; hit != tc.hit {
				t.Fatalf("hit = %v, want %v", hit, tc.hit)
			}
		})
	}
	h.trusts[0].keys = staticKeys(stamped(5, "", k2))
	if _, rej := verifyRequest(h, token); rej == nil || rej.Reason != ReasonUnknownKID {
		t.Fatalf("token of a removed key: %v", rej)
	}
}

func TestCacheBounds(t *testing.T) {
	h, k1, now := oneKeyHandler(t, 50)

	long := sign(t, k1, with(validClaims(), map[string]any{"exp": now.Add(time.Hour).Unix(), "pad": strings.Repeat("x", maxCacheEntryBytes/2)}), nil)
	if _, rej := verifyRequest(h, long); rej != nil {
		t.Fatal(rej)
	}
	if h.cache.Len() != 0 {
		t.Fatal("token whose entry exceeds maxCacheEntryBytes cached")
	}
	for i := range 500 {
		tok := sign(t, k1, with(validClaims(), map[string]any{"sub": fmt.Sprint(i), "exp": now.Add(time.Hour).Unix()}), nil)
		if _, rej := verifyRequest(h, tok); rej != nil {
			t.Fatal(rej)
		}
		if n := h.cache.Len(); n > 50 {
			t.Fatalf("cache holds %d entries, size is 50", n)
		}
	}
	if newTokenCache(0, time.Minute, 0) != nil {
		t.Fatal("cache_size 0 made a cache")
	}
}

func TestCacheConcurrentHits(t *testing.T) {
	h, k1, now := oneKeyHandler(t, 8)
	var tokens []string
	for i := range 16 { // twice the cache: hits, misses and evictions interleave
		tokens = append(tokens, sign(t, k1, with(validClaims(), map[string]any{"sub": fmt.Sprint(i), "exp": now.Add(time.Hour).Unix()}), nil))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				n := (g + i) % len(tokens)
				claims, rej := verifyRequest(h, tokens[n])
				if rej != nil || claims.Subject() != fmt.Sprint(n) {
					t.Errorf("token %d: %v %v", n, claims, rej)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := h.cache.Len(); n > 8+8 {
		t.Fatalf("cache holds %d entries after concurrent use, size 8", n)
	}
}

// TestCacheMemoryBound fills a cache with the heaviest tokens it still
// accepts, of several shapes (many small members, nested arrays, long
// strings, arrays of numbers), and checks the live heap each entry holds
// stays under maxCacheEntryBytes, the per-entry bound the README gives
// (cache_size x 16 KiB in all). Each shape is grown until its entry would
// no longer be cached, so the test measures the worst the bound admits.
func TestCacheMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap of a few hundred entries")
	}
	const n = 200
	shapes := map[string]func(i int) map[string]any{
		"many small members": func(i int) map[string]any {
			m := map[string]any{}
			for j := range i {
				m[fmt.Sprintf("m%d", j)] = j % 10
			}
			return m
		},
		"nested arrays": func(i int) map[string]any {
			m := map[string]any{}
			for j := range i {
				m[fmt.Sprintf("a%d", j)] = []any{[]any{[]any{[]any{1}}}}
			}
			return m
		},
		"arrays of numbers": func(i int) map[string]any {
			arr := make([]any, i)
			for j := range arr {
				arr[j] = j % 10
			}
			return map[string]any{"n": arr}
		},
		"escaped strings": func(i int) map[string]any {
			return map[string]any{"s": strings.Repeat("<\u00e9>", i)}
		},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			h, k1, now := oneKeyHandler(t, n)
			token := func(size, i int) string {
				c := with(validClaims(), shape(size))
				c["sub"], c["exp"] = fmt.Sprint(i), now.Add(time.Hour).Unix()
				return sign(t, k1, c, nil)
			}
			cached := func(size int) bool {
				h.cache = newTokenCache(n, time.Minute, 0)
				_, rej := verifyRequest(h, token(size, 0))
				return rej == nil && h.cache.Len() == 1
			}
			// The largest size whose entry is still cached.
			lo, hi := 1, 2
			for cached(hi) {
				lo, hi = hi, hi*2
			}
			for hi-lo > 1 {
				if mid := (lo + hi) / 2; cached(mid) {
					lo = mid
				} else {
					hi = mid
				}
			}
			tokens := make([]string, n)
			for i := range tokens {
				tokens[i] = token(lo, i)
			}
			h.cache = newTokenCache(n, time.Minute, 0)
			before := liveHeap()
			for _, tok := range tokens {
				if _, rej := verifyRequest(h, tok); rej != nil {
					t.Fatal(rej)
				}
			}
			after := liveHeap()
			if h.cache.Len() != n {
				t.Fatalf("%d entries cached, want %d", h.cache.Len(), n)
			}
			perEntry := int(after-before) / n
			t.Logf("size %d: token %d bytes, %d heap bytes per entry (bound %d)", lo, len(tokens[0]), perEntry, maxCacheEntryBytes)
			if perEntry > maxCacheEntryBytes {
				t.Fatalf("an entry holds %d bytes, over the %d-byte bound", perEntry, maxCacheEntryBytes)
			}
			if perEntry < maxCacheEntryBytes/8 {
				t.Fatalf("an entry holds only %d bytes: the shape does not approach the bound", perEntry)
			}
			runtime.KeepAlive(h.cache)
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// only is a keysOf for the cache: set, whichever trust.
func only(set *KeySet) func(int) *KeySet { return func(int) *KeySet { return set } }

// oneTrust is the trusts of a handler built without Provision.
func oneTrust(v *Verifier, keys *RefreshingKeySet) []*trustedSource {
	return []*trustedSource{{verifier: v, keys: keys}}
}
