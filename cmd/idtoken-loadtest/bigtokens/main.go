// Command bigtokens prints 16 KiB tokens for bench/load.sh, one per line:
// validly signed ones with the demo key (cmd/idtoken-demo), padded to the
// module's length limit, or forged ones of the same length naming the demo
// key's kid, with costly JSON payloads and junk signatures (the variants of
// cmd/idtoken-loadtest, taken in turn).
//
//	go run ./cmd/idtoken-demo keys -dir DIR
//	go run ./cmd/idtoken-loadtest/bigtokens -dir DIR -kind valid -n 200
//	go run ./cmd/idtoken-loadtest/bigtokens -dir DIR -kind forged -n 200
package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idtoken/caddy-idtoken/cmd/idtoken-loadtest/internal/forge"
)

func main() {
	dir := flag.String("dir", "example", "directory holding demo-key.pem and demo-jwks.json (cmd/idtoken-demo keys)")
	kindFlag := flag.String("kind", "valid", "valid (signed with the demo key) or forged (junk signature)")
	count := flag.Int("n", 1, "how many tokens to print")
	length := flag.Int("length", forge.MaxLength, "token length in characters (tokens come out at most 3 shorter)")
	iss := flag.String("iss", "https://demo.idtoken.local", "iss claim of valid tokens")
	aud := flag.String("aud", "demo", "aud claim of valid tokens")
	ttl := flag.Duration("ttl", 15*time.Minute, "lifetime of valid tokens")
	flag.Parse()
	if err := run(*dir, *kindFlag, *count, *length, *iss, *aud, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "bigtokens:", err)
		os.Exit(1)
	}
}

func run(dir, kind string, count, length int, iss, aud string, ttl time.Duration) error {
	kid, err := demoKID(dir)
	if err != nil {
		return err
	}
	switch kind {
	case "forged":
		for i := range count {
			fmt.Println(forge.Forged(kid, forge.Variants[i%len(forge.Variants)], length))
		}
		return nil
	case "valid":
		key, err := demoKey(dir)
		if err != nil {
			return err
		}
		now := time.Now()
		for i := range count {
			tok, err := forge.Valid(key, kid, jwt.MapClaims{
				"iss": iss, "aud": aud, "sub": fmt.Sprintf("big-%d", i),
				"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
			}, length)
			if err != nil {
				return err
			}
			fmt.Println(tok)
		}
		return nil
	}
	return fmt.Errorf("unknown -kind %q (valid or forged)", kind)
}

// demoKID reads the kid of the first key in dir/demo-jwks.json.
func demoKID(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "demo-jwks.json"))
	if err != nil {
		return "", err
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return "", err
	}
	if len(set.Keys) == 0 || set.Keys[0].KID == "" {
		return "", errors.New("demo-jwks.json has no key with a kid")
	}
	return set.Keys[0].KID, nil
}

// demoKey reads dir/demo-key.pem as cmd/idtoken-demo writes it (PKCS #8).
func demoKey(dir string) (*rsa.PrivateKey, error) {
	path := filepath.Join(dir, "demo-key.pem")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", path)
	}
	return rk, nil
}
