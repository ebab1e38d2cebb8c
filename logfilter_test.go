package idtoken

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// readmeLogSnippet returns the (redact_tokens) snippet of the README's
// "Keeping tokens out of logs" example, so the test runs the configuration
// users copy, not a copy of it that could drift.
func readmeLogSnippet(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Keeping tokens out of logs\n")
	if !ok {
		t.Fatal(`README has no "### Keeping tokens out of logs" section`)
	}
	_, block, ok := strings.Cut(section, "```caddyfile\n")
	if !ok {
		t.Fatal("the section has no caddyfile example")
	}
	block, _, _ = strings.Cut(block, "```")
	// The snippet is only half of the advice: it must be applied to the
	// default log (error entries) and to the site's access log.
	if n := strings.Count(block, "import redact_tokens"); n != 2 {
		t.Fatalf("the README example imports redact_tokens %d times, want 2 (default log and access log):\n%s", n, block)
	}
	start := strings.Index(block, "(redact_tokens) {\n")
	if start < 0 {
		t.Fatalf("no (redact_tokens) snippet in the README example:\n%s", block)
	}
	end := strings.Index(block[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("the (redact_tokens) snippet does not end with a line holding only }:\n%s", block)
	}
	return block[start : start+end+3]
}

// carrier puts a token where one token source reads it.
type carrier struct {
	name      string
	send      func(r *http.Request, token, other string)
	twoTokens bool // sends two different tokens: refused with 400 whatever they are
}

var tokenCarriers = []carrier{
	{"bearer", func(r *http.Request, tok, _ string) { r.Header.Set("Authorization", "Bearer "+tok) }, false},
	{"cookie", func(r *http.Request, tok, _ string) { r.Header.Set("Cookie", "theme=dark; id_token="+tok) }, false},
	{"custom header", func(r *http.Request, tok, _ string) { r.Header.Set("X-Id-Token", tok) }, false},
	{"custom header with Bearer", func(r *http.Request, tok, _ string) { r.Header.Set("X-Id-Token", "Bearer "+tok) }, false},
	{"query", func(r *http.Request, tok, _ string) { r.URL.RawQuery = "page=2&id_token=" + tok }, false},
	{"query twice", func(r *http.Request, tok, other string) { r.URL.RawQuery = "id_token=" + tok + "&id_token=" + other }, true},
	{"query, with the page it came from as Referer", func(r *http.Request, tok, _ string) {
		r.URL.RawQuery = "id_token=" + tok
		r.Header.Set("Referer", "https://app.example.com/start?id_token="+tok)
	}, false},
	{"query name percent-encoded", func(r *http.Request, tok, _ string) { r.URL.RawQuery = "id%5Ftoken=" + tok }, false},
}

// TestLogsKeepTokensOut runs a real Caddy with the README's log filters on
// the access log and on the default log (where Caddy's error entries go),
// with debug on, sends valid, tampered and forged tokens through every token
// source, and checks that no log line holds a token or 20 characters of any
// token's signature. A control run without the filters must find tokens in
// the logs, so the check is known to see them.
func TestLogsKeepTokensOut(t *testing.T) {
	snippet := readmeLogSnippet(t)

	k1 := newRSAKey(t, "k1", 0)
	attacker := newRSAKey(t, "k1", 1) // same kid, another key
	is := newIssuer(t, jwksJSON(t, k1))
	backend := serveFunc(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "backend") })
	down := freePort(t) // an issuer that is not there: tokens get 503

	now := time.Now()
	claims := with(validClaims(), map[string]any{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	good := sign(t, k1, claims, nil)
	other := sign(t, k1, with(claims, map[string]any{"sub": "user-456"}), nil)
	tampered := good[:len(good)-4] + "AAAA"
	forged := sign(t, attacker, claims, nil)
	secrets := []string{good, other, tampered, forged}

	kinds := []struct {
		name, token string
		status      int
	}{
		{"valid", good, http.StatusOK},
		{"tampered", tampered, http.StatusUnauthorized},
		{"forged", forged, http.StatusUnauthorized},
	}

	runs := []struct {
		name           string
		filtered       bool
		logCredentials bool
	}{
		{"README filters", true, false},
		{"README filters with log_credentials", true, true},
		{"control without filters", false, false},
	}
	defer func() {
		// Leave Caddy's default logger on stderr for the tests that follow,
		// not on a file in a removed temporary directory.
		loadCaddyfile(t, "{\n\tadmin off\n\tpersist_config off\n}\n")
		if err := caddy.Stop(); err != nil {
			t.Error(err)
		}
	}()
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			accessLog, defaultLog := filepath.Join(dir, "access.log"), filepath.Join(dir, "caddy.log")
			loadCaddyfile(t, logFilterCaddyfile(snippet, run.filtered, run.logCredentials, dir, port, is.URL, down, backend.URL))

			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			// Each request has its own path, to find its log entries by.
			var paths, accepted, rejected, unavailable []string
			request := func(route, kind string, c carrier, token string, want int) {
				path := fmt.Sprintf("/%s/%d", route, len(paths))
				paths = append(paths, path)
				switch want {
				case http.StatusOK:
					accepted = append(accepted, path)
				case http.StatusServiceUnavailable:
					unavailable = append(unavailable, path)
					fallthrough
				default:
					rejected = append(rejected, path)
				}
				if got := send(t, base+path, c, token, other); got != want {
					t.Errorf("%s: %s token by %s: status %d, want %d", path, kind, c.name, got, want)
				}
			}
			for _, c := range tokenCarriers {
				if c.twoTokens { // one token per request: 400 before any key is needed
					for _, k := range kinds {
						request("app", k.name, c, k.token, http.StatusBadRequest)
					}
					request("down", "valid (issuer down)", c, good, http.StatusBadRequest)
					continue
				}
				for _, k := range kinds {
					request("app", k.name, c, k.token, k.status)
				}
				request("down", "valid (issuer down)", c, good, http.StatusServiceUnavailable)
			}

			access := waitForEntries(t, accessLog, paths, "http.log.access", "")
			// Caddy's error entries, the uri directive's record of the
			// rewritten request and reverse_proxy's of what it sent
			// upstream carry the request too, in the default log.
			waitForEntries(t, defaultLog, rejected, "http.log.error", "")
			waitForEntries(t, defaultLog, unavailable, "http.log.error", "error")
			var viaApp []string
			for _, p := range paths {
				if strings.HasPrefix(p, "/app/") {
					viaApp = append(viaApp, p)
				}
			}
			waitForEntries(t, defaultLog, viaApp, "http.handlers.rewrite", "")
			all := waitForEntries(t, defaultLog, accepted, "http.handlers.reverse_proxy", "")

			leaks := append(findTokens(t, accessLog, secrets), findTokens(t, defaultLog, secrets)...)
			if !run.filtered {
				if len(leaks) == 0 {
					t.Fatalf("without filters no token was found in %d access and %d default log entries; the check cannot see tokens", len(access), len(all))
				}
				return
			}
			for _, l := range leaks {
				t.Error(l)
			}
		})
	}
}

