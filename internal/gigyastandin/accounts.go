package gigyastandin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode"
)

// account is a person as the stand-in knows them, made up from the email
// address they log in with.
type account struct {
	UID       string
	Email     string
	FirstName string
	LastName  string
}

// session is a Gigya login session: what a login token stands for.
type session struct {
	account
	authTime time.Time // when the person typed their password
	expires  time.Time
}

// UID is the Gigya UID the stand-in gives the person with this email
// address: the same every time, as a real account's is.
func UID(email string) string {
	sum := sha256.Sum256([]byte("gigyastandin:" + strings.ToLower(email)))
	return hex.EncodeToString(sum[:16])
}

// accountFor makes the account of an email address; the names come from
// its local part (ada.lovelace@... is Ada Lovelace).
func accountFor(email string) account {
	local, _, _ := strings.Cut(email, "@")
	names := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	a := account{UID: UID(email), Email: email}
	if len(names) > 0 {
		a.FirstName = title(names[0])
	}
	if len(names) > 1 {
		a.LastName = title(names[1])
	}
	return a
}

func title(s string) string {
	r := []rune(strings.ToLower(s))
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

func (a account) profile() map[string]any {
	return map[string]any{"email": a.Email, "firstName": a.FirstName, "lastName": a.LastName}
}

// loginCookie is the first-party cookie the Web SDK keeps the login token
// in, on the site's own domain, as the real SDK's glt_<apiKey>.
func (s *Server) loginCookie() string { return "glt_" + s.apiKey }

// login is accounts.login: loginID (an email address) and password in, a
// login token out, which the SDK keeps in the loginCookie.
func (s *Server) login(r *http.Request) reply {
	loginID, password := r.Form.Get("loginID"), r.Form.Get("password")
	if loginID == "" || password == "" {
		return failure(400002, "Missing required parameter", "loginID and password are required")
	}
	addr, err := mail.ParseAddress(loginID)
	if err != nil || addr.Name != "" || len(addr.Address) > 254 {
		return failure(403042, "Invalid LoginID", "the stand-in takes an email address as loginID")
	}
	if password != DemoPassword {
		return failure(403042, "Invalid LoginID", "the stand-in's password is "+DemoPassword)
	}
	var raw [24]byte
	rand.Read(raw[:])
	token := "st2.s." + base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	a := accountFor(addr.Address)

	s.mu.Lock()
	for t, old := range s.sessions { // the demo keeps no session past its end
		if !now.Before(old.expires) {
			delete(s.sessions, t)
		}
	}
	s.sessions[token] = session{account: a, authTime: now, expires: now.Add(SessionLifetime)}
	s.mu.Unlock()

	return reply{
		"UID":           a.UID,
		"profile":       a.profile(),
		"isRegistered":  true,
		"isActive":      true,
		"isVerified":    true,
		"loginProvider": "site",
		"sessionInfo":   map[string]any{"cookieName": s.loginCookie(), "cookieValue": token},
	}
}

// session finds the live session of the request's login_token.
func (s *Server) session(r *http.Request) (session, bool) {
	token := r.Form.Get("login_token")
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[token]
	if ok && !s.now().Before(sess.expires) {
		delete(s.sessions, token)
		return session{}, false
	}
	return sess, ok
}

// notLoggedIn is Gigya's answer to a call that needs a session without one.
func notLoggedIn() reply { return failure(403005, "Unauthorized user", "no valid login_token") }

// getAccountInfo is accounts.getAccountInfo: who is logged in.
func (s *Server) getAccountInfo(r *http.Request) reply {
	sess, ok := s.session(r)
	if !ok {
		return notLoggedIn()
	}
	return reply{"UID": sess.UID, "profile": sess.profile(), "loginProvider": "site", "isRegistered": true}
}

// logout is accounts.logout: the login token is ended, so a page can no
// longer get tokens with it.
func (s *Server) logout(r *http.Request) reply {
	s.mu.Lock()
	delete(s.sessions, r.Form.Get("login_token"))
	s.mu.Unlock()
	return reply{}
}
