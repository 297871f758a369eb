package config

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/tlsfiles"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// TLS is how the gateway checks the broker and proves who it is. The
// files are read when the config is loaded (and on every reload), so a
// missing file, a bad PEM or a key that does not match its certificate is
// a config error naming the field.
type TLS struct {
	// CAFile holds the PEM certificates of the CAs that sign the broker's
	// certificate; empty trusts the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's client certificate and key
	// (PEM). A broker with use_identity_as_username takes the
	// certificate's common name as the user name.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the broker's certificate must carry; empty
	// means the broker URL's host.
	ServerName string `yaml:"server_name"`

	// RootCAs is CAFile's certificates, nil for the system's roots.
	RootCAs *x509.CertPool `yaml:"-"`
	// Certificate is the client certificate, nil without one.
	Certificate *tls.Certificate `yaml:"-"`
}

func (t *TLS) set() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// validate checks what needs no file; plain lists the brokers that would
// not use TLS.
func (t *TLS) validate(r *yamlconf.Report, p string, plain []string) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		r.Errorf(yamlconf.Join(p, "key_file"), "cert_file and key_file go together")
	}
	if t.set() && len(plain) > 0 {
		field := yamlconf.Join(p, "ca_file")
		if t.CertFile != "" {
			field = yamlconf.Join(p, "cert_file")
		}
		r.Errorf(field, "TLS settings need TLS brokers (ssl://, tls://, mqtts://, wss://), and %s is not one: "+
			"the gateway would connect there without TLS", strings.Join(plain, ", "))
	}
}

// load reads the password and TLS files. It runs after Validate.
func (u *Uplink) load(r *yamlconf.Report, loose func(field string, l *secretfile.Loose)) {
	if u.PasswordFile != "" {
		b, l, err := secretfile.Read(u.PasswordFile)
		switch {
		case err != nil:
			r.Errorf("uplink.password_file", "%v", err)
		case strings.TrimRight(string(b), "\r\n") == "":
			r.Errorf("uplink.password_file", "%s is empty", u.PasswordFile)
		default:
			u.Password = strings.TrimRight(string(b), "\r\n")
			loose("uplink.password_file", l)
		}
	}
	t := &u.TLS
	if t.CAFile != "" {
		pool, err := tlsfiles.Pool(t.CAFile)
		if err != nil {
			r.Errorf("uplink.tls.ca_file", "%v", err)
		}
		t.RootCAs = pool
	}
	if t.CertFile != "" && t.KeyFile != "" {
		pair, keyErr, err := tlsfiles.KeyPair(t.CertFile, t.KeyFile)
		switch {
		case err != nil && keyErr:
			r.Errorf("uplink.tls.key_file", "%v", err)
		case err != nil:
			r.Errorf("uplink.tls.cert_file", "%v", err)
		default:
			if l, err := secretfile.Check(t.KeyFile); err == nil {
				loose("uplink.tls.key_file", l)
			}
		}
		t.Certificate = pair
	}
}

// IsTLS reports whether a broker URL's scheme uses TLS.
func IsTLS(broker string) bool { return tlsfiles.SecureURL(broker) }
