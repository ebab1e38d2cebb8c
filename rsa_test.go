package idtoken

import (
	"bytes"
	"crypto"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// rsaHashes maps each RS algorithm to its hash, as crypto/rsa names it.
var rsaHashes = map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512}

// stdlibVerifies is the reference: crypto/rsa's verdict on sig.
func stdlibVerifies(pub *rsa.PublicKey, alg, signed string, sig []byte) bool {
	return rsa.VerifyPKCS1v15(pub, rsaHashes[alg], digest(rsaHashes[alg], signed), sig) == nil
}

// rawSign returns em^d mod n as k octets: a "signature" over any encoding,
// so tests can present forged paddings that crypto/rsa would never produce.
// It uses the CRT (two half-size exponentiations), which keeps fuzzing fast.
func rawSign(priv *rsa.PrivateKey, em []byte) []byte {
	p, q, c := priv.Primes[0], priv.Primes[1], new(big.Int).SetBytes(em)
	m1 := new(big.Int).Exp(c, priv.Precomputed.Dp, p)
	m2 := new(big.Int).Exp(c, priv.Precomputed.Dq, q)
	h := m1.Sub(m1, m2)
	h.Mul(h, priv.Precomputed.Qinv).Mod(h, p)
	s := h.Mul(h, q).Add(h, m2)
	return s.FillBytes(make([]byte, priv.Size()))
}

// encode builds 0x00 0x01 ff*pad 0x00 || prefix || digest || tail.
func encode(k, pad int, prefix, digest, tail []byte) []byte {
	em := append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, pad)...)
	em = append(append(append(append(em, 0), prefix...), digest...), tail...)
	if len(em) > k {
		return em[:k]
	}
	return append(make([]byte, k-len(em)), em...)
}

var (
	oddKeyOnce sync.Once
	oddKey     *rsa.PrivateKey
)

// oddSizedKey is a 2049-bit key: its octet length (257) carries a partial
// top byte, the case where size rounding goes wrong.
func oddSizedKey(t *testing.T) *rsa.PrivateKey {
	oddKeyOnce.Do(func() {
		var err error
		if oddKey, err = rsa.GenerateKey(rand.Reader, 2049); err != nil {
			t.Fatal(err)
		}
	})
	return oddKey
}

// TestRSAVerifyMatchesStdlib checks the prepared-key RS256/384/512 path
// against crypto/rsa on valid signatures, damaged ones, out-of-range values
// and forged encodings signed raw with the private key. Each case states
// the expected verdict, and crypto/rsa must agree with it too.
func TestRSAVerifyMatchesStdlib(t *testing.T) {
	const signed = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9"
	for _, priv := range []*rsa.PrivateKey{rsaTestKey(t, 0), oddSizedKey(t)} {
		pub := &priv.PublicKey
		fast := newRSAVerifyKey(pub)
		if fast == nil {
			t.Fatalf("%d-bit key was not prepared", pub.N.BitLen())
		}
		k := priv.Size()
		for alg := range rsaHashes {
			d := digest(rsaHashes[alg], signed)
			prefix := digestInfoPrefix[rsaHashes[alg]]
			pad := k - 3 - len(prefix) - len(d)
			signMsg := func(alg2, msg string) []byte {
				s, err := rsa.SignPKCS1v15(nil, priv, rsaHashes[alg2], digest(rsaHashes[alg2], msg))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			otherAlg := map[string]string{"RS256": "RS384", "RS384": "RS512", "RS512": "RS256"}[alg]
			valid := signMsg(alg, signed)
			flipped := func(i int) []byte {
				s := bytes.Clone(valid)
				s[i/8] ^= 1 << (i % 8)
				return s
			}
			num := func(x *big.Int) []byte { return x.FillBytes(make([]byte, k)) }
			noNull := append([]byte{prefix[0], prefix[1] - 2, 0x30, 0x0b}, prefix[4:15]...)
			noNull = append(noNull, prefix[17:]...)

			cases := []struct {
				name string
				sig  []byte
				ok   bool
			}{
				{"valid", valid, true},
				{"raw-signed correct encoding", rawSign(priv, encode(k, pad, prefix, d, nil)), true},
				{"signature of another message", signMsg(alg, signed+"."), false},
				{"signature under another hash", signMsg(otherAlg, signed), false},
				{"first bit flipped", flipped(0), false},
				{"middle bit flipped", flipped(k * 4), false},
				{"last bit flipped", flipped(k*8 - 1), false},
				{"leading zero octet added", append([]byte{0}, valid...), false},
				{"first octet dropped", valid[1:], false},
				{"last octet dropped", valid[:k-1], false},
				{"empty", nil, false},
				{"zero", make([]byte, k), false},
				{"one", num(big.NewInt(1)), false},
				{"n", num(pub.N), false},
				{"n-1", num(new(big.Int).Sub(pub.N, big.NewInt(1))), false},
				{"all ones", bytes.Repeat([]byte{0xff}, k), false},
				{"block type 2", rawSign(priv, append([]byte{0, 2}, encode(k, pad, prefix, d, nil)[2:]...)), false},
				{"padding octet not 0xff", rawSign(priv, func() []byte { em := encode(k, pad, prefix, d, nil); em[5] = 0xfe; return em }()), false},
				{"no zero separator", rawSign(priv, func() []byte { em := encode(k, pad, prefix, d, nil); em[2+pad] = 0xff; return em }()), false},
				{"short padding, garbage after the digest", rawSign(priv, encode(k, 8, prefix, d, bytes.Repeat([]byte{0x42}, pad-8))), false},
				{"digest info without NULL parameters", rawSign(priv, encode(k, pad+2, noNull, d, nil)), false},
				{"digest of another message", rawSign(priv, encode(k, pad, prefix, digest(rsaHashes[alg], signed+"x"), nil)), false},
			}
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%d-bit/%s/%s", pub.N.BitLen(), alg, tc.name), func(t *testing.T) {
					std := stdlibVerifies(pub, alg, signed, tc.sig)
					got := fast.verifyPKCS1v15(rsaHashes[alg], signed, tc.sig)
					if std != tc.ok {
						t.Fatalf("crypto/rsa says %v, the case expects %v", std, tc.ok)
					}
					if got != std {
						t.Fatalf("prepared key says %v, crypto/rsa says %v", got, std)
					}
				})
			}
		}
	}
}

