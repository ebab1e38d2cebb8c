package idtoken

import (
	"strconv"
	"time"

	"go.uber.org/zap"
)

// maxLoggedValue bounds a value a sender chose (a kid, an alg) written to a
// log line: kids and algs come from tokens and key documents.
const maxLoggedValue = 64

// kidField logs a kid cut to maxLoggedValue bytes, noting the full length
// when it was cut.
func kidField(name, kid string) zap.Field {
	return zap.String(name, clipForLog(kid))
}

// clipForLog is s cut to maxLoggedValue bytes, with its full length noted.
func clipForLog(s string) string { return clip(s, maxLoggedValue) }

// clip is s cut to n bytes, with its full length noted.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// durationField logs d as text ("4s"): Caddy's encoders otherwise write a
// bare number whose unit the reader has to guess.
func durationField(name string, d time.Duration) zap.Field {
	return zap.String(name, d.String())
}
