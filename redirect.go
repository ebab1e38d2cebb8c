package idtoken

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// LoginRedirect sends a person whose browser has no valid token to a login
// page, instead of showing a bare 401. API clients keep getting the 401
// with its RFC 6750 challenge.
type LoginRedirect struct {
	// The login page: an absolute http(s) URL or a path on this site.
	URL string `json:"url"`
	// The query parameter that carries the path to come back to.
	// Default: "return".
	Param string `json:"param,omitempty"`
}

const defaultReturnParam = "return"

// validate explains why a login redirect cannot be used.
func (l *LoginRedirect) validate() error {
	u, err := url.Parse(l.URL)
	switch {
	case err != nil || l.URL == "":
		return fmt.Errorf("login_redirect: %q is not a URL", l.URL)
	case u.Scheme != "" && u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("login_redirect: %q is not an http(s) URL or a path", l.URL)
	case u.Scheme != "" && u.Host == "":
		return fmt.Errorf("login_redirect: %q has no host", l.URL)
	case u.Scheme == "" && (!strings.HasPrefix(l.URL, "/") || strings.HasPrefix(l.URL, "//") || strings.HasPrefix(l.URL, `/\`)):
		return fmt.Errorf("login_redirect: %q is neither an absolute http(s) URL nor a path starting with /", l.URL)
	case strings.ContainsFunc(l.URL, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("login_redirect: %q holds spaces or control characters; percent-encode them", l.URL)
	case u.Fragment != "":
		return fmt.Errorf("login_redirect: %q has a fragment; the return parameter is added to the query", l.URL)
	}
	if l.Param != "" && url.QueryEscape(l.Param) != l.Param {
		return fmt.Errorf("login_redirect: parameter name %q needs escaping; use letters, digits, '-', '_', '.' or '~'", l.Param)
	}
	return nil
}

// loginRedirector is a provisioned LoginRedirect.
type loginRedirector struct {
	url       string // the login page, with "?" or "&" appended for the parameter
	param     string
	loginPath string // the login page's own path: never redirected (loop guard)
	warnLoop  sync.Once
}

// newLoginRedirector provisions l, which Handler.Validate has checked
// (Provision runs it first); nil stays nil.
func newLoginRedirector(l *LoginRedirect) *loginRedirector {
	if l == nil {
		return nil
	}
	u, _ := url.Parse(l.URL)
	r := &loginRedirector{url: l.URL, param: l.Param, loginPath: u.Path}
	if r.param == "" {
		r.param = defaultReturnParam
	}
	if r.loginPath == "" {
		r.loginPath = "/"
	}
	switch {
	case strings.HasSuffix(r.url, "?"), strings.HasSuffix(r.url, "&"):
	case u.RawQuery != "":
		r.url += "&"
	default:
		r.url += "?"
	}
	return r
}

// wants reports whether r, refused with 401, is a browser navigation to
// send to the login page. Other requests, and requests for the login page
// itself, are left to the 401.
func (l *loginRedirector) wants(w http.ResponseWriter, r *http.Request, logger *zap.Logger) bool {
	if l == nil {
		return false
	}
	w.Header().Add("Vary", "Accept, Sec-Fetch-Mode") // the answer depends on them, redirect or not
	if !isNavigation(r) {
		return false
	}
	if r.URL.Path == l.loginPath {
		l.warnLoop.Do(func() {
			logger.Warn("the login page is behind this idtoken handler; it is answered 401 instead of redirected to itself: put it outside the protected route",
				zap.String("login_path", l.loginPath))
		})
		return false
	}
	return true
}

// send redirects to the login page, which is to send the browser back to
// the path back.
func (l *loginRedirector) send(w http.ResponseWriter, back string) {
	w.Header().Set("Location", l.url+l.param+"="+url.QueryEscape(back))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// isNavigation reports whether r is a person's browser opening a page: GET
// or HEAD, and Sec-Fetch-Mode: navigate, or, from a browser that does not
// send Sec-Fetch-Mode, an Accept that lists text/html. A request marked as
// XMLHttpRequest never is.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	if mode := r.Header.Values("Sec-Fetch-Mode"); len(mode) > 0 {
		return len(mode) == 1 && strings.EqualFold(strings.TrimSpace(mode[0]), "navigate")
	}
	for _, line := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(line, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/html" {
				return true
			}
		}
	}
	return false
}

// returnPath is where the login page should send the browser back to: the
// request's path and query, without the query parameters that carry a
// token (a rejected token must not travel on to the login page).
func (h *Handler) returnPath(r *http.Request) string {
	u := *r.URL
	for _, src := range h.TokenSources {
		if src.Query != "" {
			u.RawQuery = queryWithout(u.RawQuery, src.Query)
		}
	}
	back := u.EscapedPath()
	if back == "" {
		back = "/"
	}
	if u.RawQuery != "" {
		back += "?" + u.RawQuery
	}
	return back
}
