// Command idtoken-demo runs the example offline: the Gigya stand-in and
// Caddy with example.Caddyfile, and the demo key pair that the example's
// API route trusts, with tokens signed by it:
//
//	go run ./cmd/idtoken-demo example          # the whole example on http://localhost:8080
//	go run ./cmd/idtoken-demo keys             # write example/demo-key.pem and example/demo-jwks.json
//	go run ./cmd/idtoken-demo token -sub alice  # print a token (makes the keys if missing)
//	go run ./cmd/idtoken-demo token -n 3000     # 3000 distinct tokens, one per line
//
// The keys are generated on your machine and never committed: a demo key
// that everyone knows would let anyone mint tokens for a copied example.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	demoIssuer   = "https://demo.idtoken.local"
	demoAudience = "demo"
	demoKID      = "demo-1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "idtoken-demo:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: idtoken-demo example | keys | token [-sub ID] [-email ADDR] [-ttl DURATION] [-n COUNT] [-dir DIR]")
	}
	if args[0] == "example" {
		return runExample(args[1:])
	}
	fset := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fset.String("dir", "example", "directory for demo-key.pem and demo-jwks.json")
	sub := fset.String("sub", "alice", "sub claim (the user id)")
	email := fset.String("email", "alice@example.com", "email claim")
	ttl := fset.Duration("ttl", 15*time.Minute, "token lifetime")
	count := fset.Int("n", 1, "how many tokens to print (subs get a -<i> suffix when more than one)")
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	key, err := loadOrCreateKey(*dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "keys":
		fmt.Fprintf(os.Stderr, "demo keys in %s (demo-key.pem, demo-jwks.json)\n", *dir)
		return nil
	case "token":
		now := time.Now()
		for i := range *count {
			subject := *sub
			if *count > 1 {
				subject = fmt.Sprintf("%s-%d", *sub, i)
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
				"iss": demoIssuer, "aud": demoAudience, "sub": subject, "email": *email,
				"iat": now.Unix(), "exp": now.Add(*ttl).Unix(),
			})
			tok.Header["kid"] = demoKID
			s, err := tok.SignedString(key)
			if err != nil {
				return err
			}
			fmt.Println(s)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// loadOrCreateKey reads dir/demo-key.pem, or makes a new key and writes it
// with its JWKS beside it.
func loadOrCreateKey(dir string) (*rsa.PrivateKey, error) {
	keyPath := filepath.Join(dir, "demo-key.pem")
	data, err := os.ReadFile(keyPath)
	if err == nil {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM block", keyPath)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an RSA key", keyPath)
		}
		return rk, writeJWKS(dir, &rk.PublicKey)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return key, writeJWKS(dir, &key.PublicKey)
}

func writeJWKS(dir string, pub *rsa.PublicKey) error {
	b64 := base64.RawURLEncoding.EncodeToString
	doc, err := json.MarshalIndent(map[string]any{"keys": []any{map[string]string{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": demoKID,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "demo-jwks.json"), append(doc, '\n'), 0o644)
}
