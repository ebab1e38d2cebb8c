package idtoken

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Key pinning (key_thumbprints): only keys whose RFC 7638 SHA-256
// thumbprint the operator listed are ever used, so a stolen TLS certificate
// or DNS entry of the issuer is not enough to inject keys. Every load goes
// through it: a fetch and a file read (pinnedSource) and a set restored
// from storage (RefreshingKeySet.loadStored), whose document may predate
// the pin.

// thumbprintLen is the length of an RFC 7638 SHA-256 thumbprint in base64url
// without padding: base64.RawURLEncoding.EncodedLen(sha256.Size).
const thumbprintLen = 43

// pinSet is the keySetConfig.pins value for thumbprints: sorted,
// de-duplicated and joined by a space, so handlers pinning the same keys in
// any order share one key set. No thumbprints make "": no pinning. Each
// thumbprint must have passed checkThumbprint (which refuses spaces).
func pinSet(thumbprints []string) string {
	sorted := slices.Sorted(slices.Values(thumbprints))
	return strings.Join(slices.Compact(sorted), " ")
}

// checkThumbprint reports why s is not an RFC 7638 SHA-256 JWK thumbprint as
// this module computes and the admin API shows it: base64url without
// padding, 43 characters, decoding to 32 bytes. The encoding must be the
// canonical one (the unused low bits of the last character zero): another
// spelling of the same bytes could never equal a computed thumbprint, so
// it would pin nothing.
func checkThumbprint(s string) error {
	const want = "an RFC 7638 SHA-256 thumbprint is 43 characters of base64url without padding"
	if strings.HasSuffix(s, "=") {
		return fmt.Errorf("thumbprint %s has padding; %s", quoted(s), want)
	}
	if i := strings.IndexFunc(s, notBase64URL); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("thumbprint %s: character %q is not base64url (A-Z a-z 0-9 - _); %s", quoted(s), r, want)
	}
	if len(s) != thumbprintLen {
		return fmt.Errorf("thumbprint %s is %d characters; %s", quoted(s), len(s), want)
	}
	sum, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return fmt.Errorf("thumbprint %s is not canonical base64url (its last character is %q): %w", quoted(s), s[len(s)-1], err)
	}
	if len(sum) != sha256.Size { // unreachable with 43 characters; says what the length check is for
		return fmt.Errorf("thumbprint %s decodes to %d bytes, not %d", quoted(s), len(sum), sha256.Size)
	}
	return nil
}

// notBase64URL reports whether r is outside the base64url alphabet.
func notBase64URL(r rune) bool {
	return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_')
}

// keyPins is a parsed keySetConfig.pins: the thumbprints of the keys that may
// be used. Empty pins nothing: every key may be used. A handful of entries,
// so a linear scan beats a map.
type keyPins []string

// parsePins splits a pinSet value; "" is nil (the admin API shows null).
func parsePins(pins string) keyPins {
	if pins == "" {
		return nil
	}
	return strings.Fields(pins)
}

// errNotPinned is a skipped key's error: usable, but not listed.
var errNotPinned = errors.New("thumbprint not in key_thumbprints")

// errNonePinned makes a load fail: the old keys stay in use.
var errNonePinned = errors.New("no key in the document is pinned by key_thumbprints")

// keep returns set with only its pinned keys (set itself when nothing is
// pinned), and counts every other key in skipped, with its kid and
// thumbprint, for the warning about skipped keys. A set left empty is
// errNonePinned, naming the keys it held so an operator can compare them
// with the configuration.
func (p keyPins) keep(set *KeySet, skipped *SkippedKeys) (*KeySet, error) {
	if len(p) == 0 {
		return set, nil
	}
	kept := set.subset(func(k *Key) bool {
		if slices.Contains(p, k.Thumbprint()) {
			return true
		}
		skipped.add(SkippedKey{Index: k.pos, KID: k.ID, Thumbprint: k.Thumbprint(), Reason: skipNotPinned, Err: errNotPinned})
		return false
	})
	if kept.Len() == 0 {
		return nil, nonePinned(set)
	}
	return kept, nil
}

// maxUnpinnedListed bounds the keys a "none pinned" error lists: the error
// becomes a log line and the admin API's last_error, and a hostile document
// can hold thousands of keys.
const maxUnpinnedListed = 5

// nonePinned is errNonePinned naming the first keys of set, kids cut.
func nonePinned(set *KeySet) error {
	found := make([]string, 0, maxUnpinnedListed+1)
	for _, k := range set.keys[:min(set.Len(), maxUnpinnedListed)] {
		found = append(found, fmt.Sprintf("kid=%s thumbprint=%s", quoted(k.ID), k.Thumbprint()))
	}
	if n := set.Len() - maxUnpinnedListed; n > 0 {
		found = append(found, fmt.Sprintf("and %d more", n))
	}
	return fmt.Errorf("%w: found %s", errNonePinned, strings.Join(found, ", "))
}

// pinnedSource is a source whose loads keep only pinned keys. Wrapping the
// source, rather than checking in the refresh loop, covers every caller of
// newSource: the shared set's fetches, its start-up file read, and the
// commands' one-off fetch.
type pinnedSource struct {
	source
	pins keyPins
}

func (p pinnedSource) fetch(ctx context.Context, prev *KeySet) (fetched, error) {
	res, err := p.source.fetch(ctx, prev)
	if err != nil || res.set == nil { // a 304 confirms prev, which was pinned when installed
		return res, err
	}
	set, err := p.pins.keep(res.set, &res.skipped)
	if err != nil {
		// The document's URL (for OIDC, the jwks_uri), or a file's path.
		return fetched{skipped: res.skipped}, fmt.Errorf("%s: %w", cmp.Or(res.set.origin.url, p.String()), err)
	}
	res.set = set
	return res, nil
}
