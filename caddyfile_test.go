package idtoken

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func dur(d time.Duration) *caddy.Duration { c := caddy.Duration(d); return &c }

func intp(n int) *int { return &n }

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Handler
	}{
		{
			name: "gigya with every subdirective",
			input: `idtoken {
				api_key 3_abc
				data_center eu1
				issuer https://a.test https://b.test
				audience app1 app2
				algorithms RS256 ES256
				leeway 30s
				require groups admin ops
				require email_verified true
				from_cookie id_token
				from_header X-Id-Token
				from_query token
				optional
				forward_token
				realm example
				refresh_interval 2h
				min_refresh_interval 30s
				max_stale 3d
				cache_size 500
			}`,
			want: Handler{Trust: Trust{APIKey: "3_abc", DataCenter: "eu1", Issuer: []string{"https://a.test", "https://b.test"}, Audience: []string{"app1", "app2"}, Algorithms: []string{"RS256", "ES256"}, RefreshInterval: caddy.Duration(2 * time.Hour), MinRefreshInterval: caddy.Duration(30 * time.Second), MaxStale: dur(72 * time.Hour)},
				Leeway:       dur(30 * time.Second),
				Require:      []ClaimRequirement{{"groups", []string{"admin", "ops"}}, {"email_verified", []string{"true"}}},
				TokenSources: []TokenSource{{Cookie: "id_token"}, {Header: "X-Id-Token"}, {Query: "token"}},
				Optional:     true, ForwardToken: true, Realm: "example",
				CacheSize: intp(500),
			},
		},
		{name: "oidc issuer", input: "idtoken {\n oidc_issuer https://op.test/tenant\n}", want: Handler{Trust: Trust{OIDCIssuer: "https://op.test/tenant"}}},
		{name: "jwks url", input: "idtoken {\n jwks_url https://op.test/oauth2/jwks\n}", want: Handler{Trust: Trust{JWKSURL: "https://op.test/oauth2/jwks"}}},
		{name: "jwks file", input: "idtoken {\n jwks_file /etc/jwks.json\n}", want: Handler{Trust: Trust{JWKSFile: "/etc/jwks.json"}}},
		{name: "max_stale zero turns persistence off", input: "idtoken {\n jwks_url https://x.test/jwks\n max_stale 0\n}", want: Handler{Trust: Trust{JWKSURL: "https://x.test/jwks", MaxStale: dur(0)}}},
		{name: "cache_size zero turns the cache off", input: "idtoken {\n jwks_file x\n cache_size 0\n}", want: Handler{Trust: Trust{JWKSFile: "x"}, CacheSize: intp(0)}},
		{name: "leeway zero is kept", input: "idtoken {\n jwks_file x\n leeway 0s\n}", want: Handler{Trust: Trust{JWKSFile: "x"}, Leeway: dur(0)}},
		{name: "leeway of 10m is the most allowed", input: "idtoken {\n jwks_file x\n leeway 10m\n}", want: Handler{Trust: Trust{JWKSFile: "x"}, Leeway: dur(10 * time.Minute)}},
		{name: "data center as domain", input: "idtoken {\n api_key k\n data_center cn1.gigya-api.cn\n}", want: Handler{Trust: Trust{APIKey: "k", DataCenter: "cn1.gigya-api.cn"}}},
		{
			name: "browser session",
			input: `idtoken {
				jwks_file x
				login_redirect /login next
				session_path /.idtoken/session
				session_cookie sid
				session_domain example.com
				session_origins https://login.example.com http://localhost:3000
				session_origins https://a.example
				pass_cors_preflight
			}`,
			want: Handler{Trust: Trust{JWKSFile: "x"},
				LoginRedirect: &LoginRedirect{URL: "/login", Param: "next"},
				SessionPath:   "/.idtoken/session", SessionCookie: "sid", SessionDomain: "example.com",
				SessionOrigins:    []string{"https://login.example.com", "http://localhost:3000", "https://a.example"},
				PassCORSPreflight: true,
			},
		},
		{name: "scopes and token age", input: "idtoken {\n jwks_file x\n require_scope read write\n require_scope admin\n max_age 15m\n}",
			want: Handler{Trust: Trust{JWKSFile: "x"}, RequireScope: [][]string{{"read", "write"}, {"admin"}}, MaxAge: caddy.Duration(15 * time.Minute)}},
		{name: "session_path alone takes the defaults", input: "idtoken {\n jwks_file x\n session_path /s\n}", want: Handler{Trust: Trust{JWKSFile: "x"}, SessionPath: "/s"}},
		{name: "data center as URL", input: "idtoken {\n api_key k\n data_center http://127.0.0.1:9/\n}", want: Handler{Trust: Trust{APIKey: "k", DataCenter: "http://127.0.0.1:9/"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", h, tc.want)
			}
		})
	}
}

