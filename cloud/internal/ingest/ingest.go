// Package ingest receives the gateways' batches from MQTT, checks them,
// stores them and acknowledges them.
//
// Each batch on fieldwatch/v1/<gw>/up is decoded and its gateway compared
// with the topic's; a malformed batch or one claiming another gateway is
// refused, counted by reason and logged (throttled), never acknowledged.
// A good batch is written to the store and only then acknowledged on
// fieldwatch/v1/<gw>/ack. State messages update the registry.
//
// The ingestor subscribes plainly by default (the cloud's mqtt.shared is
// off: a broker whose ACL does not check SUBSCRIBE would let any gateway
// join a shared group and starve it, docs/security.md); with a shared
// subscription, replicas on one broker split the load. A bounded pool of
// workers decodes, serving the gateways' queues in turn (fair.go); decoded
// batches of every gateway are then committed together, a group at a time
// with a few groups in flight (group.go), and each is acknowledged once its
// group is durable. One gateway's flood does not hold back another's acks;
// a gateway over its own queue is refused unacknowledged, and when the
// whole intake is full the MQTT client stops reading (backpressure,
// nothing lost).
package ingest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/internal/throttle"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Options configure an ingestor.
type Options struct {
	BrokerURL string
	Username  string
	Password  string
	// TLS is used for ssl://, tls://, mqtts:// and wss:// brokers: the CAs
	// to trust (nil: the system's), a client certificate, a server name.
	TLS      *tls.Config
	ClientID string // default fieldwatch-ingest-<host>-<random>
	// NoShare subscribes plainly instead of through $share/ingest/…; the
	// cloud sets it unless mqtt.shared is true (docs/security.md).
	NoShare bool
	// Link, when set, carries the gateways' messages and acks instead of
	// the broker of BrokerURL (a JetStream stream: natslink).
	Link     Link
	Workers  int // concurrent decoders (default 4); store writes are the groups' (group.go)
	Store    store.Store
	Registry *registry.Registry
	// Alerts, if set, judges every new batch before it is stored; a batch
	// it cannot judge is not acknowledged.
	Alerts Evaluator
	// StallAfter is how long the intake may be stuck (a batch in hand, the
	// handler waiting for room in the queues, the store failing) before
	// Health says so (default 10s).
	StallAfter time.Duration
	// MaxFuture is how far ahead of this machine's clock an item's time may
	// be (default 10m); items further ahead are dropped and counted, the
	// rest of their batch stored and acknowledged (future.go).
	MaxFuture time.Duration
	// MaxGroupReadings bounds the readings of the batches committed
	// together (default MaxGroupReadings; group.go).
	MaxGroupReadings int
	// MaxGroupsInFlight bounds the group commits under way at once
	// (default MaxGroupsInFlight).
	MaxGroupsInFlight int
	// StoreHold is how long a group whose store write fails is held and
	// retried before its batches are refused (default StoreHold;
	// recovery.go).
	StoreHold time.Duration
	Log       *slog.Logger
	Metrics   *Metrics

	// NotGateways are user names that are not gateways (the cloud's own,
	// alert readers): their batches and states are refused (notgateway.go).
	NotGateways []string

	// Restored says the store came back from a backup: a gateway's
	// Committed claim beyond a stream's commit record is not taken as
	// stored, and the gateway is asked to send again (restored.go).
	Restored bool
}

// Evaluator judges batches for early warnings (alert/engine). Observe
// judges a group's batches in order and returns once what it concluded is
// durable.
type Evaluator interface {
	Observe(ctx context.Context, bs ...*telemetry.Batch) error
}

// Ingestor is the cloud's MQTT consumer.
type Ingestor struct {
	o         Options
	log       *slog.Logger
	m         *Metrics
	client    mqtt.Client
	queue     *fair
	commits   *commits
	contexts  *contexts
	throttle  *throttle.Throttle
	connected atomic.Bool
	// busy holds, per worker, when it began the message in hand (Unix
	// nanoseconds; 0 idle): a worker stuck on one for long means the
	// intake is stalled (a store that does not answer). backedUp is when
	// the message handler began to wait for room in the queues (0: it is
	// not waiting): messages queue behind it. stored and failed are when a
	// store write last succeeded and last failed.
	busy                     []atomic.Int64
	backedUp, stored, failed atomic.Int64
	started                  time.Time
	// line is where decoded batches wait for their group commit (group.go).
	line line
	// Groups in flight (group.go): a slot each, and those not finished.
	// commitMu guards the streams' records.
	inFlight  chan struct{} // a slot per group whose data is being written
	unsettled chan struct{} // a slot per group whose data is not yet known durable
	runsMu    sync.Mutex
	runs      map[*run]bool
	// life ends when Run's context does: group writes then stop.
	life     context.Context
	end      context.CancelFunc
	running  sync.WaitGroup
	commitMu sync.Mutex
	// peers are the optional ack fields each gateway accepts (recovery.go).
	peers peers
	// replies are the remote commands awaiting their reply (command.go).
	replies waiters
}

