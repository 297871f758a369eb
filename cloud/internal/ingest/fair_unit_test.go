package ingest

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// msg is a queued message: its topic says who sent it, its payload's
// length is its size.
type msg struct {
	topic   string
	payload []byte
}

func (m *msg) Duplicate() bool   { return false }
func (m *msg) Qos() byte         { return 1 }
func (m *msg) Retained() bool    { return false }
func (m *msg) Topic() string     { return m.topic }
func (m *msg) MessageID() uint16 { return 0 }
func (m *msg) Payload() []byte   { return m.payload }
func (m *msg) Ack()              {}

var _ mqtt.Message = (*msg)(nil)

// TestFairOrder: the order in which workers get messages, one worker
// taking and finishing each in turn: the gateways in turn, each gateway's
// messages in the order they came; with a message in hand, a gateway's
// next one waits.
func TestFairOrder(t *testing.T) {
	tests := []struct {
		name string
		put  string // gateway:message, in arrival order
		want string // in the order handed out
	}{
		{"one gateway keeps its order", "x:1 x:2 x:3", "x:1 x:2 x:3"},
		{"a flood and one other", "x:1 x:2 x:3 x:4 x:5 y:1", "x:1 y:1 x:2 x:3 x:4 x:5"},
		{"three in turn", "x:1 x:2 x:3 y:1 y:2 z:1", "x:1 y:1 z:1 x:2 y:2 x:3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var backedUp atomic.Int64
			f := newFair(defaultFairLimits, &backedUp)
			for _, p := range strings.Fields(tc.put) {
				gw, _, _ := strings.Cut(p, ":")
				f.put(gw, &msg{topic: p})
			}
			var got []string
			for range strings.Fields(tc.put) {
				q, m, ok := f.next()
				if !ok {
					t.Fatal("closed")
				}
				got = append(got, m.Topic())
				f.done(q)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("handed out %s, want %s", g, tc.want)
			}
			if len(f.queues) != 0 || f.msgs != 0 || f.bytes != 0 {
				t.Fatalf("left %d queues, %d messages, %d bytes", len(f.queues), f.msgs, f.bytes)
			}
		})
	}
}

// TestFairInFlight: while a gateway's message is in a worker's hands, its
// next is not handed out, other gateways' are; done releases it.
func TestFairInFlight(t *testing.T) {
	var backedUp atomic.Int64
	f := newFair(defaultFairLimits, &backedUp)
	f.put("x", &msg{topic: "x1"})
	f.put("x", &msg{topic: "x2"})
	f.put("y", &msg{topic: "y1"})
	qx, m, _ := f.next()
	if m.Topic() != "x1" {
		t.Fatalf("first %s", m.Topic())
	}
	if _, m, _ := f.next(); m.Topic() != "y1" {
		t.Fatalf("second %s, want y1 while x1 is in hand", m.Topic())
	}
	if len(f.ready) != 0 {
		t.Fatalf("%d gateways ready while x has one in hand", len(f.ready))
	}
	f.done(qx)
	if _, m, _ := f.next(); m.Topic() != "x2" {
		t.Fatalf("third %s", m.Topic())
	}
}

// TestFairBackpressure: a put into a full intake waits (and says so through
// backedUp, which Health reads) until a worker takes a message; nothing is
// dropped; close releases a waiting put. A put into a gateway's own full
// queue is refused at once, so a flooding gateway cannot stop the MQTT
// client reading for the others, and the other gateways still get in.
func TestFairBackpressure(t *testing.T) {
	tests := []struct {
		name    string
		lim     fairLimits
		fill    []string // gateways of the messages that fill it
		next    string   // the gateway whose put must wait or be refused
		refused bool     // refused at once rather than waiting
	}{
		{"gateway messages", fairLimits{gatewayInFlight: 1, gatewayMsgs: 2, gatewayBytes: 1 << 20, totalMsgs: 100, totalBytes: 1 << 20},
			[]string{"x", "x"}, "x", true},
		{"gateway bytes", fairLimits{gatewayInFlight: 1, gatewayMsgs: 100, gatewayBytes: 15, totalMsgs: 100, totalBytes: 1 << 20},
			[]string{"x"}, "x", true},
		{"intake messages", fairLimits{gatewayInFlight: 1, gatewayMsgs: 100, gatewayBytes: 1 << 20, totalMsgs: 2, totalBytes: 1 << 20},
			[]string{"x", "y"}, "z", false},
		{"intake bytes", fairLimits{gatewayInFlight: 1, gatewayMsgs: 100, gatewayBytes: 1 << 20, totalMsgs: 100, totalBytes: 25},
			[]string{"x", "y"}, "z", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var backedUp atomic.Int64
			f := newFair(tc.lim, &backedUp)
			for i, gw := range tc.fill {
				if err := f.put(gw, &msg{topic: fmt.Sprint(gw, i), payload: make([]byte, 10)}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.refused {
				if err := f.put(tc.next, &msg{topic: "over", payload: make([]byte, 10)}); !errors.Is(err, errGatewayFull) {
					t.Fatalf("put into a full gateway queue: %v, want errGatewayFull", err)
				}
				if backedUp.Load() != 0 {
					t.Fatal("a refused put marked the intake backed up")
				}
				if err := f.put("other", &msg{topic: "other", payload: make([]byte, 10)}); err != nil {
					t.Fatalf("another gateway's put: %v", err)
				}
				if f.msgs != len(tc.fill)+1 {
					t.Fatalf("%d queued, want %d", f.msgs, len(tc.fill)+1)
				}
				return
			}
			put := make(chan error, 1)
			go func() { put <- f.put(tc.next, &msg{topic: "late", payload: make([]byte, 10)}) }()
			testenv.Eventually(t, "the put waits", wait, func() bool { return backedUp.Load() != 0 })
			select {
			case <-put:
				t.Fatal("the put did not wait")
			default:
			}
			if _, _, ok := f.next(); !ok {
				t.Fatal("closed")
			}
			select {
			case err := <-put:
				if err != nil {
					t.Fatalf("the put was refused: %v", err)
				}
			case <-time.After(wait):
				t.Fatal("the put still waits with room made")
			}
			if backedUp.Load() != 0 {
				t.Fatal("backedUp not cleared")
			}
			if f.msgs != len(tc.fill) {
				t.Fatalf("%d queued, want %d: nothing dropped", f.msgs, len(tc.fill))
			}
			// A put waiting at close returns errClosed.
			for f.intakeRoom(10) && f.put("fill", &msg{topic: "fill", payload: make([]byte, 10)}) == nil {
			}
			go func() { put <- f.put(tc.next, &msg{topic: "at close", payload: make([]byte, 10)}) }()
			testenv.Eventually(t, "the put waits", wait, func() bool { return backedUp.Load() != 0 })
			f.close()
			select {
			case err := <-put:
				if !errors.Is(err, errClosed) {
					t.Fatalf("a put at close: %v, want errClosed", err)
				}
			case <-time.After(wait):
				t.Fatal("close did not release the put")
			}
			if _, _, ok := f.next(); ok {
				t.Fatal("next after close")
			}
		})
	}
}
