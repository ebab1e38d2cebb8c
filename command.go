package idtoken

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The `caddy idtoken` command. It is registered in init, like the module, so
// every Caddy built with the module has it. Each subcommand is a function of
// its arguments and a cli (streams, clock, context) returning an exit
// status, so tests run exactly what the binary runs, in process.

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "idtoken",
		Usage: "inspect|verify|keygen|mint [flags] [args]",
		Short: "Inspects, verifies and makes id_tokens as the idtoken handler sees them",
		Long: `
Work with id_tokens (signed JWTs) from the command line, with the idtoken
handler's own code:

  inspect   decode a token without verifying it
  verify    verify a token as a handler configured with the same flags would
  keygen    make a private key and its JWKS, for local development
  mint      sign a token with such a key, for local development and tests

Run 'caddy idtoken <subcommand> --help' for each one's flags.

Exit status: 0 success; 1 the token was refused (verify); 2 a usage, input or
fetch error.
`,
		CobraFunc: addSubcommands,
	})
}

// Exit statuses of every subcommand.
const (
	exitOK      = 0
	exitRefused = 1 // verify: the handler would refuse the token
	exitError   = 2 // usage, unreadable input, files, key fetch
)

// cli is what a subcommand talks to. The caddy command passes the process's
// streams and clock; tests pass buffers and a fixed clock.
type cli struct {
	ctx    context.Context // bounds key fetches
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
}

// runFunc runs a subcommand on its positional arguments, once its flags
// are parsed.
type runFunc func(c *cli, args []string) int

// subcommand describes one `caddy idtoken` subcommand.
type subcommand struct {
	name  string
	usage string // what follows the name: "[flags] TOKEN|-"
	short string
	long  string
	// setup defines the subcommand's flags on fs, bound to fresh options,
	// and returns the function that runs with them. Cobra's help and the
	// real parse use the same definitions.
	setup func(fs *pflag.FlagSet) runFunc
}

// subcommands lists the subcommands in the order help shows them.
func subcommands() []subcommand {
	return []subcommand{
		{
			name:  "inspect",
			usage: "[TOKEN|-]",
			short: "Decode a token without verifying it",
			long: `Decode a token WITHOUT verifying it: print its header and claims as
indented JSON exactly as written (member order, numbers and escapes kept),
then exp, iat, nbf and auth_time as UTC dates relative to now. Anyone can
write any of this; use 'caddy idtoken verify' to know whether it holds.

The token is the argument, or stdin when the argument is - or absent (one
trailing newline removed).

Exit status: 0 decoded; 2 not a readable compact JWS.`,
			setup: func(*pflag.FlagSet) runFunc { return runInspect },
		},
		{
			name:  "verify",
			usage: "(--jwks-file F | --jwks-url U | --oidc-issuer U | --api-key K [--data-center DC]) [flags] TOKEN|-",
			short: "Verify a token as the idtoken handler would",
			long: `Verify a token exactly as an idtoken handler configured with the same
settings would: the same key sources, fetch limits, parser and checks, with
one fetch of the keys (bounded by the handler's 10s fetch timeout) and
nothing kept. Defaults are the handler's: RS256, 60s leeway, Gigya's issuers
with --api-key, the discovered issuer with --oidc-issuer.

Exactly one key source is required. --algorithms takes a comma-separated
list and may be repeated; --issuer and --audience may be repeated (any one
of them matches). --require claim=value may be repeated: flags naming the
same claim are alternatives (like the values of one Caddyfile require
line), different claims must all hold.

The token is the argument, or stdin for - (one trailing newline removed).

Exit status: 0 valid, with the verified claims as JSON on stdout; 1 refused,
with the reason the handler gives in error_description on stderr; 2 a usage
error or the keys could not be loaded.`,
			setup: func(fs *pflag.FlagSet) runFunc {
				o := new(verifyOptions)
				o.define(fs)
				return o.run
			},
		},
		{
			name:  "keygen",
			usage: "[--alg RS256|ES256|EdDSA] [--kid K] [--out DIR] [--force]",
			short: "Make a signing key and its JWKS for local development",
			long: `Make a private key and a JWKS holding its public key, for local
development: DIR/idtoken-key.pem (PKCS#8 PEM, mode 0600) and
DIR/idtoken-jwks.json (the key with kid, alg and use "sig"), for
'jwks_file' in a Caddyfile and for 'caddy idtoken mint'.

The kid defaults to the key's RFC 7638 SHA-256 thumbprint (base64url), so
the same key always gets the same kid. Existing files are never replaced
unless --force is given.

Exit status: 0 written; 2 a usage error or the files could not be written.`,
			setup: func(fs *pflag.FlagSet) runFunc {
				o := new(keygenOptions)
				o.define(fs)
				return o.run
			},
		},
		{
			name:  "mint",
			usage: "--key FILE [--kid K] [--sub S] [--iss I] [--aud A] [--ttl 1h] [--claim name=value ...]",
			short: "Sign a token with a local key, for development and tests",
			long: `Sign a token with a local private key (PEM: PKCS#8, or PKCS#1 / SEC1)
and print it. The algorithm follows the key: RS256 for RSA, ES256/384/512
for EC P-256/384/521, EdDSA for Ed25519.

The kid is --kid, or else read from the JWKS beside the key that keygen
wrote (for PREFIXkey.pem, PREFIXjwks.json: the entry with the same public
key); without either, --kid is required.

iat is now and exp now plus --ttl (a negative --ttl makes an expired
token). --claim name=value sets any claim, after the others (so it can
override them): a value that parses as JSON is used as JSON (42, true,
["a","b"], {"role":"admin"}), any other as a string. --aud may be repeated
(an array then).

Exit status: 0 printed; 2 a usage error or an unusable key.`,
			setup: func(fs *pflag.FlagSet) runFunc {
				o := new(mintOptions)
				o.define(fs)
				return o.run
			},
		},
	}
}