// New prepares an ingestor; Run connects.
func New(o Options) *Ingestor {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.StallAfter <= 0 {
		o.StallAfter = StallAfter
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = MaxFuture
	}
	if o.MaxGroupReadings <= 0 {
		o.MaxGroupReadings = MaxGroupReadings
	}
	if o.MaxGroupsInFlight <= 0 {
		o.MaxGroupsInFlight = MaxGroupsInFlight
	}
	if o.StoreHold <= 0 {
		o.StoreHold = StoreHold
	}
	if o.ClientID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.ClientID = fmt.Sprintf("fieldwatch-ingest-%s-%s", host, hex.EncodeToString(b[:]))
	}
	in := &Ingestor{o: o, log: o.Log.With("component", "ingest"), m: o.Metrics,
		commits: newCommits(o.Store), contexts: newContexts(o.Store),
		throttle: throttle.New(10 * time.Second), busy: make([]atomic.Int64, o.Workers), started: time.Now()}
	in.queue = newFair(defaultFairLimits, &in.backedUp)
	in.line.room.L = &in.line.mu
	in.unsettled = make(chan struct{}, maxUnsettledFactor*o.MaxGroupsInFlight)
	in.inFlight, in.runs = make(chan struct{}, o.MaxGroupsInFlight), map[*run]bool{}
	in.life, in.end = context.WithCancel(context.Background())
	return in
}

// StallAfter is the default of Options.StallAfter.
const StallAfter = 10 * time.Second

// ReconnectWait is how long the ingestor waits between attempts to
// connect to the broker.
const ReconnectWait = time.Second

// Health says whether the cloud hears the field: "" when connected and
// keeping up, else why not. The early-warning engine counts no silence
// while it is not "" (alert/engine.Intake).
func (in *Ingestor) Health() string {
	if !in.Connected() {
		return "not connected to the broker"
	}
	now := time.Now().UnixNano()
	for i := range in.busy {
		if b := in.busy[i].Load(); b != 0 && time.Duration(now-b) > in.o.StallAfter {
			return fmt.Sprintf("a batch has been in hand for %s (store writes stalled)", time.Duration(now-b).Round(time.Second))
		}
	}
	if b := in.oldestRun(); !b.IsZero() && time.Duration(now-b.UnixNano()) > in.o.StallAfter {
		return fmt.Sprintf("a group of batches has been in hand for %s (store writes stalled)", time.Since(b).Round(time.Second))
	}
	if b := in.backedUp.Load(); b != 0 && time.Duration(now-b) > in.o.StallAfter {
		return fmt.Sprintf("batches have waited %s for room in the intake's queues (the intake is behind)", time.Duration(now-b).Round(time.Second))
	}
	ok := in.stored.Load()
	if ok == 0 {
		ok = in.started.UnixNano()
	}
	if f := in.failed.Load(); f > ok && time.Duration(now-ok) > in.o.StallAfter {
		return fmt.Sprintf("no batch stored for %s: store writes fail", time.Duration(now-ok).Round(time.Second))
	}
	return ""
}

// Connected reports whether the MQTT connection (or the Link) is up.
func (in *Ingestor) Connected() bool {
	if in.o.Link != nil {
		return in.o.Link.Connected()
	}
	return in.connected.Load()
}

