package gigyastandin

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strconv"
	"strings"
)

const (
	// DefaultExpiration is the lifetime of a getJWT token when the page
	// asks for none: Gigya's default, 300 s.
	DefaultExpiration = 300
	// maxExpiration bounds the lifetime a page may ask for (the stand-in's
	// own bound: a day).
	maxExpiration = 24 * 60 * 60
)

// getJWT is accounts.getJWT: an id_token for the session's account, signed
// RS256 with the kid in its header, claims as Gigya writes them (iss,
// apiKey, sub = UID, iat, exp = iat + expiration, auth_time) plus the
// profile fields the page asks for in fields.
func (s *Server) getJWT(r *http.Request) reply {
	sess, ok := s.session(r)
	if !ok {
		return notLoggedIn()
	}
	expiration := DefaultExpiration
	if v := r.Form.Get("expiration"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > maxExpiration {
			return failure(400006, "Invalid parameter value", "expiration must be a number of seconds from 1 to "+strconv.Itoa(maxExpiration))
		}
		expiration = n
	}
	iat := s.now().Unix()
	claims := map[string]any{
		"iss":       s.Issuer(),
		"apiKey":    s.apiKey,
		"sub":       sess.UID,
		"iat":       iat,
		"exp":       iat + int64(expiration),
		"auth_time": sess.authTime.Unix(),
	}
	profile := sess.profile()
	for field := range strings.SplitSeq(r.Form.Get("fields"), ",") {
		field = strings.TrimSpace(field)
		if v, ok := profile[field]; ok && v != "" {
			claims[field] = v
		}
	}
	token, err := s.sign(claims)
	if err != nil {
		return failure(500001, "General Server Error", err.Error())
	}
	return reply{"id_token": token}
}

// sign makes a compact JWS of claims, with the header accounts.getJWT
// writes.
func (s *Server) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": s.kid, "dc": "local"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	signed := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signed + "." + b64(sig), nil
}

// getJWTPublicKey is accounts.getJWTPublicKey: the signing key's JWK
// members at the top of the envelope (V1), and with V2=true also as the
// one member of a keys array, as Gigya answers. Verifiers call it from
// servers, so it has no CORS.
func (s *Server) getJWTPublicKey(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("apiKey") != s.apiKey {
		s.write(w, failure(400093, "Invalid ApiKey parameter", ""))
		return
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]any{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": s.kid,
		"n": b64(s.key.N.Bytes()), "e": b64(big.NewInt(int64(s.key.E)).Bytes()),
	}
	answer := reply{}
	for name, v := range jwk {
		answer[name] = v
	}
	if strings.EqualFold(r.URL.Query().Get("V2"), "true") {
		answer["keys"] = []any{jwk}
	}
	s.write(w, answer)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(append(b, '\n'))
}
