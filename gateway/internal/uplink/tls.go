package uplink

import (
	"crypto/tls"
	"slices"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
)

// tlsConfig is the TLS configuration for the uplink's brokers, built from
// what the config loaded (CA pool, client certificate); nil when no broker
// uses TLS. Without a CA file the system's roots are trusted; without a
// server name the broker URL's host must match the certificate.
func tlsConfig(c config.Uplink) *tls.Config {
	if !slices.ContainsFunc(c.Brokers, config.IsTLS) {
		return nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.TLS.RootCAs, ServerName: c.TLS.ServerName}
	if c.TLS.Certificate != nil {
		t.Certificates = []tls.Certificate{*c.TLS.Certificate}
	}
	return t
}
