// Package uplink sends the buffer's items to the cloud over MQTT and trims
// the buffer only when the cloud acknowledges that they are stored.
//
// Batches of consecutive items go out with QoS 1 on the gateway's up
// topic, at most MaxInFlight awaiting their ack at once. Acks arrive on the
// gateway's ack topic; the buffer is trimmed up to the highest sequence
// below which everything is acknowledged.
//
// Live first: when the uplink (re)connects with more waiting than one
// batch — the link or the cloud was down — what waits becomes the backlog.
// Readings acquired from then on are sent first, as they come; the backlog
// drains behind them, marked as backlog (history, to be judged at the time
// it was measured), at most backlog_rate items a second and never taking
// the last in-flight slot, so live data never waits behind it.
//
// A batch unacknowledged after AckTimeout, or any batch in flight when the
// connection drops, is sent again (the cloud recognises what it has already
// stored). So is what is unacknowledged when the cloud says it could not
// store a batch (a refusal with a retry hint: sent again when the hint
// says, nothing sent meanwhile) or that it has just subscribed again (an
// online notice: sent again at once) — recovery.go. The connection is
// supervised (conn.go): broker failover, jittered backoff that grows only
// when a broker takes connections and fails them, and a connection whose
// publishes stall for publish_timeout is replaced. The gateway's state is
// published retained on connect, every StateInterval and soon after a
// device's health changes (StateChanged, state.go), with an "offline" last
// will.
package uplink

import (
	"context"
	"log/slog"
	"math"
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
	// uplink fills in State, Time, Buffered and Heartbeat.
	State   func() telemetry.State
	Log     *slog.Logger
	Metrics *Metrics
	// Clock re-stamps items stamped while the wall clock was unsynced
	// during this run, the items from RunFirst on. Nil sends them as they
	// are. Until the clock is known, or ClockWait after Started, those
	// items are held back.
	Clock    Restamper
	RunFirst uint64
	Started  time.Time
	// OnConfig, when set, subscribes to the gateway's config topic and
	// is handed each envelope that arrives there (remote configuration,
	// gateway/internal/fleet). It must not block.
	OnConfig func(payload []byte)
	// OnCommand, when set, subscribes to the gateway's cmd topic and is
	// handed each command that arrives there (gateway/internal/command).
	// It must not block.
	OnCommand func(payload []byte)
	// OnRelease, when set, subscribes to the gateway's release topic and
	// is handed each release manifest that arrives there (binary updates,
	// gateway/internal/update). It must not block.
	OnRelease func(payload []byte)

	// now is the clock of the state debounce and the state's time; nil is
	// time.Now. Tests hold it still to decide which changes fall within
	// the debounce, whatever the speed of the machine.
	now func() time.Time
}

// Restamper works out the true time of a time stamped while the wall
// clock was unsynced (clock.Timeline).
type Restamper interface {
	Known() bool
	Restamp(t time.Time) (time.Time, bool)
}

// Uplink is the MQTT side of the gateway. Run it once.
type Uplink struct {
	o     Options
	codec telemetry.Codec
	enc   telemetry.Encoder         // reused: its DEFLATE state is large
	cenc  *telemetry.CompactEncoder // with codec compact: the context the cloud confirmed
	log   *slog.Logger
	m     *Metrics
	conn  *conn

	connected atomic.Bool
	backlog   atomic.Uint64 // backlog items not yet sent, for Status
	holding   atomic.Bool   // holding back items stamped before the clock was set
	rewound   atomic.Uint64 // items sent again because a restored cloud asked (resend.go)
	notKept   atomic.Uint64 // items a restored cloud asked for that were no longer kept
	acks      chan telemetry.Ack
	changed   chan struct{} // StateChanged: a device's health changed
	resends   chan resendRequest

	// Owned by Run's goroutine.
	live      bool     // subscribed and announced on the current connection
	acked     ranges   // acknowledged beyond the buffer's trim mark
	liveStart uint64   // items from here on are live; below it, backlog
	liveNext  uint64   // next live item to send
	backNext  uint64   // next backlog item to send
	inflight  []flight // batches sent, oldest first
	waiting   time.Time
	tokens    float64 // backlog rate budget, in items
	refilled  time.Time
	gaveUp    bool // clock_wait passed with the clock unsynced
	stateDue  debounce
	// notKeptFrom is the lowest ResendFrom whose missing items were
	// reported (resend.go); MaxUint64 while none was.
	notKeptFrom uint64
	// resendAt, when set, is when the cloud asked for what is
	// unacknowledged again after refusing a batch: nothing is sent until
	// then (recovery.go). refusing: refused since the last ack (logged once).
	resendAt time.Time
	refusing bool
}

