package idtoken

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/fips140"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// This file runs published signature test vectors through the module's own
// key verification (Key.verifySignature), with every key built by the
// module's own JWK parsing (ParseKeyDocument), so the key checks done at load
// (RSA 2048..8192 bits and a usable exponent, EC point on the curve, Ed25519
// key size, and any key refusal added later) are part of what is tested.
//
// The vectors are not in this repository: they are read in place from
// ../shared/conformance (see its README.md), a folder next to the checkout.
// Without it the tests skip, except under CI=true, where they fail.
//
// Wycheproof results and the verdict required here:
//
//   - "valid": the module must accept.
//   - "invalid": the module must reject.
//   - "acceptable" (a correct signature made with a weak or legacy
//     parameter; Wycheproof allows either verdict): the module must REJECT,
//     the safe choice for JOSE, except for the SmallPublicKey flag (below).
//
// The flags that "acceptable" vectors carry in these files, one by one:
//
//   - MissingNull (a PKCS #1 v1.5 DigestInfo without the NULL parameter):
//     reject. JOSE signers emit the DER encoding with NULL (RFC 8017 section
//     9.2, note 1), crypto/rsa accepts only that one too, and the module
//     compares against exactly one encoding.
//   - WeakHash (SHA-1): no JOSE algorithm uses SHA-1, so these groups are
//     skipped as non-JOSE (counted) and never run.
//   - SmallPublicKey (an RSA key with e = 3, signature otherwise correct):
//     the weakness is the key's, not the signature's, so the verdict belongs
//     to key loading. If the module loads the key, it must accept the
//     signature (a loaded key that cannot verify its own correct signatures
//     would be a bug); if it refuses the key, the vector is rejected at load,
//     which the refused-key rule below requires anyway. The module currently
//     loads e = 3 keys: RFC 7518 sets no bound on the exponent and crypto/rsa
//     accepts it, and since the encoding is compared byte for byte (rsa.go),
//     never parsed, a small exponent does not open the Bleichenbacher 2006
//     forgery. Accepting these is therefore not a finding.
//   - any other flag on an "acceptable" vector: reject.
//
// A group whose key ParseKeyDocument skips (the module refuses the key) is
// rejected as a whole: every vector in it must then have a reject verdict
// by the mapping above; a "valid" vector under a refused key is a failure.
// The tests count these groups.
//
// Algorithm mapping (anything else is not a JOSE algorithm: the group or file
// is skipped and counted, never silently dropped; vectors run + vectors
// skipped must equal the file's numberOfTests):
//
//   - RSASSA-PKCS1-v1_5 with SHA-256/384/512 -> RS256/384/512. Each vector
//     is checked twice: through the prepared key of rsa.go (what
//     ParseKeyDocument builds) and through crypto/rsa (the path used in FIPS
//     140 mode), and both must give the required verdict.
//   - RSASSA-PSS with SHA-256/384/512 -> PS256/384/512. RFC 7518 section
//     3.5 fixes MGF1 with the same hash and a salt as long as the hash. A
//     group with other PSS parameters (another MGF hash or another salt
//     length) is not a JOSE signature; it is run anyway through the PS
//     algorithm of its message hash, and every vector must be REJECTED,
//     whatever Wycheproof says. That verdict is not a matter of chance: in
//     EMSA-PSS the 0x01 separator before the salt sits at a position set by the
//     salt length, so a signature made with another salt length fails the
//     padding check of a verifier that fixes the salt length, and a different
//     MGF hash unmasks the data block to noise (its zero padding then fails
//     but for a negligible probability). As a check on that reasoning,
//     crypto/rsa with SaltLength = hash length must reject these vectors too
//     (a disagreement is reported as a data error). Groups hashing the message
//     with SHA-1 or SHA-224 have no PS algorithm: skipped as non-JOSE.
//   - ECDSA in IEEE P1363 form (R || S): P-256/SHA-256 -> ES256,
//     P-384/SHA-384 -> ES384, P-521/SHA-512 -> ES512.
//   - EdDSA over edwards25519 -> EdDSA (Ed25519).
//
// The signing input is the Wycheproof msg, as bytes (verifySignature takes
// it as a string; it is not required to be a JWS header.payload).