// TestCaddyfileErrors adapts whole Caddyfiles, as `caddy adapt` does, and
// checks that each mistake is reported with the file and line it is on.
func TestCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name, block, want string
		line              int
	}{
		{"unknown subdirective", "jwks_file x\n\tbogus 1", `unrecognized idtoken subdirective "bogus"`, 4},
		{"missing argument", "jwks_file", "jwks_file: missing argument", 3},
		{"too many arguments", "jwks_file a b", "jwks_file: too many arguments", 3},
		{"unparsable duration", "jwks_file x\n\tleeway soon", `leeway: invalid duration "soon"`, 4},
		{"negative duration", "jwks_file x\n\trefresh_interval -1s", "must not be negative", 4},
		{"cache_size not a number", "jwks_file x\n\tcache_size lots", `cache_size: "lots" is not a count of tokens`, 4},
		{"negative cache_size", "jwks_file x\n\tcache_size -1", `cache_size: "-1" is not a count of tokens`, 4},
		{"unparsable max_stale", "jwks_file x\n\tmax_stale forever", `max_stale: invalid duration "forever"`, 4},
		{"two key sources", "jwks_file x\n\tapi_key k", "api_key: only one key source may be set (jwks_file was set already)", 4},
		{"one key source twice", "jwks_url https://a.test/jwks\n\tjwks_url https://b.test/jwks", "jwks_url: only one key source may be set (jwks_url was set already)", 4},
		{"empty key source", "audience a\n\tjwks_file \"\"", "jwks_file: must not be empty", 4},
		{"no key source", "audience a", "one key source is required", 2},
		{"data_center without api_key", "jwks_file x\n\tdata_center eu1", "data_center needs api_key", 4},
		{"data_center before another key source", "data_center eu1\n\tjwks_file x", "data_center needs api_key", 3},
		{"unknown data center", "api_key k\n\tdata_center mars1", `unknown data_center "mars1"`, 4},
		{"algorithm none", "jwks_file x\n\talgorithms RS256 none", `algorithm "none" is not allowed`, 4},
		{"algorithm HS256", "jwks_file x\n\talgorithms HS256", `algorithm "HS256" is not allowed`, 4},
		{"unknown algorithm", "jwks_file x\n\talgorithms RS257", `unsupported algorithm "RS257"`, 4},
		{"require without value", "jwks_file x\n\trequire groups", "require: want <claim> <value>", 4},
		{"require with an empty claim", "jwks_file x\n\trequire \"\" admin", "require: the claim name must not be empty", 4},
		{"empty header name", "jwks_file x\n\tfrom_header \"\"", "from_header: the name must not be empty", 4},
		{"empty query parameter name", "jwks_file x\n\tfrom_query \"\"", "from_query: the name must not be empty", 4},
		{"optional with argument", "jwks_file x\n\toptional yes", "wrong argument count", 4},
		{"forward_token with argument", "jwks_file x\n\tforward_token on", "wrong argument count", 4},
		{"leeway too large", "jwks_file x\n\tleeway 1h", "leeway: must be between 0 and 10m", 4},
		{"leeway just over 10m", "jwks_file x\n\tleeway 11m", "leeway: must be between 0 and 10m", 4},
		{"negative leeway", "jwks_file x\n\tleeway -1s", "leeway: duration must not be negative", 4},
		{"oidc issuer not a URL", "audience a\n\toidc_issuer op.test", `oidc_issuer: "op.test" is not an http(s) URL`, 4},
		{"jwks_url not a URL", "jwks_url /jwks.json", `jwks_url: "/jwks.json" is not an http(s) URL`, 3},
		{"session_path relative", "jwks_file x\n\tsession_path session", "session_path: \"session\" must be a path starting with a single /", 4},
		{"session_path protocol-relative", "jwks_file x\n\tsession_path //evil/s", "must be a path starting with a single /", 4},
		{"session_path with a query", "jwks_file x\n\tsession_path /s?x=1", "must be a plain path", 4},
		{"session_path without argument", "jwks_file x\n\tsession_path", "session_path: missing argument", 4},
		{"session_cookie not a cookie name", "jwks_file x\n\tsession_path /s\n\tsession_cookie id;token", "session_cookie: \"id;token\" is not a cookie name", 5},
		{"session_domain with a port", "jwks_file x\n\tsession_path /s\n\tsession_domain example.com:443", "session_domain: \"example.com:443\" is not a domain name", 5},
		{"session_domain URL", "jwks_file x\n\tsession_path /s\n\tsession_domain https://example.com", "is not a domain name", 5},
		{"session_domain on a __Host- cookie", "jwks_file x\n\tsession_path /s\n\tsession_cookie __Host-id\n\tsession_domain example.com", "__Host- cookie must be host-only", 6},
		{"session origin with a path", "jwks_file x\n\tsession_path /s\n\tsession_origins https://a.example/", "session_origins: \"https://a.example/\" is not an origin", 5},
		{"session origin without scheme", "jwks_file x\n\tsession_path /s\n\tsession_origins a.example", "is not an origin", 5},
		{"session origin of another scheme", "jwks_file x\n\tsession_path /s\n\tsession_origins ftp://a.example", "want http:// or https://", 5},
		{"session origin wildcard", "jwks_file x\n\tsession_path /s\n\tsession_origins https://*.example.com", "is not an origin", 5},
		{"session origin with a user", "jwks_file x\n\tsession_path /s\n\tsession_origins https://u@a.example", "is not an origin", 5},
		{"session_origins without argument", "jwks_file x\n\tsession_path /s\n\tsession_origins", "session_origins: missing argument", 5},
		{"session_cookie without session_path", "jwks_file x\n\tsession_cookie sid", "session_cookie needs session_path", 4},
		{"session_origins without session_path", "jwks_file x\n\trealm r\n\tsession_origins https://a.example", "session_origins needs session_path", 5},
		{"session_path twice", "jwks_file x\n\tsession_path /s\n\tsession_path /t", "session_path: given twice", 5},
		{"login_redirect twice", "jwks_file x\n\tlogin_redirect /a\n\tlogin_redirect /b", "login_redirect: given twice", 5},
		{"session_path /", "jwks_file x\n\tsession_path /", "must be a clean path below /", 4},
		{"session_cookie __host- with a domain", "jwks_file x\n\tsession_path /s\n\tsession_domain example.com\n\tsession_cookie __host-x", "must be host-only", 6},
		{"require_scope without a scope", "jwks_file x\n\trequire_scope", "require_scope: missing argument", 4},
		{"require_scope with a quote", "jwks_file x\n\trequire_scope `a\"b`", "is not a scope", 4},
		{"max_age zero", "jwks_file x\n\tmax_age 0s", "max_age: must be longer than 0", 4},
		{"max_age negative", "jwks_file x\n\tmax_age -1m", "must not be negative", 4},
		{"max_age twice", "jwks_file x\n\tmax_age 1h\n\tmax_age 2h", "max_age: given twice", 5},
		{"pass_cors_preflight with argument", "jwks_file x\n\tpass_cors_preflight yes", "wrong argument count", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := "http://localhost {\n\tidtoken {\n\t" + tc.block + "\n\t}\n\trespond ok\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			if err == nil {
				t.Fatal("adapted without error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if where := "Caddyfile:" + itoa(tc.line); !strings.Contains(err.Error(), where) {
				t.Fatalf("error %q does not name %s", err, where)
			}
		})
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestDirectiveOrder checks idtoken runs before request_header, reverse_proxy,
// file_server and respond without an order line.
func TestDirectiveOrder(t *testing.T) {
	input := `http://localhost {
		respond "hi"
		request_header X-User-Id {http.auth.user.id}
		file_server
		idtoken {
			jwks_file /tmp/x.json
		}
	}`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	auth := strings.Index(s, `"handler":"idtoken"`)
	if auth < 0 {
		t.Fatalf("no idtoken handler in %s", s)
	}
	for _, other := range []string{`"handler":"headers"`, `"handler":"file_server"`, `"handler":"static_response"`} {
		if i := strings.Index(s, other); i < 0 || i < auth {
			t.Errorf("%s is not after idtoken in %s", other, s)
		}
	}
}

