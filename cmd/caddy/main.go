// Command caddy is Caddy with its standard modules plus idtoken, so the
// module can be tried with `go run ./cmd/caddy ...` without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddy-idtoken/caddy-idtoken"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
