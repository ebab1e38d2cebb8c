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
// decides nothing else, and the payload is decoded strictly again once the
// signature verified. It reads members until iss, skipping the others'
// values without building them, and allocates only the returned string.
// A token without a string iss has none ("").
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
	dec := strictDecoder(s.json)
	defer releaseDecoder(dec)
	if dec.PeekKind() != '{' {
		return "", unauthorized(ReasonMalformed)
	}
	if _, err := dec.ReadToken(); err != nil {
		return "", unauthorized(ReasonMalformed)
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadValue()
		if err != nil {
			return "", unauthorized(ReasonMalformed)
		}
		// The name as written, or unquoted into the scratch's spare room
		// when it holds escapes ("i\u0073s" is iss too).
		isIss := string(name) == `"iss"`
		if !isIss && bytes.IndexByte(name, '\\') >= 0 {
			unquoted, uerr := jsontext.AppendUnquote(s.text[:0], name)
			isIss = uerr == nil && string(unquoted) == "iss"
		}
		if !isIss {
			if err := dec.SkipValue(); err != nil {
				return "", unauthorized(ReasonMalformed)
			}
			continue
		}
		switch dec.PeekKind() {
		case '"':
		case 0:
			return "", unauthorized(ReasonMalformed)
		default:
			return "", nil // not a string: no issuer chooses a trust
		}
		v, err := dec.ReadValue()
		if err != nil {
			return "", unauthorized(ReasonMalformed)
		}
		iss, err := jsontext.AppendUnquote(s.text[:0], v)
		if err != nil {
			return "", unauthorized(ReasonMalformed)
		}
		return string(iss), nil
	}
	if dec.PeekKind() != '}' {
		return "", unauthorized(ReasonMalformed)
	}
	return "", nil
}
