package idtoken

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/caddy-idtoken/caddy-idtoken/internal/gigyastandin"
)

// screenshotPath is where the walkthrough saves the logged-in page when
// IDTOKEN_WRITE_SCREENSHOT=1 (the README shows it); other runs leave the
// tree alone.
const screenshotPath = "docs/browser-walkthrough.png"

// chromium finds Debian's chromium. Without it the walkthrough is skipped
// on a developer's machine, but fails in CI (CI=true), which must run it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "no chromium on PATH: the browser walkthrough needs Debian's chromium (apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; .ci/run installs it")
	}
	t.Skip(msg)
	return ""
}

// lockedBuffer collects Chromium's output, which its process writes while
// the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBrowserWalkthrough drives headless Chromium through the example as a
// person would: a protected page sends it to the login page, it logs in
// through the Gigya stand-in's screen, comes back to the page it asked
// for, which shows its claims; page script cannot read the session cookie;
// when the cookie is gone (as when its token expires) the live Gigya
// session brings it straight back; fetch gets 401, never a redirect; after
// logout the protected page sends it to the login page again.
func TestBrowserWalkthrough(t *testing.T) {
	path := chromium(t)
	e := startExample(t)
	const email = "ada.lovelace@example.com"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var output lockedBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // the test may run as root, as CI does
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 720),
		// Nothing but the example may be reached: without these Chromium
		// keeps calling Google's services on a machine with no network.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.CombinedOutput(&output),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer func() {
		// Close the browser and wait for its process before the temporary
		// profile directory is removed.
		if err := chromedp.Cancel(browser); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		cancelBrowser()
	}()

	// Start the browser under ctx; each step then gets its own bound, so a
	// step that waits for what never comes fails in stepTimeout and the
	// browser can still be closed.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v\nchromium output:\n%s", err, output.String())
	}
	const stepTimeout = 20 * time.Second
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(browser, stepTimeout) }
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := step()
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nchromium output:\n%s", what, err, output.String())
		}
	}
	read := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := step()
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v\nchromium output:\n%s", what, err, output.String())
		}
		return v
	}
	expect := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	}
	siteCookie := func(name string) *network.Cookie {
		t.Helper()
		res, err := chromedp.Call(browser, network.GetCookies, network.GetCookiesParams{URLs: []string{e.url + "/"}})
		if err != nil {
			t.Fatalf("read the cookie store: %v", err)
		}
		for _, c := range res.Cookies {
			if c.Name == name {
				return c
			}
		}
		return nil
	}
	location := func() string { return read("read the location", chromedp.Location()) }
	text := func(id string) string { return read("read #"+id, chromedp.Text(chromedp.ID(id))) }
	documentCookie := func() string { return read("read document.cookie", chromedp.Evaluate[string](`document.cookie`)) }
	loginForm := chromedp.CSS(`form.gigya-login-form input[name=loginID]`)

	// A protected page, opened without a session, lands on the login page,
	// which remembers where to come back to.
	do("open a protected page",
		chromedp.Navigate(e.url+"/account.html?view=claims"),
		chromedp.WaitVisible(loginForm))
	expect("login page", location(), e.url+"/login/?return=%2Faccount.html%3Fview%3Dclaims")

	do("log in with a wrong password",
		chromedp.SendKeys(loginForm, email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "wrong"),
		chromedp.Click(chromedp.CSS(`input.gigya-input-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`.gigya-error-msg:not(:empty)`)))
	if msg := read("read the error", chromedp.Text(chromedp.CSS(`.gigya-error-msg`))); !strings.HasPrefix(msg, "Invalid LoginID") {
		t.Fatalf("wrong password: the screen says %q", msg)
	}

	do("log in",
		chromedp.SetValue(chromedp.CSS(`input[name=password]`), gigyastandin.DemoPassword),
		chromedp.Click(chromedp.CSS(`input.gigya-input-submit`)),
		chromedp.WaitVisible(chromedp.ID("claims")))
	expect("back on the page asked for", location(), e.url+"/account.html?view=claims")
	for id, want := range map[string]string{
		"claim-email":     email,
		"claim-firstName": "Ada",
		"claim-lastName":  "Lovelace",
		"claim-sub":       gigyastandin.UID(email),
		"claim-iss":       e.standin.Issuer(),
		"claim-apiKey":    gigyastandin.DemoAPIKey,
	} {
		expect(id, text(id), want)
	}

	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if os.Getenv("IDTOKEN_WRITE_SCREENSHOT") == "1" {
		if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(screenshotPath, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The session cookie is HttpOnly: the browser keeps it, page script
	// cannot read it. The Gigya SDK's own cookie shows that script does
	// read the site's other cookies. Nor did the login page keep the
	// token anywhere a script can read it.
	session := siteCookie("site_session")
	if session == nil {
		t.Fatal("the browser kept no site_session cookie")
	}
	if cookies := documentCookie(); strings.Contains(cookies, "site_session") || strings.Contains(cookies, session.Value) ||
		!strings.Contains(cookies, "glt_"+gigyastandin.DemoAPIKey+"=") {
		t.Fatalf("document.cookie = %q: want the SDK's glt_ cookie, and neither site_session nor the token", cookies)
	}
	storage := read("read web storage", chromedp.Evaluate[string](`JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])`))
	if strings.Contains(storage, session.Value) {
		t.Fatalf("the token is in web storage: %s", storage)
	}
	lifetime := time.Until(time.Unix(int64(session.Expires), 0))
	if !session.HTTPOnly || session.Secure || session.SameSite != network.CookieSameSiteLax || session.Path != "/" ||
		lifetime < 4*time.Minute || lifetime > 5*time.Minute {
		t.Fatalf("site_session: HttpOnly %v, Secure %v, SameSite %q, Path %q, lives %v; want HttpOnly, not Secure (http://localhost), Lax, /, about 300 s (the token's)",
			session.HTTPOnly, session.Secure, session.SameSite, session.Path, lifetime)
	}

	// A fetch is never redirected: it gets the page while the session
	// lasts, and 401 without one.
	fetchStatus := func() string {
		return read("fetch a page", chromedp.Evaluate[string](
			`fetch('/account.html').then(r => r.status + (r.redirected ? ' redirected' : ''))`, chromedp.EvalAwaitPromise))
	}
	expect("fetch with the session", fetchStatus(), "200")

	// The token expires and the browser drops the cookie with it; the
	// next page goes through the login page, whose Gigya session is still
	// alive, and comes straight back without a password.
	if _, err := chromedp.Call(browser, network.DeleteCookies, network.DeleteCookiesParams{Name: "site_session", URL: e.url + "/"}); err != nil {
		t.Fatalf("drop the session cookie: %v", err)
	}
	expect("fetch without the session", fetchStatus(), "401")
	do("silent re-login", chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.ID("greeting")))
	expect("after silent re-login", location(), e.url+"/")
	expect("greeting", text("greeting"), "Hello, Ada")
	if siteCookie("site_session") == nil {
		t.Fatal("silent re-login set no session cookie")
	}

	// Logout clears the session cookie, then ends the Gigya session on the
	// login page, so the protected page asks for a password again.
	do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(loginForm))
	expect("after logout", location(), e.url+"/login/?signed_out")
	expect("login page status", text("status"), "You are logged out.")
	if c, cookies := siteCookie("site_session"), documentCookie(); c != nil || strings.Contains(cookies, "glt_") {
		t.Fatalf("after logout: site_session %v, document.cookie %q", c, cookies)
	}
	do("open the protected page again", chromedp.Navigate(e.url+"/account.html"), chromedp.WaitVisible(loginForm))
	expect("redirected again", location(), e.url+"/login/?return=%2Faccount.html")
	expect("login page status", text("status"), "Please log in.")
}