// logFilterCaddyfile is a site with a working and an unreachable issuer,
// every token source, access and default logs in files, and debug on. The
// working route rewrites the query, for the rewrite's debug entry.
func logFilterCaddyfile(snippet string, filtered, logCredentials bool, dir string, port int, issuerURL string, down int, backend string) string {
	importFilters, servers := "", ""
	if filtered {
		importFilters = "\n\t\timport redact_tokens"
	}
	if logCredentials {
		servers = "\n\tservers {\n\t\tlog_credentials\n\t}"
	}
	sources := `
			audience client-1
			from_header Authorization
			from_cookie id_token
			from_header X-Id-Token
			from_query id_token`
	return fmt.Sprintf(`%[1]s
{
	admin off
	persist_config off
	auto_https off
	debug
	http_port %[4]d%[9]s
	log {
		output file %[3]s/caddy.log%[2]s
	}
}
http://127.0.0.1:%[4]d {
	log {
		output file %[3]s/access.log%[2]s
	}
	handle /down/* {
		idtoken {
			jwks_url http://127.0.0.1:%[6]d/jwks%[8]s
		}
		respond "unreachable"
	}
	handle {
		uri query +rewritten yes
		idtoken {
			jwks_url %[5]s%[8]s
		}
		reverse_proxy %[7]s
	}
}
`, snippet, importFilters, filepath.ToSlash(dir), port, issuerURL, down, strings.TrimPrefix(backend, "http://"), sources, servers)
}

// send makes one request with the token in c's place and returns the status.
func send(t *testing.T, url string, c carrier, token, other string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(req, token, other)
	resp, _ := roundTrip(t, req)
	return resp.StatusCode
}

// logEntry is what the test reads of a JSON log line.
type logEntry struct {
	Level   string `json:"level"`
	Logger  string `json:"logger"`
	Msg     string `json:"msg"`
	Request struct {
		URI     string         `json:"uri"`
		Headers map[string]any `json:"headers"`
	} `json:"request"`
}

// waitForEntries reads the JSON log at path until, for every path in
// paths, an entry of a logger named with prefix (and of level, if not "")
// records a request to it with its headers, and returns all entries. Log
// lines are written as requests end, which can be just after the client
// has its answer.
func waitForEntries(t *testing.T, path string, paths []string, prefix, level string) []logEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, missing := readEntries(t, path), map[string]bool{}
		for _, p := range paths {
			missing[p] = true
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Logger, prefix) || (level != "" && e.Level != level) {
				continue
			}
			uriPath, _, _ := strings.Cut(e.Request.URI, "?")
			if missing[uriPath] && len(e.Request.Headers) > 0 {
				delete(missing, uriPath)
			}
		}
		if len(missing) == 0 {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s %q entry with the request for %d of %d requests, e.g. %v", filepath.Base(path), level, prefix, len(missing), len(paths), anyKey(missing))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func anyKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

// readEntries parses every line of a JSON log; a line that is not JSON
// fails the test, since the leak check relies on reading every line.
func readEntries(t *testing.T, path string) []logEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var entries []logEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line is not JSON: %v\n%s", filepath.Base(path), err, sc.Bytes())
		}
		entries = append(entries, e)
	}
	return entries
}

// findTokens describes each line of the log at path that holds a whole
// token or any 20 characters of a token's signature part.
func findTokens(t *testing.T, path string, tokens []string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var needles []string
	for _, tok := range tokens {
		needles = append(needles, tok)
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		for i := 0; i+20 <= len(sig); i++ {
			needles = append(needles, sig[i:i+20])
		}
	}
	var found []string
	for n, line := range strings.Split(string(data), "\n") {
		for _, needle := range needles {
			if strings.Contains(line, needle) {
				if len(line) > 400 {
					line = line[:400] + "..."
				}
				found = append(found, fmt.Sprintf("%s:%d holds token text %q: %s", filepath.Base(path), n+1, needle, line))
				break
			}
		}
	}
	return found
}
