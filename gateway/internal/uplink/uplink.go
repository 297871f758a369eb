// Package uplink sends the buffer's readings to the cloud over MQTT and
// trims the buffer only when the cloud acknowledges that they are stored.
//
// Batches of consecutive readings go out with QoS 1 on the gateway's up
// topic, at most MaxInFlight awaiting their ack at once. Acks arrive on the
// gateway's ack topic; the buffer is trimmed up to the highest contiguous
// acknowledged sequence. A batch unacknowledged after AckTimeout, or any
// batch in flight when the connection drops, is sent again from the first
// unacknowledged reading (go-back-N): the cloud's idempotent writes make the
// repeats harmless. The gateway's state is published retained on connect and
// every StateInterval, with an "offline" last will.
package uplink

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Options are the uplink's settings and collaborators.
type Options struct {
	Config  config.Uplink
	Gateway string
	Site    string
	Buffer  *buffer.Buffer
	// State describes the gateway for the retained state message; the
	// uplink fills in State, Time and Buffered.
	State   func() telemetry.State
	Log     *slog.Logger
	Metrics *Metrics
}

// Uplink is the MQTT side of the gateway. Run it once.
type Uplink struct {
	o      Options
	codec  telemetry.Codec
	enc    telemetry.Encoder // reused: its DEFLATE state is large
	log    *slog.Logger
	m      *Metrics
	client mqtt.Client

	connected atomic.Bool
	kick      chan struct{} // connection state changed
	acks      chan telemetry.Ack

	// Owned by Run's goroutine.
	live     bool      // subscribed and announced on the current connection
	cursor   uint64    // next sequence to send
	inflight []flight  // batches sent, oldest first
	waiting  time.Time // when unsent readings were first seen; zero if none
}

type flight struct {
	first, last uint64
	sent        time.Time
	acked       bool
}

// New prepares an uplink; it does not connect.
func New(o Options) (*Uplink, error) {
	codec, err := config.CodecOf(o.Config.Codec)
	if err != nil {
		return nil, err
	}
	return &Uplink{o: o, codec: codec, log: o.Log.With("component", "uplink"), m: o.Metrics,
		kick: make(chan struct{}, 1), acks: make(chan telemetry.Ack, 256)}, nil
}

// Connected reports whether the MQTT connection is up.
func (u *Uplink) Connected() bool { return u.connected.Load() }

func (u *Uplink) poke() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

func (u *Uplink) options() *mqtt.ClientOptions {
	c := u.o.Config
	opts := mqtt.NewClientOptions()
	for _, b := range c.Brokers {
		opts.AddBroker(b)
	}
	id := c.ClientID
	if id == "" {
		id = "fieldwatch-" + u.o.Gateway
	}
	offline, _ := telemetry.EncodeState(telemetry.State{State: telemetry.StateOffline, Site: u.o.Site})
	opts.SetClientID(id).
		SetUsername(c.Username).
		SetPassword(c.Password).
		SetCleanSession(true).
		SetKeepAlive(c.Keepalive).
		SetPingTimeout(c.Keepalive/2).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(10*time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2*time.Second).
		SetMaxReconnectInterval(30*time.Second).
		SetBinaryWill(telemetry.StateTopic(u.o.Gateway), offline, 1, true).
		SetTLSConfig(tlsConfig(c)).
		SetOnConnectHandler(func(mqtt.Client) {
			u.connected.Store(true)
			u.poke()
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			u.connected.Store(false)
			u.log.Warn("connection to broker lost", "err", err)
			u.poke()
		})
	return opts
}

// Run connects and sends until ctx is done, then announces "offline" and
// disconnects.
func (u *Uplink) Run(ctx context.Context) error {
	u.client = mqtt.NewClient(u.options())
	u.client.Connect() // retries in the background; OnConnect pokes us
	defer u.shutdown()

	stateTick := time.NewTicker(u.o.Config.StateInterval)
	defer stateTick.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !u.Connected() {
			u.live = false
		} else if !u.live {
			u.goLive()
		}
		next := u.pump()
		timer.Reset(next)
		notify := u.o.Buffer.Notify()
		select {
		case <-ctx.Done():
			return nil
		case <-u.kick:
		case <-notify:
		case a := <-u.acks:
			u.handleAck(a)
		case <-timer.C:
		case <-stateTick.C:
			if u.live {
				u.publishState(telemetry.StateOnline)
			}
		}
	}
}

// goLive subscribes to acks and announces the gateway on a new connection,
// and restarts sending from the first unacknowledged reading.
func (u *Uplink) goLive() {
	tok := u.client.Subscribe(telemetry.AckTopic(u.o.Gateway), 1, u.onAck)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		u.log.Warn("cannot subscribe to acks; will retry", "err", tok.Error())
		return
	}
	u.live = true
	u.m.connects.Inc()
	u.log.Info("connected to broker", "pending_readings", u.o.Buffer.Stats().Readings)
	u.publishState(telemetry.StateOnline)
	u.restart("connected")
}

// restart forgets what is in flight and sends again from the first
// unacknowledged reading.
func (u *Uplink) restart(why string) {
	if n := len(u.inflight); n > 0 {
		u.m.resends.Add(float64(n))
		u.log.Info("sending unacknowledged batches again", "batches", n, "reason", why,
			"from_seq", u.o.Buffer.Acked()+1)
	}
	u.inflight = u.inflight[:0]
	u.cursor = u.o.Buffer.Acked() + 1
}