// addSubcommands builds `caddy idtoken` under Caddy's root command. The
// subcommands parse their own flags, so that every usage error exits 2 (a
// cobra flag error would exit 1) and tests need no cobra.
func addSubcommands(cmd *cobra.Command) {
	cmd.Args = cobra.ArbitraryArgs
	cmd.SilenceErrors = true
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// Reached only without a known subcommand.
		msg := "a subcommand is required"
		if len(args) > 0 {
			msg = fmt.Sprintf("unknown subcommand %q", args[0])
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "caddy idtoken: %s: inspect, verify, keygen or mint\nRun 'caddy idtoken --help' for usage.\n", msg)
		return exitStatus(cmd, exitError)
	}
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		fmt.Fprintf(cmd.ErrOrStderr(), "caddy idtoken: %v\nRun 'caddy idtoken --help' for usage.\n", err)
		return exitStatus(cmd, exitError)
	})
	for _, sc := range subcommands() {
		sub := &cobra.Command{
			Use:                sc.name + " " + sc.usage,
			Short:              sc.short,
			Long:               sc.long,
			DisableFlagParsing: true,
			SilenceErrors:      true,
			SilenceUsage:       true,
			RunE: func(cmd *cobra.Command, args []string) error {
				c := &cli{
					ctx:    cmp.Or(cmd.Context(), context.Background()),
					stdin:  cmd.InOrStdin(),
					stdout: cmd.OutOrStdout(),
					stderr: cmd.ErrOrStderr(),
					now:    time.Now,
				}
				return exitStatus(cmd, c.run(sc, args))
			},
		}
		sc.setup(sub.Flags()) // listed by 'caddy help idtoken <name>'
		cmd.AddCommand(sub)
	}
}

// exitStatus turns an exit status into the error caddycmd.Main exits with:
// nil exits 0 and any error 1, but a status above 1 only travels in the
// error type WrapCommandFuncForCobra returns. The subcommand has written its
// output already, and SilenceErrors keeps cobra from adding to it.
func exitStatus(cmd *cobra.Command, code int) error {
	switch code {
	case exitOK:
		return nil
	case exitRefused:
		return errors.New("token refused")
	}
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return code, nil })(cmd, nil)
}

