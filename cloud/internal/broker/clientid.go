package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// clientIDs makes a client id belong to one user. Mochi keeps every client
// under its id, connected or not (a persistent session), with the user
// name the auth hook gave it; a CONNECT for an id Mochi holds for another
// user is refused, where Mochi would disconnect the holder and could hand
// the newcomer its session. Between the check and Mochi registering the
// new client the id is claimed here, so two connections racing for one id
// under different users cannot both pass.
type clientIDs struct {
	srv     *mqtt.Server
	mu      sync.Mutex
	pending map[string]claim
}

type claim struct {
	cl   *mqtt.Client
	user string
}

func newClientIDs(srv *mqtt.Server) *clientIDs {
	return &clientIDs{srv: srv, pending: map[string]claim{}}
}

// claim reserves cl's id for user, or returns the other user holding it.
// The same user may always take its id back (and its session over).
func (c *clientIDs) claim(cl *mqtt.Client, user string) (holder string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ex, found := c.srv.Clients.Get(cl.ID); found && ex != cl && string(ex.Properties.Username) != user {
		return string(ex.Properties.Username), false
	}
	if p, found := c.pending[cl.ID]; found && p.cl != cl && !p.cl.Closed() && p.user != user {
		return p.user, false
	}
	c.pending[cl.ID] = claim{cl: cl, user: user}
	return "", true
}

// settle drops cl's claim once Mochi holds the client (or it is gone).
func (c *clientIDs) settle(cl *mqtt.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, found := c.pending[cl.ID]; found && p.cl == cl {
		delete(c.pending, cl.ID)
	}
}
