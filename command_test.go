package idtoken

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/golang-jwt/jwt/v5"
)

// runCommand runs `caddy idtoken <args>` in process, as the binary does
// after cobra has picked the subcommand, with stdin and the clock at testNow.
func runCommand(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	i := slices.IndexFunc(subcommands(), func(sc subcommand) bool { return sc.name == args[0] })
	if i < 0 {
		t.Fatalf("no subcommand %q", args[0])
	}
	var out, errOut bytes.Buffer
	c := &cli{
		ctx:    context.Background(),
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		now:    func() time.Time { return testNow },
	}
	code = c.run(subcommands()[i], args[1:])
	return code, out.String(), errOut.String()
}

// wantRun checks a command's exit status and that stdout and stderr contain
// the given pieces.
func wantRun(t *testing.T, code int, stdout, stderr string, wantCode int, inStdout, inStderr []string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, stdout, stderr)
	}
	for _, s := range inStdout {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	for _, s := range inStderr {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
}

func TestCommandRegistered(t *testing.T) {
	cmd, ok := caddycmd.Commands()["idtoken"]
	if !ok || cmd.CobraFunc == nil {
		t.Fatal("caddy idtoken is not registered")
	}
}

func TestInspect(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	claims := with(validClaims(), map[string]any{"auth_time": testNow.Add(-2 * time.Hour).Unix()})
	good := sign(t, k1, claims, nil)
	expired := sign(t, k1, with(claims, map[string]any{"exp": testNow.Add(-2 * time.Hour).Unix()}), nil)
	hdr := `{"alg":"RS256","kid":"k1"}`
	// Written by hand: numbers beyond float64, a fraction, an escape, an
	// order that is not sorted; all must come out as written.
	exact := signRaw(t, k1, hdr, fmt.Sprintf(`{"sub":"a\u00e9","big":12345678901234567890,"exp":%d.25,"ratio":1.50}`, testNow.Add(250*time.Second).Unix()))
	none := b64u([]byte(`{"alg":"none"}`)) + "." + b64u([]byte(`{"sub":"x"}`)) + "."

	tests := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		inStdout []string
		inStderr []string
	}{
		{name: "token as argument", args: []string{good}, inStdout: []string{
			"NOT VERIFIED", "Header:\n{\n  \"alg\": \"RS256\",\n  \"kid\": \"k1\",\n  \"typ\": \"JWT\"\n}",
			`"sub": "user-123"`, "Signature: 256 bytes, not checked",
			"exp        2024-11-23 22:18:20  expires in 5m",
			"iat        2024-11-23 22:12:20  issued 1m ago",
			"auth_time  2024-11-23 20:13:20  authenticated 2h ago",
		}},
		{name: "expired token", args: []string{expired}, inStdout: []string{"expired 2h ago"}},
		{name: "claims exactly as written", args: []string{exact}, inStdout: []string{
			"{\n  \"sub\": \"a\\u00e9\",\n  \"big\": 12345678901234567890,\n",
			`"ratio": 1.50`, "2024-11-23 22:17:30.25  expires in 4m10s",
		}},
		{name: "stdin with -", stdin: good + "\n", args: []string{"-"}, inStdout: []string{`"sub": "user-123"`}},
		{name: "stdin when no argument, CRLF", stdin: good + "\r\n", inStdout: []string{`"sub": "user-123"`}},
		{name: "alg none decodes, with the handler's verdict", args: []string{none}, inStdout: []string{
			`"alg": "none"`, "Signature: 0 bytes", "The handler refuses this token before any key is used: signing algorithm not allowed.",
		}},
		{name: "help", args: []string{"--help"}, inStdout: []string{"Usage: caddy idtoken inspect [TOKEN|-]", "WITHOUT verifying"}},

		{name: "two parts", args: []string{"a.b"}, code: 2, inStderr: []string{"2 part(s) separated by dots, want 3"}},
		{name: "encrypted token", args: []string{"a.b.c.d.e"}, code: 2, inStderr: []string{"(JWE) cannot be inspected"}},
		{name: "not base64url", args: []string{"e30.e30.!!"}, code: 2, inStderr: []string{"byte '!' at offset 8 is not base64url"}},
		{name: "header not JSON", args: []string{b64u([]byte("nope")) + ".e30.AA"}, code: 2, inStderr: []string{"header is not one strict JSON object"}},
		{name: "payload an array", args: []string{"e30." + b64u([]byte("[1]")) + ".AA"}, code: 2, inStderr: []string{"payload is not one strict JSON object: a JSON array, not an object"}},
		{name: "duplicate claim", args: []string{"e30." + b64u([]byte(`{"sub":"a","sub":"b"}`)) + ".AA"}, code: 2, inStderr: []string{"payload is not one strict JSON object", "duplicate"}},
		{name: "trailing data", args: []string{"e30." + b64u([]byte(`{}{}`)) + ".AA"}, code: 2, inStderr: []string{"more data after the object"}},
		{name: "signature padded", args: []string{"e30.e30.AA=="}, code: 2, inStderr: []string{"not a compact JWS"}},
		{name: "empty stdin", args: []string{"-"}, code: 2, inStderr: []string{"empty token"}},
		{name: "two arguments", args: []string{good, good}, code: 2, inStderr: []string{"one token expected, got 2 arguments", "--help"}},
		{name: "unknown flag", args: []string{"--verbose", good}, code: 2, inStderr: []string{"unknown flag: --verbose"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(t, tc.stdin, append([]string{"inspect"}, tc.args...)...)
			wantRun(t, code, stdout, stderr, tc.code, tc.inStdout, tc.inStderr)
			if tc.code != 0 && stdout != "" {
				t.Errorf("stdout on failure: %q", stdout)
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{42*time.Second + 400*time.Millisecond, "42s"},
		{4*time.Minute + 10*time.Second, "4m10s"},
		{4 * time.Minute, "4m"},
		{59*time.Minute + 59*time.Second + 600*time.Millisecond, "1h"},
		{2 * time.Hour, "2h"},
		{2*time.Hour + 5*time.Minute + 20*time.Second, "2h5m"},
		{49 * time.Hour, "2d1h"},
		{72*time.Hour + 10*time.Minute, "3d"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := humanDuration(tc.d); got != tc.want {
				t.Fatalf("humanDuration(%s) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}

// jwksFile writes a JWKS of keys to a new file and returns its path.
func jwksFile(t *testing.T, keys ...testKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, path, jwksJSON(t, keys...))
	return path
}

func TestVerifyUsageAndFetchErrors(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	file := jwksFile(t, k1)
	good := sign(t, k1, validClaims(), nil)
	down := newIssuer(t, nil)
	down.serve(http.StatusServiceUnavailable, []byte("down"))
	gigyaErr := newIssuer(t, []byte(`{"callId":"c1","errorCode":400093,"errorMessage":"Invalid ApiKey parameter","statusCode":400}`))

	tests := []struct {
		name     string
		args     []string
		inStderr []string
	}{
		{"no key source", []string{good}, []string{"a key source is required: --jwks-file, --jwks-url, --oidc-issuer or --api-key"}},
		{"two key sources", []string{"--jwks-file", file, "--jwks-url", "http://127.0.0.1:1/", good}, []string{"only one key source may be given, got --jwks-file and --jwks-url"}},
		{"data center without api key", []string{"--jwks-file", file, "--data-center", "eu1", good}, []string{"--data-center needs --api-key"}},
		{"unknown data center", []string{"--api-key", "3_x", "--data-center", "mars1", good}, []string{`unknown data_center "mars1"`}},
		{"jwks url not http", []string{"--jwks-url", "ftp://x", good}, []string{`"ftp://x" is not an http(s) URL`}},
		{"require without =", []string{"--jwks-file", file, "--require", "role", good}, []string{`--require "role": want claim=value`}},
		{"bad leeway", []string{"--jwks-file", file, "--leeway", "soon", good}, []string{"--leeway"}},
		{"leeway out of range", []string{"--jwks-file", file, "--leeway", "11m", good}, []string{"leeway must be between 0 and 10m"}},
		{"HMAC algorithm", []string{"--jwks-file", file, "--algorithms", "RS256,HS256", good}, []string{`algorithm "HS256" is not allowed`}},
		{"no token", []string{"--jwks-file", file}, []string{"no token: give it as the argument, or - to read it from stdin"}},
		{"two tokens", []string{"--jwks-file", file, good, good}, []string{"one token expected, got 2 arguments"}},
		{"unknown flag", []string{"--jwks-file", file, "--kid", "k1", good}, []string{"unknown flag: --kid"}},
		{"flag without value", []string{good, "--jwks-file"}, []string{"flag needs an argument: --jwks-file"}},
		{"missing file", []string{"--jwks-file", file + ".missing", good}, []string{"loading keys: reading JWKS file", "no such file"}},
		{"file without usable key", []string{"--jwks-file", func() string {
			p := filepath.Join(t.TempDir(), "empty.json")
			writeFile(t, p, []byte(`{"keys":[]}`))
			return p
		}(), good}, []string{"no usable key among 0"}},
		{"issuer down", []string{"--jwks-url", down.URL, good}, []string{"loading keys: fetching " + down.URL + ": HTTP 503"}},
		{"issuer down, malformed token: keys first", []string{"--jwks-url", down.URL, "garbage"}, []string{"HTTP 503"}},
		{"gigya error envelope", []string{"--api-key", "3_x", "--data-center", gigyaErr.URL, good}, []string{"gigya errorCode 400093: Invalid ApiKey parameter callId=c1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(t, "", append([]string{"verify"}, tc.args...)...)
			wantRun(t, code, stdout, stderr, exitError, nil, tc.inStderr)
			if stdout != "" {
				t.Errorf("stdout on error: %q", stdout)
			}
		})
	}
}

// TestVerifyKeySources verifies against each network source on loopback,
// with the handler's defaults for each: Gigya's issuers and apiKey claim,
// the issuer OIDC discovery names.
func TestVerifyKeySources(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	jwks := jwksJSON(t, k1)
	jwksURL := newIssuer(t, jwks)
	oidc := oidcProvider(t, jwks, &atomic.Bool{}, "/keys")
	gigyaDoc := fmt.Sprintf(`{"callId":"c1","errorCode":0,"statusCode":200,"statusReason":"OK","keys":%s}`,
		strings.TrimSuffix(strings.TrimPrefix(string(jwks), `{"keys":`), `}`))
	var gigyaQuery atomic.Value
	gigya := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		gigyaQuery.Store(r.URL.Path + "?" + r.URL.RawQuery)
		_, _ = w.Write([]byte(gigyaDoc))
	})
	gigyaIss := "https://fidm.gigya.com/jwt/3_site/"

	tests := []struct {
		name   string
		source []string
		claims map[string]any
		code   int
		reason string
	}{
		{"jwks url", []string{"--jwks-url", jwksURL.URL}, validClaims(), 0, ""},
		{"oidc: discovered issuer", []string{"--oidc-issuer", oidc}, with(validClaims(), map[string]any{"iss": oidc}), 0, ""},
		{"oidc: other issuer refused", []string{"--oidc-issuer", oidc}, validClaims(), 1, ReasonIssuer},
		{"oidc: --issuer replaces the discovered one", []string{"--oidc-issuer", oidc, "--issuer", "https://issuer.test"}, validClaims(), 0, ""},
		{"gigya: default issuer and apiKey", []string{"--api-key", "3_site", "--data-center", gigya.URL}, with(validClaims(), map[string]any{"iss": gigyaIss, "apiKey": "3_site"}), 0, ""},
		{"gigya: issuer without slash", []string{"--api-key", "3_site", "--data-center", gigya.URL}, with(validClaims(), map[string]any{"iss": strings.TrimSuffix(gigyaIss, "/"), "apiKey": "3_site"}), 0, ""},
		{"gigya: other site's apiKey", []string{"--api-key", "3_site", "--data-center", gigya.URL}, with(validClaims(), map[string]any{"iss": gigyaIss, "apiKey": "3_other"}), 1, ReasonAPIKey},
		{"gigya: not a Gigya issuer", []string{"--api-key", "3_site", "--data-center", gigya.URL}, with(validClaims(), map[string]any{"apiKey": "3_site"}), 1, ReasonIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := sign(t, k1, tc.claims, nil)
			code, stdout, stderr := runCommand(t, token+"\n", append(append([]string{"verify"}, tc.source...), "-")...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if tc.code == 1 {
				if stderr != tc.reason+"\n" || stdout != "" {
					t.Fatalf("stdout %q, stderr %q; want only %q on stderr", stdout, stderr, tc.reason)
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil || got["sub"] != "user-123" {
				t.Fatalf("stdout is not the claims (%v):\n%s", err, stdout)
			}
		})
	}
	if got, want := gigyaQuery.Load(), "/accounts.getJWTPublicKey?apiKey=3_site&V2=true"; got != want {
		t.Errorf("Gigya asked for %v, want %s", got, want)
	}
	before := jwksURL.hits.Load()
	runCommand(t, "", "verify", "--jwks-url", jwksURL.URL, sign(t, k1, validClaims(), nil))
	if n := jwksURL.hits.Load() - before; n != 1 {
		t.Errorf("one verify fetched %d times, want once", n)
	}
}

func TestVerifyOutput(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	ec := newECKey(t, "ec1", elliptic.P256(), "ES256")
	file := jwksFile(t, k1, ec)
	hdr := `{"alg":"RS256","kid":"k1"}`
	exact := signRaw(t, k1, hdr, fmt.Sprintf(`{"sub":"x","big":12345678901234567890,"exp":%d,"when":1.7324e+09}`, testNow.Add(time.Minute).Unix()))

	t.Run("claims exactly as written", func(t *testing.T) {
		code, stdout, stderr := runCommand(t, "", "verify", "--jwks-file", file, exact)
		want := fmt.Sprintf("{\n  \"sub\": \"x\",\n  \"big\": 12345678901234567890,\n  \"exp\": %d,\n  \"when\": 1.7324e+09\n}\n", testNow.Add(time.Minute).Unix())
		if code != 0 || stdout != want || stderr != "" {
			t.Fatalf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", code, stdout, want, stderr)
		}
	})
	t.Run("unknown kid names the kids", func(t *testing.T) {
		token := sign(t, testKey{kid: "k9", alg: "RS256", priv: k1.priv}, validClaims(), nil)
		code, stdout, stderr := runCommand(t, "", "verify", "--jwks-file", file, token)
		want := "unknown signing key\ntoken: alg \"RS256\", kid \"k9\"; key set: \"k1\" (RSA 2048), \"ec1\" (EC P-256)\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", code, stderr, want)
		}
	})
	t.Run("skipped keys are a warning", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "jwks.json")
		writeFile(t, p, []byte(`{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"},`+strings.TrimPrefix(string(jwksJSON(t, k1)), `{"keys":[`)))
		code, _, stderr := runCommand(t, "", "verify", "--jwks-file", p, sign(t, k1, validClaims(), nil))
		wantRun(t, code, "", stderr, 0, nil, []string{"warning: " + p + ": 1 unusable key(s) skipped", `key 0 (kid "hmac"): unsupported kty "oct"`})
	})
	t.Run("require: same claim is any of, different claims all", func(t *testing.T) {
		token := sign(t, k1, with(validClaims(), map[string]any{"role": "ops", "team": "a"}), nil)
		for _, tc := range []struct {
			require []string
			code    int
		}{
			{[]string{"role=admin", "role=ops"}, 0},
			{[]string{"role=admin", "role=ops", "team=b"}, 1},
			{[]string{"role=ops", "team=a"}, 0},
		} {
			args := []string{"verify", "--jwks-file", file}
			for _, r := range tc.require {
				args = append(args, "--require", r)
			}
			if code, _, stderr := runCommand(t, "", append(args, token)...); code != tc.code {
				t.Errorf("%v: exit %d, want %d (%s)", tc.require, code, tc.code, stderr)
			}
		}
	})
	t.Run("algorithms comma-separated and repeated", func(t *testing.T) {
		token := sign(t, ec, validClaims(), nil)
		for _, algs := range [][]string{{"--algorithms", "RS256,ES256"}, {"--algorithms", "RS256", "--algorithms", "ES256"}} {
			if code, _, stderr := runCommand(t, "", append(append([]string{"verify", "--jwks-file", file}, algs...), token)...); code != 0 {
				t.Errorf("%v: exit %d (%s)", algs, code, stderr)
			}
		}
		if code, _, stderr := runCommand(t, "", "verify", "--jwks-file", file, token); code != 1 || stderr != ReasonAlg+"\n" {
			t.Errorf("default algorithms: exit %d, %q; want RS256 only", code, stderr)
		}
	})
	t.Run("leeway", func(t *testing.T) {
		token := sign(t, k1, with(validClaims(), map[string]any{"exp": testNow.Add(-90 * time.Second).Unix()}), nil)
		for _, tc := range []struct {
			leeway []string
			code   int
		}{{nil, 1}, {[]string{"--leeway", "2m"}, 0}, {[]string{"--leeway", "0"}, 1}} {
			args := append(append([]string{"verify", "--jwks-file", file}, tc.leeway...), token)
			if code, _, _ := runCommand(t, "", args...); code != tc.code {
				t.Errorf("%v: exit %d, want %d", tc.leeway, code, tc.code)
			}
		}
	})
}

// TestVerifyAgreesWithHandler runs every case of the rejection matrix
// through `caddy idtoken verify` and through a provisioned handler
// configured with the same settings: both must accept or refuse, and refuse
// with the same reason, the one the matrix expects.
func TestVerifyAgreesWithHandler(t *testing.T) {
	m := newRejectionMatrix(t)
	for _, tc := range m.cases {
		t.Run(tc.name, func(t *testing.T) {
			_, p, set := m.setup(t, tc)
			h, args := sameSettings(t, p, set)

			handlerReason := ""
			_, err := serve(provisioned(t, h), requestWith(bearer(tc.token)))
			if err != nil {
				var rej *Rejection
				if !errors.As(err, &rej) {
					t.Fatalf("handler error %v is not a rejection", err)
				}
				handlerReason = rej.Reason
			}
			if handlerReason != tc.reason {
				t.Fatalf("handler: %q, matrix expects %q", handlerReason, tc.reason)
			}

			code, stdout, stderr := runCommand(t, "", append(append([]string{"verify"}, args...), tc.token)...)
			switch {
			case handlerReason == "" && code != 0:
				t.Fatalf("handler accepts, verify exits %d: %s", code, stderr)
			case handlerReason == "" && !strings.Contains(stdout, `"sub": "user-123"`):
				t.Fatalf("verify accepted without the claims on stdout:\n%s", stdout)
			case handlerReason != "" && code != 1:
				t.Fatalf("handler refuses (%s), verify exits %d: %s", handlerReason, code, stderr)
			case handlerReason != "" && strings.SplitN(stderr, "\n", 2)[0] != handlerReason:
				t.Fatalf("handler refuses with %q, verify with %q", handlerReason, stderr)
			}
		})
	}
}

// requestWith is a GET of example.com/ prepared by prepare.
func requestWith(prepare func(*http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	prepare(r)
	return r
}

// sameSettings returns a handler for policy p and key set set, and the
// verify flags for the same: a JWKS file, or a loopback Gigya when p names
// an API key.
func sameSettings(t *testing.T, p Policy, set *KeySet) (*Handler, []string) {
	t.Helper()
	jwks := setJWKS(t, set)
	leeway := p.Leeway
	h := &Handler{Trust: Trust{Issuer: p.Issuers, Audience: p.Audiences, Algorithms: p.Algorithms, MinRefreshInterval: caddy1ns},
		Leeway: (*caddy.Duration)(&leeway), Require: p.Require,
	}
	var args []string
	if p.APIKey != "" {
		gigya := newIssuer(t, jwks)
		h.APIKey, h.DataCenter = p.APIKey, gigya.URL
		args = append(args, "--api-key", p.APIKey, "--data-center", gigya.URL)
	} else {
		h.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
		writeFile(t, h.JWKSFile, jwks)
		args = append(args, "--jwks-file", h.JWKSFile)
	}
	args = append(args, "--algorithms", strings.Join(p.Algorithms, ","), "--leeway", p.Leeway.String())
	for _, iss := range p.Issuers {
		args = append(args, "--issuer", iss)
	}
	for _, aud := range p.Audiences {
		args = append(args, "--audience", aud)
	}
	for _, r := range p.Require {
		for _, v := range r.Values {
			args = append(args, "--require", r.Claim+"="+v)
		}
	}
	return h, args
}

// setJWKS writes a parsed key set back as a JWKS document.
func setJWKS(t *testing.T, set *KeySet) []byte {
	t.Helper()
	keys := make([]publicJWK, len(set.keys))
	for i, k := range set.keys {
		j, err := newPublicJWK(k.Public)
		if err != nil {
			t.Fatal(err)
		}
		j.Kid, j.Alg = k.ID, k.Alg
		keys[i] = j
	}
	doc, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestKeygenMintVerify makes a key with keygen, a token with mint, and
// verifies it with verify against keygen's JWKS, for each algorithm; and
// checks the token with golang-jwt, so mint's output is not only what this
// module reads.
func TestKeygenMintVerify(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			code, stdout, stderr := runCommand(t, "", "keygen", "--alg", alg, "--out", dir)
			wantRun(t, code, stdout, stderr, 0, []string{filepath.Join(dir, keyFileName), filepath.Join(dir, jwksFileName)}, nil)
			keyPath := filepath.Join(dir, keyFileName)
			checkPrivateKeyFile(t, keyPath)
			jwk := onlyJWK(t, filepath.Join(dir, jwksFileName))
			if thumb := thumbprint(readPublicKey(t, keyPath)); jwk.Alg != alg || jwk.Use != "sig" || jwk.Kid != thumb {
				t.Fatalf("JWKS entry %+v: want alg %s, use sig, kid = thumbprint %s", jwk, alg, thumb)
			}

			code, token, stderr := runCommand(t, "", "mint", "--key", keyPath, "--sub", "alice", "--iss", "https://dev.test",
				"--aud", "app", "--claim", "role=admin", "--claim", "n=12345678901234567890", "--claim", `groups=["a","b"]`)
			if code != 0 || stderr != "" {
				t.Fatalf("mint: exit %d: %s", code, stderr)
			}
			code, stdout, stderr = runCommand(t, token, "verify", "--jwks-file", filepath.Join(dir, jwksFileName), "--algorithms", alg,
				"--issuer", "https://dev.test", "--audience", "app", "--require", "role=admin", "--require", "groups=b", "-")
			wantRun(t, code, stdout, stderr, 0, []string{`"sub": "alice"`, `"n": 12345678901234567890`, fmt.Sprintf(`"exp": %d`, testNow.Add(time.Hour).Unix())}, nil)

			parsed, err := jwt.Parse(strings.TrimSpace(token), func(tok *jwt.Token) (any, error) {
				if tok.Header["kid"] != jwk.Kid {
					return nil, fmt.Errorf("kid %v, want %s", tok.Header["kid"], jwk.Kid)
				}
				return readPublicKey(t, keyPath), nil
			}, jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(func() time.Time { return testNow }))
			if err != nil || !parsed.Valid {
				t.Fatalf("golang-jwt refuses the minted token: %v", err)
			}

			code, expired, _ := runCommand(t, "", "mint", "--key", keyPath, "--ttl", "-2h")
			if code != 0 {
				t.Fatal("mint --ttl -2h failed")
			}
			code, _, stderr = runCommand(t, expired, "verify", "--jwks-file", filepath.Join(dir, jwksFileName), "--algorithms", alg, "-")
			if code != 1 || stderr != ReasonExpired+"\n" {
				t.Fatalf("expired token: exit %d, %q", code, stderr)
			}
		})
	}
}

// checkPrivateKeyFile checks keygen's key: owner-only, one PKCS#8 PEM block.
func checkPrivateKeyFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("key file mode %o, want 600", mode)
	}
	data, _ := os.ReadFile(path)
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("key file is not one PKCS#8 PEM block:\n%s", data)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	}
}