// run parses args with sc's flags and runs it.
func (c *cli) run(sc subcommand, args []string) int {
	fs := pflag.NewFlagSet("caddy idtoken "+sc.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, once
	fs.Usage = func() {}
	fs.SortFlags = false
	run := sc.setup(fs)
	switch err := fs.Parse(args); {
	case errors.Is(err, pflag.ErrHelp):
		fmt.Fprintf(c.stdout, "Usage: caddy idtoken %s %s\n\n%s\n", sc.name, sc.usage, sc.long)
		if fs.HasFlags() {
			fmt.Fprintf(c.stdout, "\nFlags:\n%s", fs.FlagUsages())
		}
		return exitOK
	case err != nil:
		return c.usageError(sc.name, err)
	}
	return run(c, fs.Args())
}

// usageError reports a mistake in the command line.
func (c *cli) usageError(name string, err error) int {
	fmt.Fprintf(c.stderr, "caddy idtoken %s: %v\nRun 'caddy idtoken %s --help' for usage.\n", name, err, name)
	return exitError
}

// fail reports an error that is not the command line's.
func (c *cli) fail(name string, err error) int {
	fmt.Fprintf(c.stderr, "caddy idtoken %s: %v\n", name, err)
	return exitError
}

// maxTokenInput caps what is read from stdin: far above MaxTokenLength, so
// an oversized token still reaches the verifier and is refused as the
// handler refuses it.
const maxTokenInput = maxDocumentSize

// tokenArg returns the token the positional arguments name: the one
// argument itself, or stdin for "-" (or for no argument when
// stdinWhenNone), with one trailing newline removed so `echo $T |` works.
func (c *cli) tokenArg(args []string, stdinWhenNone bool) (string, error) {
	switch {
	case len(args) > 1:
		return "", fmt.Errorf("one token expected, got %d arguments", len(args))
	case len(args) == 0 && !stdinWhenNone:
		return "", errors.New("no token: give it as the argument, or - to read it from stdin")
	case len(args) == 1 && args[0] != "-":
		return args[0], nil
	}
	data, err := io.ReadAll(io.LimitReader(c.stdin, maxTokenInput+1))
	if err != nil {
		return "", fmt.Errorf("reading the token from stdin: %w", err)
	}
	if len(data) > maxTokenInput {
		return "", fmt.Errorf("more than %d bytes on stdin", maxTokenInput)
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		return t, nil
	}
	return strings.TrimSuffix(s, "\n"), nil
}

// ---- inspect ----

// decodedToken is a compact JWS decoded for reading, not verified.
type decodedToken struct {
	header, payload []byte // the JSON, as written
	sigLen          int
}

// runInspect prints what a token says, and that none of it was verified.
func runInspect(c *cli, args []string) int {
	raw, err := c.tokenArg(args, true)
	if err != nil {
		return c.usageError("inspect", err)
	}
	tok, err := decodeToken(raw)
	if err != nil {
		return c.fail("inspect", err)
	}
	w := c.stdout
	fmt.Fprintln(w, "NOT VERIFIED: decoded only. Neither the signature nor any claim was checked;")
	fmt.Fprintln(w, "anyone can write all of this. Use 'caddy idtoken verify' to check it.")
	fmt.Fprintf(w, "\nHeader:\n%s\n\nClaims:\n%s\n\nSignature: %d bytes, not checked\n",
		indentJSON(tok.header), indentJSON(tok.payload), tok.sigLen)
	if lines := dateLines(tok.payload, c.now()); len(lines) > 0 {
		fmt.Fprintf(w, "\nDates (UTC):\n%s", strings.Join(lines, ""))
	}
	if rej := headerVerdict(raw); rej != nil {
		fmt.Fprintf(w, "\nThe handler refuses this token before any key is used: %s.\n", rej.Reason)
	}
	return exitOK
}

// decodeToken splits and decodes a compact JWS, saying precisely what is
// wrong when it cannot. Header and payload must each be one strict JSON
// object, as the handler reads them.
func decodeToken(raw string) (decodedToken, error) {
	var tok decodedToken
	h, p, s, ok := splitCompact(raw)
	if !ok {
		return tok, compactError(raw)
	}
	var err error
	if tok.header, err = decodeObjectPart("header", h); err != nil {
		return tok, err
	}
	if tok.payload, err = decodeObjectPart("payload", p); err != nil {
		return tok, err
	}
	sig, err := b64.DecodeString(s)
	if err != nil {
		return tok, fmt.Errorf("signature is not base64url: %w", err)
	}
	tok.sigLen = len(sig)
	return tok, nil
}

// compactError explains why splitCompact refused raw.
func compactError(raw string) error {
	if raw == "" {
		return errors.New("empty token")
	}
	switch n := strings.Count(raw, ".") + 1; {
	case n == 5:
		return errors.New("5 parts: an encrypted token (JWE) cannot be inspected")
	case n != 3:
		return fmt.Errorf("not a compact JWS: %d part(s) separated by dots, want 3", n)
	}
	for i := 0; i < len(raw); i++ {
		if inCompact[raw[i]] == 0 {
			return fmt.Errorf("not a compact JWS: byte %q at offset %d is not base64url", raw[i], i)
		}
	}
	return errors.New("not a compact JWS")
}

// decodeObjectPart decodes one base64url part that must hold a JSON object.
func decodeObjectPart(name, part string) ([]byte, error) {
	data, err := b64.DecodeString(part)
	if err != nil {
		return nil, fmt.Errorf("%s is not base64url: %w", name, err)
	}
	if _, _, err := decodePayload(data); err != nil {
		return nil, fmt.Errorf("%s is not one strict JSON object: %s", name, jsonProblem(data))
	}
	return data, nil
}

// jsonProblem names what decodePayload refused in data, whose own error
// does not say.
func jsonProblem(data []byte) string {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	v, err := dec.ReadValue()
	switch {
	case err != nil:
		return err.Error()
	case v.Kind() != '{':
		return fmt.Sprintf("a JSON %s, not an object", kindName(v.Kind()))
	}
	if _, err := dec.ReadValue(); err != io.EOF {
		return "more data after the object"
	}
	return fmt.Sprintf("nested deeper than %d", maxPayloadDepth)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 'n':
		return "null"
	}
	return "boolean"
}

