package idtoken

import (
	"bytes"
	"crypto"
	"crypto/fips140"
	"crypto/rsa"

	"filippo.io/bigmod"
)

// rsaVerifyKey is an RSA public key prepared once for RS256/384/512.
//
// crypto/rsa converts a *rsa.PublicKey to Montgomery form on every
// verification (it keeps that only for private keys), which is a third of
// the cost of a 2048-bit RS256 check. filippo.io/bigmod is the standard
// library's crypto/internal/fips140/bigmod, exported: the arithmetic here is
// the code crypto/rsa runs, done with a modulus converted once per key.
type rsaVerifyKey struct {
	n *bigmod.Modulus
	e uint
}

// newRSAVerifyKey prepares pub, or returns nil when crypto/rsa must verify
// with it instead: in FIPS 140 mode, so that verification stays inside the
// validated module, and for any key crypto/rsa refuses (it then refuses the
// key on every call, so nothing is lost by leaving it to crypto/rsa) or that
// is larger than a key set accepts (preparing it would take long).
func newRSAVerifyKey(pub *rsa.PublicKey) *rsaVerifyKey {
	if fips140.Enabled() || pub.N == nil {
		return nil
	}
	if bits := pub.N.BitLen(); bits < 1024 || bits > maxRSABits || pub.N.Bit(0) == 0 {
		return nil // too small for crypto/rsa, too large for a key set, or even
	}
	if pub.E < 3 || pub.E%2 == 0 || pub.E > 1<<31-1 {
		return nil // exponents crypto/rsa refuses
	}
	n, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil
	}
	return &rsaVerifyKey{n: n, e: uint(pub.E)}
}

// digestInfoPrefix is the DER DigestInfo header that precedes each hash in
// an RSASSA-PKCS1-v1_5 encoding (RFC 8017 section 9.2, note 1).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// verifyPKCS1v15 reports whether sig is a valid RSASSA-PKCS1-v1_5 signature
// of signed with hash h (SHA-256, -384 or -512). It follows RFC 8017
// section 8.2.2 step by step, as crypto/rsa does: sig must be exactly k
// octets and below n, and s^e mod n must equal the expected encoding byte
// for byte. The padding is never parsed, only compared, which rules out the
// lax-parsing forgeries (Bleichenbacher 2006) by construction.
//
// The comparison is split in two: the part of the encoding that does not
// depend on the message first, then the digest. The verdict is the same as
// one comparison, but a signature nobody made (its s^e is noise) is refused
// without hashing the signing input, which for a 16 KiB token costs as
// much as the exponentiation.
func (k *rsaVerifyKey) verifyPKCS1v15(h crypto.Hash, signed string, sig []byte) bool {
	prefix, ok := digestInfoPrefix[h]
	if !ok || len(sig) != k.n.Size() {
		return false
	}
	s, err := bigmod.NewNat().SetBytes(sig, k.n)
	if err != nil { // s >= n
		return false
	}
	em := bigmod.NewNat().ExpShortVarTime(s, k.e, k.n).Bytes(k.n)
	expected := pkcs1v15Encoding(len(em), prefix, make([]byte, h.Size()))
	if expected == nil {
		return false
	}
	head := len(em) - h.Size()
	if !bytes.Equal(em[:head], expected[:head]) {
		return false
	}
	return bytes.Equal(em[head:], digest(h, signed))
}

// pkcs1v15Encoding is EMSA-PKCS1-v1_5 (RFC 8017 section 9.2) of a digest
// for a k-octet modulus: 0x00 0x01 0xff... 0x00 DigestInfo. It is nil when
// k is too short to hold it.
func pkcs1v15Encoding(k int, prefix, digest []byte) []byte {
	tLen := len(prefix) + len(digest)
	if k < tLen+11 {
		return nil
	}
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tLen:], prefix)
	copy(em[k-len(digest):], digest)
	return em
}