// Run consumes until ctx is done, then finishes the batches in hand.
func (in *Ingestor) Run(ctx context.Context) error {
	upFilter := telemetry.SharedUpFilter
	if in.o.NoShare {
		upFilter = telemetry.UpFilter
	}
	stop := context.AfterFunc(ctx, in.queue.close)
	defer stop()
	deliver := func(msg Message) {
		// Queued by the topic's gateway (a topic that does not parse is
		// refused by the worker, from a queue of its own). Blocks while the
		// intake is full: backpressure; paho hands messages over one at a
		// time. A gateway over its own share is refused at once (fair.go).
		gw, kind, _ := telemetry.ParseTopic(msg.Topic())
		if kind == "reply" && in.o.Link != nil {
			// A command's reply, to whichever request waits for it here
			// (every replica is delivered every reply): not the batch path.
			in.takeReply(msg.Topic(), msg.Payload())
			finish(msg, true)
			return
		}
		switch err := in.queue.put(gw, msg); {
		case errors.Is(err, errGatewayFull):
			in.reject("flooding", msg.Topic(), gw, err)
			finish(msg, false)
		case err != nil:
			finish(msg, false) // closed: shutting down
		}
	}
	handle := func(_ mqtt.Client, msg mqtt.Message) { deliver(msg) }
	linkDone := make(chan error, 1)
	if in.o.Link != nil {
		go func() { linkDone <- in.o.Link.Run(ctx, deliver) }()
	} else {
		linkDone <- in.runMQTT(upFilter, handle)
	}
	var wg sync.WaitGroup
	for i := 0; i < in.o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				q, msg, ok := in.queue.next()
				if !ok {
					return
				}
				in.busy[i].Store(time.Now().UnixNano())
				if handed, ok := in.process(ctx, msg); !handed {
					finish(msg, ok)
				}
				in.busy[i].Store(0)
				in.queue.done(q)
			}
		}()
	}
	<-ctx.Done()
	in.end()
	if in.client != nil {
		in.client.Disconnect(250)
	}
	in.connected.Store(false)
	err := <-linkDone
	wg.Wait()
	in.running.Wait() // the groups in flight are finished or failed (and not acknowledged)
	return err
}

// runMQTT connects to the broker of BrokerURL and subscribes; paho
// reconnects by itself.
func (in *Ingestor) runMQTT(upFilter string, handle mqtt.MessageHandler) error {
	opts := mqtt.NewClientOptions().AddBroker(in.o.BrokerURL).SetClientID(in.o.ClientID).
		SetUsername(in.o.Username).SetPassword(in.o.Password).SetTLSConfig(in.o.TLS).
		SetCleanSession(true).SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).SetAutoReconnect(true).SetConnectRetry(true).
		// One client per broker, not a fleet: it tries again every second,
		// so it is subscribed again within a second of the broker's return
		// (docs/decisions.md §40).
		SetConnectRetryInterval(ReconnectWait).SetMaxReconnectInterval(ReconnectWait).
		SetOnConnectHandler(func(c mqtt.Client) {
			tok := c.SubscribeMultiple(map[string]byte{upFilter: 1, telemetry.StateFilter: 1, telemetry.ReplyFilter: 1}, nil)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				in.log.Error("cannot subscribe; reconnecting", "err", tok.Error())
				c.Disconnect(0)
				return
			}
			in.connected.Store(true)
			in.log.Info("subscribed", "broker", in.o.BrokerURL, "up", upFilter)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			in.connected.Store(false)
			in.log.Warn("connection to broker lost", "err", err)
		}).
		SetDefaultPublishHandler(handle)
	in.client = mqtt.NewClient(opts)
	in.client.AddRoute(upFilter, handle)
	in.client.AddRoute(telemetry.StateFilter, handle)
	in.client.AddRoute(telemetry.ReplyFilter, in.onReply)
	in.client.Connect()
	return nil
}

// process handles one message. handed: a batch now waits for its group,
// which finishes msg (answer); else ok says whether msg was handled for
// good (refused or taken) or should come again (not stored).
func (in *Ingestor) process(ctx context.Context, msg Message) (handed, ok bool) {
	gw, kind, err := telemetry.ParseTopic(msg.Topic())
	if err != nil {
		in.reject("topic", msg.Topic(), "", err)
		return false, true
	}
	if in.fromNonGateway(msg.Topic(), gw) {
		return false, true
	}
	switch kind {
	case "state":
		in.processState(gw, msg)
		return false, true
	case "up":
		return in.processBatch(ctx, gw, msg)
	default:
		in.reject("topic", msg.Topic(), gw, fmt.Errorf("unexpected %s message", kind))
		return false, true
	}
}

func (in *Ingestor) processState(gw string, msg Message) {
	if len(msg.Payload()) == 0 {
		return // a retained state being cleared
	}
	s, err := telemetry.DecodeState(msg.Payload())
	if err != nil {
		in.reject("bad_state", msg.Topic(), gw, err)
		return
	}
	in.devicesRefused(gw, "state", in.o.Registry.ObserveState(gw, s, msg.Retained()))
	if s.State == telemetry.StateOnline {
		in.peers.set(gw, s)
		in.greet(gw, s, msg.Retained())
	}
	in.m.states.WithLabelValues(s.State).Inc()
}