// indentJSON re-indents a JSON text without changing a byte of its values.
func indentJSON(data []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return string(data) // unreachable: data was decoded strictly
	}
	return buf.String()
}

// dateLines renders the date claims payload has, one line each.
func dateLines(payload []byte, now time.Time) []string {
	// The NumericDate claims explained, and how their distance from now is
	// worded when it lies ahead and behind.
	dateClaims := []struct{ name, future, past string }{
		{"exp", "expires in %s", "expired %s ago"},
		{"iat", "issued %s in the future", "issued %s ago"},
		{"nbf", "valid in %s", "valid since %s ago"},
		{"auth_time", "authenticated %s in the future", "authenticated %s ago"},
	}
	claims, _, err := decodePayload(payload)
	if err != nil {
		return nil
	}
	var lines []string
	for _, dc := range dateClaims {
		if _, present := claims[dc.name]; !present {
			continue
		}
		ns, _, ok := numericDate(claims, dc.name)
		var text string
		switch {
		case !ok:
			text = fmt.Sprintf("%s: not a NumericDate", Render(claims[dc.name]))
		case ns == math.MaxInt64 || ns == math.MinInt64:
			text = fmt.Sprintf("%s: beyond the dates this module represents", Render(claims[dc.name]))
		default:
			at := time.Unix(0, ns).UTC()
			d := at.Sub(now)
			rel := fmt.Sprintf(dc.future, humanDuration(d))
			if d < 0 {
				rel = fmt.Sprintf(dc.past, humanDuration(-d))
			}
			text = at.Format("2006-01-02 15:04:05.999999999") + "  " + rel
		}
		lines = append(lines, fmt.Sprintf("  %-10s %s\n", dc.name, text))
	}
	return lines
}

// humanDuration writes d at the precision a person reads it, in two units
// at most: 42s, 4m10s, 2h5m, 3d4h.
func humanDuration(d time.Duration) string {
	type unit struct {
		size time.Duration
		name string
	}
	var major, minor unit
	switch d = d.Round(time.Second); {
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		major, minor = unit{time.Minute, "m"}, unit{time.Second, "s"}
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		major, minor = unit{time.Hour, "h"}, unit{time.Minute, "m"}
	default:
		d = d.Round(time.Hour)
		major, minor = unit{24 * time.Hour, "d"}, unit{time.Hour, "h"}
	}
	s := fmt.Sprintf("%d%s", d/major.size, major.name)
	if rest := d % major.size / minor.size; rest > 0 {
		s += fmt.Sprintf("%d%s", rest, minor.name)
	}
	return s
}

// headerVerdict is the rejection the handler's Parse gives raw whatever the
// configured algorithms (every supported one allowed), or nil: what inspect
// can tell without a key.
func headerVerdict(raw string) *Rejection {
	v, err := NewVerifier(Policy{Algorithms: slices.Sorted(maps.Keys(algorithms))})
	if err != nil {
		return nil
	}
	_, rej := v.Parse(raw)
	return rej
}

// ---- verify ----

// verifyOptions are verify's flags: the handler settings that decide whether
// a token is accepted.
type verifyOptions struct {
	jwksFile, jwksURL, oidcIssuer, apiKey, dataCenter string
	issuers, audiences, algorithms, require           []string
	leeway                                            string
}

