package idtoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// Limits on what is decoded before a signature is checked. A real JOSE
// header is a small flat object ({"alg":"RS256","kid":"...","typ":"JWT"});
// these bounds keep the worst header a sender can write a small fraction of
// the cost of one signature check.
const (
	maxHeaderLength = 2048 // base64url characters of the header part
	maxHeaderTokens = 64   // JSON tokens in the header
	maxHeaderDepth  = 4    // nesting of objects and arrays in the header
)

// maxPayloadDepth bounds the nesting of a (signed) payload: no issuer
// nests claims this deep, and it keeps the claims tree shallow for the
// recursive lookups and rendering that follow.
const maxPayloadDepth = 32

var (
	errMalformed = errors.New("malformed")
	b64          = base64.RawURLEncoding.Strict()
)

// inCompact marks the bytes a compact JWS may hold: the base64url alphabet
// and the '.' separator.
var inCompact = func() (t [256]uint8) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_." {
		t[c] = 1
	}
	return t
}()

// splitCompact splits a compact JWS into its three parts. Only the
// base64url alphabet and exactly two dots are accepted: Go's decoder skips
// '\r' and '\n', so without this one token could be spelled in endless
// ways that all verify. The check reads 8 bytes a step: it runs on every
// uncached token, signed or not, over up to 16 KiB.
func splitCompact(raw string) (header, payload, sig string, ok bool) {
	d1 := strings.IndexByte(raw, '.')
	if d1 < 0 {
		return "", "", "", false
	}
	d2 := strings.IndexByte(raw[d1+1:], '.')
	if d2 < 0 {
		return "", "", "", false
	}
	d2 += d1 + 1
	if strings.IndexByte(raw[d2+1:], '.') >= 0 {
		return "", "", "", false
	}
	b := raw
	for len(b) >= 8 {
		t := &inCompact
		if t[b[0]]&t[b[1]]&t[b[2]]&t[b[3]]&t[b[4]]&t[b[5]]&t[b[6]]&t[b[7]] == 0 {
			return "", "", "", false
		}
		b = b[8:]
	}
	for i := 0; i < len(b); i++ {
		if inCompact[b[i]] == 0 {
			return "", "", "", false
		}
	}
	return raw[:d1], raw[d1+1 : d2], raw[d2+1:], true
}

// tokenHeader holds the JOSE header members this module acts on.
type tokenHeader struct {
	alg, kid string
	crit     bool // a crit member is present
}

// decoders reuses JSON decoders; each holds buffers worth keeping.
var decoders = sync.Pool{New: func() any { return new(jsontext.Decoder) }}

// strictDecoder returns a pooled decoder over data. jsontext's defaults are
// the strict ones wanted here: member names are exact (RFC 7515 section 4:
// case-sensitive), a duplicate name, invalid UTF-8 or an escaped unpaired
// surrogate is an error.
func strictDecoder(data []byte) *jsontext.Decoder {
	dec := decoders.Get().(*jsontext.Decoder)
	dec.Reset(bytes.NewBuffer(data))
	return dec
}

func releaseDecoder(dec *jsontext.Decoder) {
	dec.Reset(eofReader{})
	decoders.Put(dec)
}

// eofReader lets a pooled decoder drop its reference to the last input.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// decodeHeader reads the decoded header JSON: exactly one object of at most
// maxHeaderTokens tokens nested at most maxHeaderDepth deep, whose alg and
// kid, when present, are strings. Other members are read (so the whole
// header is strictly valid) and ignored.
func decodeHeader(data []byte) (tokenHeader, error) {
	var h tokenHeader
	dec := strictDecoder(data)
	defer releaseDecoder(dec)
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return h, errMalformed
	}
	for tokens := 1; ; tokens++ {
		if tokens > maxHeaderTokens || dec.StackDepth() > maxHeaderDepth {
			return h, errMalformed
		}
		if dec.StackDepth() == 1 && dec.PeekKind() == '"' {
			// A top-level member name, then its value.
			name, err := dec.ReadToken()
			if err != nil {
				return h, errMalformed
			}
			tokens++
			switch name.String() {
			case "alg":
				if h.alg, err = stringValue(dec); err != nil {
					return h, err
				}
				continue
			case "kid":
				if h.kid, err = stringValue(dec); err != nil {
					return h, err
				}
				continue
			case "crit":
				h.crit = true
			}
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return h, errMalformed
		}
		if tok.Kind() == '}' && dec.StackDepth() == 0 {
			break
		}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return h, errMalformed // anything but whitespace after the object
	}
	return h, nil
}