func TestDefaults(t *testing.T) {
	h := Handler{Trust: Trust{APIKey: "3_k"}}
	p := h.policy()
	if !reflect.DeepEqual(p.Algorithms, []string{"RS256"}) || p.Leeway != 60*time.Second || p.APIKey != "3_k" {
		t.Fatalf("policy defaults = %+v", p)
	}
	if want := []string{"https://fidm.gigya.com/jwt/3_k/", "https://fidm.gigya.com/jwt/3_k"}; !reflect.DeepEqual(p.Issuers, want) {
		t.Fatalf("gigya issuers = %v, want %v", p.Issuers, want)
	}
	cfg, err := h.keySetConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.location != "https://accounts.us1.gigya.com/accounts.getJWTPublicKey?apiKey=3_k&V2=true" || cfg.minRefresh != 10*time.Second || cfg.refreshInterval != 0 || cfg.maxStale != 7*24*time.Hour {
		t.Fatalf("key set defaults = %+v", cfg)
	}

	h = Handler{Trust: Trust{APIKey: "3_k", Issuer: []string{"https://custom"}}}
	if p := h.policy(); !reflect.DeepEqual(p.Issuers, []string{"https://custom"}) || p.APIKey != "3_k" {
		t.Fatalf("issuer override = %+v; apiKey must still be checked", p)
	}
	h = Handler{Trust: Trust{JWKSURL: "https://x.test/jwks"}}
	if p := h.policy(); p.Issuers != nil || p.APIKey != "" {
		t.Fatalf("jwks_url must not default an issuer: %+v", p)
	}

	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwksJSON(t, newRSAKey(t, "k1", 0)))
	if p := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}}); p.cache == nil || p.cache.size != 10000 || p.cache.leeway != int64(60*time.Second) {
		t.Fatalf("default cache = %+v, want 10000 tokens with 60 s leeway", p.cache)
	}
	if p := provisioned(t, &Handler{Trust: Trust{JWKSFile: path}, CacheSize: intp(0)}); p.cache != nil {
		t.Fatal("cache_size 0 left a cache")
	}
}

