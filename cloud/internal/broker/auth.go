package broker

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"log/slog"
	"strconv"

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
// replaces the user name the client sent, and the ACL keys on it. A client
// is known by its user and the id it gave (scopedID).
type authHook struct {
	mqtt.HookBase
	srv       *mqtt.Server
	users     *passwd.File // nil: names are not checked
	internal  []byte       // InternalUser's password
	policy    *policy
	m         *Metrics
	log       *slog.Logger
	throttle  *throttle.Throttle
	maxPacket int
}

func (h *authHook) ID() string { return "fieldwatch-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnDisconnect}, []byte{b})
}

// identity is who the client will be if it authenticates: a verified
// certificate's CN, else the name it gave.
func identity(cl *mqtt.Client, pk packets.Packet) (user string, fromCert bool) {
	conn := cl.Net.Conn
	if gc := gated(conn); gc != nil {
		conn = gc.Conn
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 {
			return st.PeerCertificates[0].Subject.CommonName, true
		}
	}
	return string(pk.Connect.Username), false
}

// OnConnect decides whether the client may connect, and refuses it with
// a CONNACK of its own when not:
//
//   - it must be who it says (authenticate), else "bad user name or
//     password", as Mochi would answer;
//   - its last will must be a topic it may publish, checked once, here,
//     since the identity cannot change later, else "not authorized";
//   - its client id is then its user's: Mochi keys connections and
//     sessions on scopedID(user, id), so a client id one user gives never
//     reaches another user's connection or session (Mochi would disconnect
//     the holder and, with clean session false, hand the newcomer its
//     subscriptions and queued messages).
//
// OnConnectAuthenticate then only confirms: Mochi calls it after OnConnect
// let the client through.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	user, fromCert := identity(cl, pk)
	if reason := h.authenticate(cl.Net.Listener, user, fromCert, pk.Connect.Password); reason != "" {
		h.m.authFailures.WithLabelValues(reason).Inc()
		h.warn("auth:"+reason+":"+user, "connection refused", "reason", reason, "client", cl.ID,
			"remote", cl.Net.Remote, "user", user, "certificate", fromCert)
		return h.refuse(cl, packets.ErrBadUsernameOrPassword)
	}
	if pk.Connect.WillFlag && !h.policy.allows(user, pk.Connect.WillTopic, true) {
		h.m.aclDenied.WithLabelValues("will").Inc()
		h.warn("will:"+user, "last will refused: a client may leave a will only on its own state topic",
			"client", cl.ID, "remote", cl.Net.Remote, "user", user, "topic", pk.Connect.WillTopic)
		return h.refuse(cl, packets.ErrNotAuthorized)
	}
	if cl.Net.Listener != internalListener {
		cl.ID = scopedID(user, cl.ID)
	}
	cl.Properties.Username = []byte(user)
	if gc := gated(cl.Net.Conn); gc != nil {
		gc.authenticated() // before the CONNACK: a client that has it no longer counts as unauthenticated
	}
	return nil
}

// refuse answers a CONNECT with code and returns it for Mochi to end the
// connection.
func (h *authHook) refuse(cl *mqtt.Client, code packets.Code) error {
	if gc := gated(cl.Net.Conn); gc != nil {
		gc.logged()
	}
	if code == packets.ErrNotAuthorized && cl.Properties.ProtocolVersion < 5 {
		code = packets.Err3NotAuthorized // Mochi does not map this one for 3.1.1 clients
	}
	_ = h.srv.SendConnack(cl, code, false, nil)
	return code
}

// OnConnectAuthenticate admits the client OnConnect let through.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return true
}

// OnDisconnect counts a client Mochi dropped for a packet over the size
// limit.
func (h *authHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if errors.Is(err, packets.ErrPacketTooLarge) {
		user := string(cl.Properties.Username)
		h.m.limitClosed.WithLabelValues(limitPacketSize).Inc()
		h.warn("limit:"+limitPacketSize+":"+user, "connection closed: packet larger than the limit",
			"reason", limitPacketSize, "max", h.maxPacket, "client", cl.ID, "remote", cl.Net.Remote, "user", user)
	}
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

// scopedID is the id Mochi knows a client by on the listeners gateways
// reach: the user, quoted so that no pair of user and id can spell another
// pair's, then the id the client gave. Two users' clients never share an id
// (no takeover, no squatting, no resumed session of another user); one user
// keeps MQTT's rules among its own ids. Mosquitto's shipped config does the
// same with use_username_as_clientid (the id becomes the user name).
func scopedID(user, id string) string {
	return strconv.Quote(user) + "/" + id
}
