// Package tlsfiles reads the PEM files a TLS configuration names — CA
// certificates, a certificate and its key — with errors that say which
// file is wrong and how, for config loaders to place on the field.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// Certificates reads the PEM certificates in path: at least one, and
// nothing else.
func Certificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is a %s, not a CERTIFICATE", path, n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", path, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return certs, nil
}

// Pool reads the CA certificates in path into a pool.
func Pool(path string) (*x509.CertPool, error) {
	certs, err := Certificates(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// KeyPair reads a certificate (chain) and its private key. keyErr says the
// fault lies with the key file (unreadable, not a key, not the
// certificate's); otherwise with the certificate file.
func KeyPair(certFile, keyFile string) (pair *tls.Certificate, keyErr bool, err error) {
	certs, err := Certificates(certFile)
	if err != nil {
		return nil, false, err
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, false, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, true, err
	}
	p, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %s (the key must be the private key of %s)", keyFile,
			strings.TrimPrefix(err.Error(), "tls: "), certFile)
	}
	p.Leaf = certs[0]
	return &p, false, nil
}

// SecureURL reports whether an MQTT broker URL's scheme uses TLS: ssl,
// tls, mqtts or wss.
func SecureURL(broker string) bool {
	scheme, _, _ := strings.Cut(broker, "://")
	switch scheme {
	case "ssl", "tls", "mqtts", "wss":
		return true
	}
	return false
}
