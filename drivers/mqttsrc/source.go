package mqttsrc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Source subscribes to a broker and turns the messages into readings.
type Source struct {
	cfg    Config
	mapper *Mapper

	running   atomic.Bool
	connected atomic.Bool

	mu       sync.Mutex
	received uint64
	connects uint64
	lost     uint64
	lastErr  string
}

// SourceStats are a Source's counters.
type SourceStats struct {
	stream.Stats        // payloads mapped (Frames) and refused by kind (Errors)
	Skipped             // payloads filtered out, fields missing
	Received     uint64 // messages taken from the broker
	Connects     uint64 // connections made and subscribed
	Lost         uint64 // connections lost
	LastError    string // last connection or subscription problem, if any
}

// NewSource normalizes and checks cfg. It does no I/O: Run connects.
// clock tells the gateway's clock quality (see NewMapper).
func NewSource(cfg Config, clock func() telemetry.ClockQuality) (*Source, error) {
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	cfg.Normalize()
	if bad := cfg.Check(); len(bad) > 0 {
		keys := make([]string, 0, len(bad))
		for k := range bad {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		msgs := make([]string, len(keys))
		for i, k := range keys {
			msgs[i] = k + ": " + bad[k]
		}
		return nil, fmt.Errorf("mqttsrc: invalid config: %s", strings.Join(msgs, "; "))
	}
	return &Source{cfg: cfg, mapper: NewMapper(cfg.Mapping, clock)}, nil
}

// Run connects to the broker, subscribes, and hands the readings of each
// message to sink, one message at a time, until ctx is done; it then
// disconnects and returns nil. It reconnects (with back-off) and
// resubscribes by itself whenever the connection is lost.
//
// Messages wait in a queue of Config.Queue; when it is full the source
// stops reading from the broker, so a slow sink slows the broker down
// (QoS 1 and 2 messages wait there) rather than filling memory. A sink
// that blocks for longer than the keep-alive may make the connection
// drop; it recovers once the sink moves on. A QoS 1 or 2 message is
// acknowledged after sink returns nil for it, or when it held no readings,
// so with a persistent session delivery is at least once: a message whose
// acknowledgement was lost with the connection comes again. If sink
// returns an error, Run disconnects and returns it.
//
// Run must not be called again before it returns.
func (s *Source) Run(ctx context.Context, sink func(stream.Output) error) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("mqttsrc: Run is already running")
	}
	defer s.running.Store(false)

	msgs := make(chan mqtt.Message, s.cfg.Queue)
	stop := make(chan struct{})
	fatal := make(chan error, 1)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		select {
		case msgs <- m:
			s.mu.Lock()
			s.received++
			s.mu.Unlock()
		case <-stop:
		}
	}
	client := mqtt.NewClient(s.options(handler, stop, fatal))
	client.Connect() // retries in the background until Disconnect
	defer func() {
		s.mu.Lock()
		close(stop) // under mu: subscribe cannot mark the source connected after this
		s.connected.Store(false)
		s.mu.Unlock()
		client.Disconnect(250)
	}()

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case m := <-msgs:
			out := s.mapper.Map(m.Topic(), m.Payload(), time.Now())
			if !out.Empty() {
				if err := sink(out); err != nil {
					return fmt.Errorf("mqttsrc: sink: %w", err)
				}
			}
			m.Ack()
		}
	}
}

// options builds the paho options: ordered delivery to handler (paho calls
// it from one goroutine), manual acknowledgement, automatic reconnection,
// and a subscription on every connection.
func (s *Source) options(handler mqtt.MessageHandler, stop <-chan struct{}, fatal chan<- error) *mqtt.ClientOptions {
	c := &s.cfg
	o := mqtt.NewClientOptions()
	for _, b := range c.Brokers {
		o.AddBroker(b)
	}
	id := c.ClientID
	if id == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		id = "fieldwatch-" + hex.EncodeToString(b[:])
	}
	o.SetClientID(id).SetUsername(c.Username).SetPassword(c.Password)
	o.SetCleanSession(!c.PersistentSession).SetResumeSubs(false)
	o.SetKeepAlive(c.KeepAlive).SetPingTimeout(10 * time.Second)
	o.SetConnectTimeout(10 * time.Second)
	o.SetAutoReconnect(true).SetMaxReconnectInterval(c.ReconnectMax)
	o.SetConnectRetry(true).SetConnectRetryInterval(min(time.Second, c.ReconnectMax))
	o.SetOrderMatters(true).SetAutoAckDisabled(true)
	// Messages of a persistent session may arrive before the subscription
	// is renewed; they go to the same handler.
	o.SetDefaultPublishHandler(handler)
	o.SetOnConnectHandler(func(cl mqtt.Client) { s.subscribe(cl, handler, stop, fatal) })
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		s.connected.Store(false)
		s.mu.Lock()
		s.lost++
		if err != nil {
			s.lastErr = "connection lost: " + err.Error()
		}
		s.mu.Unlock()
	})
	o.SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		if f, ok := n.(mqtt.ConnectionNotificationBrokerFailed); ok && f.Reason != nil && f.Broker != nil {
			s.setErr("connect " + f.Broker.Redacted() + ": " + f.Reason.Error())
		}
	})
	return o
}

// subscribe subscribes on a new connection, retrying while it stays open.
// A broker refusing the subscription (SUBACK 0x80, usually an ACL) is
// fatal: Run returns it.
func (s *Source) subscribe(cl mqtt.Client, handler mqtt.MessageHandler, stop <-chan struct{}, fatal chan<- error) {
	for cl.IsConnectionOpen() {
		select {
		case <-stop:
			return
		default:
		}
		tok := cl.Subscribe(s.cfg.Topic, byte(s.cfg.QoS), handler)
		if !tok.WaitTimeout(10 * time.Second) {
			s.setErr("subscribe: no answer from broker")
			continue
		}
		if err := tok.Error(); err != nil {
			s.setErr("subscribe: " + err.Error())
			return // the connection is failing; OnConnect runs again
		}
		if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[s.cfg.Topic] == 0x80 {
			err := fmt.Errorf("mqttsrc: broker refused subscription to %q", s.cfg.Topic)
			s.setErr(err.Error())
			select {
			case fatal <- err:
			default:
			}
			return
		}
		s.mu.Lock()
		select {
		case <-stop:
		default:
			s.connects++
			s.connected.Store(true)
		}
		s.mu.Unlock()
		return
	}
}

func (s *Source) setErr(msg string) {
	s.mu.Lock()
	s.lastErr = msg
	s.mu.Unlock()
}

// Connected reports whether the source is connected and subscribed.
func (s *Source) Connected() bool { return s.connected.Load() }

// Stats reports the source's and its mapper's counters.
func (s *Source) Stats() SourceStats {
	st := SourceStats{Stats: s.mapper.Stats(), Skipped: s.mapper.Skipped()}
	s.mu.Lock()
	st.Received, st.Connects, st.Lost, st.LastError = s.received, s.connects, s.lost, s.lastErr
	s.mu.Unlock()
	return st
}