type flight struct {
	first, last uint64
	sent        time.Time
	backlog     bool
	tok         mqtt.Token
	compact     telemetry.CompactSent // what a compact batch defined, confirmed by its ack
}

// New prepares an uplink; it does not connect.
func New(o Options) (*Uplink, error) {
	codec, err := config.CodecOf(o.Config.Codec)
	if err != nil {
		return nil, err
	}
	u := &Uplink{o: o, codec: codec, log: o.Log.With("component", "uplink"), m: o.Metrics,
		acks: make(chan telemetry.Ack, 256), resends: make(chan resendRequest), changed: make(chan struct{}, 1), stateDue: debounce{every: StateDebounce},
		notKeptFrom: math.MaxUint64}
	if codec == telemetry.CodecCompact {
		u.cenc = telemetry.NewCompactEncoder(o.Gateway, o.Site, o.Buffer.Stream())
	}
	if u.o.Started.IsZero() {
		u.o.Started = time.Now()
	}
	if u.o.now == nil {
		u.o.now = time.Now
	}
	u.conn = newConn(u)
	return u, nil
}

// Connected reports whether the MQTT connection is up.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// Status is what the uplink is doing, for /status.
type Status struct {
	Backlog   uint64 `json:"backlog"`    // backlog items not yet sent, draining behind live data
	ClockHold bool   `json:"clock_hold"` // holding items stamped before the clock was set
	// Rewound is how many acknowledged items were sent again because a
	// cloud restored from a backup asked for them; NotKept how many it
	// asked for that were no longer kept (keep_acked), and so are lost.
	Rewound uint64 `json:"rewound,omitempty"`
	NotKept uint64 `json:"not_kept,omitempty"`
}

// Status reports what the uplink is doing.
func (u *Uplink) Status() Status {
	return Status{Backlog: u.backlog.Load(), ClockHold: u.holding.Load(), Rewound: u.rewound.Load(), NotKept: u.notKept.Load()}
}

// Run connects and sends until ctx is done, then announces "offline" and
// disconnects.
func (u *Uplink) Run(ctx context.Context) error {
	cctx, stopConn := context.WithCancel(ctx)
	connDone := make(chan struct{})
	go func() { defer close(connDone); u.conn.run(cctx) }()
	defer func() {
		stopConn()
		<-connDone
		u.shutdown()
	}()

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
		wait := u.pump()
		if u.live {
			if ok, d := u.stateDue.due(u.o.now()); ok {
				u.publishState(telemetry.StateOnline)
			} else if d > 0 {
				wait = min(wait, d)
			}
		}
		timer.Reset(wait)
		notify := u.o.Buffer.Notify()
		select {
		case <-ctx.Done():
			return nil
		case <-u.conn.changed:
		case <-notify:
		case a := <-u.acks:
			u.handleAck(a)
		case r := <-u.resends:
			res, err := u.resendRange(r.from, r.to)
			r.done <- resendReply{res, err}
		case <-timer.C:
		case <-u.changed:
			u.stateDue.changed()
		case <-stateTick.C:
			if u.live {
				u.publishState(telemetry.StateOnline)
			}
		}
	}
}

// goLive subscribes to acks and announces the gateway on a new connection,
// and restarts sending from the first unacknowledged item.
func (u *Uplink) goLive() {
	// QoS 0: with a clean session an ack missed while disconnected is
	// lost at any QoS (the batch is sent again), and on NATS's MQTT
	// listener a QoS 1 subscription costs a JetStream consumer per gateway.
	topic := telemetry.AckTopic(u.o.Gateway)
	tok := u.conn.client.Subscribe(topic, 0, u.onAck)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil || subackRefused(tok, topic) {
		u.log.Warn("cannot subscribe to acks; reconnecting", "err", tok.Error(), "refused", subackRefused(tok, topic))
		u.conn.replace()
		return
	}
	if u.o.OnConfig != nil {
		u.subscribeConfig()
	}
	if u.o.OnCommand != nil {
		u.subscribeCommands()
	}
	if u.o.OnRelease != nil {
		u.subscribeOptional(telemetry.ReleaseTopic(u.o.Gateway), u.o.OnRelease, "binary updates")
	}
	u.live = true
	u.m.connects.Inc()
	u.log.Info("connected to broker", "pending_items", u.o.Buffer.Stats().Readings)
	u.publishState(telemetry.StateOnline)
	u.restart("connected")
}