// stringValue reads a value that must be a JSON string.
func stringValue(dec *jsontext.Decoder) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil || tok.Kind() != '"' {
		return "", errMalformed
	}
	return tok.String(), nil
}

// decodePayload decodes a verified payload into claims: exactly one JSON
// object, strictly (as strictDecoder), nested at most maxPayloadDepth deep.
// Numbers stay json.Number literals, so exp is compared and claims are
// rendered without float rounding. size estimates the bytes the claims
// tree keeps on the heap, for the cache's memory bound.
func decodePayload(data []byte) (claims map[string]any, size int, err error) {
	dec := strictDecoder(data)
	defer releaseDecoder(dec)
	if dec.PeekKind() != '{' {
		return nil, 0, errMalformed
	}
	v, size, err := readValue(dec)
	if err != nil {
		return nil, 0, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, 0, errMalformed
	}
	return v.(map[string]any), size, nil
}

// Heap estimates for decoded values, in bytes: generous upper bounds of
// what Go keeps for each (headers, map slots, boxed interfaces).
const (
	valueCost  = 32  // an interface plus the boxed string or number header
	memberCost = 64  // a map slot: key, value and control bytes, with slack
	objectCost = 128 // a map's fixed part
	arrayCost  = 32  // a slice header and its interface
)

// readValue reads one JSON value and returns it with its estimated size.
func readValue(dec *jsontext.Decoder) (any, int, error) {
	if dec.StackDepth() >= maxPayloadDepth {
		return nil, 0, errMalformed
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, 0, errMalformed
	}
	switch tok.Kind() {
	case 'n':
		return nil, 0, nil
	case 't':
		return true, 0, nil
	case 'f':
		return false, 0, nil
	case '"':
		s := tok.String()
		return s, valueCost + len(s), nil
	case '0':
		s := tok.String()
		return json.Number(s), valueCost + len(s), nil
	case '[':
		arr := []any{}
		size := arrayCost
		for dec.PeekKind() != ']' {
			v, n, err := readValue(dec)
			if err != nil {
				return nil, 0, err
			}
			arr = append(arr, v)
			size += n + 16
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, 0, errMalformed
		}
		return arr, size + 16*(cap(arr)-len(arr)), nil
	case '{':
		obj := map[string]any{}
		size := objectCost
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return nil, 0, errMalformed
			}
			key := name.String()
			v, n, err := readValue(dec)
			if err != nil {
				return nil, 0, err
			}
			obj[key] = v
			size += memberCost + len(key) + n
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, 0, errMalformed
		}
		return obj, size, nil
	}
	return nil, 0, errMalformed
}

// issuerScratch holds the buffers peekIssuer reuses: the payload's
// base64url text and its decoded JSON.
type issuerScratch struct{ text, json []byte }

var issuerScratches = sync.Pool{New: func() any { return new(issuerScratch) }}

