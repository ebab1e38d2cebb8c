package idtoken

import (
	"errors"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// A request may carry its token in several places (carriers): Authorization
// or another header, a cookie, a query parameter. The module reads every
// occurrence in every configured carrier, because the application behind
// Caddy may read a different one than "the first": Python's cookie parser
// keeps the last of two same-named cookies, many query parsers the last
// value. So all occurrences must be one and the same token (RFC 6750
// section 2: one method per request), and once verified the carriers are
// removed, unless forward_token keeps them.

// found is what a request carries in its configured carriers.
type found struct {
	token   string // the token; "" with present set is an empty Bearer credential
	present bool   // some carrier holds a token
}

// add records one occurrence; it reports false when it differs from one
// seen before.
func (f *found) add(token string) bool {
	if f.present && f.token != token {
		return false
	}
	f.token, f.present = token, true
	return true
}

// findToken collects the token from every configured carrier. It rejects
// (400) a request with two different tokens, or, when a query parameter is
// a carrier, a query string Go's parser cannot read completely (it would
// skip parts another parser reads).
func (h *Handler) findToken(r *http.Request) (found, *Rejection) {
	var f found
	for _, src := range h.sources() {
		ok := true
		switch {
		case src.Header != "":
			ok = addHeader(&f, r, src.Header)
		case src.Cookie != "":
			ok = addCookie(&f, r, src.Cookie)
		case src.Query != "":
			var rej *Rejection
			if ok, rej = addQuery(&f, r, src.Query); rej != nil {
				return f, rej
			}
		}
		if !ok {
			return f, badRequest(ReasonManyTokens)
		}
	}
	return f, nil
}

// defaultSources is where a token is read when no source is configured.
var defaultSources = []TokenSource{{Header: "Authorization"}}

// sources are the configured token sources, or the default, followed by
// the session cookie (h.carriers, once provisioned).
func (h *Handler) sources() []TokenSource {
	if h.carriers != nil {
		return h.carriers
	}
	if len(h.TokenSources) == 0 {
		return defaultSources
	}
	return h.TokenSources
}

// addHeader adds the token of every line of header name. Authorization
// carries a token only as a Bearer credential (see authToken); another
// header carries its whole value, a Bearer prefix removed. An empty line
// carries nothing.
func addHeader(f *found, r *http.Request, name string) bool {
	read := headerToken
	if strings.EqualFold(name, "Authorization") {
		read = authToken
	}
	for _, line := range r.Header.Values(name) {
		if token, carries := read(line); carries && !f.add(token) {
			return false
		}
	}
	return true
}

// headerToken reads a header other than Authorization: its whole value,
// a Bearer prefix (as authToken reads it) removed.
func headerToken(v string) (token string, carries bool) {
	v = strings.Trim(v, " \t")
	if token, ok := bearerToken(v); ok {
		return token, true
	}
	return v, v != ""
}

// bearerToken reads "Bearer", in any case, then spaces or tabs and the
// token (RFC 6750 section 2.1); ok is false for anything else.
func bearerToken(v string) (token string, ok bool) {
	if !hasPrefixFold(v, "bearer") {
		return "", false
	}
	rest := v[len("bearer"):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	return strings.TrimLeft(rest, " \t"), true
}

// authToken reads one Authorization value. A Bearer credential (RFC 6750
// section 2.1: "Bearer" in any case, one or more spaces or tabs, the token)
// carries its token; "Bearer" alone carries an empty, malformed one. Forms
// an application might still read as a token carry an unreadable one, so
// they are refused (401) rather than passed on unchecked: "Bearer"
// followed by anything else ("Bearer:x", "Bearer\u00a0x"), a list of
// credentials with a Bearer among them ("Basic x, Bearer y"), and a JWS
// under another scheme or none ("JWT eyJ...", a bare "eyJ..."). Other
// schemes (Basic ...) carry nothing.
func authToken(v string) (token string, carries bool) {
	v = strings.Trim(v, " \t")
	if token, ok := bearerToken(v); ok {
		return token, true
	}
	switch {
	case hasPrefixFold(v, "bearer"):
		return unreadable, true
	case strings.Contains(v, ",") && containsFold(v, "bearer"):
		return unreadable, true
	}
	credential := v
	if sp := strings.IndexAny(v, " \t"); sp >= 0 {
		credential = strings.TrimLeft(v[sp:], " \t")
	}
	if looksLikeJWS(v) || looksLikeJWS(credential) {
		return unreadable, true
	}
	return "", false
}

// unreadable stands for a token carried in a form the module refuses to
// read: it never parses, so the request is refused as malformed.
const unreadable = "\x00"

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}

// looksLikeJWS reports whether s has the shape of a compact JWS: three
// base64url parts, the first starting like a JSON object ("eyJ" is '{"').
func looksLikeJWS(s string) bool {
	_, _, _, ok := splitCompact(s)
	return ok && strings.HasPrefix(s, "eyJ")
}

// addCookie adds the value of every cookie whose name reads as name, in
// every Cookie header (see cookiePairs and sameName). A value in one pair
// of double quotes is unquoted. Empty values carry nothing.
func addCookie(f *found, r *http.Request, name string) bool {
	for _, line := range r.Header["Cookie"] {
		for p := range cookiePairs(line) {
			if !sameName(p.name, name) {
				continue
			}
			v := p.value
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v != "" && !f.add(v) {
				return false
			}
		}
	}
	return true
}

// cookiePair is one name=value pair of a Cookie header and its span.
type cookiePair struct {
	name, value string
	start, end  int // line[start:end] is the pair
}

// isCookieSep reports the bytes some parser ends a cookie pair at: ';'
// (RFC 6265), ',' (older parsers) and spaces and tabs (Python's
// SimpleCookie reads "x=1 id_token=y" as two cookies).
func isCookieSep(c byte) bool { return c == ';' || c == ',' || isBlank(c) }

// blanks is ASCII white space. Parsers trim more than spaces and tabs from
// cookie names and values (Python's str.strip, PHP's isspace), and a
// request built in-process is not checked for control bytes as one read
// from the wire is, so the module treats all of it as blank.
const blanks = " \t\r\n\v\f"

func isBlank(c byte) bool { return strings.IndexByte(blanks, c) >= 0 }

// cookiePairs yields the pairs of a Cookie header as each of two readings
// finds them. The lenient one splits at every isCookieSep byte, with
// spaces or tabs allowed around '=' (Python's); the other splits at ';'
// only (Go's, PHP's), so a name may hold spaces (PHP reads "id token=x" as
// id_token) and a value runs to the ';' ("id_token=x," is "x," there, "x"
// in the first reading: two different tokens). Together they find every
// pair a common parser finds, with every value one of them reads, so a
// cookie another parser would read can never hide from the module, and
// with forward_token every reader gets the verified string exactly.
func cookiePairs(line string) iter.Seq[cookiePair] {
	return func(yield func(cookiePair) bool) {
		for i := 0; i < len(line); {
			for i < len(line) && isCookieSep(line[i]) {
				i++
			}
			start := i
			for i < len(line) && !isCookieSep(line[i]) && line[i] != '=' {
				i++
			}
			name := line[start:i]
			j := skipBlanks(line, i)
			if j == len(line) || line[j] != '=' {
				continue // a bare word: no pair
			}
			j = skipBlanks(line, j+1)
			value := j
			for j < len(line) && !isCookieSep(line[j]) {
				j++
			}
			if !yield(cookiePair{name: name, value: line[value:j], start: start, end: j}) {
				return
			}
			i = j
		}
		for i := 0; i < len(line); {
			end := strings.IndexByte(line[i:], ';')
			if end < 0 {
				end = len(line)
			} else {
				end += i
			}
			pair := strings.Trim(line[i:end], blanks)
			if name, value, ok := strings.Cut(pair, "="); ok {
				start := i + strings.Index(line[i:end], pair)
				p := cookiePair{name: strings.Trim(name, blanks), value: strings.Trim(value, blanks), start: start, end: start + len(pair)}
				if !yield(p) {
					return
				}
			}
			i = end + 1
		}
	}
}

func skipBlanks(s string, i int) int {
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return i
}

// sameName reports whether a cookie or parameter name reads as want in a
// common parser. PHP, the strictest case, turns ' ', '.' and an unclosed
// '[' in a name into '_', drops leading spaces, ends the name at a NUL and
// reads "name[...]" as an array called name; so "id.token", "id token" and
// "id_token[]" are all $_COOKIE['id_token'].
func sameName(n, want string) bool {
	return n == want || phpName(n) == phpName(want)
}

func phpName(n string) string {
	if i := strings.IndexByte(n, 0); i >= 0 {
		n = n[:i]
	}
	n = strings.TrimLeft(n, " ")
	if i := strings.IndexByte(n, '['); i >= 0 {
		if strings.IndexByte(n[i:], ']') > 0 {
			n = n[:i]
		} else {
			n = n[:i] + "_" + n[i+1:]
		}
	}
	return strings.Map(func(c rune) rune {
		if c == ' ' || c == '.' {
			return '_'
		}
		return c
	}, n) // returns n itself, unallocated, when nothing changes
}

// addQuery adds every value of query parameter name. The query must be
// readable as a whole: a ';' separator or a bad escape is a 400, because
// url.ParseQuery skips what it cannot read and another parser may not.
func addQuery(f *found, r *http.Request, name string) (bool, *Rejection) {
	ok := true
	for seg := range strings.SplitSeq(r.URL.RawQuery, "&") {
		key, value, err := querySegment(seg)
		if err != nil {
			return false, badRequest(ReasonBadQuery)
		}
		if sameName(key, name) && value != "" && !f.add(value) {
			ok = false
		}
	}
	return ok, nil
}

// querySegment decodes one '&'-separated part of a query as url.ParseQuery
// does, but fails on a ';' where ParseQuery silently drops the part.
func querySegment(seg string) (key, value string, err error) {
	if strings.Contains(seg, ";") {
		return "", "", errSemicolon
	}
	key, value, _ = strings.Cut(seg, "=")
	if key, err = url.QueryUnescape(key); err != nil {
		return "", "", err
	}
	if value, err = url.QueryUnescape(value); err != nil {
		return "", "", err
	}
	return key, value, nil
}

var errSemicolon = errors.New("invalid semicolon separator in query")

// stripToken removes the verified token's carriers from the request, so the
// application behind Caddy cannot read it (it reads the verified claims from
// placeholders instead): Authorization when it carried the token, the
// configured headers, the configured cookies (other cookies stay byte for
// byte) and the configured query parameters (other parameters stay in
// order, and RequestURI is kept in step with URL.RawQuery).
func (h *Handler) stripToken(r *http.Request) {
	for _, src := range h.sources() {
		switch {
		case strings.EqualFold(src.Header, "Authorization"):
			stripBearer(r.Header)
		case src.Header != "":
			r.Header.Del(src.Header)
		case src.Cookie != "":
			stripCookie(r.Header, src.Cookie)
		case src.Query != "":
			stripQuery(r, src.Query)
		}
	}
}

// stripBearer removes the Authorization header when a line of it carried
// the token (with every line: a request has one Authorization).
func stripBearer(hdr http.Header) {
	for _, line := range hdr["Authorization"] {
		if _, carries := authToken(line); carries {
			delete(hdr, "Authorization")
			return
		}
	}
}

// stripCookie removes every pair whose name reads as name from the Cookie
// headers, with the separator before it; the other pairs keep their bytes
// and a header left empty is removed.
func stripCookie(hdr http.Header, name string) {
	var kept []string
	for _, line := range hdr["Cookie"] {
		var spans [][2]int
		for p := range cookiePairs(line) {
			if sameName(p.name, name) {
				spans = append(spans, [2]int{p.start, p.end})
			}
		}
		if len(spans) == 0 {
			kept = append(kept, line)
			continue
		}
		slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
		var b strings.Builder
		last := 0
		for _, sp := range spans {
			if sp[0] < last { // overlaps a span already removed
				last = max(last, sp[1])
				continue
			}
			b.WriteString(line[last:separatorStart(line, last, sp[0])])
			last = sp[1]
		}
		b.WriteString(line[last:])
		if rest := strings.TrimLeft(b.String(), ";,"+blanks); rest != "" {
			kept = append(kept, rest)
		}
	}
	if len(kept) == 0 {
		delete(hdr, "Cookie")
	} else {
		hdr["Cookie"] = kept
	}
}

// separatorStart is where the separator before the pair at start begins:
// blanks, at most one ';' or ',', blanks; never before from. Only that much
// goes with a removed pair, so a ',' that ends the value before it (as Go
// reads "a=1,; b=2") stays.
func separatorStart(line string, from, start int) int {
	i := start
	for i > from && isBlank(line[i-1]) {
		i--
	}
	if i > from && (line[i-1] == ';' || line[i-1] == ',') {
		i--
	}
	for i > from && isBlank(line[i-1]) {
		i--
	}
	return i
}

// stripQuery removes every value of parameter name from the query.
func stripQuery(r *http.Request, name string) {
	r.URL.RawQuery = queryWithout(r.URL.RawQuery, name)
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	r.RequestURI = path
}

// queryWithout is a raw query without the parameters whose name reads as
// name; the other parts keep their bytes and order.
func queryWithout(raw, name string) string {
	var kept []string
	for seg := range strings.SplitSeq(raw, "&") {
		if key, _, err := querySegment(seg); err != nil || !sameName(key, name) {
			kept = append(kept, seg)
		}
	}
	return strings.Join(kept, "&")
}