// TestNewRSAVerifyKey: keys crypto/rsa would refuse are left to it, so the
// prepared path never accepts what crypto/rsa rejects.
func TestNewRSAVerifyKey(t *testing.T) {
	good := &rsaTestKey(t, 0).PublicKey
	even := new(big.Int).Add(good.N, big.NewInt(1))
	small := new(big.Int).Rsh(good.N, 1025) // 1023 bits
	small.SetBit(small, 0, 1)
	huge := new(big.Int).Lsh(good.N, maxRSABits)
	huge.SetBit(huge, 0, 1)
	cases := []struct {
		name     string
		pub      *rsa.PublicKey
		prepared bool
	}{
		{"2048-bit, e=65537", good, true},
		{"e=3", &rsa.PublicKey{N: good.N, E: 3}, true},
		{"even modulus", &rsa.PublicKey{N: even, E: 65537}, false},
		{"modulus under 1024 bits", &rsa.PublicKey{N: small, E: 65537}, false},
		{"modulus over maxRSABits", &rsa.PublicKey{N: huge, E: 65537}, false},
		{"no modulus", &rsa.PublicKey{E: 65537}, false},
		{"e=1", &rsa.PublicKey{N: good.N, E: 1}, false},
		{"even e", &rsa.PublicKey{N: good.N, E: 65536}, false},
		{"e above 2^31-1", &rsa.PublicKey{N: good.N, E: 1<<31 + 1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := newRSAVerifyKey(tc.pub) != nil; got != tc.prepared {
				t.Fatalf("prepared = %v, want %v", got, tc.prepared)
			}
		})
	}
}

// TestKeySetPreparesRSAKeys: every RSA key in a set takes the prepared path,
// and a token verifies through it while PS256 still goes to crypto/rsa.
func TestKeySetPreparesRSAKeys(t *testing.T) {
	rs := newRSAKey(t, "rs", 0)
	ps := testKey{kid: "ps", alg: "PS256", priv: rs.priv, pub: rs.pub}
	set := mustParse(t, jwksJSON(t, rs, ps))
	for _, k := range set.keys {
		if k.rsa == nil {
			t.Fatalf("key %q was not prepared", k.ID)
		}
	}
	v, err := NewVerifier(Policy{Algorithms: []string{"RS256", "PS256"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []testKey{rs, ps} {
		if _, rej := verifyString(v, sign(t, k, validClaims(), nil), set, testNow); rej != nil {
			t.Fatalf("%s token rejected: %v", k.alg, rej)
		}
	}
}

// TestFIPSModeUsesCryptoRSA: with GODEBUG=fips140=on no key is prepared, so
// every RSA verification stays inside the FIPS 140 module, and tokens still
// verify. The check runs in a child process, where the setting can be made.
func TestFIPSModeUsesCryptoRSA(t *testing.T) {
	if os.Getenv("IDTOKEN_FIPS_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSModeUsesCryptoRSA$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GODEBUG=fips140=on", "IDTOKEN_FIPS_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("PASS")) {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	if !fips140.Enabled() {
		t.Fatal("GODEBUG=fips140=on did not enable FIPS 140 mode")
	}
	rs := newRSAKey(t, "rs", 0)
	set := mustParse(t, jwksJSON(t, rs))
	if set.keys[0].rsa != nil {
		t.Fatal("a key was prepared in FIPS 140 mode")
	}
	v, err := NewVerifier(Policy{Algorithms: []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, rej := verifyString(v, sign(t, rs, validClaims(), nil), set, testNow); rej != nil {
		t.Fatalf("token rejected in FIPS 140 mode: %v", rej)
	}
}
