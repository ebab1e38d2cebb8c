package idtoken

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestTrustCaddyfile: trust blocks parse into Trusts, with the shared
// settings at the top level.
func TestTrustCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`idtoken {
		trust {
			api_key     3_EuSite
			data_center eu1
		}
		trust {
			api_key     3_UsSite
			key_thumbprints NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
		}
		trust {
			oidc_issuer https://sample.portal.tencentciam.com
			audience    my-client-id
			algorithms  RS256 ES256
			refresh_interval 2h
		}
		trust {
			jwks_file /etc/jwks.json
			issuer    https://local.test
		}
		require groups staff
		leeway 30s
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Handler{
		Trusts: []Trust{
			{APIKey: "3_EuSite", DataCenter: "eu1"},
			{APIKey: "3_UsSite", KeyThumbprints: []string{"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}},
			{OIDCIssuer: "https://sample.portal.tencentciam.com", Audience: []string{"my-client-id"}, Algorithms: []string{"RS256", "ES256"}, RefreshInterval: caddy.Duration(2 * time.Hour)},
			{JWKSFile: "/etc/jwks.json", Issuer: []string{"https://local.test"}},
		},
		Require: []ClaimRequirement{{"groups", []string{"staff"}}},
		Leeway:  dur(30 * time.Second),
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got  %+v\nwant %+v", h, want)
	}
}

// TestTrustCaddyfileErrors: each mistake with its file and line.
func TestTrustCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name, block, want string
		line              int
	}{
		{"top-level key source with trust blocks", "jwks_file x\n\ttrust {\n\t\tapi_key k\n\t}",
			"jwks_file: the key source and its issuer settings go into the trust blocks", 3},
		{"top-level issuer with trust blocks", "trust {\n\t\tapi_key k\n\t}\n\tissuer https://a.test",
			"issuer: the key source and its issuer settings go into the trust blocks", 6},
		{"jwks_url trust without issuer", "trust {\n\t\tjwks_url https://a.test/jwks\n\t}",
			"trust: a trust with jwks_url or jwks_file needs issuer", 3},
		{"trust without a key source", "trust {\n\t\taudience a\n\t}", "trust: one key source is required", 3},
		{"two key sources in a trust", "trust {\n\t\tapi_key k\n\t\toidc_issuer https://a.test\n\t}", "oidc_issuer: only one key source may be set", 5},
		{"shared setting inside a trust", "trust {\n\t\tapi_key k\n\t\trequire groups staff\n\t}", `trust: "require" does not belong in a trust block`, 5},
		{"data_center without api_key in a trust", "trust {\n\t\tdata_center eu1\n\t\toidc_issuer https://a.test\n\t}", "data_center needs api_key", 4},
		{"two trusts for one Gigya site", "trust {\n\t\tapi_key k\n\t}\n\ttrust {\n\t\tapi_key k\n\t\tdata_center eu1\n\t}",
			`trust 0 and trust 1 both accept iss "https://fidm.gigya.com/jwt/k/"`, 6},
		{"two trusts for one issuer", "trust {\n\t\tjwks_file a\n\t\tissuer https://a.test\n\t}\n\ttrust {\n\t\tjwks_url https://b.test/jwks\n\t\tissuer https://b.test https://a.test\n\t}",
			`both accept iss "https://a.test"`, 7},
		{"oidc trust and an issuer list naming it", "trust {\n\t\toidc_issuer https://op.test/\n\t}\n\ttrust {\n\t\tjwks_file a\n\t\tissuer https://op.test\n\t}",
			`both accept iss "https://op.test"`, 6},
		{"argument after trust", "trust x {\n\t\tapi_key k\n\t}", "wrong argument count", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := "http://localhost {\n\tidtoken {\n\t" + tc.block + "\n\t}\n\trespond ok\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:"+itoa(tc.line)) {
				t.Fatalf("error %v, want %q at Caddyfile:%d", err, tc.want, tc.line)
			}
		})
	}
}

// TestTrustValidateJSON: the same rules for a JSON config.
func TestTrustValidateJSON(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		want string
	}{
		{"two trusts", Handler{Trusts: []Trust{{APIKey: "a"}, {OIDCIssuer: "https://op.test"}}}, ""},
		{"top-level source and trusts", Handler{Trust: Trust{JWKSFile: "x"}, Trusts: []Trust{{APIKey: "a"}}}, "cannot be combined with trust blocks"},
		{"jwks_file trust without issuer", Handler{Trusts: []Trust{{JWKSFile: "x"}}}, "needs issuer"},
		{"overlap", Handler{Trusts: []Trust{{APIKey: "a"}, {JWKSFile: "x", Issuer: []string{"https://fidm.gigya.com/jwt/a"}}}}, "both accept"},
		{"empty issuer", Handler{Trusts: []Trust{{JWKSFile: "x", Issuer: []string{""}}, {APIKey: "a"}}}, "must not be empty"},
		{"empty issuer, single form", Handler{Trust: Trust{JWKSFile: "x", Issuer: []string{""}}}, "must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSeveralIssuers: three loopback issuers (Gigya envelope, OIDC
// discovery, JWKS file) on one route. Each one's tokens are accepted and
// say which trust verified them; a token naming one issuer but signed with
// another's key is refused; an unknown iss costs no fetch and no signature
// check; one issuer down does not affect the others.
func TestSeveralIssuers(t *testing.T) {
	kg, ko, kf := newRSAKey(t, "g1", 0), newRSAKey(t, "o1", 1), newRSAKey(t, "f1", 2)
	const apiKey = "3_site"
	var gigyaHits, opHits atomic.Int64
	var gigyaDown atomic.Bool
	gigya := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		gigyaHits.Add(1)
		if gigyaDown.Load() {
			_, _ = w.Write([]byte(`{"errorCode":500001,"errorMessage":"General Server Error","statusCode":500}`))
			return
		}
		_, _ = w.Write(gigyaV2(kg))
	})
	op := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		opHits.Add(1)
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = w.Write([]byte(`{"issuer":"http://` + r.Host + `","jwks_uri":"http://` + r.Host + `/jwks"}`))
		case "/jwks":
			_, _ = w.Write(jwksJSON(t, ko))
		}
	})
	file := t.TempDir() + "/jwks.json"
	writeFile(t, file, jwksJSON(t, kf))

	gigyaIss, fileIss := "https://fidm.gigya.com/jwt/"+apiKey+"/", "https://local.test"
	gigyaTok := sign(t, kg, with(validClaims(), map[string]any{"iss": gigyaIss, "apiKey": apiKey, "aud": nil}), nil)
	opTok := sign(t, ko, with(validClaims(), map[string]any{"iss": op.URL}), nil)
	fileTok := sign(t, kf, with(validClaims(), map[string]any{"iss": fileIss}), nil)

	h := provisioned(t, &Handler{Trusts: []Trust{
		{APIKey: apiKey, DataCenter: gigya.URL},
		{OIDCIssuer: op.URL},
		{JWKSFile: file, Issuer: []string{fileIss}},
	}})
	run := func(token string) (int, string) {
		t.Helper()
		code, challenge := status(t, h, token)
		if code == 0 {
			code = 200
		}
		return code, challenge
	}
	tests := []struct {
		name   string
		token  string
		status int
		reason string
	}{
		{"Gigya token", gigyaTok, 200, ""},
		{"OIDC token", opTok, 200, ""},
		{"JWKS file token", fileTok, 200, ""},
		{"Gigya's iss, signed with the file's key", sign(t, kf, with(validClaims(), map[string]any{"iss": gigyaIss, "apiKey": apiKey, "aud": nil}), map[string]any{"kid": "g1"}), 401, ReasonSignature},
		{"OIDC iss, the file's kid", sign(t, kf, with(validClaims(), map[string]any{"iss": op.URL}), nil), 401, ReasonUnknownKID},
		{"unknown iss", sign(t, kf, with(validClaims(), map[string]any{"iss": "https://evil.test"}), nil), 401, ReasonIssuer},
		{"no iss", sign(t, kf, with(validClaims(), map[string]any{"iss": nil}), nil), 401, ReasonIssuer},
		{"iss not a string", sign(t, kf, with(validClaims(), map[string]any{"iss": 7}), nil), 401, ReasonIssuer},
		{"malformed payload", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOi.c2ln", 401, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, challenge := run(tc.token)
			if code != tc.status || (tc.reason != "" && !strings.Contains(challenge, `error_description="`+tc.reason)) {
				t.Fatalf("%d %q, want %d %q", code, challenge, tc.status, tc.reason)
			}
		})
	}

	t.Run("the trust placeholder names the trust", func(t *testing.T) {
		for i, tok := range []string{gigyaTok, opTok, fileTok} {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w, err := serveWith(middlewareFunc(func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
				return h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
					_, err := w.Write([]byte(repl.ReplaceAll("{http.auth.idtoken.trust} {http.auth.jwt.iss}", "")))
					return err
				}))
			}), r)
			if err != nil || !strings.HasPrefix(w.Body.String(), fmt.Sprintf("%d ", i)) {
				t.Fatalf("token of trust %d: %v %q", i, err, w.Body.String())
			}
		}
	})

	t.Run("an unknown iss costs no fetch and no signature check", func(t *testing.T) {
		g, o := gigyaHits.Load(), opHits.Load()
		// With every key set emptied, a signature check would be a 503
		// and a refetch would hit an issuer: neither happens.
		saved := make([]*RefreshingKeySet, len(h.trusts))
		for i, ts := range h.trusts {
			saved[i], ts.keys = ts.keys, staticKeys(nil)
		}
		defer func() {
			for i, ts := range h.trusts {
				ts.keys = saved[i]
			}
		}()
		for range 50 {
			tok := sign(t, kf, with(validClaims(), map[string]any{"iss": fmt.Sprintf("https://evil.test/%d", time.Now().UnixNano())}), nil)
			if code, challenge := run(tok); code != 401 || !strings.Contains(challenge, ReasonIssuer) {
				t.Fatalf("%d %q", code, challenge)
			}
		}
		if gigyaHits.Load() != g || opHits.Load() != o {
			t.Fatalf("unknown issuers caused fetches: gigya %d, op %d", gigyaHits.Load()-g, opHits.Load()-o)
		}
	})

	t.Run("one issuer down does not affect the others", func(t *testing.T) {
		gigyaDown.Store(true)
		h2 := provisioned(t, &Handler{Trusts: []Trust{
			{APIKey: apiKey, DataCenter: gigya.URL, MaxStale: dur(0)},
			{OIDCIssuer: op.URL, MinRefreshInterval: caddy.Duration(time.Hour)},
			{JWKSFile: file, Issuer: []string{fileIss}},
		}})
		for _, tc := range []struct {
			token  string
			status int
		}{{opTok, 0}, {fileTok, 0}, {gigyaTok, 503}, {opTok, 0}} {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			_, err := serve(h2, r)
			var herr caddyhttp.HandlerError
			got := 0
			if errors.As(err, &herr) {
				got = herr.StatusCode
			}
			if got != tc.status {
				t.Fatalf("status %d (%v), want %d", got, err, tc.status)
			}
		}
	})
}