func (in *Ingestor) processBatch(ctx context.Context, gw string, msg Message) (handed, ok bool) {
	b, def, err := telemetry.DecodeAny(ctx, msg.Payload(), gw, in.contexts)
	switch {
	case errors.Is(err, telemetry.ErrUnknownContext):
		// A compact batch against a context this cloud does not know (its
		// store lost it, or the batch is on the wrong topic): not stored,
		// and the gateway is asked to define its context again.
		in.reject("unknown_context", msg.Topic(), gw, err)
		if id, first, last, perr := telemetry.PeekCompact(msg.Payload()); perr == nil {
			in.m.resyncs.Inc()
			in.publishAck(gw, telemetry.Ack{First: first, Last: last, Resync: true, Context: id})
		}
		return false, true
	case errors.Is(err, telemetry.ErrGatewayMismatch):
		in.reject("gateway_mismatch", msg.Topic(), gw, err)
		return false, true
	case errors.Is(err, telemetry.ErrTooLarge):
		// More items (or bytes) than a gateway sends: refused before the
		// decoder allocated them, never acknowledged.
		in.reject("too_large", msg.Topic(), gw, err)
		return false, true
	case errors.Is(err, telemetry.ErrMalformed):
		in.reject("malformed", msg.Topic(), gw, err)
		return false, true
	case err != nil:
		in.storeFailed(gw, b, fmt.Errorf("reading a compact context: %w", err))
		if _, first, last, perr := telemetry.PeekCompact(msg.Payload()); perr == nil {
			in.refuse(gw, "", first, last)
		}
		return false, false
	}
	if b.Gateway != gw {
		in.reject("gateway_mismatch", msg.Topic(), gw,
			fmt.Errorf("batch says gateway %q but arrived on %q's topic", b.Gateway, gw))
		return false, true
	}
	if !in.admit(gw, b, def, nil, msg) {
		return false, false
	}
	return true, true
}

// admit takes a decoded batch of gateway gw into the intake: the registry
// hears it, its stream's commit record is loaded, and it waits in line for
// its group (group.go). reply, when set, is told the outcome; else the
// gateway is acknowledged over MQTT. false: it was not taken (counted and
// logged by storeFailed), and reply is told nothing. msg, when set, is
// the message the batch came in, finished with its answer.
func (in *Ingestor) admit(gw string, b *telemetry.Batch, def *telemetry.CompactContext, reply chan outcome,
	msg Message) bool {
	// The gateway spoke and its devices acquired what the batch holds,
	// whether or not the store takes it now: no-data is judged on that.
	in.devicesRefused(gw, "batch", in.o.Registry.Heard(b))
	failed := func(err error) bool {
		in.storeFailed(gw, b, err)
		if reply == nil {
			in.refuse(gw, b.Stream, b.FirstSeq, b.LastSeq())
		}
		return false
	}
	if in.life.Err() != nil {
		return failed(errors.New("the intake is shutting down"))
	}
	ctx, cancel := context.WithTimeout(in.life, 30*time.Second)
	defer cancel()
	sc, err := in.commits.load(ctx, gw, b.Stream)
	if err != nil {
		return failed(fmt.Errorf("reading the commit record: %w", err))
	}
	in.enqueue(&pending{gw: gw, b: b, def: def, sc: sc, first: b.FirstSeq, last: b.LastSeq(), reply: reply, msg: msg})
	return true
}

// dropFuture drops the items of b (first…last) stamped too far ahead of
// this machine's clock: counted, logged (throttled), and reported by an
// event stored with the rest of the batch, which is acknowledged as a whole
// so the gateway's buffer moves on (docs/decisions.md).
func (in *Ingestor) dropFuture(gw string, b *telemetry.Batch, first, last uint64) {
	now := time.Now()
	n, ahead := dropFuture(b, now, in.o.MaxFuture)
	if n == 0 {
		return
	}
	in.m.future.Add(float64(n))
	in.o.Registry.DroppedFuture(gw, n)
	b.Events = append(b.Events, futureEvent(gw, first, last, n, ahead, in.o.MaxFuture, now))
	if ok, sup := in.throttle.Allow("future"); ok {
		in.log.Warn("items stamped too far in the future dropped; the rest of the batch is stored", "gateway", gw,
			"first_seq", first, "last_seq", last, "dropped", n, "ahead", ahead.Round(time.Second),
			"max_future", in.o.MaxFuture, "similar_suppressed", sup)
	}
}