func (o *verifyOptions) define(fs *pflag.FlagSet) {
	fs.StringVar(&o.jwksFile, "jwks-file", "", "key source: `path` of a local JWKS (jwks_file)")
	fs.StringVar(&o.jwksURL, "jwks-url", "", "key source: `URL` of a JWKS (jwks_url)")
	fs.StringVar(&o.oidcIssuer, "oidc-issuer", "", "key source: OpenID Connect issuer `URL`, keys found by discovery (oidc_issuer)")
	fs.StringVar(&o.apiKey, "api-key", "", "key source: Gigya / SAP CDC site API `key` (api_key)")
	fs.StringVar(&o.dataCenter, "data-center", "", "with --api-key: Gigya data center `name`, API domain or http(s) base URL; default us1 (data_center)")
	fs.StringArrayVar(&o.issuers, "issuer", nil, "allowed `iss`; repeatable (issuer)")
	fs.StringArrayVar(&o.audiences, "audience", nil, "`aud` must contain one of these; repeatable (audience)")
	fs.StringSliceVar(&o.algorithms, "algorithms", nil, "allowed `algs`, comma-separated or repeated; default RS256 (algorithms)")
	fs.StringVar(&o.leeway, "leeway", "", "clock skew (a `duration`) allowed on exp, nbf and iat; default 60s (leeway)")
	fs.StringArrayVar(&o.require, "require", nil, "`claim=value` that must hold; repeatable, see above (require)")
}

// handler is the handler configuration the flags stand for. verify takes
// its policy and key source from it with the handler's own code.
func (o *verifyOptions) handler() (*Handler, error) {
	sources := givenNames(map[string]string{"--jwks-file": o.jwksFile, "--jwks-url": o.jwksURL, "--oidc-issuer": o.oidcIssuer, "--api-key": o.apiKey})
	switch {
	case len(sources) == 0:
		return nil, errors.New("a key source is required: --jwks-file, --jwks-url, --oidc-issuer or --api-key")
	case len(sources) > 1:
		return nil, fmt.Errorf("only one key source may be given, got %s", strings.Join(sources, " and "))
	case o.dataCenter != "" && o.apiKey == "":
		return nil, errors.New("--data-center needs --api-key")
	}
	require, err := requirements(o.require)
	if err != nil {
		return nil, err
	}
	h := &Handler{Trust: Trust{APIKey: o.apiKey, DataCenter: o.dataCenter, OIDCIssuer: o.oidcIssuer, JWKSURL: o.jwksURL, JWKSFile: o.jwksFile, Issuer: o.issuers, Audience: o.audiences, Algorithms: o.algorithms},
		Require: require,
	}
	if o.leeway != "" {
		d, err := caddy.ParseDuration(o.leeway)
		if err != nil {
			return nil, fmt.Errorf("--leeway: %w", err)
		}
		h.Leeway = (*caddy.Duration)(&d)
	}
	if err := h.Validate(); err != nil {
		// Validate speaks for a config: "idtoken: ..." would repeat the command's name.
		return nil, errors.New(strings.TrimPrefix(err.Error(), "idtoken: "))
	}
	return h, nil
}

// requirements turns --require claim=value flags into the handler's require
// list: flags naming the same claim are alternatives, like the values of one
// Caddyfile require line; different claims must all hold.
func requirements(flags []string) ([]ClaimRequirement, error) {
	var reqs []ClaimRequirement
	for _, f := range flags {
		claim, value, ok := strings.Cut(f, "=")
		if !ok || claim == "" {
			return nil, fmt.Errorf("--require %q: want claim=value", f)
		}
		i := slices.IndexFunc(reqs, func(r ClaimRequirement) bool { return r.Claim == claim })
		if i < 0 {
			reqs = append(reqs, ClaimRequirement{Claim: claim})
			i = len(reqs) - 1
		}
		reqs[i].Values = append(reqs[i].Values, value)
	}
	return reqs, nil
}