// conformanceDir is where the shared vectors live, relative to the package
// directory (a checkout at /work/main or /work/wt-*; the vectors at
// /work/shared/conformance).
const conformanceDir = "../shared/conformance"

// conformanceFiles returns the path of the shared vector folder, or skips
// the test when it is missing (fails under CI=true, where a skip would hide
// that the conformance tests did not run).
func conformanceFiles(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(conformanceDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		msg := fmt.Sprintf("conformance vectors not found at %s (%v): they are read in place from %s, next to the checkout", dir, err, conformanceDir)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	return dir
}

// Wycheproof file layout (testvectors_v1 schemas rsassa_pkcs1_verify,
// rsassa_pkcs1_generate, rsassa_pss_verify, ecdsa_p1363_verify,
// eddsa_verify); only the members used here.
type wycheproofFile struct {
	Algorithm     string            `json:"algorithm"`
	Schema        string            `json:"schema"`
	NumberOfTests int               `json:"numberOfTests"`
	TestGroups    []wycheproofGroup `json:"testGroups"`
}

type wycheproofGroup struct {
	Type    string `json:"type"`
	SHA     string `json:"sha"`
	MGF     string `json:"mgf"`
	MGFSHA  string `json:"mgfSha"`
	SLen    *int   `json:"sLen"`
	KeySize int    `json:"keySize"`
	// PublicKey holds modulus/publicExponent (RSA), curve/uncompressed (EC)
	// or curve/pk (EdDSA); the sig_gen files give the RSA public part in
	// PrivateKey instead.
	PublicKey  *wycheproofKey `json:"publicKey"`
	PrivateKey *wycheproofKey `json:"privateKey"`
	// The file's own JWK of the key, when it has one: compared with the
	// JWK built here, to catch a conversion error in this test.
	PublicKeyJWK map[string]any   `json:"publicKeyJwk"`
	KeyJWK       map[string]any   `json:"keyJwk"`
	Tests        []wycheproofTest `json:"tests"`
}

type wycheproofKey struct {
	Modulus        string `json:"modulus"`
	PublicExponent string `json:"publicExponent"`
	Curve          string `json:"curve"`
	Uncompressed   string `json:"uncompressed"`
	PK             string `json:"pk"`
}

type wycheproofTest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Msg     string   `json:"msg"`
	Sig     string   `json:"sig"`
	Result  string   `json:"result"`
}

// conformanceStats are one vector file's counts.
type conformanceStats struct {
	file                                       string
	vectors                                    int // numberOfTests
	run                                        int // vectors given a verdict (by verifySignature or at key load)
	valid, validAccepted                       int
	invalid, invalidRejected                   int
	acceptable, acceptAccepted, acceptRejected int // acceptable vectors, by the module's verdict
	acceptFlags                                map[string]int
	pssOther                                   int // PSS vectors with non-JOSE parameters (required: reject)
	groups, keySkippedGroups                   int
	keySkippedVectors                          int
	nonJOSEGroups, nonJOSEVectors              int
	mismatches                                 int
}

