package broker

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fieldwatch/fieldwatch/cloud/internal/passwd"
	"github.com/fieldwatch/fieldwatch/internal/throttle"
)

// authHook authenticates clients and enforces the topic ACL.
//
// Who a client is: on the internal listener only InternalUser with the
// generated password; elsewhere the common name of a verified client
// certificate (as Mosquitto's use_identity_as_username), else the user
// name, checked against the password file when there is one and taken at
// its word when there is none (loopback, or allow_anonymous). The identity
// replaces the user name the client sent, and the ACL keys on it.
type authHook struct {
	mqtt.HookBase
	srv      *mqtt.Server
	users    *passwd.File // nil: names are not checked
	internal []byte       // InternalUser's password
	policy   *policy
	m        *Metrics
	log      *slog.Logger
	throttle *throttle.Throttle
}

func (h *authHook) ID() string { return "fieldwatch-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

// identity is who the client will be if it authenticates: a verified
// certificate's CN, else the name it gave.
func identity(cl *mqtt.Client, pk packets.Packet) (user string, fromCert bool) {
	if tc, ok := cl.Net.Conn.(*tls.Conn); ok {
		if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 {
			return st.PeerCertificates[0].Subject.CommonName, true
		}
	}
	return string(pk.Connect.Username), false
}

// OnConnect refuses a client whose last will it could not publish: the
// will is checked once, here, since the identity cannot change later.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if !pk.Connect.WillFlag {
		return nil
	}
	user, _ := identity(cl, pk)
	if h.policy.allows(user, pk.Connect.WillTopic, true) {
		return nil
	}
	h.m.aclDenied.WithLabelValues("will").Inc()
	h.warn("will:"+user, "last will refused: a client may leave a will only on its own state topic",
		"client", cl.ID, "remote", cl.Net.Remote, "user", user, "topic", pk.Connect.WillTopic)
	code := packets.ErrNotAuthorized
	if cl.Properties.ProtocolVersion < 5 {
		code = packets.Err3NotAuthorized // Mochi does not map this one for 3.1.1 clients
	}
	_ = h.srv.SendConnack(cl, code, false, nil)
	return packets.ErrNotAuthorized
}

// OnConnectAuthenticate decides whether the client is who it says.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, fromCert := identity(cl, pk)
	reason := h.authenticate(cl.Net.Listener, user, fromCert, pk.Connect.Password)
	if reason != "" {
		h.m.authFailures.WithLabelValues(reason).Inc()
		h.warn("auth:"+reason+":"+user, "connection refused", "reason", reason, "client", cl.ID,
			"remote", cl.Net.Remote, "user", user, "certificate", fromCert)
		return false
	}
	cl.Properties.Username = []byte(user)
	return true
}

// authenticate returns "" when the client may connect, else the reason.
func (h *authHook) authenticate(listener, user string, fromCert bool, password []byte) string {
	if listener == internalListener || user == InternalUser {
		if listener != internalListener || user != InternalUser || fromCert ||
			subtle.ConstantTimeCompare(password, h.internal) != 1 {
			return reasonReserved
		}
		return ""
	}
	switch {
	case fromCert && user == "":
		return reasonCertificateCN
	case fromCert:
		return ""
	case h.users == nil:
		return "" // loopback or allow_anonymous: the ACL still keys on the name
	case user == "":
		return reasonNoUser
	}
	switch err := h.users.Check(user, string(password)); {
	case errors.Is(err, passwd.ErrUnknownUser):
		return reasonUnknownUser
	case err != nil:
		return reasonBadPassword
	}
	return ""
}

// OnACLCheck applies the policy to a publish (write) or a subscription or
// delivery (read).
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if h.policy.allows(user, topic, write) {
		return true
	}
	action := "subscribe"
	if write {
		action = "publish"
	}
	h.m.aclDenied.WithLabelValues(action).Inc()
	h.warn("acl:"+action+":"+user, "topic not allowed for this client", "action", action, "client", cl.ID,
		"remote", cl.Net.Remote, "user", user, "topic", topic)
	return false
}

func (h *authHook) warn(key, msg string, args ...any) {
	if ok, n := h.throttle.Allow(key); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		h.log.Warn(msg, args...)
	}
}