// run loads the keys once, then checks the token as Handler.verify does
// (Parse, then Verify). Keys come first so that a 0 or 1 is always the
// answer of a handler that holds them, and a source that cannot be read is
// exit 2 whatever the token.
func (o *verifyOptions) run(c *cli, args []string) int {
	raw, err := c.tokenArg(args, false)
	if err != nil {
		return c.usageError("verify", err)
	}
	h, err := o.handler()
	if err != nil {
		return c.usageError("verify", err)
	}
	v, err := NewVerifier(h.policy())
	if err != nil {
		return c.usageError("verify", err)
	}
	cfg, err := h.keySetConfig()
	if err != nil {
		return c.usageError("verify", err)
	}
	keys, skipped, err := fetchKeySetOnce(c.ctx, cfg)
	c.warnSkipped(cfg, skipped)
	if err != nil {
		return c.fail("verify", fmt.Errorf("loading keys: %w", err))
	}
	tok, rej := v.Parse(raw)
	if rej != nil {
		return c.refuse(rej, tok, nil)
	}
	if _, rej := v.Verify(tok, keys, c.now()); rej != nil {
		return c.refuse(rej, tok, keys)
	}
	payload, err := b64.DecodeString(tok.payload)
	if err != nil {
		return c.fail("verify", err) // unreachable: Verify decoded it
	}
	fmt.Fprintln(c.stdout, indentJSON(payload))
	return exitOK
}

// refuse writes the rejection's reason, word for word the handler's
// error_description, alone on the first line of stderr; when a key was not
// found or did not fit, a second line names the token's alg and kid and the
// set's kids.
func (c *cli) refuse(rej *Rejection, tok *Token, keys *KeySet) int {
	fmt.Fprintln(c.stderr, rej.Reason)
	if keys == nil {
		return exitRefused
	}
	switch rej.Reason {
	case ReasonUnknownKID, ReasonNoKID, ReasonKeyMismatch, ReasonSignature:
		var kids []string
		for _, k := range keys.keys[:min(keys.Len(), maxLoggedKIDs)] {
			kids = append(kids, fmt.Sprintf("%q (%s)", clipForLog(k.ID), keyType(k.Public)))
		}
		if n := keys.Len() - maxLoggedKIDs; n > 0 {
			kids = append(kids, fmt.Sprintf("and %d more", n))
		}
		fmt.Fprintf(c.stderr, "token: alg %q, kid %q; key set: %s\n",
			clipForLog(tok.Alg), clipForLog(tok.KID), strings.Join(kids, ", "))
	}
	return exitRefused
}

// keyType names a public key's type for people.
func keyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// warnSkipped tells about keys of the document that cannot be used, as the
// handler's log does.
func (c *cli) warnSkipped(cfg keySetConfig, skipped SkippedKeys) {
	if skipped.Total() == 0 {
		return
	}
	fmt.Fprintf(c.stderr, "warning: %s: %d unusable key(s) skipped\n", cfg.location, skipped.Total())
	for _, g := range skipped {
		for _, k := range g.Examples {
			fmt.Fprintf(c.stderr, "  %s\n", k)
		}
	}
}

// fetchKeySetOnce loads the key set cfg names with the handler's sources,
// limits and parser, once: no goroutine, no storage, no retry, and at most
// the handler's fetch timeout. A check from the command line wants the
// issuer's answer now, or the reason there is none.
func fetchKeySetOnce(ctx context.Context, cfg keySetConfig) (*KeySet, SkippedKeys, error) {
	src, client, err := newSource(cfg)
	if err != nil {
		return nil, nil, err
	}
	if client != nil {
		defer client.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(cfg.timeout, fetchTimeout))
	defer cancel()
	res, err := src.fetch(ctx, nil)
	if err != nil {
		return nil, res.skipped, err
	}
	return res.set, res.skipped, nil
}

// ---- keygen ----

// Files keygen writes. mint finds the JWKS beside a key by this pairing:
// PREFIXkey.pem goes with PREFIXjwks.json.
const (
	keyFileName  = "idtoken-key.pem"
	jwksFileName = "idtoken-jwks.json"
)

type keygenOptions struct {
	alg, kid, out string
	force         bool
}

func (o *keygenOptions) define(fs *pflag.FlagSet) {
	fs.StringVar(&o.alg, "alg", "RS256", "the key's `alg`: RS256 (RSA 2048), ES256 (P-256) or EdDSA (Ed25519)")
	fs.StringVar(&o.kid, "kid", "", "the key's `kid`; default: its RFC 7638 thumbprint")
	fs.StringVar(&o.out, "out", ".", "`dir`ectory for "+keyFileName+" and "+jwksFileName)
	fs.BoolVar(&o.force, "force", false, "replace existing files")
}