// wycheproofHash maps a Wycheproof hash name to the JOSE hash.
var wycheproofHash = map[string]crypto.Hash{"SHA-256": crypto.SHA256, "SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512}

// wycheproofCurve maps a Wycheproof curve name to the JWK crv and the JOSE
// algorithm that pairs it with its hash.
var wycheproofCurve = map[string]struct {
	crv, alg string
	hash     crypto.Hash
}{
	"secp256r1": {"P-256", "ES256", crypto.SHA256},
	"secp384r1": {"P-384", "ES384", crypto.SHA384},
	"secp521r1": {"P-521", "ES512", crypto.SHA512},
}

// acceptableAccepted lists the flags whose "acceptable" vectors the module
// must accept when it loads the key (see the mapping above).
var acceptableAccepted = map[string]bool{"SmallPublicKey": true}

// wantAccept is the verdict the module must give a vector whose key it loaded.
func wantAccept(tc wycheproofTest) bool {
	switch tc.Result {
	case "valid":
		return true
	case "acceptable":
		for _, f := range tc.Flags {
			if !acceptableAccepted[f] {
				return false
			}
		}
		return len(tc.Flags) > 0
	}
	return false
}

// groupPlan is what a group of vectors is checked as.
type groupPlan struct {
	alg       string            // JOSE algorithm; "" = not JOSE, skip the group
	jwk       map[string]string // the key as a JWK, built from the group's raw key
	rejectAll bool              // PSS with non-JOSE parameters: every vector must be rejected
	pssHash   crypto.Hash       // for rejectAll, the crypto/rsa cross-check
	desc      string            // group parameters, for messages
}

// planGroup decides how a group is run, from the file's schema.
func planGroup(schema string, g *wycheproofGroup) (groupPlan, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	rsaJWK := func(k *wycheproofKey) (map[string]string, error) {
		if k == nil {
			return nil, fmt.Errorf("no RSA key")
		}
		n, err1 := hex.DecodeString(k.Modulus)
		e, err2 := hex.DecodeString(k.PublicExponent)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 {
			return nil, fmt.Errorf("RSA key: bad hex")
		}
		// Wycheproof gives ASN.1 integers (a leading 0x00 when the top bit is
		// set); a JWK has the unsigned big-endian value (RFC 7518 6.3.1.1).
		n, e = bytes.TrimLeft(n, "\x00"), bytes.TrimLeft(e, "\x00")
		return map[string]string{"kty": "RSA", "n": b64(n), "e": b64(e)}, nil
	}
	switch schema {
	case "rsassa_pkcs1_verify_schema_v1.json", "rsassa_pkcs1_generate_schema_v1.json":
		key := g.PublicKey
		if key == nil {
			key = g.PrivateKey // sig_gen: the public members of the signing key
		}
		p := groupPlan{desc: fmt.Sprintf("%d-bit %s", g.KeySize, g.SHA)}
		h, ok := wycheproofHash[g.SHA]
		if !ok {
			return p, nil
		}
		p.alg = map[crypto.Hash]string{crypto.SHA256: "RS256", crypto.SHA384: "RS384", crypto.SHA512: "RS512"}[h]
		jwk, err := rsaJWK(key)
		p.jwk = jwk
		return p, err
	case "rsassa_pss_verify_schema_v1.json":
		sLen := -1
		if g.SLen != nil {
			sLen = *g.SLen
		}
		p := groupPlan{desc: fmt.Sprintf("%d-bit %s %s-%s sLen %d", g.KeySize, g.SHA, g.MGF, g.MGFSHA, sLen)}
		h, ok := wycheproofHash[g.SHA]
		if !ok {
			return p, nil
		}
		p.alg = map[crypto.Hash]string{crypto.SHA256: "PS256", crypto.SHA384: "PS384", crypto.SHA512: "PS512"}[h]
		p.rejectAll = g.MGF != "MGF1" || g.MGFSHA != g.SHA || sLen != h.Size()
		p.pssHash = h
		jwk, err := rsaJWK(g.PublicKey)
		p.jwk = jwk
		return p, err
	case "ecdsa_p1363_verify_schema_v1.json":
		if g.PublicKey == nil {
			return groupPlan{}, fmt.Errorf("no EC key")
		}
		p := groupPlan{desc: fmt.Sprintf("%s %s", g.PublicKey.Curve, g.SHA)}
		c, ok := wycheproofCurve[g.PublicKey.Curve]
		if !ok || wycheproofHash[g.SHA] != c.hash {
			return p, nil
		}
		p.alg = c.alg
		pt, err := hex.DecodeString(g.PublicKey.Uncompressed)
		size := (len(pt) - 1) / 2
		if err != nil || len(pt) < 3 || pt[0] != 4 || len(pt) != 1+2*size {
			return p, fmt.Errorf("EC key: bad uncompressed point %q", g.PublicKey.Uncompressed)
		}
		p.jwk = map[string]string{"kty": "EC", "crv": c.crv, "x": b64(pt[1 : 1+size]), "y": b64(pt[1+size:])}
		return p, nil
	case "eddsa_verify_schema_v1.json":
		if g.PublicKey == nil {
			return groupPlan{}, fmt.Errorf("no EdDSA key")
		}
		p := groupPlan{desc: g.PublicKey.Curve}
		if g.PublicKey.Curve != "edwards25519" {
			return p, nil // Ed448: not supported by the module
		}
		p.alg = "EdDSA"
		pk, err := hex.DecodeString(g.PublicKey.PK)
		if err != nil {
			return p, fmt.Errorf("EdDSA key: %v", err)
		}
		p.jwk = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(pk)}
		return p, nil
	}
	return groupPlan{}, fmt.Errorf("unhandled schema %q: add it to planGroup or remove the file", schema)
}