// TestTrustReload: a reload that adds a trust accepts its tokens; one that
// removes a trust refuses them, and its cached tokens with it.
func TestTrustReload(t *testing.T) {
	ka, kb := newRSAKey(t, "a1", 0), newRSAKey(t, "b1", 1)
	fileA, fileB := t.TempDir()+"/a.json", t.TempDir()+"/b.json"
	writeFile(t, fileA, jwksJSON(t, ka))
	writeFile(t, fileB, jwksJSON(t, kb))
	port := freePort(t)
	config := func(trusts ...string) string {
		blocks := ""
		for _, tr := range trusts {
			file := map[string]string{"https://a.test": fileA, "https://b.test": fileB}[tr]
			blocks += fmt.Sprintf("\t\ttrust {\n\t\t\tjwks_file %s\n\t\t\tissuer %s\n\t\t}\n", file, tr)
		}
		return fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n}\nhttp://127.0.0.1:%d {\n\tidtoken {\n%s\t}\n\trespond \"{http.auth.idtoken.trust}\"\n}\n", port, blocks)
	}
	claims := with(validClaims(), map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	tokA := sign(t, ka, with(claims, map[string]any{"iss": "https://a.test"}), nil)
	tokB := sign(t, kb, with(claims, map[string]any{"iss": "https://b.test"}), nil)
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	defer func() { _ = caddy.Stop() }()

	steps := []struct {
		name   string
		trusts []string
		a, b   response
	}{
		{"A only", []string{"https://a.test"}, response{200, "0", ""}, response{401, "", `Bearer realm="127.0.0.1", error="invalid_token", error_description="issuer not allowed"`}},
		{"B added", []string{"https://a.test", "https://b.test"}, response{200, "0", ""}, response{200, "1", ""}},
		{"A removed", []string{"https://b.test"}, response{401, "", `Bearer realm="127.0.0.1", error="invalid_token", error_description="issuer not allowed"`}, response{200, "0", ""}},
	}
	for _, st := range steps {
		loadCaddyfile(t, config(st.trusts...))
		settled(t, base)
		if got := get(t, base, tokA); got != st.a {
			t.Fatalf("%s: A's token: %+v, want %+v", st.name, got, st.a)
		}
		if got := get(t, base, tokB); got != st.b {
			t.Fatalf("%s: B's token: %+v, want %+v", st.name, got, st.b)
		}
	}
}