// run writes a new key pair: the private key first, so a JWKS is never
// written for a key that is not on disk.
func (o *keygenOptions) run(c *cli, args []string) int {
	if len(args) > 0 {
		return c.usageError("keygen", fmt.Errorf("unexpected argument %q", args[0]))
	}
	priv, err := generateKey(o.alg)
	if err != nil {
		return c.usageError("keygen", err)
	}
	jwk, err := newPublicJWK(priv.Public())
	if err != nil {
		return c.fail("keygen", err)
	}
	jwk.Kid = cmp.Or(o.kid, thumbprint(priv.Public()))
	jwks, err := marshalJSON(map[string]any{"keys": []publicJWK{jwk}}, "  ")
	if err != nil {
		return c.fail("keygen", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return c.fail("keygen", fmt.Errorf("encoding the private key: %w", err))
	}
	keyPath, jwksPath := filepath.Join(o.out, keyFileName), filepath.Join(o.out, jwksFileName)
	if !o.force {
		for _, p := range []string{keyPath, jwksPath} {
			if _, err := os.Lstat(p); err == nil {
				return c.fail("keygen", fmt.Errorf("%s exists; --force replaces it", p))
			}
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return c.fail("keygen", err)
	}
	if err := writePrivate(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return c.fail("keygen", err)
	}
	if err := os.WriteFile(jwksPath, append(jwks, '\n'), 0o644); err != nil {
		return c.fail("keygen", err)
	}
	fmt.Fprintf(c.stdout, "private key: %s (keep it out of version control)\n", keyPath)
	fmt.Fprintf(c.stdout, "JWKS:        %s (kid %q, %s)\n", jwksPath, jwk.Kid, jwk.Alg)
	algFlag := ""
	if jwk.Alg != "RS256" {
		algFlag = " --algorithms " + jwk.Alg
	}
	fmt.Fprintf(c.stdout, "try:         caddy idtoken mint --key %s --sub alice | caddy idtoken verify --jwks-file %s%s -\n",
		keyPath, jwksPath, algFlag)
	return exitOK
}

// generateKey makes a new private key for a JWS algorithm keygen offers.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "RS256":
		return rsa.GenerateKey(rand.Reader, minRSABits)
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("--alg %q: want RS256, ES256 or EdDSA", alg)
}

// writePrivate writes a private key readable by its owner only. An existing
// file is removed first: rewriting it in place would keep its mode.
func writePrivate(path string, data []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// publicJWK is a public verification key as a JWK (RFC 7517, 7518, 8037).
type publicJWK struct {
	Kid string `json:"kid,omitempty"`
	Kty string `json:"kty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	Crv string `json:"crv,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// newPublicJWK describes pub as a JWK for signatures with its algorithm.
func newPublicJWK(pub crypto.PublicKey) (publicJWK, error) {
	alg, err := signingAlg(pub)
	if err != nil {
		return publicJWK{}, err
	}
	j := publicJWK{Alg: alg, Use: "sig"}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64.EncodeToString(k.N.Bytes()), b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		point, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			return publicJWK{}, fmt.Errorf("EC public key: %w", err)
		}
		size := (len(point) - 1) / 2
		j.Kty, j.Crv = "EC", k.Curve.Params().Name
		j.X, j.Y = b64.EncodeToString(point[1:1+size]), b64.EncodeToString(point[1+size:])
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(k)
	}
	return j, nil
}

// signingAlg is the JWS algorithm the handler verifies a key's signatures
// with: RS256 for RSA, the curve's ES algorithm, EdDSA for Ed25519.
func signingAlg(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return "", fmt.Errorf("RSA key of %d bits: the handler uses %d to %d", bits, minRSABits, maxRSABits)
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		if alg, ok := curveAlg[k.Curve.Params().Name]; ok {
			return alg, nil
		}
		return "", fmt.Errorf("EC curve %s is not supported (P-256, P-384, P-521)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// marshalJSON encodes v without escaping <, > and & (tokens and JWKS are
// read by programs and people, not embedded in HTML), indented when indent
// is not empty.
func marshalJSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ---- mint ----

type mintOptions struct {
	key, kid, sub, iss, ttl string
	aud, claims             []string
}

func (o *mintOptions) define(fs *pflag.FlagSet) {
	fs.StringVar(&o.key, "key", "", "private key `file` (PEM), e.g. "+keyFileName+" from keygen; required")
	fs.StringVar(&o.kid, "kid", "", "`kid` header; default: from the JWKS beside the key")
	fs.StringVar(&o.sub, "sub", "", "`sub` claim")
	fs.StringVar(&o.iss, "iss", "", "`iss` claim")
	fs.StringArrayVar(&o.aud, "aud", nil, "`aud` claim; repeatable (an array then)")
	fs.StringVar(&o.ttl, "ttl", "1h", "lifetime (a `duration`): exp is iat plus this")
	fs.StringArrayVar(&o.claims, "claim", nil, "`name=value`; repeatable; JSON values as JSON, others as strings")
}

func (o *mintOptions) run(c *cli, args []string) int {
	if len(args) > 0 {
		return c.usageError("mint", fmt.Errorf("unexpected argument %q", args[0]))
	}
	if o.key == "" {
		return c.usageError("mint", errors.New("--key is required"))
	}
	claims, err := o.claimSet(c.now())
	if err != nil {
		return c.usageError("mint", err)
	}
	priv, err := readPrivateKey(o.key)
	if err != nil {
		return c.fail("mint", err)
	}
	alg, err := signingAlg(priv.Public())
	if err != nil {
		return c.fail("mint", fmt.Errorf("%s: %w", o.key, err))
	}
	kid := o.kid
	if kid == "" {
		if kid, err = kidBeside(o.key, priv.Public()); err != nil {
			return c.fail("mint", err)
		}
	}
	tok, err := mintToken(priv, alg, kid, claims)
	if err != nil {
		return c.fail("mint", err)
	}
	fmt.Fprintln(c.stdout, tok)
	return exitOK
}

// claimSet is the token's claims at now: iss, sub, aud, iat and exp, then
// every --claim in order, each replacing what it names.
func (o *mintOptions) claimSet(now time.Time) (map[string]any, error) {
	ttl, err := caddy.ParseDuration(o.ttl)
	if err != nil {
		return nil, fmt.Errorf("--ttl: %w", err)
	}
	claims := map[string]any{"iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if o.iss != "" {
		claims["iss"] = o.iss
	}
	if o.sub != "" {
		claims["sub"] = o.sub
	}
	switch len(o.aud) {
	case 0:
	case 1:
		claims["aud"] = o.aud[0]
	default:
		claims["aud"] = o.aud
	}
	for _, f := range o.claims {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--claim %q: want name=value", f)
		}
		claims[name] = claimValue(value)
	}
	return claims, nil
}

// claimValue is value as JSON when it is one JSON value (numbers kept
// exact), else the string itself.
func claimValue(value string) any {
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return value
	}
	if _, err := dec.Token(); err != io.EOF {
		return value // "1 2", "{}x": not one value
	}
	return v
}

// readPrivateKey reads the first private key in a PEM file: PKCS#8
// ("PRIVATE KEY", as keygen writes), PKCS#1 ("RSA PRIVATE KEY") or SEC1
// ("EC PRIVATE KEY"), skipping other blocks such as "EC PARAMETERS".
func readPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%s: no private key PEM block", path)
		}
		var key any
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: unsupported key type %T", path, key)
		}
		return signer, nil
	}
}

