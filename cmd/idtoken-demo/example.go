package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idtoken/caddy-idtoken"
	"github.com/caddy-idtoken/caddy-idtoken/internal/gigyastandin"
)

// runExample is the whole example in one command, so a fresh checkout
// needs nothing but Go: the demo keys of the API route, the Gigya stand-in
// on loopback, and Caddy with example.Caddyfile in this process. It runs
// until interrupted.
func runExample(args []string) error {
	fset := flag.NewFlagSet("example", flag.ContinueOnError)
	config := fset.String("config", "example.Caddyfile", "the Caddyfile to run")
	gigyaAddr := fset.String("gigya", "127.0.0.1:8081", "loopback address of the Gigya stand-in (the config's data_center)")
	site := fset.String("site", "http://localhost:8080", "origin of the site, whose pages may call the stand-in")
	dir := fset.String("dir", "example", "directory for demo-key.pem and demo-jwks.json (the config's jwks_file)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if _, err := loadOrCreateKey(*dir); err != nil {
		return err
	}

	standin, err := gigyastandin.New(gigyastandin.DemoAPIKey, *site)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*gigyaAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-gigya %q: the stand-in gives a token to anyone who types the demo password; it listens on a loopback IP only", *gigyaAddr)
	}
	ln, err := net.Listen("tcp", *gigyaAddr)
	if err != nil {
		return fmt.Errorf("Gigya stand-in: %w", err)
	}
	gigya := &http.Server{Handler: standin, ReadHeaderTimeout: 10 * time.Second}
	go gigya.Serve(ln)
	defer gigya.Close()

	src, err := os.ReadFile(*config)
	if err != nil {
		return err
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": *config})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "%s:%d: %s\n", w.File, w.Line, w.Message)
	}
	if err := caddy.Load(cfg, false); err != nil {
		return err
	}
	defer caddy.Stop()

	fmt.Fprintf(os.Stderr, "\nGigya stand-in on http://%s (API key %s)\n"+
		"Open %s/ in a browser: you land on the login page; log in with any email address and the password %q.\n"+
		"Ctrl-C stops.\n\n", ln.Addr(), gigyastandin.DemoAPIKey, *site, gigyastandin.DemoPassword)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