// devicesRefused counts and logs (throttled) the devices the registry did
// not track because the gateway is at its bound.
func (in *Ingestor) devicesRefused(gw, from string, n int) {
	if n == 0 {
		return
	}
	in.m.devicesRefused.Add(float64(n))
	if ok, sup := in.throttle.Allow("devices_refused"); ok {
		in.log.Warn("gateway names more devices than the registry keeps per gateway; the new ones are not tracked",
			"gateway", gw, "from", from, "refused", n, "similar_suppressed", sup)
	}
}

// decode decodes a batch of any codec; a compact one against the contexts
// (memory, then the store). def is the context version it defined.
// storeFailed counts and logs a batch that was not stored; it is not
// acknowledged, so the gateway sends it again.
func (in *Ingestor) storeFailed(gw string, b *telemetry.Batch, err error) {
	in.m.storeErrors.Inc()
	in.failed.Store(time.Now().UnixNano())
	if ok, n := in.throttle.Allow("store"); ok {
		first, items := uint64(0), 0
		if b != nil {
			first, items = b.FirstSeq, b.Len()
		}
		in.log.Error("cannot store batch; not acknowledging it", "gateway", gw, "first_seq", first,
			"items", items, "err", err, "similar_suppressed", n)
	}
}

// publishAck sends an ack. Not waited for: a lost ack makes the gateway
// resend, which is safe.
func (in *Ingestor) publishAck(gw string, a telemetry.Ack) {
	if a.ResendFrom != 0 && !in.peers.get(gw).resend {
		// A gateway that has not said it takes resend_from refuses an ack
		// with it: the ack alone still goes, and the request comes again
		// with a later batch once its state says so.
		a.ResendFrom = 0
	}
	ack, err := telemetry.EncodeAck(a)
	if err != nil {
		in.log.Error("BUG: cannot encode ack", "err", err)
		return
	}
	if in.o.Link != nil {
		if err := in.o.Link.Publish(telemetry.AckTopic(gw), ack); err != nil {
			in.reject("ack_not_sent", telemetry.AckTopic(gw), gw, err)
			return
		}
	} else {
		in.client.Publish(telemetry.AckTopic(gw), 1, false, ack)
	}
	in.m.acks.Inc()
}

// ErrNoRetained: the cloud's link (NATS JetStream) was not given the means
// to keep a gateway's desired configuration or release retained (on NATS:
// nats.mqtt, the cluster's MQTT listeners).
var ErrNoRetained = errors.New("retained messages need an MQTT broker")

// PublishConfig publishes a gateway's signed desired configuration
// retained on its config topic (docs/fleet.md), and waits until the broker
// has taken it. The envelope must decode and name gw; its signature is the
// gateway's to check (the cloud holds no signing key).
func (in *Ingestor) PublishConfig(gw string, envelope []byte) error {
	env, err := telemetry.DecodeConfig(envelope)
	if err != nil {
		return err
	}
	if env.Gateway != gw {
		return fmt.Errorf("the envelope is addressed to %q, not %q", env.Gateway, gw)
	}
	return in.publishRetained(context.Background(), telemetry.ConfigTopic(gw), envelope)
}

// PublishRelease publishes a signed release manifest retained on gateway
// gw's release topic (docs/fleet.md, Binary updates) and waits until the
// broker has taken it, while ctx lasts. The manifest must decode and be
// for gw; its signature is the gateway's to check. It is what a rollout
// calls for each gateway it reaches.
func (in *Ingestor) PublishRelease(ctx context.Context, gw string, manifest []byte) error {
	rel, err := telemetry.DecodeRelease(manifest)
	if err != nil {
		return err
	}
	if !rel.For(gw) {
		return fmt.Errorf("the release is for %v, not %q", rel.Gateways, gw)
	}
	return in.publishRetained(ctx, telemetry.ReleaseTopic(gw), manifest)
}

// publishRetained publishes payload retained on topic with QoS 1 and waits
// until the broker has taken it, at most 30 s.
func (in *Ingestor) publishRetained(ctx context.Context, topic string, payload []byte) error {
	if in.o.Link != nil {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return in.o.Link.PublishRetained(ctx, topic, payload)
	}
	if !in.Connected() {
		return errors.New("not connected to the broker")
	}
	tok := in.client.Publish(topic, 1, true, payload)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return fmt.Errorf("the broker did not take the message: %w", ctx.Err())
	}
}

// reject counts and logs a refused message; the log is throttled per reason
// so a flood cannot fill the disk.
func (in *Ingestor) reject(reason, topic, gw string, err error) {
	in.m.rejected.WithLabelValues(reason).Inc()
	if ok, n := in.throttle.Allow(reason); ok {
		in.log.Warn("message refused", "reason", reason, "topic", topic, "gateway", gw, "err", err,
			"similar_suppressed", n)
	}
}
