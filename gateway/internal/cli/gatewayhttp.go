package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
)

// gatewayHTTP is how a command reaches the running gateway's HTTP server:
// -addr, else the http.listen of the config at -c.
type gatewayHTTP struct {
	path, addr *string
}

func (g *gatewayHTTP) flags(fs *flag.FlagSet) {
	g.path = fs.String("c", defaultConfig(), "config `FILE` (to find the gateway's http.listen)")
	g.addr = fs.String("addr", "", "the gateway's HTTP address `HOST:PORT` (overrides -c)")
}

// call sends one request to the gateway, bounded by 5 s, and returns the
// body of its 200 answer; otherwise it says why on stderr and returns the
// exit code.
func (g *gatewayHTTP) call(ctx context.Context, method, path string, body []byte, stderr io.Writer) ([]byte, int) {
	addr := *g.addr
	if addr == "" {
		cfg, err := config.LoadFile(*g.path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, ExitConfig
		}
		if cfg.HTTP.Listen == "" {
			fmt.Fprintln(stderr, "the config has no http.listen; the gateway serves no status and takes no modes")
			return nil, ExitConfig
		}
		addr = loopback(cfg.HTTP.Listen)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "cannot reach the gateway at %s: %v (is it running?)\n", addr, err)
		return nil, ExitFail
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gateway answered %s: %s", resp.Status, out)
		return nil, ExitFail
	}
	return out, ExitOK
}

// loopback is the address to reach a listener at listen from this machine:
// a wildcard host (":9101", "0.0.0.0:9101") is reached on 127.0.0.1 — the
// gateway takes modes only from loopback.
func loopback(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0", "::":
		return net.JoinHostPort("127.0.0.1", port)
	}
	return listen
}
