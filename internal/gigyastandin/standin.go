// Package gigyastandin is a stand-in of SAP Customer Data Cloud (Gigya) for
// the offline example and the browser test. It serves, on loopback, what a
// site's login page and a token verifier use of the real service, with the
// real names and answer shapes:
//
//   - /js/gigya.js?apikey=KEY: the Web SDK (gigya.accounts.showScreenSet,
//     getJWT, getAccountInfo, logout, addEventHandlers, and the page's
//     onGigyaServiceReady);
//   - accounts.login, accounts.getJWT, accounts.getAccountInfo and
//     accounts.logout: the REST calls the SDK makes, with CORS for the
//     site's origins;
//   - accounts.getJWTPublicKey?apiKey=KEY&V2=true: the key the tokens are
//     signed with, which caddy-idtoken's api_key key source reads.
//
// Every REST answer is Gigya's envelope: HTTP 200 with errorCode 0, or
// another errorCode, statusCode and errorMessage on failure.
//
// It is a demo, not an identity provider: any email address logs in with
// the password DemoPassword, sessions live in memory, and the signing key
// is made when the server is, so it is never on disk.
package gigyastandin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

const (
	// DemoAPIKey is the site API key of the offline example.
	DemoAPIKey = "3_idtoken-demo"
	// DemoPassword logs in any email address.
	DemoPassword = "demo"
	// SessionLifetime is how long a Gigya login session lasts: long after
	// its id_tokens (300 s by default), so a page can get fresh ones
	// without asking for the password again.
	SessionLifetime = time.Hour
)

// Server is the stand-in. It is an http.Handler; serve it on loopback.
type Server struct {
	apiKey  string
	origins []string // the sites allowed to call the REST API from a browser
	key     *rsa.PrivateKey
	kid     string
	now     func() time.Time

	mu       sync.Mutex
	sessions map[string]session // by login token
	mux      *http.ServeMux
}

// New makes a stand-in for the site apiKey whose pages are served from
// origins (scheme://host:port, e.g. http://localhost:8080). It makes a new
// RSA key for signing.
func New(apiKey string, origins ...string) (*Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	// Gigya's kids are opaque base64 text; this one names the key it is for.
	sum := sha256.Sum256(key.N.Bytes())
	s := &Server{
		apiKey:   apiKey,
		origins:  slices.Clone(origins),
		key:      key,
		kid:      base64.RawURLEncoding.EncodeToString(sum[:18]),
		now:      time.Now,
		sessions: map[string]session{},
		mux:      http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /js/gigya.js", serveSDK)
	s.mux.HandleFunc("/accounts.getJWTPublicKey", s.getJWTPublicKey)
	for method, call := range map[string]func(*http.Request) reply{
		"accounts.login":          s.login,
		"accounts.logout":         s.logout,
		"accounts.getAccountInfo": s.getAccountInfo,
		"accounts.getJWT":         s.getJWT,
	} {
		s.mux.Handle("/"+method, s.browserCall(call))
	}
	return s, nil
}

// KID is the kid of the signing key, as tokens and getJWTPublicKey show it.
func (s *Server) KID() string { return s.kid }

// Issuer is the iss of this site's tokens, as accounts.getJWT writes it.
func (s *Server) Issuer() string { return "https://fidm.gigya.com/jwt/" + s.apiKey + "/" }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// maxRequestBody bounds what a REST call may send: a login form.
const maxRequestBody = 16 << 10

// browserCall wraps a REST method the Web SDK calls from the site's pages:
// parameters from the query or a form body, apiKey checked, CORS for the
// site's origins. A page of another origin is refused, as Gigya refuses
// sites that are not among the API key's trusted domains.
func (s *Server) browserCall(call func(*http.Request) reply) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(s.origins, origin)
		w.Header().Add("Vary", "Origin")
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method == http.MethodOptions { // a preflight; the SDK itself sends simple requests
			if allowed {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		switch {
		case origin != "" && !allowed:
			s.write(w, failure(403007, "Permission denied", "origin "+origin+" is not a trusted site of this API key"))
		case r.Method != http.MethodGet && r.Method != http.MethodPost:
			s.write(w, failure(400001, "Invalid request format", "use GET or POST"))
		case r.ParseForm() != nil:
			s.write(w, failure(400001, "Invalid request format", "unreadable parameters"))
		case r.Form.Get("apiKey") != s.apiKey:
			s.write(w, failure(400093, "Invalid ApiKey parameter", ""))
		default:
			s.write(w, call(r))
		}
	})
}

// reply is the body of a REST answer without its envelope.
type reply map[string]any

// failure is a REST error answer. Its statusCode is the errorCode's first
// three digits, as in Gigya's answers.
func failure(code int, message, details string) reply {
	r := reply{"errorCode": code, "statusCode": code / 1000, "errorMessage": message}
	if details != "" {
		r["errorDetails"] = details
	}
	return r
}

// write sends r in Gigya's envelope. Like Gigya, the HTTP status is 200
// whatever the errorCode.
func (s *Server) write(w http.ResponseWriter, r reply) {
	if _, ok := r["errorCode"]; !ok {
		r["errorCode"] = 0
		r["statusCode"] = http.StatusOK
	}
	r["statusReason"] = http.StatusText(r["statusCode"].(int))
	r["apiVersion"] = 2
	r["time"] = s.now().UTC().Format("2006-01-02T15:04:05.000Z")
	var id [16]byte
	rand.Read(id[:])
	r["callId"] = fmt.Sprintf("%x", id)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r)
}