// peekIssuer reads the top-level iss of a compact JWS's payload before any
// signature is checked, only to choose the trust that checks it: the value
// decides nothing else. After the signature check the payload is decoded
// strictly and its iss checked against the chosen trust's issuers, so a
// payload this quick scan reads differently can only be refused, never
// accepted by another trust. The scan looks at each byte once, follows
// strings and nesting (no deeper than the payload decoder accepts), builds
// nothing, and allocates only the returned string. A token without a
// string iss has none ("").
func peekIssuer(raw string) (string, *Rejection) {
	if len(raw) > MaxTokenLength {
		return "", unauthorized(ReasonTooLong)
	}
	_, p, _, ok := splitCompact(raw)
	if !ok {
		return "", unauthorized(ReasonMalformed)
	}
	s := issuerScratches.Get().(*issuerScratch)
	defer issuerScratches.Put(s)
	s.text = append(s.text[:0], p...)
	var err error
	if s.json, err = b64.AppendDecode(s.json[:0], s.text); err != nil {
		return "", unauthorized(ReasonMalformed)
	}
	iss, err := scanIssuer(s.json, s.text[:0])
	if err != nil {
		return "", unauthorized(ReasonMalformed)
	}
	return iss, nil
}

// scanIssuer finds the string value of the first top-level "iss" member
// of the JSON object in data (names compared unescaped); scratch is room
// for unescaping. It does not validate what it skips.
func scanIssuer(data, scratch []byte) (string, error) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return "", errMalformed
	}
	i++
	for {
		i = skipSpace(data, i)
		if i < len(data) && data[i] == '}' {
			return "", nil
		}
		name, next, err := scanString(data, i)
		if err != nil {
			return "", err
		}
		i = skipSpace(data, next)
		if i == len(data) || data[i] != ':' {
			return "", errMalformed
		}
		i = skipSpace(data, i+1)
		if isName(name, "iss", scratch) {
			if i == len(data) || data[i] != '"' {
				return "", nil // not a string: no issuer chooses a trust
			}
			value, _, err := scanString(data, i)
			if err != nil {
				return "", err
			}
			unquoted, err := jsontext.AppendUnquote(scratch[:0], value)
			if err != nil {
				return "", errMalformed
			}
			return string(unquoted), nil
		}
		if i, err = skipJSONValue(data, i); err != nil {
			return "", err
		}
		i = skipSpace(data, i)
		switch {
		case i == len(data):
			return "", errMalformed
		case data[i] == ',':
			i++
		case data[i] == '}':
			return "", nil
		default:
			return "", errMalformed
		}
	}
}

// isName reports whether the quoted member name is want, unescaping it
// into scratch only when it holds an escape ("i\u0073s" is iss too).
func isName(quoted []byte, want string, scratch []byte) bool {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return len(quoted) == len(want)+2 && string(quoted[1:len(quoted)-1]) == want
	}
	if len(quoted) > 2+6*len(want) { // each character at most a \uXXXX escape
		return false
	}
	unquoted, err := jsontext.AppendUnquote(scratch[:0], quoted)
	return err == nil && string(unquoted) == want
}

// scanString returns the quoted string starting at data[i] and the index
// after it.
func scanString(data []byte, i int) (quoted []byte, next int, err error) {
	if i == len(data) || data[i] != '"' {
		return nil, 0, errMalformed
	}
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return data[i : j+1], j + 1, nil
		}
	}
	return nil, 0, errMalformed
}

// skipJSONValue returns the index after the value starting at data[i]:
// a string, or everything up to the matching close of an object or array
// (no deeper than maxPayloadDepth), or a scalar up to the next ',', '}'
// or ']'.
func skipJSONValue(data []byte, i int) (int, error) {
	depth := 0
	for i < len(data) {
		switch c := data[i]; c {
		case '"':
			_, next, err := scanString(data, i)
			if err != nil {
				return 0, err
			}
			i = next
			if depth == 0 {
				return i, nil
			}
			continue
		case '{', '[':
			if depth++; depth >= maxPayloadDepth {
				return 0, errMalformed
			}
		case '}', ']':
			if depth == 0 {
				return i, nil // the end of a scalar in the enclosing object
			}
			if depth--; depth == 0 {
				return i + 1, nil
			}
		case ',':
			if depth == 0 {
				return i, nil
			}
		}
		i++
	}
	return 0, errMalformed
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}
