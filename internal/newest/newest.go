// Package newest is a mailbox of one message where a newer message replaces
// one not yet taken: for desired states (a config, a release) that arrive
// on a retained topic, where only the newest matters and the MQTT client's
// callback must never block.
package newest

// Box holds at most one message.
type Box struct{ c chan []byte }

// New returns an empty box.
func New() *Box { return &Box{c: make(chan []byte, 1)} }

// Put leaves p in the box, replacing a message not yet taken; it never
// blocks.
func (b *Box) Put(p []byte) {
	for {
		select {
		case b.c <- p:
			return
		default:
		}
		select {
		case <-b.c:
		default:
		}
	}
}

// C delivers the message in the box.
func (b *Box) C() <-chan []byte { return b.c }
