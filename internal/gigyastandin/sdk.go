package gigyastandin

import (
	_ "embed"
	"net/http"
)

// sdk is the Web SDK stand-in. It reads its API key from its own URL's
// apikey parameter, as the real gigya.js does, so one file serves any
// page.
//
//go:embed gigya.js
var sdk []byte

func serveSDK(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(sdk)
}