// TestPeekIssuer: the iss that chooses a trust is read as the strict
// decoder reads it, without building the payload.
func TestPeekIssuer(t *testing.T) {
	tok := func(payload string) string { return "eyJhbGciOiJSUzI1NiJ9." + b64u([]byte(payload)) + ".c2ln" }
	tests := []struct {
		name, token, iss, reason string
	}{
		{"first member", tok(`{"iss":"https://a.test","sub":"x"}`), "https://a.test", ""},
		{"after nested values", tok(`{"a":{"b":[1,{"iss":"inner"}]},"iss":"https://a.test"}`), "https://a.test", ""},
		{"escaped name", tok(`{"i\u0073s":"https://a.test"}`), "https://a.test", ""},
		{"escaped value", tok(`{"iss":"https:\/\/a.test"}`), "https://a.test", ""},
		{"nesting before iss", tok(`{"a":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `,"iss":"x"}`), "x", ""},
		{"nesting deeper than a payload may be", tok(`{"a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `,"iss":"x"}`), "", ReasonMalformed},
		{"duplicate names before iss are left to the strict decode", tok(`{"a":1,"a":2,"iss":"x"}`), "x", ""},
		{"no iss", tok(`{"sub":"x"}`), "", ""},
		{"iss not a string", tok(`{"iss":["https://a.test"]}`), "", ""},
		{"not an object", tok(`["iss"]`), "", ReasonMalformed},
		{"broken JSON", tok(`{"iss"`), "", ReasonMalformed},
		{"bad base64", "eyJhbGciOiJSUzI1NiJ9.e$J.c2ln", "", ReasonMalformed},
		{"two parts", "eyJhbGciOiJSUzI1NiJ9.eyJ9", "", ReasonMalformed},
		{"too long", tok(`{"iss":"` + strings.Repeat("a", MaxTokenLength) + `"}`), "", ReasonTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, rej := peekIssuer(tc.token)
			reason := ""
			if rej != nil {
				reason = rej.Reason
			}
			if iss != tc.iss || reason != tc.reason {
				t.Fatalf("iss %q, rejection %q; want %q, %q", iss, reason, tc.iss, tc.reason)
			}
		})
	}
}

// TestKeyPinningHandler: with key_thumbprints, a token signed by a pinned
// key is accepted and one signed by another key of the same document is
// refused, at the top level and in a trust block.
func TestKeyPinningHandler(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1", 0), newRSAKey(t, "k2", 1)
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, k1, k2))
	pin := []string{thumbprint(k1.pub)}
	for name, h := range map[string]*Handler{
		"top level":   {Trust: Trust{JWKSFile: path, KeyThumbprints: pin}},
		"trust block": {Trusts: []Trust{{JWKSFile: path, Issuer: []string{"https://issuer.test"}, KeyThumbprints: pin}}},
	} {
		t.Run(name, func(t *testing.T) {
			provisioned(t, h)
			if got, _ := status(t, h, sign(t, k1, validClaims(), nil)); got != 0 {
				t.Fatalf("pinned key refused: %d", got)
			}
			if got, challenge := status(t, h, sign(t, k2, validClaims(), nil)); got != 401 || !strings.Contains(challenge, ReasonUnknownKID) {
				t.Fatalf("unpinned key: %d %s, want 401 unknown signing key", got, challenge)
			}
		})
	}
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("http://localhost {\n\tidtoken {\n\t\tjwks_file x\n\t\tkey_thumbprints abc\n\t}\n}\n"), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "key_thumbprints: thumbprint") || !strings.Contains(err.Error(), "Caddyfile:4") {
		t.Fatalf("bad thumbprint: %v", err)
	}
}

