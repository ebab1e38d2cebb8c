// Command idtoken-loadtest drives a real Caddy (this repository's
// ./cmd/caddy, built as a separate process) with mixed traffic while it
// rotates the issuer's keys, takes the issuer down and up, and reloads the
// config through the admin API. Everything is on loopback; the run is bounded
// in time and request count and stops by itself.
//
// The mix includes forged tokens built to be as expensive as possible for
// someone without the private key: 16 KiB (the module's limit), a small flat
// header naming a kid the issuer serves, a payload of costly JSON (deeply
// nested arrays, thousands of members, escapes, duplicate names) and a junk
// 256-byte signature. Each must be refused with 401.
//
//	go run ./cmd/idtoken-loadtest -duration 20s -conns 200
//
// It exits non-zero when a valid token is refused, an invalid one accepted,
// any 5xx or transport error is seen, or fetches exceed their bound.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idtoken/caddy-idtoken/cmd/idtoken-loadtest/internal/forge"
)

func main() {
	duration := flag.Duration("duration", 20*time.Second, "how long to drive traffic")
	conns := flag.Int("conns", 200, "concurrent connections")
	maxRequests := flag.Int64("max-requests", 20_000_000, "stop after this many requests")
	caddyBin := flag.String("caddy", "", "Caddy binary to test (default: build ./cmd/caddy)")
	flag.Parse()
	if err := run(*duration, *conns, *maxRequests, *caddyBin); err != nil {
		fmt.Fprintln(os.Stderr, "idtoken-loadtest:", err)
		os.Exit(1)
	}
}

// A kind of request and the status it must get.
type kind struct {
	name   string
	weight int
	want   int
	forged int // 1 + index in forge.Variants for forged tokens, else 0
}

// kinds of request in the mix, with one forged kind per forge.Variant.
var kinds = func() []kind {
	ks := []kind{
		{name: "valid", weight: 50, want: 200},
		{name: "expired", weight: 10, want: 401},
		{name: "tampered", weight: 10, want: 401},
		{name: "unknown-kid", weight: 10, want: 401},
		{name: "garbage", weight: 8, want: 401},
		{name: "no-token", weight: 7, want: 401},
		{name: "revoked", weight: 5, want: 401}, // signed by a key the issuer removed (only after the removal)
	}
	// 16 KiB, valid kid, costly payload, junk signature: 2% each.
	for i, v := range forge.Variants {
		ks = append(ks, kind{name: "forged-" + v.Name, weight: 2, want: 401, forged: i + 1})
	}
	return ks
}()

// stats are counted by all workers.
type stats struct {
	sent, wrong, serverErrors, transportErrors, retried atomic.Int64
	byStatus                                            sync.Map // int -> *atomic.Int64
	byKind                                              []atomic.Int64
	firstWrong, firstRetry                              atomic.Value // string
	start                                               time.Time
}