// checkJWKAgainstFile compares the JWK built here with the file's own JWK of
// the same key (when there is one), member by member: a test that converted
// keys wrongly would otherwise only show up as mysterious verdicts.
func checkJWKAgainstFile(built map[string]string, file map[string]any) error {
	if file == nil {
		return nil
	}
	for _, m := range []string{"kty", "crv", "n", "e", "x", "y"} {
		v, ok := file[m].(string)
		if !ok {
			continue
		}
		if built[m] != v {
			return fmt.Errorf("member %q: built %q, file has %q", m, built[m], v)
		}
	}
	return nil
}

// readWycheproof reads and decodes one gzipped vector file.
func readWycheproof(path string) (*wycheproofFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var wf wycheproofFile
	if err := json.NewDecoder(zr).Decode(&wf); err != nil {
		return nil, err
	}
	return &wf, nil
}

// TestWycheproofConformance runs every applicable vector of every file in
// ../shared/conformance/wycheproof through Key.verifySignature (see the file
// comment for the verdicts), one subtest per file, and logs each file's
// counts and a summary table.
func TestWycheproofConformance(t *testing.T) {
	dir := filepath.Join(conformanceFiles(t), "wycheproof")
	files, err := filepath.Glob(filepath.Join(dir, "*.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.json.gz in %s", dir)
	}

	var (
		mu    sync.Mutex
		stats []*conformanceStats
		algs  = map[string][2]int{} // per JOSE alg: valid accepted, invalid rejected
	)
	t.Run("files", func(t *testing.T) {
		for _, path := range files {
			name := strings.TrimSuffix(filepath.Base(path), ".json.gz")
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				st, perAlg := runWycheproofFile(t, path, name)
				mu.Lock()
				defer mu.Unlock()
				stats = append(stats, st)
				for alg, c := range perAlg {
					a := algs[alg]
					algs[alg] = [2]int{a[0] + c[0], a[1] + c[1]}
				}
			})
		}
	})
	if t.Failed() {
		return
	}

	// Every JOSE algorithm the module verifies must have been exercised,
	// both ways: a missing file must not leave an algorithm untested.
	for alg := range algorithms {
		if c := algs[alg]; c[0] == 0 || c[1] == 0 {
			t.Errorf("%s: %d valid vectors accepted, %d invalid rejected; want some of each (vector file missing?)", alg, c[0], c[1])
		}
	}

	sort.Slice(stats, func(i, j int) bool { return stats[i].file < stats[j].file })
	var b strings.Builder
	fmt.Fprintf(&b, "\n| file | vectors | run | valid accepted | invalid rejected | acceptable: accepted/rejected (flags) | PSS other params rejected | groups | key skipped at load (groups/vectors) | non-JOSE skipped (groups/vectors) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	var tot conformanceStats
	for _, s := range stats {
		fmt.Fprintf(&b, "| %s | %d | %d | %d/%d | %d/%d | %d/%d %s | %d | %d | %d/%d | %d/%d |\n",
			s.file, s.vectors, s.run, s.validAccepted, s.valid, s.invalidRejected, s.invalid,
			s.acceptAccepted, s.acceptRejected, flagList(s.acceptFlags), s.pssOther, s.groups,
			s.keySkippedGroups, s.keySkippedVectors, s.nonJOSEGroups, s.nonJOSEVectors)
		tot.vectors += s.vectors
		tot.run += s.run
		tot.valid += s.valid
		tot.validAccepted += s.validAccepted
		tot.invalid += s.invalid
		tot.invalidRejected += s.invalidRejected
		tot.acceptAccepted += s.acceptAccepted
		tot.acceptRejected += s.acceptRejected
		tot.pssOther += s.pssOther
		tot.groups += s.groups
		tot.keySkippedGroups += s.keySkippedGroups
		tot.keySkippedVectors += s.keySkippedVectors
		tot.nonJOSEGroups += s.nonJOSEGroups
		tot.nonJOSEVectors += s.nonJOSEVectors
	}
	fmt.Fprintf(&b, "| total (%d files) | %d | %d | %d/%d | %d/%d | %d/%d | %d | %d | %d/%d | %d/%d |",
		len(stats), tot.vectors, tot.run, tot.validAccepted, tot.valid, tot.invalidRejected, tot.invalid,
		tot.acceptAccepted, tot.acceptRejected, tot.pssOther, tot.groups,
		tot.keySkippedGroups, tot.keySkippedVectors, tot.nonJOSEGroups, tot.nonJOSEVectors)
	t.Log(b.String())
}

