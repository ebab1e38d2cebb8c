package idtoken

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI shows the key sets this process holds and refreshes them on
// demand, on Caddy's admin endpoint:
//
//   - GET /idtoken/keysets lists every live key set.
//   - POST /idtoken/keysets/refresh fetches every set now (or only the one
//     named by ?location=), waits for the fetches and answers with the same
//     list.
//
// Caddy mounts every admin.api module on its admin endpoint for any
// config, so the module needs no configuration. It shows public key
// values only (kid, type, algorithm, curve, RFC 7638 thumbprint) and no
// token.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.idtoken",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the key set routes.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/idtoken/keysets", Handler: caddy.AdminHandlerFunc(a.list)},
		{Pattern: "/idtoken/keysets/refresh", Handler: caddy.AdminHandlerFunc(a.refresh)},
	}
}

// list answers GET /idtoken/keysets.
func (a *AdminAPI) list(w http.ResponseWriter, r *http.Request) error {
	if err := allowOnly(w, r, http.MethodGet); err != nil {
		return err
	}
	return writeKeySets(w)
}

// refresh answers POST /idtoken/keysets/refresh[?location=L]. The fetches
// run in parallel and each wait is bounded by the set's fetch timeout. A
// failed fetch is no failed request: the answer is 200 and the failure is
// in that set's last_error.
func (a *AdminAPI) refresh(w http.ResponseWriter, r *http.Request) error {
	if err := allowOnly(w, r, http.MethodPost); err != nil {
		return err
	}
	sets := liveSets()
	if q := r.URL.Query(); q.Has("location") {
		location := q.Get("location")
		var named []liveKeySet
		for _, l := range sets {
			if l.cfg.location == location {
				named = append(named, l) // several when refresh settings differ
			}
		}
		if len(named) == 0 {
			return caddy.APIError{
				HTTPStatus: http.StatusNotFound,
				Err:        fmt.Errorf("no live key set has location %q", location),
			}
		}
		sets = named
	}
	var wg sync.WaitGroup
	for _, l := range sets {
		wg.Go(func() { l.set.refreshNow(r.Context()) })
	}
	wg.Wait()
	return writeKeySets(w)
}

// allowOnly refuses any method but method with 405.
func allowOnly(w http.ResponseWriter, r *http.Request, method string) error {
	if r.Method == method {
		return nil
	}
	w.Header().Set("Allow", method)
	return caddy.APIError{
		HTTPStatus: http.StatusMethodNotAllowed,
		Err:        fmt.Errorf("method %s not allowed; use %s", r.Method, method),
	}
}

// writeKeySets answers with the current state of every live key set.
func writeKeySets(w http.ResponseWriter) error {
	statuses := liveKeySets()
	views := make([]keySetView, len(statuses))
	for i, st := range statuses {
		views[i] = newKeySetView(st)
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(views); err != nil {
		return fmt.Errorf("writing key sets: %w", err)
	}
	return nil
}

// keySetView is one key set as the admin API shows it. What a set does not
// have (yet) is null rather than absent, so every object has every member.
type keySetView struct {
	Kind        string     `json:"kind"`
	Location    string     `json:"location"`
	Issuer      *string    `json:"issuer"` // OIDC: the issuer discovery named; null for other kinds and before the first load
	Keys        []keyView  `json:"keys"`   // [] before the first load
	LoadedAt    *time.Time `json:"loaded_at"`
	NextRefresh time.Time  `json:"next_refresh"`
	LastError   *string    `json:"last_error"`
	FromStorage bool       `json:"from_storage"`
	Handlers    int        `json:"handlers"`

	// The pinned thumbprints (key_thumbprints), sorted; null when every
	// usable key is used. It tells apart two sets of one location that pin
	// different keys.
	KeyThumbprints []string `json:"key_thumbprints"`
}

// keyView is one key's public description.
type keyView struct {
	KID        *string `json:"kid"`
	Kty        string  `json:"kty"`
	Alg        *string `json:"alg"` // null when the key document named none
	Crv        *string `json:"crv"` // null for RSA
	Thumbprint string  `json:"thumbprint"`
}

func newKeySetView(st keySetStatus) keySetView {
	v := keySetView{
		Kind:        st.Kind,
		Location:    st.Location,
		Keys:        []keyView{},
		NextRefresh: st.NextRefresh.UTC(),
		LastError:   orNull(st.LastError),
		FromStorage: st.Stale,
		Handlers:    st.Handlers,
	}
	v.KeyThumbprints = st.Pins
	if set := st.Set; set != nil {
		v.Issuer = orNull(set.Issuer)
		loaded := set.Loaded.UTC()
		v.LoadedAt = &loaded
		v.Keys = make([]keyView, len(set.keys))
		for i := range set.keys {
			k := &set.keys[i]
			kty, crv := jwkType(k.Public)
			v.Keys[i] = keyView{KID: orNull(k.ID), Kty: kty, Alg: orNull(k.Alg), Crv: orNull(crv), Thumbprint: k.Thumbprint()}
		}
	}
	return v
}

// orNull is s, or nil (JSON null) when s is empty.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Interface guards
var _ caddy.AdminRouter = (*AdminAPI)(nil)