// TestTrustJSON: the JSON form, "trust" with the top level's field names.
func TestTrustJSON(t *testing.T) {
	var h Handler
	err := json.Unmarshal([]byte(`{
		"trust": [
			{"api_key": "3_EuSite", "data_center": "eu1", "key_thumbprints": ["NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"]},
			{"oidc_issuer": "https://op.test", "audience": ["app"], "algorithms": ["ES256"], "max_stale": "1h"},
			{"jwks_url": "https://keys.test/jwks", "issuer": ["https://keys.test"], "refresh_interval": "2h", "min_refresh_interval": "30s"}
		],
		"require_scope": [["read", "write"]],
		"max_age": "15m"
	}`), &h)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(h.Trusts) != 3 || h.Trusts[0].KeyThumbprints[0] != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" || *h.Trusts[1].MaxStale != caddy.Duration(time.Hour) ||
		h.Trusts[2].RefreshInterval != caddy.Duration(2*time.Hour) || h.RequireScope[0][1] != "write" || h.MaxAge != caddy.Duration(15*time.Minute) || !h.Trust.isZero() {
		t.Fatalf("decoded %+v", h)
	}
	out, err := json.Marshal(Handler{Trust: Trust{JWKSFile: "x"}})
	if err != nil || string(out) != `{"jwks_file":"x"}` {
		t.Fatalf("single-issuer form marshals as %s (%v), want the top-level field", out, err)
	}
}

