// Package forge builds the largest tokens the module accepts for parsing:
// forged ones that are as expensive as possible to decode for someone who
// does not hold the private key, and validly signed ones of the same length,
// so the two can be compared.
//
// A forged token has a small, flat, well-formed header naming a kid the
// issuer serves (so the module has to try the signature), a payload that
// fills the rest of the length limit with JSON that is costly to decode, and
// a junk signature of the key's length. It must always be refused with 401.
package forge

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// MaxLength is the module's token length limit (idtoken.MaxTokenLength);
// tokens built here are that long or one character shorter (base64 cannot
// make every length).
const MaxLength = 16 << 10

// rsaSigLen is the length of an RS256 signature with a 2048-bit key.
const rsaSigLen = 256

// A Variant is one way of filling a payload with expensive JSON.
type Variant struct {
	Name string
	// fill returns a JSON object of at most n bytes (and close to n).
	fill func(n int) string
}

// Variants are the forged payloads, each stressing a different part of a
// JSON decoder. All are valid JSON objects, so a decoder that reads the
// payload before checking the signature has to decode all of it.
var Variants = []Variant{
	// ~6,000 nested arrays: the deepest document that fits.
	{"deep", deep},
	// Thousands of distinct members, each a map insert and a small value.
	{"wide", wide},
	// One long string made of escapes, each decoded on the slow path.
	{"escapes", escapes},
	// Thousands of distinct member names, each starting with an escape, so
	// every name is unquoted on the slow path and then inserted.
	{"escaped-names", escapedNames},
	// Thousands of members with the same name, each replacing the last.
	{"dupes", dupes},
}

// Valid-looking claims at the front of every forged payload.
const claimsPrefix = `{"iss":"https://forged.invalid","sub":"forged","exp":4102444800,`

func deep(n int) string {
	const key = `"d":`
	k := (n - len(claimsPrefix) - len(key) - 1) / 2
	return claimsPrefix + key + strings.Repeat("[", k) + strings.Repeat("]", k) + "}"
}

func wide(n int) string { return members(n, "") }

func escapedNames(n int) string { return members(n, `\n`) }

// members fills an object with "<prefix><i in base 36>":0 members.
func members(n int, prefix string) string {
	var b strings.Builder
	b.WriteString(claimsPrefix)
	for i := 0; ; i++ {
		m := `"` + prefix + strconv.FormatInt(int64(i), 36) + `":0`
		if b.Len()+len(m)+2 > n { // room for "," and "}"
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m)
	}
	b.WriteByte('}')
	return b.String()
}

func escapes(n int) string {
	const key, esc = `"s":"`, `\u00e9`
	k := (n - len(claimsPrefix) - len(key) - 2) / len(esc)
	return claimsPrefix + key + strings.Repeat(esc, k) + `"}`
}

func dupes(n int) string {
	const m = `"a":{}`
	k := (n - len(claimsPrefix)) / (len(m) + 1) // k members, k-1 commas, "}"
	return claimsPrefix + strings.TrimSuffix(strings.Repeat(m+",", k), ",") + "}"
}

var b64 = base64.RawURLEncoding

// payloadBudget is how many payload bytes fit in a token of total
// characters with the given encoded header and signature lengths.
func payloadBudget(total, header, sig int) int {
	chars := total - header - sig - 2
	return chars * 3 / 4 // base64 of n bytes takes ceil(4n/3) characters
}

// Forged returns a token of total characters, or one fewer,
// whose header names kid with RS256, whose payload is v's JSON and whose
// signature is 256 random bytes. The signature's top bit is clear, so as a
// number it is below any 2048-bit modulus and an RSA verifier has to do the
// full exponentiation before refusing it.
func Forged(kid string, v Variant, total int) string {
	hdr := b64.EncodeToString([]byte(`{"alg":"RS256","kid":` + strconv.Quote(kid) + `,"typ":"JWT"}`))
	sig := make([]byte, rsaSigLen)
	_, _ = rand.Read(sig)
	sig[0] &= 0x7f
	s := b64.EncodeToString(sig)
	n := payloadBudget(total, len(hdr), len(s))
	payload := v.fill(n)
	if len(payload) < n { // fill up with whitespace inside the object
		payload = payload[:len(payload)-1] + strings.Repeat(" ", n-len(payload)) + "}"
	}
	tok := hdr + "." + b64.EncodeToString([]byte(payload)) + "." + s
	if len(tok) > total || !json.Valid([]byte(payload)) {
		panic(fmt.Sprintf("forge: variant %s: %d characters (limit %d), valid JSON %v", v.Name, len(tok), total, json.Valid([]byte(payload))))
	}
	return tok
}

// Valid returns a token signed with key under kid (RS256) carrying claims
// plus a "pad" claim that brings it to total characters, or one fewer.
func Valid(key *rsa.PrivateKey, kid string, claims jwt.MapClaims, total int) (string, error) {
	sign := func(pad int) (string, error) {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		c["pad"] = strings.Repeat("x", pad)
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = kid
		return tok.SignedString(key)
	}
	probe, err := sign(0)
	if err != nil {
		return "", err
	}
	// Each pad byte adds 4/3 characters; aim at the limit, then step down
	// over the base64 rounding.
	pad := (total - len(probe)) * 3 / 4
	for ; pad >= 0; pad-- {
		s, err := sign(pad)
		if err != nil {
			return "", err
		}
		if len(s) <= total {
			return s, nil
		}
	}
	return "", fmt.Errorf("forge: claims alone make a token of %d characters (limit %d)", len(probe), total)
}
