package idtoken

import (
	"strconv"
	"time"

	"go.uber.org/zap"
)

// maxLoggedKID bounds a kid written to a log line: kids come from tokens and
// key documents, so their length is the sender's choice.
const maxLoggedKID = 64

// kidField logs a kid cut to maxLoggedKID bytes, noting the full length
// when it was cut.
func kidField(name, kid string) zap.Field {
	return zap.String(name, shortKID(kid))
}

// shortKID is kid cut to maxLoggedKID bytes, with its full length noted.
func shortKID(kid string) string {
	if len(kid) <= maxLoggedKID {
		return kid
	}
	return kid[:maxLoggedKID] + "...(" + strconv.Itoa(len(kid)) + " bytes)"
}

// durationField logs d as text ("4s"): Caddy's encoders otherwise write a
// bare number whose unit the reader has to guess.
func durationField(name string, d time.Duration) zap.Field {
	return zap.String(name, d.String())
}