// settled waits until a Caddy just reloaded answers on base: the old
// server may still accept a connection while it shuts down, and close it.
func settled(t *testing.T, base string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 50 {
		if resp, err := client.Get(base); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("Caddy does not answer after the reload")
}

// peekForged are 16 KiB payloads built to make choosing a trust costly:
// many members before iss, escaped names, nesting at the bound, many small
// objects. None is signed.
func peekForged() map[string]string {
	fill := func(unit string) string {
		var b strings.Builder
		b.WriteString(`{`)
		for i := 0; b.Len() < 11500; i++ {
			fmt.Fprintf(&b, unit, i)
		}
		b.WriteString(`"iss":"https://unknown.test"}`)
		return b.String()
	}
	deep := `{` + strings.Repeat(`"a":`+strings.Repeat("[", 30)+strings.Repeat("]", 30)+`,`, 180) + `"iss":"x"}`
	payloads := map[string]string{
		"many members":         fill(`"m%d":0,`),
		"escaped names":        fill(`"\u0061\u0062%d":0,`),
		"nesting at the bound": deep,
		"many small objects":   fill(`"o%d":{"a":{"b":1}},`),
	}
	tokens := make(map[string]string, len(payloads))
	for name, p := range payloads {
		tokens[name] = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." + b64u([]byte(p)) + "." + b64u(make([]byte, 256))
	}
	return tokens
}

// TestPeekIssuerWorkBounded: reading iss from a forged 16 KiB payload
// allocates a few objects whatever the payload holds (the duplicate-name
// bookkeeping of a strict decoder allocated per member, about 1500).
func TestPeekIssuerWorkBounded(t *testing.T) {
	for name, tok := range peekForged() {
		if len(tok) > MaxTokenLength {
			t.Fatalf("%s: %d characters", name, len(tok))
		}
		if _, rej := peekIssuer(tok); rej != nil && name != "nesting at the bound" {
			t.Fatalf("%s: %v", name, rej)
		}
		if n := testing.AllocsPerRun(20, func() { _, _ = peekIssuer(tok) }); n > 16 {
			t.Errorf("%s: %.0f allocations to read iss", name, n)
		}
	}
}

// BenchmarkPeekIssuerForged: compare with BenchmarkRSAVerify, the work a
// forged token must not exceed.
func BenchmarkPeekIssuerForged(b *testing.B) {
	for name, tok := range peekForged() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = peekIssuer(tok)
			}
		})
	}
}

// FuzzPeekIssuer: for every payload the strict decoder accepts, the quick
// scan that chooses a trust reads the same top-level iss.
func FuzzPeekIssuer(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"https://a.test"}`, `{"a":[1,{"iss":"x"}],"iss":"y"}`, `{"i\u0073s":"z"}`, `{"iss":"a\"b\\c"}`,
		`{"iss":5}`, `{"sub":"x"}`, ` { "a" : "}" , "iss" : "q" } `, `{"a":"\\","iss":"w"}`, `{"a":[[],{}],"b":null,"iss":"v"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		claims, _, err := decodePayload(payload)
		if err != nil {
			return
		}
		want, _ := claims["iss"].(string)
		got, rej := peekIssuer("eyJhbGciOiJSUzI1NiJ9." + b64u(payload) + ".c2ln")
		if len("eyJhbGciOiJSUzI1NiJ9."+b64u(payload)+".c2ln") > MaxTokenLength {
			return
		}
		if rej != nil || got != want {
			t.Fatalf("payload %q: peek %q (%v), strict decode %q", payload, got, rej, want)
		}
	})
}