// flagList renders flag counts as "(A:1 B:2)".
func flagList(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for f, n := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", f, n))
	}
	slices.Sort(parts)
	return "(" + strings.Join(parts, " ") + ")"
}

// runWycheproofFile checks one file's vectors and returns its counts, and per
// JOSE algorithm the number of valid vectors accepted and invalid rejected.
func runWycheproofFile(t *testing.T, path, name string) (*conformanceStats, map[string][2]int) {
	wf, err := readWycheproof(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	st := &conformanceStats{file: name, vectors: wf.NumberOfTests, groups: len(wf.TestGroups), acceptFlags: map[string]int{}}
	perAlg := map[string][2]int{}

	const maxReported = 25
	fail := func(format string, args ...any) {
		st.mismatches++
		if st.mismatches <= maxReported {
			t.Errorf(name+": "+format, args...)
		}
	}
	defer func() {
		if st.mismatches > maxReported {
			t.Errorf("%s: %d mismatches in all, %d not shown", name, st.mismatches, st.mismatches-maxReported)
		}
	}()

	seen := 0
	for gi := range wf.TestGroups {
		g := &wf.TestGroups[gi]
		seen += len(g.Tests)
		plan, err := planGroup(wf.Schema, g)
		if err != nil {
			t.Fatalf("%s group %d: %v", name, gi, err)
		}
		where := func(tc wycheproofTest) string {
			return fmt.Sprintf("group %d (%s, %s) tcId %d %q flags %v result %s", gi, plan.desc, plan.alg, tc.TcID, tc.Comment, tc.Flags, tc.Result)
		}
		if plan.alg == "" {
			st.nonJOSEGroups++
			st.nonJOSEVectors += len(g.Tests)
			continue
		}
		for _, fileJWK := range []map[string]any{g.PublicKeyJWK, g.KeyJWK} {
			if err := checkJWKAgainstFile(plan.jwk, fileJWK); err != nil {
				t.Fatalf("%s group %d: the JWK built from the raw key differs from the file's: %v", name, gi, err)
			}
		}

		// The key goes through the module's JWK parsing, as an issuer's would.
		kid := fmt.Sprintf("%s/%d", name, gi)
		jwk := map[string]string{"kid": kid}
		for k, v := range plan.jwk {
			jwk[k] = v
		}
		doc, err := json.Marshal(map[string]any{"keys": []any{jwk}})
		if err != nil {
			t.Fatal(err)
		}
		var key *Key
		set, skipped, err := ParseKeyDocument(doc)
		switch {
		case err == nil && len(skipped) == 0 && len(set.Lookup(kid)) == 1:
			key = set.Lookup(kid)[0]
		case err != nil && len(skipped) == 1:
			// Refused at load: the whole group is rejected (see above).
		default:
			t.Fatalf("%s group %d: ParseKeyDocument gave set %v, skipped %v, err %v", name, gi, set, skipped, err)
		}
		if key == nil {
			st.keySkippedGroups++
			st.keySkippedVectors += len(g.Tests)
			t.Logf("%s group %d (%s): key refused at load (%v); its %d vectors count as rejected", name, gi, plan.desc, skipped[0], len(g.Tests))
		} else {
			if !key.fits(plan.alg) {
				t.Fatalf("%s group %d: loaded key does not fit %s", name, gi, plan.alg)
			}
			if _, isRSA := key.Public.(*rsa.PublicKey); isRSA && key.rsa == nil && !fips140.Enabled() {
				t.Fatalf("%s group %d: ParseKeyDocument did not prepare the RSA key (rsa.go would not be tested)", name, gi)
			}
		}

		for _, tc := range g.Tests {
			msg, err1 := hex.DecodeString(tc.Msg)
			sig, err2 := hex.DecodeString(tc.Sig)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: bad hex (%v, %v)", where(tc), err1, err2)
			}
			want := wantAccept(tc)
			if plan.rejectAll {
				want = false
				st.pssOther++
			}
			st.run++

			var got bool
			if key == nil {
				if want {
					fail("%s: the module refuses this key (%v), but the vector must be accepted", where(tc), skipped[0])
				}
			} else {
				got = key.verifySignature(plan.alg, string(msg), sig)
				if got != want {
					fail("%s: module %s, want %s", where(tc), verdict(got), verdict(want))
				}
				if key.rsa != nil && strings.HasPrefix(plan.alg, "RS") {
					// The crypto/rsa path, taken in FIPS 140 mode.
					plain := *key
					plain.rsa = nil
					if v := plain.verifySignature(plan.alg, string(msg), sig); v != want {
						fail("%s: crypto/rsa path %s, want %s", where(tc), verdict(v), verdict(want))
					}
				}
				if plan.rejectAll {
					pub := key.Public.(*rsa.PublicKey)
					opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
					if rsa.VerifyPSS(pub, plan.pssHash, digest(plan.pssHash, string(msg)), sig, opts) == nil {
						t.Errorf("%s: data: crypto/rsa with salt length = hash length accepts a signature made with other PSS parameters; the reject-all rule does not hold for it", where(tc))
					}
				}
			}

			switch {
			case plan.rejectAll:
			case tc.Result == "valid":
				st.valid++
				if got {
					st.validAccepted++
					c := perAlg[plan.alg]
					perAlg[plan.alg] = [2]int{c[0] + 1, c[1]}
				}
			case tc.Result == "invalid":
				st.invalid++
				if !got {
					st.invalidRejected++
					c := perAlg[plan.alg]
					perAlg[plan.alg] = [2]int{c[0], c[1] + 1}
				}
			case tc.Result == "acceptable":
				st.acceptable++
				st.acceptFlags[strings.Join(tc.Flags, "+")]++
				if got {
					st.acceptAccepted++
				} else {
					st.acceptRejected++
				}
			default:
				t.Fatalf("%s: unknown result %q", where(tc), tc.Result)
			}
		}
	}
	if seen != wf.NumberOfTests || st.run+st.nonJOSEVectors != wf.NumberOfTests {
		t.Errorf("%s: numberOfTests %d, vectors in groups %d, run %d + skipped as non-JOSE %d: some vectors were not accounted for",
			name, wf.NumberOfTests, seen, st.run, st.nonJOSEVectors)
	}
	t.Logf("%s: %d vectors, %d run: valid %d/%d accepted, invalid %d/%d rejected, acceptable %d (accepted %d, rejected %d; flags %v), PSS with other parameters %d (all rejected when no mismatch), groups %d: key skipped at load %d (%d vectors), non-JOSE skipped %d (%d vectors)",
		name, st.vectors, st.run, st.validAccepted, st.valid, st.invalidRejected, st.invalid,
		st.acceptable, st.acceptAccepted, st.acceptRejected, st.acceptFlags, st.pssOther,
		st.groups, st.keySkippedGroups, st.keySkippedVectors, st.nonJOSEGroups, st.nonJOSEVectors)
	return st, perAlg
}

