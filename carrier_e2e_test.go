package idtoken

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// upstreamView is what an application behind Caddy reads from a request,
// the way last-wins parsers read it (Python's SimpleCookie, many query
// parsers): the last id_token cookie, the last token parameter, every
// Authorization line, and the user Caddy vouches for.
type upstreamView struct {
	cookie, query string
	auth          []string
	rawCookie     string
	rawQuery      string
	user          string
}

// lastCookie is the value of the last cookie called name, reading pairs the
// way Python's SimpleCookie does (';' or ',' then spaces, spaces around '=').
func lastCookie(header, name string) string {
	last := ""
	for _, pair := range strings.FieldsFunc(header, func(r rune) bool { return r == ';' || r == ',' }) {
		n, v, _ := strings.Cut(pair, "=")
		if strings.TrimSpace(n) == name {
			last = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return last
}

// TestEndToEndOneToken runs a real Caddy in front of a recording upstream:
// requests carrying two different tokens never reach it, and a verified
// request reaches it without any copy of the token, unless forward_token,
// where every carrier holds the one verified token.
func TestEndToEndOneToken(t *testing.T) {
	k1 := newRSAKey(t, "k1", 0)
	is := newIssuer(t, jwksJSON(t, k1))
	claims := with(validClaims(), map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	good := sign(t, k1, claims, nil)
	other := sign(t, k1, with(claims, map[string]any{"sub": "mallory"}), nil)
	forged := good[:strings.LastIndexByte(good, '.')+1] + b64u(make([]byte, 256))

	var mu sync.Mutex
	var seen []upstreamView
	upstream := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		q, _ := url.ParseQuery(r.URL.RawQuery)
		v := upstreamView{
			cookie:    lastCookie(strings.Join(r.Header.Values("Cookie"), "; "), "id_token"),
			auth:      r.Header.Values("Authorization"),
			rawCookie: strings.Join(r.Header.Values("Cookie"), "; "),
			rawQuery:  r.URL.RawQuery,
			user:      r.Header.Get("X-User"),
		}
		if vals := q["token"]; len(vals) > 0 {
			v.query = vals[len(vals)-1]
		}
		mu.Lock()
		seen = append(seen, v)
		mu.Unlock()
		fmt.Fprint(w, "upstream")
	})
	strip, forward, optional := freePort(t), freePort(t), freePort(t)
	site := func(port int, extra string) string {
		return fmt.Sprintf(`
http://127.0.0.1:%d {
	idtoken {
		jwks_url %s
		audience client-1
		from_header Authorization
		from_cookie id_token
		from_query token%s
	}
	request_header X-User {http.auth.user.id}
	reverse_proxy %s
}`, port, is.URL, extra, strings.TrimPrefix(upstream.URL, "http://"))
	}
	loadCaddyfile(t, "{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n}"+
		site(strip, "")+site(forward, "\n\t\tforward_token")+site(optional, "\n\t\toptional"))
	defer func() {
		if err := caddy.Stop(); err != nil {
			t.Error(err)
		}
	}()

	type request struct {
		port    int
		query   string
		headers [][2]string
	}
	send := func(t *testing.T, req request) (int, string, *upstreamView) {
		t.Helper()
		mu.Lock()
		seen = nil
		mu.Unlock()
		u := fmt.Sprintf("http://127.0.0.1:%d/app", req.port)
		if req.query != "" {
			u += "?" + req.query
		}
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		for _, kv := range req.headers {
			r.Header.Add(kv[0], kv[1])
		}
		resp, _ := roundTrip(t, r)
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), nil
		}
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), &seen[0]
	}

	refused := []struct {
		name string
		req  request
	}{
		{"two id_token cookies", request{port: strip, headers: [][2]string{{"Cookie", "id_token=" + good + "; id_token=" + forged}}}},
		{"id_token cookies in two Cookie headers", request{port: forward, headers: [][2]string{{"Cookie", "id_token=" + good}, {"Cookie", "id_token=" + other}}}},
		{"cookie after a comma", request{port: forward, headers: [][2]string{{"Cookie", "id_token=" + good + "; a=1, id_token=" + forged}}}},
		{"two token parameters", request{port: forward, query: "token=" + good + "&token=" + forged}},
		{"token parameter behind a ';'", request{port: forward, query: "token=" + good + ";token=" + forged}},
		{"two Authorization headers", request{port: forward, headers: [][2]string{{"Authorization", "Bearer " + good}, {"Authorization", "Bearer " + other}}}},
		{"cookie and query disagree", request{port: strip, query: "token=" + other, headers: [][2]string{{"Cookie", "id_token=" + good}}}},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			status, challenge, v := send(t, tc.req)
			if status != http.StatusBadRequest || v != nil {
				t.Fatalf("status %d, upstream saw %+v; want 400 and nothing upstream", status, v)
			}
			if !strings.Contains(challenge, `error="invalid_request"`) {
				t.Fatalf("WWW-Authenticate %q", challenge)
			}
		})
	}

	everywhere := request{query: "a=1&token=" + good + "&b=2", headers: [][2]string{
		{"Authorization", "Bearer " + good},
		{"Cookie", "theme=dark; id_token=" + good + `; lang="en"`},
	}}
	t.Run("verified token is stripped from every carrier", func(t *testing.T) {
		req := everywhere
		req.port = strip
		status, _, v := send(t, req)
		if status != 200 || v == nil {
			t.Fatalf("status %d, upstream %+v", status, v)
		}
		if v.user != "user-123" || len(v.auth) != 0 || v.cookie != "" || v.query != "" {
			t.Fatalf("upstream saw %+v", v)
		}
		if v.rawCookie != `theme=dark; lang="en"` || v.rawQuery != "a=1&b=2" {
			t.Fatalf("other cookies or parameters changed: cookie %q, query %q", v.rawCookie, v.rawQuery)
		}
	})
	t.Run("forward_token: every carrier holds the verified token", func(t *testing.T) {
		req := everywhere
		req.port = forward
		status, _, v := send(t, req)
		if status != 200 || v == nil {
			t.Fatalf("status %d, upstream %+v", status, v)
		}
		if v.cookie != good || v.query != good || len(v.auth) != 1 || v.auth[0] != "Bearer "+good {
			t.Fatalf("upstream saw %+v", v)
		}
	})
	t.Run("optional: Bearer and a tab is verified, not anonymous", func(t *testing.T) {
		status, _, v := send(t, request{port: optional, headers: [][2]string{{"Authorization", "Bearer\t" + forged}}})
		if status != http.StatusUnauthorized || v != nil {
			t.Fatalf("forged token after a tab: status %d, upstream %+v", status, v)
		}
		status, _, v = send(t, request{port: optional, headers: [][2]string{{"Authorization", "Bearer\t" + good}}})
		if status != 200 || v == nil || v.user != "user-123" || len(v.auth) != 0 {
			t.Fatalf("valid token after a tab: status %d, upstream %+v", status, v)
		}
	})
}
