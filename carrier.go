package idtoken

import (
	"errors"
	"net/http"
	"net/url"
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
	if len(h.TokenSources) == 0 {
		if !addHeader(&f, r, "Authorization") {
			return f, badRequest(ReasonManyTokens)
		}
		return f, nil
	}
	for _, src := range h.TokenSources {
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

// addHeader adds the token of every line of header name. Authorization
// carries a token only with the Bearer scheme; another header carries its
// whole value, a Bearer prefix removed. An empty line carries nothing.
func addHeader(f *found, r *http.Request, name string) bool {
	isAuth := strings.EqualFold(name, "Authorization")
	for _, line := range r.Header.Values(name) {
		token, isBearer := bearerCredential(line)
		switch {
		case isBearer:
		case isAuth:
			continue // another scheme (Basic, ...) carries no id_token
		default:
			if token = strings.TrimSpace(line); token == "" {
				continue
			}
		}
		if !f.add(token) {
			return false
		}
	}
	return true
}

// bearerCredential reads an Authorization value with the Bearer scheme
// (RFC 6750 section 2.1): "Bearer", case-insensitively, then one or more
// spaces or tabs, then the token. "Bearer" alone is the scheme with an
// empty (malformed) token, never no token.
func bearerCredential(v string) (token string, ok bool) {
	v = strings.TrimLeft(v, " \t")
	if len(v) < 6 || !strings.EqualFold(v[:6], "bearer") {
		return "", false
	}
	rest := v[6:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false // "Bearerx...": another scheme
	}
	return strings.Trim(rest, " \t"), true
}

// addCookie adds the value of every cookie called name, in every Cookie
// header. Pairs are split at ';' and, as older parsers (Python's among
// them) also do, at ','; names and values are trimmed of spaces and tabs
// and a value's surrounding quotes removed, so no parser finds a cookie
// of that name that this one missed. Empty values carry nothing.
func addCookie(f *found, r *http.Request, name string) bool {
	for _, line := range r.Header["Cookie"] {
		for i := 0; i < len(line); {
			n, v, _, next := nextCookie(line, i)
			i = next
			if n != name {
				continue
			}
			if v = strings.Trim(v, `"`); v != "" && !f.add(v) {
				return false
			}
		}
	}
	return true
}

// nextCookie reads the pair of line that starts at i: its trimmed name and
// value, where its bytes start (after leading spaces), and where the next
// pair starts (after the separator).
func nextCookie(line string, i int) (name, value string, start, next int) {
	end := strings.IndexAny(line[i:], ";,")
	if end < 0 {
		end, next = len(line), len(line)
	} else {
		end += i
		next = end + 1
	}
	pair := line[i:end]
	start = i + len(pair) - len(strings.TrimLeft(pair, " \t"))
	name, value, _ = strings.Cut(pair, "=")
	return strings.Trim(name, " \t"), strings.Trim(value, " \t"), start, next
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
		if key == name && value != "" && !f.add(value) {
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
// placeholders instead): Bearer lines of Authorization, the configured
// headers, the configured cookies (other cookies stay byte for byte) and
// the configured query parameters (other parameters stay in order, and
// RequestURI is kept in step with URL.RawQuery).
func (h *Handler) stripToken(r *http.Request) {
	if len(h.TokenSources) == 0 {
		stripBearer(r.Header)
		return
	}
	for _, src := range h.TokenSources {
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

// stripBearer removes the Authorization lines with the Bearer scheme.
func stripBearer(hdr http.Header) {
	lines := hdr["Authorization"]
	kept := lines[:0:0]
	for _, line := range lines {
		if _, isBearer := bearerCredential(line); !isBearer {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(hdr, "Authorization")
	} else if len(kept) != len(lines) {
		hdr["Authorization"] = kept
	}
}

// stripCookie removes every pair called name from the Cookie headers,
// keeping the other pairs' bytes and separators; a header left empty is
// removed.
func stripCookie(hdr http.Header, name string) {
	var kept []string
	for _, line := range hdr["Cookie"] {
		var b strings.Builder
		removed := false
		for i := 0; i < len(line); {
			n, _, start, next := nextCookie(line, i)
			switch {
			case n == name:
				removed = true
			case b.Len() == 0:
				b.WriteString(line[start:next]) // no separator or space before the first pair
			default:
				b.WriteString(line[i:next])
			}
			i = next
		}
		if !removed {
			kept = append(kept, line)
		} else if rest := strings.TrimRight(b.String(), ";, \t"); rest != "" {
			kept = append(kept, rest)
		}
	}
	if len(kept) == 0 {
		delete(hdr, "Cookie")
	} else {
		hdr["Cookie"] = kept
	}
}

// stripQuery removes every value of parameter name from the query.
func stripQuery(r *http.Request, name string) {
	var kept []string
	for seg := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if key, _, err := querySegment(seg); err != nil || key != name {
			kept = append(kept, seg)
		}
	}
	r.URL.RawQuery = strings.Join(kept, "&")
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	r.RequestURI = path
}