// kidBeside finds pub's kid in the JWKS keygen wrote beside keyPath.
func kidBeside(keyPath string, pub crypto.PublicKey) (string, error) {
	prefix, ok := strings.CutSuffix(keyPath, "key.pem")
	if !ok {
		return "", fmt.Errorf("--kid is required: %s is not named *key.pem, so no JWKS beside it is looked for", keyPath)
	}
	jwksPath := prefix + "jwks.json"
	data, err := os.ReadFile(jwksPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--kid is required: no %s beside the key", jwksPath)
	}
	if err != nil {
		return "", err
	}
	set, _, err := ParseKeyDocument(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", jwksPath, err)
	}
	for _, k := range set.keys {
		if eq, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(pub) {
			return k.ID, nil
		}
	}
	return "", fmt.Errorf("--kid is required: %s does not hold this key's public key", jwksPath)
}

// mintToken signs claims as a compact JWS with the header {alg, kid, typ}.
func mintToken(key crypto.Signer, alg, kid string, claims map[string]any) (string, error) {
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	h, err := marshalJSON(header, "")
	if err != nil {
		return "", err
	}
	p, err := marshalJSON(claims, "")
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sig, err := signInput(key, alg, input)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// signInput signs a JWS signing input with the standard library, in the
// forms signature.go verifies: PKCS#1 v1.5 for RS*, R || S for ES*,
// Ed25519 for EdDSA. No JWT library is linked into Caddy for this.
func signInput(key crypto.Signer, alg, input string) ([]byte, error) {
	a, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(rand.Reader, k, a.hash, digest(a.hash, input))
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(a.hash, input))
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(k, []byte(input)), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}