// onlyJWK reads a JWKS that must hold exactly one key.
func onlyJWK(t *testing.T, path string) publicJWK {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []publicJWK }
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("JWKS %s: %v, %d keys", data, err, len(doc.Keys))
	}
	if _, _, err := ParseKeyDocument(data); err != nil {
		t.Fatalf("the handler cannot read keygen's JWKS: %v", err)
	}
	return doc.Keys[0]
}

func readPublicKey(t *testing.T, path string) crypto.PublicKey {
	t.Helper()
	priv, err := readPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return priv.Public()
}

func TestKeygen(t *testing.T) {
	t.Run("refuses to replace without --force", func(t *testing.T) {
		dir := t.TempDir()
		if code, _, stderr := runCommand(t, "", "keygen", "--alg", "EdDSA", "--out", dir); code != 0 {
			t.Fatal(stderr)
		}
		before, _ := os.ReadFile(filepath.Join(dir, keyFileName))
		code, stdout, stderr := runCommand(t, "", "keygen", "--alg", "EdDSA", "--out", dir)
		wantRun(t, code, stdout, stderr, 2, nil, []string{filepath.Join(dir, keyFileName) + " exists; --force replaces it"})
		if after, _ := os.ReadFile(filepath.Join(dir, keyFileName)); !bytes.Equal(before, after) {
			t.Fatal("key replaced without --force")
		}
	})
	t.Run("an existing JWKS alone is not replaced either", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, jwksFileName), []byte(`{"keys":[]}`))
		code, _, stderr := runCommand(t, "", "keygen", "--alg", "EdDSA", "--out", dir)
		wantRun(t, code, "", stderr, 2, nil, []string{jwksFileName + " exists"})
		if _, err := os.Stat(filepath.Join(dir, keyFileName)); err == nil {
			t.Fatal("key written although its JWKS could not be")
		}
	})
	t.Run("--force replaces, owner-only even over a readable file", func(t *testing.T) {
		dir := t.TempDir()
		keyPath := filepath.Join(dir, keyFileName)
		writeFile(t, keyPath, []byte("old"))
		if err := os.Chmod(keyPath, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCommand(t, "", "keygen", "--alg", "ES256", "--out", dir, "--force", "--kid", "dev-1")
		wantRun(t, code, "", stderr, 0, nil, nil)
		checkPrivateKeyFile(t, keyPath)
		if jwk := onlyJWK(t, filepath.Join(dir, jwksFileName)); jwk.Kid != "dev-1" || jwk.Kty != "EC" || jwk.Crv != "P-256" {
			t.Fatalf("JWKS entry %+v", jwk)
		}
	})
	for _, tc := range []struct {
		name     string
		args     []string
		inStderr string
	}{
		{"unknown alg", []string{"--alg", "HS256"}, `--alg "HS256": want RS256, ES256 or EdDSA`},
		{"stray argument", []string{"keys"}, `unexpected argument "keys"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(t, "", append([]string{"keygen", "--out", t.TempDir()}, tc.args...)...)
			wantRun(t, code, stdout, stderr, 2, nil, []string{tc.inStderr})
		})
	}
}

// pemFile writes blocks to a new file named name and returns its path.
func pemFile(t *testing.T, name string, blocks ...*pem.Block) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(b)...)
	}
	path := filepath.Join(t.TempDir(), name)
	writeFile(t, path, data)
	return path
}

func TestMint(t *testing.T) {
	rsaKey := rsaTestKey(t, 0)
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pemFile(t, "rsa.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	sec1 := pemFile(t, "ec.pem", &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})
	weak := pemFile(t, "weak.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})

	// A key named *key.pem with a JWKS beside it that lists another key.
	strangerDir := t.TempDir()
	if code, _, stderr := runCommand(t, "", "keygen", "--alg", "EdDSA", "--out", strangerDir); code != 0 {
		t.Fatal(stderr)
	}
	other := t.TempDir()
	if code, _, stderr := runCommand(t, "", "keygen", "--alg", "EdDSA", "--out", other); code != 0 {
		t.Fatal(stderr)
	}
	data, _ := os.ReadFile(filepath.Join(other, jwksFileName))
	writeFile(t, filepath.Join(strangerDir, jwksFileName), data)
	loneDir := t.TempDir()
	if code, _, stderr := runCommand(t, "", "keygen", "--alg", "EdDSA", "--out", loneDir); code != 0 {
		t.Fatal(stderr)
	}
	if err := os.Remove(filepath.Join(loneDir, jwksFileName)); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		args     []string
		code     int
		header   map[string]any // checked when code is 0
		claims   map[string]any
		inStderr string
	}{
		{name: "PKCS#1 RSA with --kid", args: []string{"--key", pkcs1, "--kid", "r1", "--sub", "bob"},
			header: map[string]any{"alg": "RS256", "kid": "r1", "typ": "JWT"},
			claims: map[string]any{"sub": "bob", "iat": json.Number("1732400000"), "exp": json.Number("1732403600")}},
		{name: "SEC1 P-384 after EC PARAMETERS", args: []string{"--key", sec1, "--kid", "e1", "--ttl", "90s"},
			header: map[string]any{"alg": "ES384", "kid": "e1", "typ": "JWT"},
			claims: map[string]any{"iat": json.Number("1732400000"), "exp": json.Number("1732400090")}},
		{name: "claims: JSON values as JSON, others as strings, last wins", args: []string{"--key", pkcs1, "--kid", "r1",
			"--aud", "a", "--aud", "b", "--claim", "n=42", "--claim", "f=1.50", "--claim", "ok=true", "--claim", `s="quoted"`,
			"--claim", "word=admin", "--claim", "zip=007", "--claim", "two=1 2", "--claim", "empty=", "--claim", `obj={"role":"x"}`,
			"--claim", "exp=1", "--claim", "n=43"},
			header: map[string]any{"alg": "RS256", "kid": "r1", "typ": "JWT"},
			claims: map[string]any{"aud": []any{"a", "b"}, "n": json.Number("43"), "f": json.Number("1.50"), "ok": true, "s": "quoted",
				"word": "admin", "zip": "007", "two": "1 2", "empty": "", "obj": map[string]any{"role": "x"},
				"iat": json.Number("1732400000"), "exp": json.Number("1")}},

		{name: "no --key", args: []string{"--sub", "x"}, code: 2, inStderr: "--key is required"},
		{name: "bad --claim", args: []string{"--key", pkcs1, "--kid", "r1", "--claim", "=x"}, code: 2, inStderr: `--claim "=x": want name=value`},
		{name: "bad --ttl", args: []string{"--key", pkcs1, "--kid", "r1", "--ttl", "long"}, code: 2, inStderr: "--ttl"},
		{name: "stray argument", args: []string{"--key", pkcs1, "x"}, code: 2, inStderr: `unexpected argument "x"`},
		{name: "missing key file", args: []string{"--key", pkcs1 + ".missing", "--kid", "r1"}, code: 2, inStderr: "no such file"},
		{name: "not PEM", args: []string{"--key", jwksFile(t, newRSAKey(t, "k1", 0)), "--kid", "r1"}, code: 2, inStderr: "no private key PEM block"},
		{name: "RSA under 2048 bits", args: []string{"--key", weak, "--kid", "w"}, code: 2, inStderr: "RSA key of 1024 bits: the handler uses 2048 to 8192"},
		{name: "no --kid, not named *key.pem", args: []string{"--key", pkcs1}, code: 2, inStderr: "--kid is required: " + pkcs1 + " is not named *key.pem"},
		{name: "no --kid, no JWKS beside", args: []string{"--key", filepath.Join(loneDir, keyFileName)}, code: 2, inStderr: "--kid is required: no " + filepath.Join(loneDir, jwksFileName)},
		{name: "no --kid, JWKS beside lists another key", args: []string{"--key", filepath.Join(strangerDir, keyFileName)}, code: 2, inStderr: "does not hold this key's public key"},
		{name: "--kid without the JWKS", args: []string{"--key", filepath.Join(loneDir, keyFileName), "--kid", "x"},
			header: map[string]any{"alg": "EdDSA", "kid": "x", "typ": "JWT"},
			claims: map[string]any{"iat": json.Number("1732400000"), "exp": json.Number("1732403600")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(t, "", append([]string{"mint"}, tc.args...)...)
			wantRun(t, code, stdout, stderr, tc.code, nil, []string{tc.inStderr})
			if tc.code != 0 {
				return
			}
			tok, err := decodeToken(strings.TrimSuffix(stdout, "\n"))
			if err != nil {
				t.Fatal(err)
			}
			for part, want := range map[string]map[string]any{"header": tc.header, "claims": tc.claims} {
				data := tok.header
				if part == "claims" {
					data = tok.payload
				}
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.UseNumber()
				var got map[string]any
				if err := dec.Decode(&got); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s %v, want %v", part, got, want)
				}
			}
		})
	}
}

// TestCaddyBinary builds ./cmd/caddy once and runs `caddy idtoken` in it,
// for what only the real command shows: registration, cobra's dispatch and
// the exit statuses caddycmd.Main turns the errors into.
func TestCaddyBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command(goBin, "build", "-o", bin, "./cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	k1 := newRSAKey(t, "k1", 0)
	file := jwksFile(t, k1)
	now := time.Now()
	valid := sign(t, k1, map[string]any{"sub": "alice", "exp": now.Add(time.Hour).Unix()}, nil)
	expired := sign(t, k1, map[string]any{"sub": "alice", "exp": now.Add(-time.Hour).Unix()}, nil)

	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		inStdout string
		stderr   *string // exact, when set
	}{
		{name: "help lists the subcommands", args: []string{"idtoken", "--help"}, inStdout: "mint"},
		{name: "caddy help shows verify's flags", args: []string{"help", "idtoken", "verify"}, inStdout: "--jwks-file"},
		{name: "subcommand help", args: []string{"idtoken", "verify", "--help"}, inStdout: "Usage: caddy idtoken verify"},
		{name: "inspect", args: []string{"idtoken", "inspect", valid}, inStdout: "NOT VERIFIED"},
		{name: "verify accepts from stdin", args: []string{"idtoken", "verify", "--jwks-file", file, "-"}, stdin: valid + "\n", inStdout: `"sub": "alice"`, stderr: new("")},
		{name: "verify refuses with exit 1", args: []string{"idtoken", "verify", "--jwks-file", file, expired}, code: 1, stderr: new(ReasonExpired + "\n")},
		{name: "usage error exits 2", args: []string{"idtoken", "verify", valid}, code: 2},
		{name: "unknown subcommand exits 2", args: []string{"idtoken", "frobnicate"}, code: 2},
		{name: "malformed token to inspect exits 2", args: []string{"idtoken", "inspect", "x.y"}, code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stdout.String(), tc.inStdout) || (tc.stderr != nil && stderr.String() != *tc.stderr) {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
		})
	}
}
