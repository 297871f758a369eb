// Package broker is the cloud's embedded MQTT broker (mochi-mqtt/server), used
// when no external broker is configured, so a small station network needs
// one binary. It speaks MQTT 3.1.1 and 5, with shared subscriptions.
//
// Every client is authenticated — by a password from a mosquitto_passwd
// file, or by a client certificate on the TLS listener, whose common name
// becomes its user name — and the topic ACL keys on that name: a gateway
// publishes only under fieldwatch/v1/<its id>/ and reads only its own acks
// (see policy). Without a password file the broker admits clients by the
// name they give, which Start allows only on loopback listeners unless
// AllowAnonymous says otherwise. The cloud's own ingestor connects to an
// internal loopback listener as InternalUser, with a password generated at
// start that is never logged.
package broker

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/passwd"
	"github.com/fieldwatch/fieldwatch/internal/throttle"
)

// Options configure the embedded broker.
type Options struct {
	// Listen is the plain MQTT listener's host:port (port 0 picks a free
	// one); empty for none.
	Listen string
	// TLSListen, with TLS (server certificate; ClientCAs and ClientAuth for
	// client certificates), adds a TLS listener.
	TLSListen string
	TLS       *tls.Config
	// Users checks passwords. Without it clients are known by the name they
	// give, which Start allows only on loopback or with AllowAnonymous.
	Users          *passwd.File
	AllowAnonymous bool
	// AlertReaders may read fieldwatch/v1/alerts/#.
	AlertReaders []string
	Log          *slog.Logger
	// Metrics, if nil, go to a registry of their own.
	Metrics *Metrics
	// Limits bound connections and packets; the zero value is safe.
	Limits Limits

	logEvery time.Duration // one refusal line per key per period; 10 s
}

// Credentials are a user name and password.
type Credentials struct {
	Username, Password string
}

// LogValue keeps the password out of logs.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.Username) }

// String keeps the password out of prints.
func (c Credentials) String() string { return c.Username }

// Broker is a running embedded broker.
type Broker struct {
	srv                         *mqtt.Server
	addr, tlsAddr, internalAddr string
	internal                    Credentials
}

const internalListener = "internal"

// Start listens and serves.
func Start(o Options) (*Broker, error) {
	if err := checkExposure(o); err != nil {
		return nil, err
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	if o.logEvery == 0 {
		o.logEvery = 10 * time.Second
	}
	lim := o.Limits.withDefaults()
	log := slog.New(quietPackets{o.Log.Handler()}).With("component", "broker")
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(lim.MaxPacketSize) // checked on the fixed header, before the body is allocated
	srv := mqtt.New(&mqtt.Options{Logger: log, InlineClient: false, Capabilities: caps})
	b := &Broker{srv: srv, internal: Credentials{Username: InternalUser, Password: hex.EncodeToString(secret[:])}}
	hook := &authHook{srv: srv, users: o.Users, internal: []byte(b.internal.Password), policy: newPolicy(o.AlertReaders),
		m: o.Metrics, log: log, throttle: throttle.New(o.logEvery), maxPacket: lim.MaxPacketSize}
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, err
	}
	// The ingestor's listener has a gate of its own: gateways filling
	// theirs cannot keep it out.
	wg := &srv.Listeners.ClientsWg
	internal := &listener{id: internalListener, addr: "127.0.0.1:0", gate: newGate(lim, o.Metrics, hook.warn), clients: wg}
	ls := []listeners.Listener{internal}
	gateways := newGate(lim, o.Metrics, hook.warn) // shared by the plain and TLS listeners
	var plain *listener
	if o.Listen != "" {
		plain = &listener{id: "tcp", addr: o.Listen, gate: gateways, clients: wg}
		ls = append(ls, plain)
	}
	var secure *listener
	if o.TLSListen != "" {
		secure = &listener{id: "tls", addr: o.TLSListen, config: o.TLS, gate: gateways, clients: wg, refused: func(remote string, err error) {
			o.Metrics.authFailures.WithLabelValues(reasonTLS).Inc()
			hook.warn("tls:"+remote, "TLS handshake refused", "remote", remote, "err", err)
		}}
		ls = append(ls, secure)
	}
	for _, l := range ls {
		if err := srv.AddListener(l); err != nil {
			srv.Close()
			return nil, fmt.Errorf("cannot listen for MQTT on %s: %w", l.Address(), err)
		}
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, err
	}
	b.internalAddr = internal.Address()
	if plain != nil {
		b.addr = plain.Address()
	}
	if secure != nil {
		b.tlsAddr = secure.Address()
	}
	return b, nil
}

// checkExposure refuses to admit clients by their word beyond loopback.
func checkExposure(o Options) error {
	if o.Users != nil || o.AllowAnonymous {
		return nil
	}
	exposed := o.Listen != "" && !Loopback(o.Listen)
	if o.TLSListen != "" && !Loopback(o.TLSListen) && (o.TLS == nil || o.TLS.ClientAuth != tls.RequireAndVerifyClientCert) {
		exposed = true
	}
	if exposed {
		return fmt.Errorf("the embedded broker would listen beyond loopback without a password file or required client " +
			"certificates: any client could claim a gateway's id and send readings in its name; set mqtt.password_file, " +
			"or a TLS listener with require_client_cert, or mqtt.allow_anonymous: true to accept that")
	}
	return nil
}

// Loopback reports whether a host:port listens on loopback only.
func Loopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the plain listener's host:port, empty without one.
func (b *Broker) Addr() string { return b.addr }

// URL is the plain listener as a broker URL for clients, empty without one.
func (b *Broker) URL() string {
	if b.addr == "" {
		return ""
	}
	return "tcp://" + b.addr
}

// TLSAddr is the TLS listener's host:port, empty without one.
func (b *Broker) TLSAddr() string { return b.tlsAddr }

// TLSURL is the TLS listener as a broker URL, empty without one.
func (b *Broker) TLSURL() string {
	if b.tlsAddr == "" {
		return ""
	}
	return "ssl://" + b.tlsAddr
}

// InternalURL is the loopback listener where the ingestor connects with
// Internal's credentials.
func (b *Broker) InternalURL() string { return "tcp://" + b.internalAddr }

// Internal is the ingestor's identity: it reads everything under
// fieldwatch/v1/ and publishes acks and alerts.
func (b *Broker) Internal() Credentials { return b.internal }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error { return b.srv.Close() }
