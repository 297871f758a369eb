package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fieldwatch/fieldwatch/cloud/internal/broker"
	"github.com/fieldwatch/fieldwatch/cloud/internal/passwd"
	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/tlsfiles"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// validateEmbedded checks the embedded broker's settings.
func (m *MQTT) validateEmbedded(r *yamlconf.Report, hostPort func(field, v string, required bool)) {
	l := &m.TLSListener
	hostPort("mqtt.listen", m.Listen, l.Listen == "")
	hostPort("mqtt.tls_listener.listen", l.Listen, false)
	if l.Listen != "" && (l.CertFile == "" || l.KeyFile == "") {
		r.Errorf("mqtt.tls_listener.cert_file", "a TLS listener needs cert_file and key_file")
	}
	if l.Listen == "" && (l.CertFile != "" || l.KeyFile != "" || l.ClientCAFile != "" || l.RequireClientCert) {
		r.Errorf("mqtt.tls_listener.listen", "is needed for the other tls_listener settings")
	}
	if l.RequireClientCert && l.ClientCAFile == "" {
		r.Errorf("mqtt.tls_listener.client_ca_file", "require_client_cert needs the CA that signs the client certificates")
	}
	if m.TLS != (TLS{}) || m.Username != "" || m.Password != "" {
		r.Errorf("mqtt.tls", "username, password and tls are for an external broker (mqtt.url); the embedded broker uses tls_listener")
	}
	if m.ConnectTimeout < 0 {
		r.Errorf("mqtt.connect_timeout", "%s is negative", m.ConnectTimeout)
	}
	if m.MaxConnections < 0 {
		r.Errorf("mqtt.max_connections", "%d is negative", m.MaxConnections)
	}
	for i, u := range m.AlertReaders {
		if u == "" || u == broker.InternalUser {
			r.Errorf(yamlconf.Join("mqtt.alert_readers", i), "%q cannot be an alert reader", u)
		}
	}
	if m.PasswordFile != "" || m.AllowAnonymous {
		return
	}
	const why = "the embedded broker would admit any client under the name it gives, so anyone could send readings in " +
		"a gateway's name: set mqtt.password_file (mosquitto_passwd format)%s, or allow_anonymous: true to accept that"
	if m.Listen != "" && !broker.Loopback(m.Listen) {
		r.Errorf("mqtt.listen", "%s is not a loopback address and "+why, m.Listen, "")
	}
	if l.Listen != "" && !broker.Loopback(l.Listen) && !l.RequireClientCert {
		r.Errorf("mqtt.tls_listener.listen", "%s is not a loopback address and "+why, l.Listen, " or require_client_cert")
	}
}

// validateExternal checks the ingestor's settings for an external broker.
func (m *MQTT) validateExternal(r *yamlconf.Report) {
	u, err := url.Parse(m.URL)
	if err != nil || u.Host == "" || u.Port() == "" {
		r.Errorf("mqtt.url", "%q is not a broker URL such as tcp://host:1883", m.URL)
		return
	}
	if u.User != nil {
		r.Errorf("mqtt.url", "%q carries credentials; put them in mqtt.username and mqtt.password, where they stay out of logs", u.Redacted())
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "wss", "tcp", "mqtt", "ws":
	default:
		r.Errorf("mqtt.url", "%q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", m.URL)
	}
	if m.TLS != (TLS{}) && !tlsfiles.SecureURL(m.URL) {
		r.Errorf("mqtt.tls", "needs a TLS broker URL (ssl://, tls://, mqtts://, wss://), not %s", m.URL)
	}
	if (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
		r.Errorf("mqtt.tls.key_file", "cert_file and key_file go together")
	}
	if m.PasswordFile != "" || m.AllowAnonymous || len(m.AlertReaders) > 0 || m.TLSListener != (TLSListener{}) ||
		m.ConnectTimeout != 0 || m.MaxConnections != 0 {
		r.Errorf("mqtt.url", "password_file, allow_anonymous, alert_readers, tls_listener, connect_timeout and "+
			"max_connections are for the embedded broker, "+
			"not an external one (configure its users and ACL there: deploy/mosquitto)")
	}
}