func (s *stats) status(code int) {
	v, _ := s.byStatus.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func run(duration time.Duration, conns int, maxRequests int64, caddyBin string) error {
	dir, err := os.MkdirTemp("", "idtoken-loadtest")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if caddyBin == "" {
		caddyBin = filepath.Join(dir, "bin", "caddy") // not $dir/caddy: that is Caddy's data dir
		fmt.Println("building ./cmd/caddy ...")
		build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building caddy: %w", err)
		}
	}

	is, err := newIssuer()
	if err != nil {
		return err
	}
	defer is.Close()

	sitePort, adminPort := freePort(), freePort()
	site := fmt.Sprintf("http://127.0.0.1:%d/", sitePort)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	config := func(generation int) string {
		return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
	storage file_system %s
	log {
		level WARN
	}
}
http://127.0.0.1:%d {
	idtoken {
		jwks_url %s
		min_refresh_interval 1s
		refresh_interval 3s
	}
	header X-Config-Generation %d
	respond "ok {http.auth.user.id}" 200
}
`, adminPort, filepath.Join(dir, "storage"), sitePort, is.URL, generation)
	}
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(config(1)), 0o600); err != nil {
		return err
	}
	caddy := exec.Command(caddyBin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	caddy.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	caddy.Stdout, caddy.Stderr = os.Stdout, os.Stderr
	if err := caddy.Start(); err != nil {
		return fmt.Errorf("starting caddy: %w", err)
	}
	defer func() { _ = caddy.Process.Kill(); _, _ = caddy.Process.Wait() }()

	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
	}}
	if err := waitReady(client, site, is.token(is.keys[0], "warmup", time.Hour)); err != nil {
		return err
	}
	startGoroutines, _ := goroutines(client, admin)
	startRSS := rssKiB(caddy.Process.Pid)
	fetchesAtStart := is.hits.Load()

	st := stats{start: time.Now(), byKind: make([]atomic.Int64, len(kinds))}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() { worker(ctx, client, site, is, &st, maxRequests) })
	}
	events := runEvents(ctx, duration, is, client, admin, config)
	wg.Wait()
	eventErr := <-events

	client.CloseIdleConnections()
	time.Sleep(2 * time.Second) // let Caddy close the finished connections
	endGoroutines, _ := goroutines(client, admin)
	endRSS := rssKiB(caddy.Process.Pid)
	if resp, err := client.Post(admin+"/stop", "", nil); err == nil {
		resp.Body.Close()
	}
	_, _ = caddy.Process.Wait()

	fetches := is.hits.Load() - fetchesAtStart
	// One per min_refresh_interval (unknown kids) plus one per refresh_interval,
	// plus backoff retries while the issuer is down: at most ~1.5 per second.
	fetchBound := int64(duration.Seconds()*1.5) + 10

	fmt.Printf("\nidtoken-loadtest: %s, %d connections\n", duration, conns)
	fmt.Printf("  requests sent      %d (%.0f/s)\n", st.sent.Load(), float64(st.sent.Load())/duration.Seconds())
	for i, k := range kinds {
		fmt.Printf("    %-22s %d\n", k.name, st.byKind[i].Load())
	}
	fmt.Printf("  answers by status ")
	st.byStatus.Range(func(k, v any) bool {
		fmt.Printf(" %d:%d", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Println()
	fmt.Printf("  wrong answers      %d\n", st.wrong.Load())
	fmt.Printf("  5xx                %d\n", st.serverErrors.Load())
	fmt.Printf("  transport errors   %d (after one retry; %d requests retried", st.transportErrors.Load(), st.retried.Load())
	if first := st.firstRetry.Load(); first != nil {
		fmt.Printf(", first cause: %s", first)
	}
	fmt.Println(")")
	fmt.Printf("  key fetches        %d (bound %d)\n", fetches, fetchBound)
	fmt.Printf("  caddy goroutines   %d at start, %d at end\n", startGoroutines, endGoroutines)
	fmt.Printf("  caddy RSS          %d KiB at start, %d KiB at end\n", startRSS, endRSS)

	var problems []string
	if n := st.wrong.Load(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d wrong answers (first: %v)", n, st.firstWrong.Load()))
	}
	if n := st.serverErrors.Load(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d 5xx answers", n))
	}
	if n := st.transportErrors.Load(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d transport errors (first: %v)", n, st.firstWrong.Load()))
	}
	if fetches > fetchBound {
		problems = append(problems, fmt.Sprintf("%d fetches, bound %d", fetches, fetchBound))
	}
	if endGoroutines > startGoroutines+50 {
		problems = append(problems, fmt.Sprintf("goroutines grew from %d to %d", startGoroutines, endGoroutines))
	}
	if eventErr != nil {
		problems = append(problems, eventErr.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Println("  PASS")
	return nil
}

// worker sends requests until ctx ends or the request budget is spent.
func worker(ctx context.Context, client *http.Client, site string, is *issuer, st *stats, maxRequests int64) {
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	for ctx.Err() == nil && st.sent.Add(1) <= maxRequests {
		i := pick(total)
		if kinds[i].name == "revoked" && !is.revokedReady.Load() {
			i = 0
		}
		token := is.tokenFor(kinds[i])
		send := func() (*http.Response, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, site, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			return client.Do(req)
		}
		resp, err := send()
		if err != nil && ctx.Err() == nil {
			// A keep-alive connection can close under a request when a reload
			// retires the old server; RFC 9112 section 9.3.1 lets a client
			// retry an idempotent request once. A second failure counts.
			st.retried.Add(1)
			st.firstRetry.CompareAndSwap(nil, fmt.Sprintf("at %.1fs: %v", time.Since(st.start).Seconds(), err))
			resp, err = send()
		}
		if err != nil {
			if ctx.Err() == nil {
				st.transportErrors.Add(1)
				st.firstWrong.CompareAndSwap(nil, "transport: "+err.Error())
			}
			st.sent.Add(-1)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		st.byKind[i].Add(1)
		st.status(resp.StatusCode)
		if resp.StatusCode >= 500 {
			st.serverErrors.Add(1)
		}
		want := kinds[i].want
		if resp.StatusCode != want || (want == 200 && !strings.HasPrefix(string(body), "ok user-")) {
			st.wrong.Add(1)
			st.firstWrong.CompareAndSwap(nil, fmt.Sprintf("%s got %d %q", kinds[i].name, resp.StatusCode, body))
		}
	}
}

func pick(total int) int {
	n := mrand.IntN(total)
	for i, k := range kinds {
		if n < k.weight {
			return i
		}
		n -= k.weight
	}
	return 0
}

// runEvents plays the fault timeline and reports the first failure.
func runEvents(ctx context.Context, d time.Duration, is *issuer, client *http.Client, admin string, config func(int) string) <-chan error {
	done := make(chan error, 1)
	grace := 3 * time.Second // > min_refresh_interval: Caddy has had a chance to refetch
	at := func(frac float64) time.Duration { return time.Duration(float64(d) * frac) }
	steps := []struct {
		at   time.Duration
		name string
		do   func() error
	}{
		{at(0.15), "rotate: publish k2", func() error { is.publish(0, 1); return nil }},
		{at(0.15) + grace, "sign with k2", func() error { is.signWith(1); return nil }},
		{at(0.35), "issuer down", func() error { is.down.Store(true); return nil }},
		{at(0.45), "reload config", func() error { return reload(client, admin, config(2)) }},
		{at(0.55), "issuer up", func() error { is.down.Store(false); return nil }},
		{at(0.65), "rotate: publish k3, revoke k1", func() error { is.publish(1, 2); return nil }},
		{at(0.65) + grace, "sign with k3, send revoked", func() error { is.signWith(2); is.revokedReady.Store(true); return nil }},
		{at(0.80), "reload config", func() error { return reload(client, admin, config(3)) }},
		{at(0.85), "issuer down", func() error { is.down.Store(true); return nil }},
		{at(0.95), "issuer up", func() error { is.down.Store(false); return nil }},
	}
	go func() {
		start := time.Now()
		for _, s := range steps {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-time.After(time.Until(start.Add(s.at))):
			}
			fmt.Printf("  %5.1fs  %s\n", time.Since(start).Seconds(), s.name)
			if err := s.do(); err != nil {
				done <- fmt.Errorf("%s: %w", s.name, err)
				return
			}
		}
		done <- nil
	}()
	return done
}

func reload(client *http.Client, admin, caddyfile string) error {
	req, _ := http.NewRequest(http.MethodPost, admin+"/load", strings.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("admin /load: HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

// issuer is a local JWKS server with keys that rotate, and pre-signed tokens.
type issuer struct {
	*httptest.Server
	keys         []*rsa.PrivateKey
	published    atomic.Pointer[[]byte]
	signing      atomic.Int32
	down         atomic.Bool
	revokedReady atomic.Bool
	hits         atomic.Int64
	valid        [][]string // per key: a pool of valid tokens
	expired      []string
	tampered     []string
	forged       [][][]string // per key, per forge.Variant: forged tokens naming that key's kid
}

func newIssuer() (*issuer, error) {
	is := &issuer{}
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		is.keys = append(is.keys, k)
	}
	for i, k := range is.keys {
		var pool []string
		for n := range 64 {
			pool = append(pool, is.token(k, fmt.Sprintf("user-%d-%d", i, n), time.Hour))
		}
		is.valid = append(is.valid, pool)
	}
	for n := range 16 {
		is.expired = append(is.expired, is.token(is.keys[0], fmt.Sprintf("user-x-%d", n), -10*time.Minute))
		t := is.valid[0][n]
		parts := strings.Split(t, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), "user-", "admin", 1))
		is.tampered = append(is.tampered, parts[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+parts[2])
	}
	for i := range is.keys {
		var perVariant [][]string
		for _, v := range forge.Variants {
			var pool []string // distinct junk signatures: no two requests alike
			for range 8 {
				pool = append(pool, forge.Forged(kid(i), v, forge.MaxLength))
			}
			perVariant = append(perVariant, pool)
		}
		is.forged = append(is.forged, perVariant)
	}
	is.publish(0)
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		if is.down.Load() {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*is.published.Load())
	}))
	return is, nil
}

func kid(i int) string { return "k" + strconv.Itoa(i+1) }

// publish makes the JWKS hold exactly the given keys.
func (is *issuer) publish(idx ...int) {
	var keys []map[string]string
	for _, i := range idx {
		pub := is.keys[i].PublicKey
		keys = append(keys, map[string]string{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid(i),
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	doc, _ := json.Marshal(map[string]any{"keys": keys})
	is.published.Store(&doc)
}

func (is *issuer) signWith(i int) { is.signing.Store(int32(i)) }

func (is *issuer) token(k *rsa.PrivateKey, sub string, ttl time.Duration) string {
	i := 0
	for j, key := range is.keys {
		if key == k {
			i = j
		}
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"sub": sub, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix(),
	})
	tok.Header["kid"] = kid(i)
	s, err := tok.SignedString(k)
	if err != nil {
		panic(err)
	}
	return s
}

func (is *issuer) tokenFor(k kind) string {
	if k.forged > 0 {
		// The kid of the key tokens are being signed with, which the issuer
		// publishes, so the module has to check the signature to refuse it.
		pool := is.forged[is.signing.Load()][k.forged-1]
		return pool[mrand.IntN(len(pool))]
	}
	switch k.name {
	case "valid":
		pool := is.valid[is.signing.Load()]
		return pool[mrand.IntN(len(pool))]
	case "expired":
		return is.expired[mrand.IntN(len(is.expired))]
	case "tampered":
		return is.tampered[mrand.IntN(len(is.tampered))]
	case "unknown-kid":
		hdr := fmt.Sprintf(`{"alg":"RS256","kid":"random-%d"}`, mrand.Int64())
		parts := strings.Split(is.valid[0][0], ".")
		return base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + parts[1] + "." + parts[2]
	case "garbage":
		return [...]string{"x", "a.b.c", "eyJ.eyJ.", strings.Repeat("A", 20000), "..", "Zm9v.YmFy.YmF6"}[mrand.IntN(6)]
	case "revoked":
		pool := is.valid[0]
		return pool[mrand.IntN(len(pool))]
	}
	return ""
}

func waitReady(client *http.Client, site, token string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, site, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("caddy did not answer a valid token with 200 within 30s")
}

// goroutines reads Caddy's goroutine count from its admin pprof endpoint.
func goroutines(client *http.Client, admin string) (int, error) {
	resp, err := client.Get(admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	var n int
	_, err = fmt.Sscanf(line, "goroutine profile: total %d", &n)
	return n, err
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
