package broker

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the embedded broker refuses.
type Metrics struct {
	authFailures *prometheus.CounterVec
	aclDenied    *prometheus.CounterVec
	limitClosed  *prometheus.CounterVec
}

// Reasons a client is refused, the values of the reason label.
const (
	reasonUnknownUser   = "unknown_user"   // not in the password file
	reasonBadPassword   = "bad_password"   // in the file, wrong password
	reasonNoUser        = "no_username"    // a password file is in force and the client gave no name
	reasonReserved      = "reserved_user"  // claimed the ingestor's identity
	reasonTLS           = "tls_handshake"  // no client certificate, an untrusted one, or no TLS at all
	reasonCertificateCN = "certificate_cn" // a client certificate without a usable common name
)

// NewMetrics registers the broker's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_broker_auth_failures_total",
			Help: "Connections the embedded broker refused, by reason."}, []string{"reason"}),
		aclDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_broker_acl_denied_total",
			Help: "Publishes, subscriptions (and deliveries) and last wills the topic ACL denied, by action."}, []string{"action"}),
		limitClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_broker_limit_closed_total",
			Help: "Connections the embedded broker closed for a limit (connection counts, CONNECT deadline, packet sizes), by reason."},
			[]string{"reason"}),
	}
	for _, r := range []string{reasonUnknownUser, reasonBadPassword, reasonNoUser, reasonReserved, reasonTLS, reasonCertificateCN} {
		m.authFailures.WithLabelValues(r)
	}
	for _, a := range []string{"publish", "subscribe", "will"} {
		m.aclDenied.WithLabelValues(a)
	}
	for _, r := range []string{limitConnections, limitUnauthenticated, limitUnauthenticatedIP, limitConnectTimeout,
		limitConnectSize, limitPacketSize, limitNotConnect, limitMalformedConnect} {
		m.limitClosed.WithLabelValues(r)
	}
	reg.MustRegister(m.authFailures, m.aclDenied, m.limitClosed)
	return m
}
