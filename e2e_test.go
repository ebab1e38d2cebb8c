package idtoken

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// loadCaddyfile adapts a Caddyfile and runs it in this process, as
// `caddy run` and `caddy reload` do.
func loadCaddyfile(t *testing.T, src string) {
	t.Helper()
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("load: %v", err)
	}
}

// stopCaddyWithAdmin stops a Caddy loaded with an admin endpoint:
// caddy.Stop leaves the admin endpoint running; a config without one stops
// it.
func stopCaddyWithAdmin(t *testing.T) {
	t.Helper()
	loadCaddyfile(t, "{\n\tadmin off\n\tpersist_config off\n}\n")
	if err := caddy.Stop(); err != nil {
		t.Error(err)
	}
}

type response struct {
	status    int
	body      string
	challenge string
}

func get(t *testing.T, url, token string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, body := roundTrip(t, req)
	return response{resp.StatusCode, body, resp.Header.Get("WWW-Authenticate")}
}

// roundTrip sends req to a Caddy under test on a fresh connection and
// returns the response with its body read.
func roundTrip(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestEndToEnd runs a real Caddy with two sites sharing one issuer, one of
// them with handle_errors, then reloads it twice.
func TestEndToEnd(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	plain, handled := freePort(t), freePort(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	config := func(greeting string) string {
		return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	http_port %[1]d
}
http://127.0.0.1:%[1]d {
	log {
		output file %[4]s
	}
	idtoken {
		jwks_url %[3]s
		audience client-1
	}
	respond "%[5]s {http.auth.user.id} {http.auth.jwt.email}"
}
http://127.0.0.1:%[2]d {
	idtoken {
		jwks_url %[3]s
		audience client-1
	}
	respond "%[5]s"
	handle_errors {
		respond "handled {err.status_code}" {err.status_code}
	}
}
`, plain, handled, is.URL, accessLog, greeting)
	}
	defer func() {
		if err := caddy.Stop(); err != nil {
			t.Error(err)
		}
	}()
	loadCaddyfile(t, config("hello"))

	claims := with(validClaims(), map[string]any{"email": "a@example.com", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	good := sign(t, k1, claims, nil)
	wrongAud := sign(t, k1, with(claims, map[string]any{"aud": "client-2"}), nil)
	base := fmt.Sprintf("http://127.0.0.1:%d/", plain)
	baseHandled := fmt.Sprintf("http://127.0.0.1:%d/", handled)

	tests := []struct {
		name, url, token string
		want             response
	}{
		{"valid token reaches respond", base, good, response{200, "hello user-123 a@example.com", ""}},
		{"no token", base, "", response{401, "", `Bearer realm="127.0.0.1"`}},
		{"wrong audience", base, wrongAud, response{401, "", `Bearer realm="127.0.0.1", error="invalid_token", error_description="audience not allowed"`}},
		{"tampered token", base, good[:len(good)-4] + "AAAA", response{401, "", `Bearer realm="127.0.0.1", error="invalid_token", error_description="invalid signature"`}},
		{"handle_errors sees the rejection", baseHandled, "garbage", response{401, "handled 401", `Bearer realm="127.0.0.1", error="invalid_token", error_description="malformed token"`}},
		{"handle_errors site passes valid token", baseHandled, good, response{200, "hello", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(t, tc.url, tc.token); got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if got := is.hits.Load(); got != 1 {
		t.Fatalf("two sites on one source fetched %d times, want 1", got)
	}

	logged, err := os.ReadFile(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), `"user_id":"user-123"`) {
		t.Fatalf("access log lacks user_id: %s", logged)
	}
	if strings.Contains(string(logged), good) {
		t.Fatal("access log contains the token")
	}

	t.Run("reload with the same source does not refetch", func(t *testing.T) {
		loadCaddyfile(t, config("reloaded"))
		if got := get(t, base, good); got.status != 200 || !strings.HasPrefix(got.body, "reloaded user-123") {
			t.Fatalf("after reload: %+v", got)
		}
		if got := is.hits.Load(); got != 1 {
			t.Fatalf("reload fetched again: %d fetches", got)
		}
	})

	t.Run("reload without idtoken stops the key set", func(t *testing.T) {
		var set *RefreshingKeySet
		keySets.Range(func(_, v any) bool {
			if s := v.(*RefreshingKeySet); s.src.String() == is.URL {
				set = s
			}
			return true
		})
		if set == nil {
			t.Fatal("key set not in the pool")
		}
		loadCaddyfile(t, fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n}\nhttp://127.0.0.1:%d {\n\trespond open\n}\n", plain))
		select {
		case <-set.done:
		case <-time.After(5 * time.Second):
			t.Fatal("key set goroutine still running after its last user was unloaded")
		}
		if got := get(t, base, ""); got.status != 200 || got.body != "open" {
			t.Fatalf("after unload: %+v", got)
		}
	})
}