// ShippedNonGateways are the users of deploy/mosquitto/acl that are not
// gateways: the cloud's ingestor and the alerts reader.
var ShippedNonGateways = []string{"fieldwatch-cloud", "fieldwatch-alerts"}

// NotGateways are the user names whose batches and states the ingestor
// refuses: the shipped non-gateway users, the ingestor's own user name,
// the alert readers and NonGatewayUsers. A broker ACL that lets every
// user publish under fieldwatch/v1/<its name>/ cannot make them stations.
func (m *MQTT) NotGateways() []string {
	names := append([]string(nil), ShippedNonGateways...)
	if m.Username != "" {
		names = append(names, m.Username)
	}
	names = append(names, m.AlertReaders...)
	names = append(names, m.NonGatewayUsers...)
	slices.Sort(names)
	return slices.Compact(names)
}

// validateNonGateways checks NonGatewayUsers: each could be a gateway id.
func (m *MQTT) validateNonGateways(r *yamlconf.Report) {
	for i, u := range m.NonGatewayUsers {
		if u == "" || strings.ContainsAny(u, "/+#") {
			r.Errorf(yamlconf.Join("mqtt.non_gateway_users", i), "%q is not a user name that could be a gateway id", u)
		}
	}
}

// load reads the password file and builds the TLS configurations.
func (m *MQTT) load(r *yamlconf.Report, loose func(string, *secretfile.Loose)) {
	m.Users, m.ServerTLS, m.ClientTLS = nil, nil, nil
	if m.URL == "" && m.PasswordFile != "" {
		data, l, err := secretfile.Read(m.PasswordFile)
		if err != nil {
			err = fmt.Errorf("cannot read password file: %w", err)
		} else {
			loose("mqtt.password_file", l)
			if m.Users, err = passwd.Parse(data); err != nil {
				err = fmt.Errorf("%s:%w", m.PasswordFile, err)
			}
		}
		if err != nil {
			r.Errorf("mqtt.password_file", "%v", err)
		}
	}
	if l := m.TLSListener; m.URL == "" && l.Listen != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if pair := keyPair(r, loose, "mqtt.tls_listener", l.CertFile, l.KeyFile); pair != nil {
			cfg.Certificates = []tls.Certificate{*pair}
		}
		if l.ClientCAFile != "" {
			cfg.ClientCAs = pool(r, "mqtt.tls_listener.client_ca_file", l.ClientCAFile)
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
		if l.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		m.ServerTLS = cfg
	}
	if m.URL != "" && tlsfiles.SecureURL(m.URL) {
		m.ClientTLS = m.TLS.client(r, loose, "mqtt.tls")
	}
}

// client builds a client's TLS configuration from t; p names t's field.
func (t TLS) client(r *yamlconf.Report, loose func(string, *secretfile.Loose), p string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		cfg.RootCAs = pool(r, p+".ca_file", t.CAFile)
	}
	if t.CertFile != "" {
		if pair := keyPair(r, loose, p, t.CertFile, t.KeyFile); pair != nil {
			cfg.Certificates = []tls.Certificate{*pair}
		}
	}
	return cfg
}

// keyPair reads a certificate and its private key, noting a loose key file.
func keyPair(r *yamlconf.Report, loose func(string, *secretfile.Loose), p, certFile, keyFile string) *tls.Certificate {
	pair, keyErr, err := tlsfiles.KeyPair(certFile, keyFile)
	switch {
	case err != nil && keyErr:
		r.Errorf(p+".key_file", "%v", err)
	case err != nil:
		r.Errorf(p+".cert_file", "%v", err)
	default:
		if l, err := secretfile.Check(keyFile); err == nil {
			loose(p+".key_file", l)
		}
	}
	return pair
}

func pool(r *yamlconf.Report, field, path string) *x509.CertPool {
	p, err := tlsfiles.Pool(path)
	if err != nil {
		r.Errorf(field, "%v", err)
	}
	return p
}