func verdict(accept bool) string {
	if accept {
		return "accepts"
	}
	return "rejects"
}

// rfcExample is one entry of ../shared/conformance/rfc_jws_examples.json.
type rfcExample struct {
	Name    string          `json:"name"`
	Alg     string          `json:"alg"`
	JWKS    json.RawMessage `json:"jwks"`
	Compact string          `json:"compact"`
}

// TestRFCConformanceExamples checks the published JWS examples (RFC 7515
// A.2-A.4, RFC 7520 4.1-4.3, RFC 8037 A.4): each key loads through
// ParseKeyDocument, each signature verifies with verifySignature (and with
// the Go standard library, so that a transcription error in the file shows
// up as a data error rather than as a module failure), and a one-bit change
// to the signature, or to the signing input, makes it fail.
func TestRFCConformanceExamples(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(conformanceFiles(t), "rfc_jws_examples.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Examples []rfcExample `json:"examples"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	// The examples the file is documented to hold, and their algorithms.
	want := map[string]string{
		"RFC 7515 A.2": "RS256", "RFC 7515 A.3": "ES256", "RFC 7515 A.4": "ES512",
		"RFC 7520 4.1": "RS256", "RFC 7520 4.2": "PS384", "RFC 7520 4.3": "ES512",
		"RFC 8037 A.4": "EdDSA",
	}
	for _, ex := range file.Examples {
		for prefix, alg := range want {
			if strings.HasPrefix(ex.Name, prefix+" ") {
				if ex.Alg != alg {
					t.Errorf("%s: alg %s, want %s", ex.Name, ex.Alg, alg)
				}
				delete(want, prefix)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("examples missing from the file: %v", want)
	}

	for _, ex := range file.Examples {
		t.Run(ex.Name, func(t *testing.T) {
			parts := strings.Split(ex.Compact, ".")
			if len(parts) != 3 {
				t.Fatalf("compact serialization has %d parts", len(parts))
			}
			signed := parts[0] + "." + parts[1]
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			if err != nil {
				t.Fatalf("signature: %v", err)
			}
			header, err := base64.RawURLEncoding.DecodeString(parts[0])
			if err != nil {
				t.Fatalf("header: %v", err)
			}
			var h struct {
				Alg string `json:"alg"`
			}
			if err := json.Unmarshal(header, &h); err != nil || h.Alg != ex.Alg {
				t.Fatalf("header %s: alg %q, want %q (%v)", header, h.Alg, ex.Alg, err)
			}

			set, skipped, err := ParseKeyDocument(ex.JWKS)
			if err != nil || len(skipped) > 0 {
				t.Fatalf("ParseKeyDocument: %v (skipped %v)", err, skipped)
			}
			key := set.Only()
			if key == nil {
				t.Fatalf("the example's JWKS holds %d keys, want 1", set.Len())
			}
			if !key.fits(ex.Alg) {
				t.Fatalf("key does not fit %s", ex.Alg)
			}
			if !stdlibVerifiesJWS(key.Public, ex.Alg, signed, sig) {
				t.Fatalf("data: the Go standard library rejects the example's signature")
			}

			// RS* runs through the prepared key of rsa.go and, separately,
			// through crypto/rsa (the path taken in FIPS 140 mode).
			keys, paths := []*Key{key}, []string{ex.Alg}
			if _, isRSA := key.Public.(*rsa.PublicKey); isRSA && key.rsa == nil && !fips140.Enabled() {
				t.Fatal("ParseKeyDocument did not prepare the RSA key")
			}
			if strings.HasPrefix(ex.Alg, "RS") && key.rsa != nil {
				plain := *key
				plain.rsa = nil
				keys, paths = append(keys, &plain), []string{ex.Alg + " prepared key (rsa.go)", ex.Alg + " crypto/rsa"}
			}
			for ki, k := range keys {
				path := paths[ki]
				if !k.verifySignature(ex.Alg, signed, sig) {
					t.Errorf("%s: verifySignature rejects the example", path)
				}
				// One bit flipped at the start, middle and end of the
				// signature (both ends of each byte), then of the signing input.
				for _, i := range []int{0, len(sig) / 2, len(sig) - 1} {
					for _, bit := range []byte{0x01, 0x80} {
						bad := bytes.Clone(sig)
						bad[i] ^= bit
						if k.verifySignature(ex.Alg, signed, bad) {
							t.Errorf("%s: accepts the signature with byte %d ^ %#02x", path, i, bit)
						}
					}
				}
				for _, i := range []int{0, len(signed) / 2, len(signed) - 1} {
					bad := []byte(signed)
					bad[i] ^= 0x01
					if k.verifySignature(ex.Alg, string(bad), sig) {
						t.Errorf("%s: accepts the signature over a signing input with byte %d changed", path, i)
					}
				}
			}
		})
	}
}

// stdlibVerifiesJWS is an independent check of a JWS signature with the
// Go standard library (PSS with the salt length RFC 7518 requires).
func stdlibVerifiesJWS(pub crypto.PublicKey, alg, signed string, sig []byte) bool {
	a, ok := algorithms[alg]
	if !ok {
		return false
	}
	var d []byte
	if a.hash != 0 {
		hh := a.hash.New()
		hh.Write([]byte(signed))
		d = hh.Sum(nil)
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if a.family == rsaPSS {
			return rsa.VerifyPSS(p, a.hash, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(p, a.hash, d, sig) == nil
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		return ecdsa.Verify(p, d, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	case ed25519.PublicKey:
		return ed25519.Verify(p, []byte(signed), sig)
	}
	return false
}