// TestDocumentedCaddyfilesAdapt keeps example.Caddyfile and every example in
// the README valid: each must adapt without error.
func TestDocumentedCaddyfilesAdapt(t *testing.T) {
	example, err := os.ReadFile("example.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{"example.Caddyfile": string(example)}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(readme), "```caddyfile\n")[1:]
	for i, b := range blocks {
		body, _, _ := strings.Cut(b, "```")
		if strings.HasPrefix(body, "idtoken [<matcher>]") {
			continue // the syntax summary, not a config
		}
		docs["README block "+itoa(i+1)] = body
	}
	if len(docs) < 6 {
		t.Fatalf("found only %d documented Caddyfiles", len(docs))
	}
	for name, body := range docs {
		t.Run(name, func(t *testing.T) {
			if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": name}); err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
		})
	}
}

// TestDocumentedJSON keeps the README's JSON example in step with the fields.
func TestDocumentedJSON(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```json\n")
	if !ok {
		t.Fatal("no JSON example in README")
	}
	body, _, _ := strings.Cut(rest, "```")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw, "handler") // set by Caddy's module loader
	stripped, _ := json.Marshal(raw)
	dec := json.NewDecoder(strings.NewReader(string(stripped)))
	dec.DisallowUnknownFields()
	var h Handler
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("README JSON does not match Handler: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(h.TokenSources) != 2 || h.TokenSources[0].Cookie != "id_token" || h.Require[0].Claim != "groups" {
		t.Fatalf("decoded %+v", h)
	}
}
