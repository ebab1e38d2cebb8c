package idtoken

import (
	"context"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// thumbOf is the RFC 7638 thumbprint of a test key's public half.
func thumbOf(k testKey) string { return thumbprint(k.pub) }

// acquireObserved takes cfg's shared set from the pool, as a handler does,
// logging to an observer; it is released when the test ends.
func acquireObserved(t *testing.T, cfg keySetConfig, storage certmagic.Storage) (*RefreshingKeySet, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	s, err := acquireKeySet(cfg, func() *zap.Logger { return logger }, storage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseKeySet(cfg) })
	return s, logs
}

// statusAt is the live set cfg names, as the admin API and metrics see it.
func statusAt(t *testing.T, cfg keySetConfig) keySetStatus {
	t.Helper()
	for _, l := range liveSets() {
		if l.cfg == cfg {
			return l.set.statusOf(l.handlers)
		}
	}
	t.Fatalf("no live set for %+v", cfg)
	return keySetStatus{}
}

func TestCheckThumbprint(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  string // "" when valid
	}{
		{"RFC 7638 example", rfc7638Thumbprint, ""},
		{"RFC 8037 example (Ed25519)", "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", ""},
		{"empty", "", "is 0 characters"},
		{"padded", rfc7638Thumbprint + "=", "has padding"},
		{"one character short", rfc7638Thumbprint[1:], "is 42 characters"},
		{"one character long", rfc7638Thumbprint + "A", "is 44 characters"},
		{"standard base64 plus", "+" + rfc7638Thumbprint[1:], `character '+' is not base64url`},
		{"standard base64 slash", rfc7638Thumbprint[:10] + "/" + rfc7638Thumbprint[11:], `character '/' is not base64url`},
		{"SHA-1 hex", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", "is 40 characters"},
		{"SHA-256 hex", strings.Repeat("ab", 32), "is 64 characters"},
		{"space inside", rfc7638Thumbprint[:20] + " " + rfc7638Thumbprint[21:], `character ' ' is not base64url`},
		{"not ASCII", "é" + rfc7638Thumbprint[2:], `character 'é' is not base64url`},
		// "s" ends the example with its two unused bits zero; "t" decodes to
		// the same bytes but is not what anyone computes.
		{"non-canonical last character", rfc7638Thumbprint[:42] + "t", "not canonical"},
		{"huge", strings.Repeat("A", 10000), "is 10000 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkThumbprint(tc.in)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("checkThumbprint(%q) = %v, want nil", tc.in, err)
			case tc.err == "":
				return
			case err == nil:
				t.Fatalf("checkThumbprint(%q) = nil, want an error saying %q", tc.in, tc.err)
			case !strings.Contains(err.Error(), tc.err):
				t.Fatalf("error %q does not say %q", err, tc.err)
			case len(err.Error()) > 300:
				t.Fatalf("error of %d bytes quotes too much of the value", len(err.Error()))
			}
		})
	}
}