// subscribeConfig subscribes to the gateway's config topic, where the
// cloud keeps its desired config retained. QoS 1: the retained envelope
// arrives on every new connection. A broker whose ACL predates remote
// configuration refuses it: that costs remote configuration, not the
// link, so it is logged and the gateway stays connected.
func (u *Uplink) subscribeConfig() {
	u.subscribeOptional(telemetry.ConfigTopic(u.o.Gateway), u.o.OnConfig, "remote configuration")
}

// subscribeOptional subscribes on to topic with QoS 1; a failure costs
// what (a feature), not the link: it is logged and the gateway stays
// connected.
func (u *Uplink) subscribeOptional(topic string, on func([]byte), what string) {
	tok := u.conn.client.Subscribe(topic, 1, func(_ mqtt.Client, msg mqtt.Message) { on(msg.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil || subackRefused(tok, topic) {
		u.log.Warn("cannot subscribe; "+what+" will not arrive on this connection "+
			"(does the broker's ACL let the gateway read the topic? docs/security.md)", "topic", topic, "err", tok.Error(),
			"refused", subackRefused(tok, topic))
	}
}

// restart forgets what is in flight and sends again from the first
// unacknowledged item. With more waiting than a batch, what waits becomes
// the backlog and new items go first.
func (u *Uplink) restart(why string) {
	if n := len(u.inflight); n > 0 {
		u.m.resends.Add(float64(n))
		u.log.Info("sending unacknowledged batches again", "batches", n, "reason", why,
			"from_seq", u.o.Buffer.Acked()+1)
	}
	u.inflight = u.inflight[:0]
	u.resendAt = time.Time{}
	first, next := u.o.Buffer.Acked()+1, u.o.Buffer.Next()
	u.acked.trimBelow(first - 1)
	u.backNext = first
	if waiting := next - first - u.acked.count(); waiting > uint64(u.o.Config.BatchSize) {
		u.liveStart = next
		u.log.Info("draining a backlog behind live data", "items", waiting, "from_seq", first, "to_seq", next-1,
			"rate_per_s", u.o.Config.BacklogRate)
	} else {
		u.liveStart = first
	}
	u.liveNext = u.liveStart
	u.tokens, u.refilled = float64(backlogBatch(u.o.Config)), time.Now()
}

// pump sends what it may and returns how long until it should look again.
func (u *Uplink) pump() time.Duration {
	c := u.o.Config
	wait := time.Hour
	if !u.live {
		return wait
	}
	now := time.Now()
	for _, f := range u.inflight {
		if f.tok != nil && !isDone(f.tok) && now.Sub(f.sent) >= c.PublishTimeout {
			u.m.stuck.Inc()
			u.log.Warn("publishes stalled; replacing the connection", "waited", now.Sub(f.sent).Round(time.Millisecond))
			u.live = false
			u.conn.replace()
			return wait
		}
	}
	if !u.resendAt.IsZero() {
		if d := u.resendAt.Sub(now); d > 0 {
			return max(d, time.Millisecond) // the cloud asked for nothing before then
		}
		u.restart("the cloud could not store a batch and asked for it again")
	}
	if len(u.inflight) > 0 {
		if age := now.Sub(u.inflight[0].sent); age >= c.AckTimeout {
			u.m.ackTimeouts.Inc()
			u.log.Warn("no ack in time", "first_seq", u.inflight[0].first, "last_seq", u.inflight[0].last,
				"waited", age.Round(time.Millisecond))
			u.restart("ack timeout")
		}
	}
	u.refill(now)
	for len(u.inflight) < c.MaxInFlight {
		if d, sent := u.sendLive(now); sent {
			continue
		} else if d > 0 {
			wait = min(wait, d)
		}
		if d, sent := u.sendBacklog(); sent {
			continue
		} else if d > 0 {
			wait = min(wait, d)
		}
		break
	}
	if len(u.inflight) > 0 {
		wait = min(wait, c.AckTimeout-now.Sub(u.inflight[0].sent), c.PublishTimeout)
	}
	if from := max(u.backNext, u.o.Buffer.Acked()+1); from < u.liveStart {
		u.backlog.Store(u.liveStart - from)
	} else {
		u.backlog.Store(0)
	}
	return max(wait, time.Millisecond)
}

// sendLive sends the next live batch when one is full or has waited
// batch_delay; otherwise it says how long to wait.
func (u *Uplink) sendLive(now time.Time) (time.Duration, bool) {
	c := u.o.Config
	u.liveNext = u.skipAcked(max(u.liveNext, u.liveStart))
	end, hold := u.sendable(now)
	if end <= u.liveNext {
		u.waiting = time.Time{}
		return hold, false
	}
	unsent := end - u.liveNext
	if u.waiting.IsZero() {
		u.waiting = now
	}
	if unsent < uint64(c.BatchSize) {
		if due := u.waiting.Add(c.BatchDelay); now.Before(due) {
			return due.Sub(now), false
		}
	}
	n, ok := u.send(u.liveNext, int(min(uint64(c.BatchSize), unsent)), false, now)
	if !ok {
		return 0, false
	}
	u.liveNext += n
	u.waiting = time.Time{}
	return 0, true
}

// sendBacklog sends the next backlog batch if a slot and the rate allow.
func (u *Uplink) sendBacklog() (time.Duration, bool) {
	c := u.o.Config
	u.backNext = u.skipAcked(max(u.backNext, u.o.Buffer.Acked()+1))
	end, hold := u.sendable(time.Now())
	end = min(end, u.liveStart)
	if u.backNext >= end {
		return hold, false
	}
	if len(u.inflight) >= max(1, c.MaxInFlight-1) {
		return 0, false // the last slot is kept for live data
	}
	limit := min(uint64(backlogBatch(c)), end-u.backNext)
	if c.BacklogRate > 0 && u.tokens < float64(limit) {
		// Whole batches, as the rate allows: small ones would spend the
		// link on framing.
		return time.Duration((float64(limit) - u.tokens) / float64(c.BacklogRate) * float64(time.Second)), false
	}
	n, ok := u.send(u.backNext, int(limit), true, time.Now())
	if !ok {
		return 0, false
	}
	u.backNext += n
	u.tokens -= float64(n)
	if u.backNext >= u.liveStart {
		u.log.Info("backlog sent; waiting for its acks")
	}
	return 0, true
}

// refill adds backlog_rate tokens for the time passed, up to a batch.
func (u *Uplink) refill(now time.Time) {
	rate := float64(u.o.Config.BacklogRate)
	if rate <= 0 {
		return
	}
	u.tokens = min(u.tokens+rate*now.Sub(u.refilled).Seconds(), float64(backlogBatch(u.o.Config)))
	u.refilled = now
}

// backlogBatch is the most items in a backlog batch: backlog_batch_size
// (batch_size where unset), but no more than a second's worth of
// backlog_rate when that is set (and never fewer than a live batch), so a
// rate-limited link is not sent its backlog in bursts.
func backlogBatch(c config.Uplink) int {
	n := c.BacklogBatchSize
	if n <= 0 {
		n = c.BatchSize
	}
	if c.BacklogRate > 0 {
		n = min(n, max(c.BacklogRate, c.BatchSize))
	}
	return n
}

// skipAcked moves seq past any acknowledged range it falls in.
func (u *Uplink) skipAcked(seq uint64) uint64 {
	if ok, end := u.acked.covered(seq); ok {
		return end + 1
	}
	return seq
}

// send publishes up to limit items from seq, stopping before an
// acknowledged range, and returns how many items it covered.
func (u *Uplink) send(seq uint64, limit int, backlog bool, now time.Time) (uint64, bool) {
	buf := u.o.Buffer
	if next := u.acked.nextStart(seq); next != 0 {
		limit = min(limit, int(next-seq))
	}
	if seq < u.o.RunFirst {
		limit = min(limit, int(u.o.RunFirst-seq)) // a batch is of one run
	}
	c, err := buf.Read(seq, limit)
	if err != nil {
		u.log.Error("cannot read buffer", "err", err)
		return 0, false
	}
	if c.Len() == 0 {
		return 0, false
	}
	if c.First >= u.o.RunFirst {
		u.restamp(&c)
	}
	b := &telemetry.Batch{Gateway: u.o.Gateway, Site: u.o.Site, Stream: buf.Stream(), FirstSeq: c.First,
		Committed: min(buf.Acked(), c.First-1), Readings: c.Readings, Events: c.Events, Backlog: backlog}
	covered := b.LastSeq() + 1 - seq
	var data []byte
	var sent telemetry.CompactSent
	if u.cenc != nil {
		data, sent, err = u.cenc.Encode(b)
	} else {
		data, err = u.enc.Encode(b, u.codec)
	}
	if err != nil {
		// Only a bug can put unencodable items in the buffer; never let
		// them wedge the uplink.
		u.m.unsendable.Add(float64(b.Len()))
		u.log.Error("BUG: items in the buffer cannot be encoded; skipping them", "first_seq", b.FirstSeq,
			"items", b.Len(), "err", err)
		u.markAcked(b.FirstSeq, b.LastSeq())
		return covered, true
	}
	tok := u.conn.client.Publish(telemetry.UpTopic(u.o.Gateway), 1, false, data)
	if isDone(tok) && tok.Error() != nil {
		u.log.Warn("publish refused", "err", tok.Error())
		return 0, false
	}
	u.inflight = append(u.inflight, flight{first: b.FirstSeq, last: b.LastSeq(), sent: now, backlog: backlog, tok: tok,
		compact: sent})
	kind := "live"
	if backlog {
		kind = "backlog"
	}
	u.m.batches.WithLabelValues(kind).Inc()
	u.m.readings.WithLabelValues(kind).Add(float64(b.Len()))
	u.m.bytes.Add(float64(len(data)))
	return covered, true
}

// subackRefused reports whether the broker answered the subscription with
// the failure code 0x80 (paho reports no error for it): a broker that
// cannot set it up now (NATS, its JetStream busy) must not leave the
// gateway connected but deaf to its acks.
func subackRefused(t mqtt.Token, topic string) bool {
	st, ok := t.(*mqtt.SubscribeToken)
	if !ok {
		return false
	}
	code, granted := st.Result()[topic]
	return granted && code == 0x80
}

func isDone(t mqtt.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
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

// handleAck records what the cloud acknowledged and trims the buffer up to
// the highest sequence below which everything is acknowledged.
func (u *Uplink) handleAck(a telemetry.Ack) {
	switch {
	case a.Online:
		u.cloudOnline()
		return
	case a.Resync:
		u.resync(a)
		return
	case a.RetryMS > 0:
		u.refused(a)
		return
	}
	if a.Stream != u.o.Buffer.Stream() {
		u.m.badAcks.Inc()
		u.log.Warn("ack for another stream ignored", "stream", a.Stream)
		return
	}
	u.m.acks.Inc()
	u.refusing = false
	last := u.o.Buffer.Next() - 1
	u.markAcked(a.First, min(a.Last, last))
	if a.Through > 0 {
		u.markAcked(u.o.Buffer.Acked()+1, min(a.Through, last))
	}
	now := time.Now()
	n := 0
	trimmed := u.o.Buffer.Acked()
	for _, f := range u.inflight {
		if ok, end := u.acked.covered(f.first); f.last <= trimmed || (ok && end >= f.last) {
			u.m.ackSeconds.Observe(now.Sub(f.sent).Seconds())
			if u.cenc != nil {
				u.cenc.Confirm(f.compact)
			}
			continue
		}
		u.inflight[n] = f
		n++
	}
	u.inflight = u.inflight[:n]
	if a.ResendFrom > 0 {
		u.resend(a)
	}
}

// resync answers a cloud that does not know the compact context a batch
// referred to: the context is defined again, under a new ID, and what is
// unacknowledged is sent again. A request about an older ID is stale.
func (u *Uplink) resync(a telemetry.Ack) {
	if u.cenc == nil || a.Context != u.cenc.ID() {
		u.m.badAcks.Inc()
		u.log.Warn("resync request for another context ignored", "context", a.Context)
		return
	}
	u.m.resyncs.Inc()
	u.log.Warn("the cloud does not know this gateway's compact context; defining it again", "context", a.Context,
		"first_seq", a.First)
	u.cenc.Reset()
	u.restart("resync")
}

// markAcked adds first … last to the acknowledged set and trims what has
// become contiguous with the trim mark.
func (u *Uplink) markAcked(first, last uint64) {
	from := u.o.Buffer.Acked() + 1
	u.acked.add(max(first, from), last)
	ok, end := u.acked.covered(from)
	if !ok {
		return
	}
	if err := u.o.Buffer.Trim(end); err != nil {
		u.log.Error("cannot trim buffer", "through", end, "err", err)
		return
	}
	u.acked.trimBelow(end)
}

func (u *Uplink) shutdown() {
	if u.Connected() {
		u.publishState(telemetry.StateOffline)
	}
	u.conn.client.Disconnect(250)
	u.connected.Store(false)
}