// pump sends what it may and returns how long until it should look again.
func (u *Uplink) pump() time.Duration {
	c := u.o.Config
	wait := time.Hour
	if !u.live {
		return wait
	}
	now := time.Now()
	if len(u.inflight) > 0 {
		if age := now.Sub(u.inflight[0].sent); age >= c.AckTimeout {
			u.m.ackTimeouts.Inc()
			u.log.Warn("no ack in time", "first_seq", u.inflight[0].first, "last_seq", u.inflight[0].last, "waited", age.Round(time.Millisecond))
			u.restart("ack timeout")
		} else {
			wait = c.AckTimeout - age
		}
	}
	for len(u.inflight) < c.MaxInFlight {
		u.cursor = max(u.cursor, u.o.Buffer.Acked()+1)
		unsent := u.o.Buffer.Next() - u.cursor
		if unsent == 0 {
			u.waiting = time.Time{}
			break
		}
		if u.waiting.IsZero() {
			u.waiting = now
		}
		if unsent < uint64(c.BatchSize) {
			if due := u.waiting.Add(c.BatchDelay); now.Before(due) {
				wait = min(wait, due.Sub(now))
				break
			}
		}
		if !u.sendBatch(now) {
			break
		}
		u.waiting = time.Time{}
		if len(u.inflight) == 1 {
			wait = min(wait, c.AckTimeout)
		}
	}
	return wait
}

// sendBatch publishes the next batch; false when there was nothing to send
// or the connection refused it.
func (u *Uplink) sendBatch(now time.Time) bool {
	buf := u.o.Buffer
	c, err := buf.Read(u.cursor, u.o.Config.BatchSize)
	if err != nil {
		u.log.Error("cannot read buffer", "err", err)
		return false
	}
	if c.Len() == 0 {
		return false
	}
	start := c.First
	b := &telemetry.Batch{Gateway: u.o.Gateway, Site: u.o.Site, Stream: buf.Stream(), FirstSeq: start,
		Committed: min(buf.Acked(), start-1), Readings: c.Readings, Events: c.Events}
	data, err := u.enc.Encode(b, u.codec)
	if err != nil {
		// Only a bug can put unencodable readings in the buffer; never let
		// them wedge the uplink.
		u.m.unsendable.Add(float64(b.Len()))
		u.log.Error("BUG: items in the buffer cannot be encoded; skipping them",
			"first_seq", start, "items", b.Len(), "err", err)
		u.inflight = append(u.inflight, flight{first: start, last: b.LastSeq(), sent: now, acked: true})
		u.cursor = b.LastSeq() + 1
		u.advance()
		return true
	}
	tok := u.client.Publish(telemetry.UpTopic(u.o.Gateway), 1, false, data)
	if tok.Error() != nil {
		u.log.Warn("publish refused", "err", tok.Error())
		return false
	}
	u.inflight = append(u.inflight, flight{first: start, last: b.LastSeq(), sent: now})
	u.cursor = b.LastSeq() + 1
	u.m.batches.Inc()
	u.m.readings.Add(float64(b.Len()))
	u.m.bytes.Add(float64(len(data)))
	return true
}

// onAck runs on paho's goroutine: decode and hand over.
func (u *Uplink) onAck(_ mqtt.Client, msg mqtt.Message) {
	a, err := telemetry.DecodeAck(msg.Payload())
	if err != nil {
		u.m.badAcks.Inc()
		u.log.Warn("malformed ack ignored", "topic", msg.Topic(), "err", err)
		return
	}
	select {
	case u.acks <- a:
	default:
		u.m.acksDropped.Inc() // the batch is sent again after AckTimeout
	}
}

// handleAck marks acknowledged batches and trims the buffer up to the
// highest contiguous acknowledged sequence.
func (u *Uplink) handleAck(a telemetry.Ack) {
	if a.Stream != u.o.Buffer.Stream() {
		u.m.badAcks.Inc()
		u.log.Warn("ack for another stream ignored", "stream", a.Stream)
		return
	}
	u.m.acks.Inc()
	now := time.Now()
	for i := range u.inflight {
		f := &u.inflight[i]
		if !f.acked && (f.last <= a.Through || (f.first >= a.First && f.last <= a.Last)) {
			f.acked = true
			u.m.ackSeconds.Observe(now.Sub(f.sent).Seconds())
		}
	}
	if a.Through > 0 {
		through := min(a.Through, u.o.Buffer.Next()-1)
		if through >= u.cursor {
			// The cloud has more than we thought we had sent on this
			// connection (it stored a batch before we reconnected).
			u.inflight = u.inflight[:0]
			u.cursor = through + 1
		}
		if through > u.o.Buffer.Acked() && (len(u.inflight) == 0 || through < u.inflight[0].first) {
			u.trim(through)
		}
	}
	u.advance()
}

// advance pops acknowledged batches off the front and trims behind them.
func (u *Uplink) advance() {
	n := 0
	for n < len(u.inflight) && u.inflight[n].acked {
		n++
	}
	if n == 0 {
		return
	}
	through := u.inflight[n-1].last
	u.inflight = append(u.inflight[:0], u.inflight[n:]...)
	u.trim(through)
}

func (u *Uplink) trim(through uint64) {
	if err := u.o.Buffer.Trim(through); err != nil {
		u.log.Error("cannot trim buffer", "through", through, "err", err)
	}
}

func (u *Uplink) publishState(state string) {
	s := u.o.State()
	s.State = state
	s.Time = time.Now().UTC()
	s.Buffered = u.o.Buffer.Stats().Readings
	data, err := telemetry.EncodeState(s)
	if err != nil {
		u.log.Error("cannot encode state", "err", err)
		return
	}
	tok := u.client.Publish(telemetry.StateTopic(u.o.Gateway), 1, true, data)
	if state == telemetry.StateOffline {
		tok.WaitTimeout(2 * time.Second)
	}
}

func (u *Uplink) shutdown() {
	if u.Connected() {
		u.publishState(telemetry.StateOffline)
	}
	u.client.Disconnect(250)
	u.connected.Store(false)
}