// TestComputedThumbprintsPassTheCheck: whatever the key type, what the
// admin API shows can be pasted into key_thumbprints.
func TestComputedThumbprintsPassTheCheck(t *testing.T) {
	keys := []testKey{
		newRSAKey(t, "rsa", 0),
		newECKey(t, "p256", elliptic.P256(), "ES256"),
		newECKey(t, "p384", elliptic.P384(), "ES384"),
		newECKey(t, "p521", elliptic.P521(), "ES512"),
		newEdKey(t, "ed"),
	}
	for _, k := range keys {
		t.Run(k.kid, func(t *testing.T) {
			if err := checkThumbprint(thumbOf(k)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPinSet(t *testing.T) {
	a, b := rfc7638Thumbprint, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"none: no pinning", nil, ""},
		{"empty list: no pinning", []string{}, ""},
		{"one", []string{a}, a},
		{"sorted", []string{a, b}, a + " " + b},
		{"order does not matter", []string{b, a}, a + " " + b},
		{"duplicates dropped", []string{b, a, b, a}, a + " " + b},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			if got := pinSet(tc.in); got != tc.want {
				t.Fatalf("pinSet(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !slices.Equal(in, tc.in) {
				t.Fatalf("pinSet reordered its argument: %q", tc.in)
			}
		})
	}
}

// TestPinnedKeySet: only pinned keys enter a set, from every kind of source
// and from the commands' one-off fetch; a document without a pinned key
// loads nothing.
func TestPinnedKeySet(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	ec := newECKey(t, "ec", elliptic.P256(), "ES256")
	impostor := newRSAKey(t, "k1", 1) // k2's key published under k1's kid
	tests := []struct {
		name     string
		doc      []testKey
		pins     []string
		wantKIDs []string // nil: no set loads
	}{
		{"pinned key accepted", []testKey{k1}, []string{thumbOf(k1)}, []string{"k1"}},
		{"unpinned key beside a pinned one left out", []testKey{k1, k2, ec}, []string{thumbOf(k1)}, []string{"k1"}},
		{"every pinned key kept", []testKey{k1, k2, ec}, []string{thumbOf(ec), thumbOf(k1)}, []string{"k1", "ec"}},
		{"a pin for a key not published is harmless", []testKey{k1}, []string{thumbOf(k1), thumbOf(k2)}, []string{"k1"}},
		{"no pin: every key", []testKey{k1, k2}, nil, []string{"k1", "k2"}},
		{"only unpinned keys: nothing loads", []testKey{k2}, []string{thumbOf(k1)}, nil},
		{"pinned kid, other key: nothing loads", []testKey{impostor}, []string{thumbOf(k1)}, nil},
	}
	sources := []struct {
		name  string
		start func(t *testing.T, doc []byte, pins string) (*KeySet, error)
	}{
		{"jwks_url", func(t *testing.T, doc []byte, pins string) (*KeySet, error) {
			s, _ := startKeySetConfig(t, keySetConfig{kind: "jwks_url", location: newIssuer(t, doc).URL, pins: pins})
			return s.Refresh(context.Background()), nil
		}},
		{"oidc", func(t *testing.T, doc []byte, pins string) (*KeySet, error) {
			issuer := oidcProvider(t, doc, &atomic.Bool{}, "/jwks")
			s, _ := startKeySetConfig(t, keySetConfig{kind: "oidc", location: issuer, pins: pins})
			set := s.Refresh(context.Background())
			if set != nil && set.Issuer != issuer {
				t.Errorf("issuer %q lost by filtering, want %q", set.Issuer, issuer)
			}
			return set, nil
		}},
		{"jwks_file", func(t *testing.T, doc []byte, pins string) (*KeySet, error) {
			path := t.TempDir() + "/jwks.json"
			writeFile(t, path, doc)
			s, err := newRefreshingKeySet(keySetConfig{kind: "jwks_file", location: path, pins: pins}, zap.NewNop, time.Now, nil)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { _ = s.Destruct() })
			return s.Current(), nil
		}},
		{"one-off fetch (caddy idtoken verify)", func(t *testing.T, doc []byte, pins string) (*KeySet, error) {
			set, _, err := fetchKeySetOnce(context.Background(), keySetConfig{kind: "jwks_url", location: newIssuer(t, doc).URL, pins: pins})
			return set, err
		}},
	}
	v, err := NewVerifier(Policy{Algorithms: []string{"RS256", "ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range sources {
		for _, tc := range tests {
			t.Run(src.name+"/"+tc.name, func(t *testing.T) {
				set, err := src.start(t, jwksJSON(t, tc.doc...), pinSet(tc.pins))
				if tc.wantKIDs == nil {
					if set != nil {
						t.Fatalf("loaded %v, want nothing", set.KIDs())
					}
					if err != nil && !errors.Is(err, errNonePinned) {
						t.Fatalf("error %v, want one saying no key is pinned", err)
					}
					return
				}
				if err != nil || set == nil {
					t.Fatalf("no set loaded: %v", err)
				}
				if got := set.KIDs(); !slices.Equal(got, tc.wantKIDs) {
					t.Fatalf("kids %v, want %v", got, tc.wantKIDs)
				}
				for _, k := range set.keys {
					if _, isRSA := k.Public.(*rsa.PublicKey); (isRSA && k.rsa == nil) || k.Thumbprint() == "" {
						t.Fatalf("key %s lost what NewKeySet prepared when filtered", k.ID)
					}
				}
				// Through the verifier: a token of a key in the set passes,
				// one of a key left out does not.
				for _, k := range tc.doc {
					claims := with(validClaims(), map[string]any{"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
					if set.Issuer != "" { // OIDC: the set's keys speak for the discovered issuer only
						claims["iss"] = set.Issuer
					}
					_, rej := verifyString(v, sign(t, k, claims, nil), set, time.Now())
					if in := slices.Contains(tc.wantKIDs, k.kid); in != (rej == nil) {
						t.Errorf("token of %s: rejection %v; key in the set: %v", k.kid, rej, in)
					}
				}
			})
		}
	}
}

// startKeySetConfig starts a set for cfg outside the pool, refetching
// without a rate floor, with a log observer; it is stopped when the test ends.
func startKeySetConfig(t *testing.T, cfg keySetConfig) (*RefreshingKeySet, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	cfg.minRefresh = time.Nanosecond
	s, err := newRefreshingKeySet(cfg, func() *zap.Logger { return logger }, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destruct() })
	return s, logs
}

// TestPinnedRotationKeepsOldSet: an issuer that starts serving only keys
// nobody pinned (a rotation the operator did not follow, or an attacker's
// keys) is a failed fetch: the pinned keys stay, the admin API says why,
// metrics count an error. Once the pinned key is back beside the new one,
// the fetch succeeds with the pinned key only.
func TestPinnedRotationKeepsOldSet(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1))
	cfg := keySetConfig{kind: "jwks_url", location: is.URL, pins: pinSet([]string{thumbOf(k1)}), minRefresh: time.Hour}
	s, logs := acquireObserved(t, cfg, nil)
	before := waitLoaded(t, s)
	refresh := "/idtoken/keysets/refresh?location=" + url.QueryEscape(is.URL)

	is.serve(http.StatusOK, jwksJSON(t, k2))
	view := viewAt(t, keySetsAnswer(t, adminRequest(t, http.MethodPost, refresh)), is.URL)
	if s.Current() != before {
		t.Fatal("a document without a pinned key replaced the set")
	}
	if got := thumbprints(view); !slices.Equal(got, []string{thumbOf(k1)}) {
		t.Fatalf("admin API lists keys %v, want k1's", got)
	}
	if !slices.Equal(view.KeyThumbprints, []string{thumbOf(k1)}) {
		t.Fatalf("admin API lists key_thumbprints %v, want k1's", view.KeyThumbprints)
	}
	want := fmt.Sprintf(`no key in the document is pinned by key_thumbprints: found kid="k2" thumbprint=%s`, thumbOf(k2))
	if view.LastError == nil || !strings.Contains(*view.LastError, want) {
		t.Fatalf("last_error %q, want it to say %q", deref(view.LastError), want)
	}
	if st := statusAt(t, cfg); st.Fetches != (fetchCounts{OK: 1, Error: 1}) {
		t.Fatalf("fetches %+v, want one OK and one error", st.Fetches)
	}
	failed := logs.FilterMessage("fetching key set failed; keeping previous keys").All()
	if len(failed) != 1 || !strings.Contains(failed[0].ContextMap()["error"].(string), want) {
		t.Fatalf("failure warnings %v, want one saying %q", failed, want)
	}

	is.serve(http.StatusOK, jwksJSON(t, k2, k1))
	view = viewAt(t, keySetsAnswer(t, adminRequest(t, http.MethodPost, refresh)), is.URL)
	if set := s.Current(); set == before || !slices.Equal(set.KIDs(), []string{"k1"}) {
		t.Fatalf("after the pinned key came back: kids %v, want a new set of k1", set.KIDs())
	}
	if view.LastError != nil {
		t.Fatalf("last_error %q after a good fetch", *view.LastError)
	}
	if st := statusAt(t, cfg); st.Fetches != (fetchCounts{OK: 2, Error: 1}) {
		t.Fatalf("fetches %+v, want two OK and one error", st.Fetches)
	}
}

// TestUnpinnedKeysWarning: the fetch's one warning about skipped keys names
// each key left out for not being pinned by kid and thumbprint, beside the
// keys that could not be read at all.
func TestUnpinnedKeysWarning(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	ec := newECKey(t, "ec", elliptic.P256(), "ES256")
	hmac := map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}
	doc, err := json.Marshal(map[string]any{"keys": []any{k2.jwk(), hmac, k1.jwk(), ec.jwk()}})
	if err != nil {
		t.Fatal(err)
	}
	is := newIssuer(t, doc)
	s, logs := startKeySetConfig(t, keySetConfig{kind: "jwks_url", location: is.URL, pins: pinSet([]string{thumbOf(k1)})})
	waitLoaded(t, s)

	// One warning per fetch, however many keys it skips. (Under a loaded
	// -race run the set has once been seen to fetch twice at start; each
	// fetch still logs exactly one warning.)
	warnings := logs.FilterMessage("skipping unusable keys").All()
	if fetches := is.hits.Load(); fetches < 1 || int64(len(warnings)) != fetches {
		t.Fatalf("%d warnings about skipped keys for %d fetches, want one each", len(warnings), fetches)
	}
	fields := warnings[0].ContextMap()
	if fields["skipped"] != int64(3) {
		t.Errorf("skipped = %v, want 3", fields["skipped"])
	}
	// fmt prints maps sorted by key, and numbers whatever their Go type.
	if got, want := fmt.Sprint(fields["reasons"]), fmt.Sprint(map[string]int{"not pinned": 2, "unsupported kty": 1}); got != want {
		t.Errorf("reasons = %s, want %s", got, want)
	}
	type example struct{ index, kid, thumbprint, reason string }
	var got []example
	for _, e := range fields["examples"].([]any) {
		ex := e.(map[string]any)
		thumb, _ := ex["thumbprint"].(string)
		got = append(got, example{fmt.Sprint(ex["index"]), ex["kid"].(string), thumb, ex["reason"].(string)})
	}
	want := []example{ // in document order
		{"0", "k2", thumbOf(k2), "not pinned"},
		{"1", "hmac", "", "unsupported kty"},
		{"3", "ec", thumbOf(ec), "not pinned"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("examples\n got %v\nwant %v", got, want)
	}
}

// TestNonePinnedErrorBounded: a document of many keys, none pinned, makes
// an error that names a few of them and counts the rest.
func TestNonePinnedErrorBounded(t *testing.T) {
	ec := newECKey(t, "ec", elliptic.P256(), "ES256")
	long := strings.Repeat("x", 200) // cut in logs and errors
	keys := make([]any, 1000)
	for i := range keys {
		jwk := ec.jwk()
		jwk["kid"] = fmt.Sprintf("%s-%d", long, i)
		keys[i] = jwk
	}
	doc, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s, logs := startKeySetConfig(t, keySetConfig{kind: "jwks_url", location: newIssuer(t, doc).URL, pins: rfc7638Thumbprint})
	if set := s.Refresh(context.Background()); set != nil {
		t.Fatal("a set loaded without a pinned key")
	}
	msg := s.statusOf(0).LastError
	if !strings.Contains(msg, "and 995 more") || len(msg) > 1024 {
		t.Fatalf("last_error of %d bytes: %.200q...; want the first keys and a count", len(msg), msg)
	}
	warnings := logs.FilterMessage("skipping unusable keys").All()
	if len(warnings) != 1 || warnings[0].ContextMap()["skipped"] != int64(1000) {
		t.Fatalf("warnings %v, want one counting 1000 skipped keys", warnings)
	}
	if n := len(warnings[0].ContextMap()["examples"].([]any)); n > maxSkipExamples {
		t.Fatalf("%d examples, want at most %d", n, maxSkipExamples)
	}
}

// TestPinnedSetsNotShared: handlers of one source that pin different keys
// hold different sets (the pool key differs), and the same pins in another
// order share one.
func TestPinnedSetsNotShared(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	is := newIssuer(t, jwksJSON(t, k1, k2))
	base := keySetConfig{kind: "jwks_url", location: is.URL, minRefresh: time.Hour}
	only1, only2, both, bothReversed := base, base, base, base
	only1.pins = pinSet([]string{thumbOf(k1)})
	only2.pins = pinSet([]string{thumbOf(k2)})
	both.pins = pinSet([]string{thumbOf(k1), thumbOf(k2)})
	bothReversed.pins = pinSet([]string{thumbOf(k2), thumbOf(k1), thumbOf(k2)})

	tests := []struct {
		name     string
		cfg      keySetConfig
		wantKIDs []string
	}{
		{"no pins", base, []string{"k1", "k2"}},
		{"k1 pinned", only1, []string{"k1"}},
		{"k2 pinned", only2, []string{"k2"}},
		{"both pinned", both, []string{"k1", "k2"}},
	}
	sets := map[*RefreshingKeySet]string{}
	for _, tc := range tests {
		s, _ := acquireObserved(t, tc.cfg, nil)
		if other, dup := sets[s]; dup {
			t.Fatalf("%s shares a key set with %s", tc.name, other)
		}
		sets[s] = tc.name
		if got := waitLoaded(t, s).KIDs(); !slices.Equal(got, tc.wantKIDs) {
			t.Errorf("%s: kids %v, want %v", tc.name, got, tc.wantKIDs)
		}
	}
	s, _ := acquireObserved(t, bothReversed, nil)
	if sets[s] != "both pinned" {
		t.Fatal("the same pins in another order gave another key set")
	}
	if got := is.hits.Load(); got != int64(len(tests)) {
		t.Fatalf("issuer hit %d times, want %d (one per distinct set)", got, len(tests))
	}

	// The admin API tells the sets apart by their pins: null for none,
	// then in pinSet order.
	var raw []struct {
		Location string          `json:"location"`
		Pins     json.RawMessage `json:"key_thumbprints"`
	}
	if err := json.Unmarshal(adminRequest(t, http.MethodGet, "/idtoken/keysets").Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range raw {
		if v.Location == is.URL {
			got = append(got, string(v.Pins))
		}
	}
	pinned := []string{both.pins, only1.pins, only2.pins}
	slices.Sort(pinned) // liveSets' order
	want := []string{"null"}
	for _, pins := range pinned {
		want = append(want, `["`+strings.ReplaceAll(pins, " ", `","`)+`"]`)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("key_thumbprints of the listed sets\n got %v\nwant %v", got, want)
	}
}

// TestStoredSetFilteredOnRestore: a stored document may predate the pin
// (or come from a handler pinning other keys): restoring it during an
// outage keeps only the pinned keys, and restores nothing when none is
// pinned.
func TestStoredSetFilteredOnRestore(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	tests := []struct {
		name     string
		pins     []string
		wantKIDs []string // nil: nothing restored
	}{
		{"no pin: the whole stored set", nil, []string{"k1", "k2"}},
		{"pinned key kept, the other dropped", []string{thumbOf(k2)}, []string{"k2"}},
		{"no stored key pinned: nothing restored", []string{rfc7638Thumbprint}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			down := &atomic.Bool{}
			srv := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
				if down.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write(jwksJSON(t, k1, k2))
			})
			storage := &certmagic.FileStorage{Path: t.TempDir()}
			clock := &fakeClock{}
			unpinned := keySetConfig{kind: "jwks_url", location: srv.URL, maxStale: time.Hour}
			storedOnce(t, unpinned, storage, clock) // saved before the pin

			down.Store(true)
			pinned := unpinned
			pinned.pins = pinSet(tc.pins)
			s, logs := startStoredKeySet(t, pinned, storage, clock)
			set := s.Refresh(context.Background())
			if tc.wantKIDs == nil {
				if set != nil {
					t.Fatalf("restored %v, want nothing", set.KIDs())
				}
				entries := logs.FilterMessage("no usable stored key set").All()
				if len(entries) != 1 || !strings.Contains(entries[0].ContextMap()["error"].(string), errNonePinned.Error()) {
					t.Fatalf("debug entries %v, want one saying no stored key is pinned", entries)
				}
				return
			}
			if set == nil || !set.origin.fromStorage {
				t.Fatal("stored set not restored")
			}
			if got := set.KIDs(); !slices.Equal(got, tc.wantKIDs) {
				t.Fatalf("restored kids %v, want %v", got, tc.wantKIDs)
			}
		})
	}
}

// TestSkippedKeyString: the commands print skipped keys with String; a key
// left out for not being pinned shows its thumbprint.
func TestSkippedKeyString(t *testing.T) {
	tests := []struct {
		name string
		key  SkippedKey
		want string
	}{
		{"unreadable key", SkippedKey{Index: 1, KID: "hmac", Reason: skipKty, Err: errors.New(`unsupported kty "oct"`)},
			`key 1 (kid "hmac"): unsupported kty "oct"`},
		{"not pinned", SkippedKey{Index: 0, KID: "k2", Reason: skipNotPinned, Err: errNotPinned, Thumbprint: rfc7638Thumbprint},
			`key 0 (kid "k2", thumbprint ` + rfc7638Thumbprint + `): thumbprint not in key_thumbprints`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.String(); got != tc.want {
				t.Fatalf("String() = %s, want %s", got, tc.want)
			}
		})
	}
}
