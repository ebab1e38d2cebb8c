package idtoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
)

// thumbprint is the RFC 7638 JWK thumbprint of pub with SHA-256, base64url
// without padding, or "" for a key type this module does not use. It names
// a key independently of its kid and of how its JWK was written (member
// order, padding, leading zero octets), so an operator can recognise a key
// across issuers and documents, and a configuration can pin one.
//
// It is computed from the parsed key, so its input is the canonical
// encoding of RFC 7518: RSA n and e without leading zero octets, EC
// coordinates at the full size of the curve.
func thumbprint(pub crypto.PublicKey) string {
	b64url := base64.RawURLEncoding.EncodeToString
	var members string // the required members in lexicographic order, no white space
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		e := big.NewInt(int64(pub.E)).Bytes()
		members = `{"e":"` + b64url(e) + `","kty":"RSA","n":"` + b64url(pub.N.Bytes()) + `"}`
	case *ecdsa.PublicKey:
		point, err := pub.Bytes() // 0x04 || X || Y, each at the curve's size
		if err != nil {
			return ""
		}
		size := (len(point) - 1) / 2
		members = `{"crv":"` + pub.Curve.Params().Name + `","kty":"EC","x":"` + b64url(point[1:1+size]) +
			`","y":"` + b64url(point[1+size:]) + `"}`
	case ed25519.PublicKey:
		members = `{"crv":"Ed25519","kty":"OKP","x":"` + b64url(pub) + `"}`
	default:
		return ""
	}
	// Every value is base64url or a fixed name: nothing needs JSON escaping.
	sum := sha256.Sum256([]byte(members))
	return b64url(sum[:])
}

// jwkType is the JWK kty and crv ("" for RSA) of a public key this module uses.
func jwkType(pub crypto.PublicKey) (kty, crv string) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return "RSA", ""
	case *ecdsa.PublicKey:
		return "EC", pub.Curve.Params().Name
	case ed25519.PublicKey:
		return "OKP", "Ed25519"
	}
	return "", ""
}
