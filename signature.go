package idtoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
)

// family is how an algorithm's signature is checked.
type family uint8

const (
	rsaPKCS1   family = iota + 1 // RSASSA-PKCS1-v1_5 (RFC 7518 section 3.3)
	rsaPSS                       // RSASSA-PSS, salt length = hash length (section 3.5)
	ecdsaP1363                   // ECDSA, R || S (section 3.4)
	eddsa                        // Ed25519 (RFC 8037)
)

// algorithm is one JWS signature algorithm this module verifies.
type algorithm struct {
	family family
	hash   crypto.Hash // 0 for EdDSA, which hashes internally
}

// algorithms are the JWS algorithms this module can verify. HMAC and "none"
// are deliberately absent: a public key set can never authorise them.
var algorithms = map[string]algorithm{
	"RS256": {rsaPKCS1, crypto.SHA256}, "RS384": {rsaPKCS1, crypto.SHA384}, "RS512": {rsaPKCS1, crypto.SHA512},
	"PS256": {rsaPSS, crypto.SHA256}, "PS384": {rsaPSS, crypto.SHA384}, "PS512": {rsaPSS, crypto.SHA512},
	"ES256": {ecdsaP1363, crypto.SHA256}, "ES384": {ecdsaP1363, crypto.SHA384}, "ES512": {ecdsaP1363, crypto.SHA512},
	"EdDSA": {family: eddsa},
}

// pssOptions fixes the salt length to the hash length, as RFC 7518 section
// 3.5 requires. crypto/rsa's default for verification (and golang-jwt's
// choice) accepts any salt length, which admits signatures no conforming
// signer makes.
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

// verifySignature reports whether sig is a valid alg signature of signed
// (the ASCII header.payload) under k. k must fit alg (see Key.fits).
func (k *Key) verifySignature(alg, signed string, sig []byte) bool {
	a, ok := algorithms[alg]
	if !ok {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		switch {
		case a.family == rsaPKCS1 && k.rsa != nil:
			return k.rsa.verifyPKCS1v15(a.hash, signed, sig)
		case a.family == rsaPKCS1:
			return rsa.VerifyPKCS1v15(pub, a.hash, digest(a.hash, signed), sig) == nil
		case a.family == rsaPSS:
			return rsa.VerifyPSS(pub, a.hash, digest(a.hash, signed), sig, pssOptions) == nil
		}
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if a.family != ecdsaP1363 || len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest(a.hash, signed), r, s)
	case ed25519.PublicKey:
		return a.family == eddsa && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, []byte(signed), sig)
	}
	return false
}

// digest hashes the signing input with h (SHA-256, -384 or -512).
func digest(h crypto.Hash, signed string) []byte {
	switch h {
	case crypto.SHA256:
		sum := sha256.Sum256([]byte(signed))
		return sum[:]
	case crypto.SHA384:
		sum := sha512.Sum384([]byte(signed))
		return sum[:]
	case crypto.SHA512:
		sum := sha512.Sum512([]byte(signed))
		return sum[:]
	}
	return nil
}
