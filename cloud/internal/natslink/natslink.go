// Package natslink carries the gateways' batches from a NATS JetStream
// stream to the cloud's intake, and the cloud's acks back, so several cloud
// replicas share a province's gateways without writing or judging a batch
// twice (docs/scaling.md).
//
// Gateways speak MQTT to any node of a NATS cluster (its MQTT listener):
// fieldwatch/v1/<gw>/up becomes the subject fieldwatch.v1.<gw>.up. One
// replicated stream takes every such subject and rewrites it, on the way
// in, to fw.p.<k>.<gw>, where k = partition(N, gw) is a hash of the
// gateway's id (the stream's subject transform). Each partition k has one
// durable pull consumer with a priority group whose policy pins one client
// at a time: every replica pulls from every partition, the server hands
// a partition's messages to one of them only, and when that replica stops
// asking (it died, or lost its connection) for pinned_ttl the server pins
// another. So a gateway's batches go to one replica at a time, in order;
// those the dead replica held unacknowledged come again after ack_wait.
//
// Pinning alone gives every partition to the first replica that asks. So
// the replicas also share them out: each keeps a heartbeat key in a
// key-value bucket (expiring after pinned_ttl), and partition k belongs to
// the live replica that ranks highest for k by rendezvous hashing. A
// replica pulls only the partitions that belong to it; one that learns a
// partition is now another's (a replica joined) stops pulling, finishes
// what it holds and unpins it, so the new owner gets it at once. The pin
// stays the guarantee: while two replicas' views differ, the server still
// hands a partition to one of them only.
//
// Acks go back over core NATS on fieldwatch.v1.<gw>.ack, which the
// gateway's MQTT subscription receives. State messages and command replies
// are read by every replica (core subscriptions), so each replica's
// registry hears every gateway's state and any replica may send a
// command. Retained messages (desired configs, release manifests) go
// through the cluster's MQTT listeners (fleet.go).
package natslink

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Defaults of Options.
const (
	DefaultStream     = "FIELDWATCH_UP"
	DefaultPartitions = 16
	DefaultAckWait    = 60 * time.Second
	DefaultPinnedTTL  = 15 * time.Second
	DefaultMaxPending = 256
	DefaultMaxAge     = 7 * 24 * time.Hour
	// Group is the priority group every replica pulls in.
	Group = "ingest"
)

// Options configure a Link.
type Options struct {
	URLs     []string
	Username string
	Password string
	TLS      *tls.Config
	Name     string // the connection's name, shown by the server (the replica)
	// Stream is the stream's name; Partitions how many partitions (and
	// consumers) it has — fixed once the stream exists: changing it moves
	// gateways between partitions, so the stream is refused, not changed.
	Stream     string
	Partitions int
	// Replicas is the stream's replication (1 or 3; a cluster of three
	// nodes survives one lost with 3).
	Replicas int
	// AckWait: a message not finished by then is delivered again.
	// PinnedTTL: a replica that has not asked for more for this long loses
	// its partitions. MaxPending bounds a partition's messages out at once.
	AckWait    time.Duration
	PinnedTTL  time.Duration
	MaxPending int
	// MaxAge bounds how long a batch waits in the stream for a replica.
	MaxAge time.Duration
	// MQTT, when its URLs are set, is how retained messages are published
	// (fleet.go).
	MQTT MQTTOptions
	Log  *slog.Logger
}

func (o *Options) defaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.PinnedTTL <= 0 {
		o.PinnedTTL = DefaultPinnedTTL
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Link is the intake's NATS link (ingest.Link).
type Link struct {
	o     Options
	log   *slog.Logger
	id    string // this replica in the members bucket: Name and a random suffix
	mu    sync.Mutex
	nc    *nats.Conn
	ready atomic.Bool // the stream and consumers are set up
	// members are the live replicas, sorted; mine says which partitions
	// they give this replica; changed is closed (and replaced) when they
	// change.
	members []string
	mine    []bool
	changed chan struct{}
	owned   atomic.Int32 // partitions this replica pulls
	// acquired is when this replica began to pull each partition (zero:
	// it does not).
	acquired []time.Time
	// states is the alert-state bucket (handoff.go), set by Run.
	states  jetstream.KeyValue
	take    func(gw string, state []byte) error
	saves   map[string][]byte // gateway → newest state not yet put
	saveReq chan struct{}
	fleet   fleet // the MQTT client for retained messages (fleet.go)
}

var _ ingest.Link = (*Link)(nil)

// New prepares a link; Run connects.
func New(o Options) *Link {
	o.defaults()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, o.Name) + "-" + hex.EncodeToString(b[:])
	return &Link{o: o, log: o.Log.With("component", "natslink", "replica", id), id: strings.TrimPrefix(id, "-"),
		changed: make(chan struct{}), acquired: make([]time.Time, o.Partitions), saves: map[string][]byte{},
		saveReq: make(chan struct{}, 1)}
}

// Partition is gateway gw's partition of n, as the stream's partition()
// transform computes it: FNV-1a (32 bits) of the subject token, modulo n.
func Partition(gw string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(strings.ReplaceAll(gw, ".", "//")))
	return int(h.Sum32() % uint32(n))
}

// Serves reports whether this replica pulls gw's partition now, and since
// when: the early-warning engine judges only those gateways' silence
// (alert/engine.Serves).
func (l *Link) Serves(gw string) (bool, time.Time) {
	k := Partition(gw, l.o.Partitions)
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.acquired[k]
	return !t.IsZero(), t
}

func (l *Link) setAcquired(k int, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acquired[k] = t
}

// MembersBucket is the key-value bucket of the replicas' heartbeats.
func (l *Link) MembersBucket() string { return l.o.Stream + "_REPLICAS" }

// Owner is the member partition k belongs to: the highest rendezvous
// hash of (member, k). Each member's share moves only when members come
// or go.
func Owner(members []string, k int) string {
	var best string
	var top uint64
	for _, m := range members {
		// A cryptographic hash: ids that differ in a few characters must
		// not rank alike for every partition (FNV's do).
		h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", m, k))
		if v := binary.BigEndian.Uint64(h[:8]); best == "" || v > top {
			best, top = m, v
		}
	}
	return best
}

// wants reports whether partition k belongs to this replica, and a
// channel closed when that may change.
func (l *Link) wants(k int) (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mine != nil && l.mine[k], l.changed
}

func (l *Link) setMembers(ms []string) {
	slices.Sort(ms)
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Equal(ms, l.members) {
		return
	}
	l.log.Info("cloud replicas", "members", ms)
	l.members = ms
	l.mine = make([]bool, l.o.Partitions)
	for k := range l.mine {
		l.mine[k] = Owner(ms, k) == l.id
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// heartbeat keeps this replica's key in the members bucket and reads the
// others', every third of pinned_ttl, until ctx is done; the key is
// deleted on the way out so the others take its partitions at once.
func (l *Link) heartbeat(ctx context.Context, kv jetstream.KeyValue) {
	every := max(l.o.PinnedTTL/3, 200*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = kv.Delete(dctx, l.id)
	}()
	for {
		cctx, cancel := context.WithTimeout(ctx, every)
		_, err := kv.Put(cctx, l.id, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		if err == nil {
			var keys []string
			keys, err = kv.Keys(cctx)
			if errors.Is(err, jetstream.ErrNoKeysFound) {
				err = nil
			}
			if err == nil {
				if !slices.Contains(keys, l.id) {
					keys = append(keys, l.id)
				}
				l.setMembers(keys)
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			// Keep the partitions held: the pin, not this view, is what
			// keeps two replicas from one partition.
			l.log.Warn("cannot refresh the replicas' heartbeats", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Subjects.
const (
	upSubjects    = "fieldwatch.v1.*.up"
	stateSubjects = "fieldwatch.v1.*.state"
	partPrefix    = "fw.p."
)

// StreamConfig is the stream the link sets up.
func (l *Link) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        l.o.Stream,
		Description: "Fieldwatch gateways' batches, partitioned by gateway (docs/scaling.md)",
		Subjects:    []string{upSubjects},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: upSubjects,
			Destination: fmt.Sprintf("%s{{partition(%d,1)}}.{{wildcard(1)}}", partPrefix, l.o.Partitions)},
		// A batch leaves the stream once a replica has finished it.
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  l.o.Replicas,
		MaxAge:    l.o.MaxAge,
		Discard:   jetstream.DiscardOld,
	}
}

// ConsumerName is partition k's consumer.
func ConsumerName(k int) string { return fmt.Sprintf("ingest-p%d", k) }

// ConsumerConfig is partition k's consumer.
func (l *Link) ConsumerConfig(k int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ConsumerName(k),
		Description:    fmt.Sprintf("partition %d of %d, pinned to one cloud replica at a time", k, l.o.Partitions),
		FilterSubject:  fmt.Sprintf("%s%d.*", partPrefix, k),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        l.o.AckWait,
		MaxAckPending:  l.o.MaxPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PinnedTTL:      l.o.PinnedTTL,
		PriorityGroups: []string{Group},
	}
}

// ID is this replica's name among the members.
func (l *Link) ID() string { return l.id }

// Owned is how many partitions this replica pulls now.
func (l *Link) Owned() int { return int(l.owned.Load()) }

// Connected reports whether the connection is up and the stream set up.
func (l *Link) Connected() bool {
	l.mu.Lock()
	nc := l.nc
	l.mu.Unlock()
	return nc != nil && nc.IsConnected() && l.ready.Load()
}

// Publish sends payload on an MQTT topic's subject (fieldwatch/v1/<gw>/ack
// → fieldwatch.v1.<gw>.ack).
func (l *Link) Publish(topic string, payload []byte) error {
	l.mu.Lock()
	nc := l.nc
	l.mu.Unlock()
	if nc == nil {
		return errors.New("not connected to NATS")
	}
	return nc.Publish(Subject(topic), payload)
}

// Run connects, sets up the stream and the partitions' consumers, and
// delivers until ctx is done.
func (l *Link) Run(ctx context.Context, deliver func(ingest.Message)) error {
	opts := []nats.Option{nats.Name(l.o.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				l.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { l.log.Info("reconnected to NATS", "server", nc.ConnectedUrl()) }),
	}
	if l.o.Username != "" {
		opts = append(opts, nats.UserInfo(l.o.Username, l.o.Password))
	}
	if l.o.TLS != nil {
		opts = append(opts, nats.Secure(l.o.TLS))
	}
	nc, err := nats.Connect(strings.Join(l.o.URLs, ","), opts...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	l.startFleet()
	defer l.stopFleet()
	l.mu.Lock()
	l.nc = nc
	l.mu.Unlock()
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	// The cluster may not have elected a leader yet, or a node may be
	// down: set up again until it works or the cloud stops.
	for attempt := 0; ; attempt++ {
		err := l.setup(ctx, js)
		if err == nil {
			break
		}
		if attempt == 0 || attempt%20 == 0 {
			l.log.Warn("cannot set up the JetStream stream yet; trying again", "stream", l.o.Stream, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	kv, err := l.openBucket(ctx, js, jetstream.KeyValueConfig{Bucket: l.MembersBucket(),
		Description: "live cloud replicas (natslink)", TTL: l.o.PinnedTTL, Replicas: l.o.Replicas,
		Storage: jetstream.MemoryStorage})
	if err != nil {
		return nil // ctx done
	}
	states, err := l.openBucket(ctx, js, jetstream.KeyValueConfig{Bucket: l.StatesBucket(),
		Description: "each gateway's early-warning state, for the next replica to hold it (natslink)",
		Replicas:    l.o.Replicas, Storage: jetstream.FileStorage, History: 1})
	if err != nil {
		return nil // ctx done
	}
	l.mu.Lock()
	l.states = states
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.heartbeat(ctx, kv) }()
	go func() { defer wg.Done(); l.saveLoop(ctx) }()
	defer wg.Wait()
	sub, err := nc.Subscribe(stateSubjects, func(m *nats.Msg) { deliver(coreMsg{m}) })
	if err != nil {
		return fmt.Errorf("nats: subscribing to states: %w", err)
	}
	defer sub.Unsubscribe()
	replies, err := l.subscribeReplies(nc, deliver)
	if err != nil {
		return fmt.Errorf("nats: subscribing to command replies: %w", err)
	}
	defer replies.Unsubscribe()
	l.ready.Store(true)
	defer l.ready.Store(false)
	l.log.Info("consuming the gateways' batches from JetStream", "stream", l.o.Stream, "partitions", l.o.Partitions,
		"replicas", l.o.Replicas, "server", nc.ConnectedUrl())
	for k := 0; k < l.o.Partitions; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.consume(ctx, js, k, deliver)
		}()
	}
	<-ctx.Done()
	return nil
}

// openBucket opens (or creates) a key-value bucket, trying again until it
// works or ctx is done.
func (l *Link) openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		kv, err := js.CreateOrUpdateKeyValue(cctx, cfg)
		cancel()
		if err == nil {
			return kv, nil
		}
		if attempt%20 == 0 {
			l.log.Warn("cannot open a key-value bucket yet; trying again", "bucket", cfg.Bucket, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// setup creates the stream and the consumers, or checks that they are as
// this replica would make them.
func (l *Link) setup(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	want := l.StreamConfig()
	s, err := js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if s, err = js.CreateStream(ctx, want); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("creating stream %s: %w", want.Name, err)
		}
		if err != nil { // another replica made it first
			if s, err = js.Stream(ctx, want.Name); err != nil {
				return err
			}
		}
	case err != nil:
		return err
	}
	if tr := s.CachedInfo().Config.SubjectTransform; tr == nil || tr.Destination != want.SubjectTransform.Destination {
		return fmt.Errorf("stream %s exists with another partitioning (%v) than nats.partitions = %d asks; "+
			"all replicas must agree, and changing it moves gateways between partitions", want.Name, tr, l.o.Partitions)
	}
	for k := 0; k < l.o.Partitions; k++ {
		if _, err := s.CreateOrUpdateConsumer(ctx, l.ConsumerConfig(k)); err != nil {
			return fmt.Errorf("consumer %s: %w", ConsumerName(k), err)
		}
	}
	return nil
}

// consume pulls partition k in the priority group while it belongs to
// this replica, until ctx is done; the server delivers only while this
// replica holds the pin.
func (l *Link) consume(ctx context.Context, js jetstream.JetStream, k int, deliver func(ingest.Message)) {
	// held: this replica took the partition (its gateways' alert states
	// loaded, its time of taking noted) and has not given it up. A pull
	// that fails (a node lost) is started again without taking it anew:
	// the engine's state is newer than the bucket's.
	held := false
	let := func() {
		if held {
			l.setAcquired(k, time.Time{})
			l.owned.Add(-1)
			held = false
		}
	}
	defer let()
	for ctx.Err() == nil {
		mine, changed := l.wants(k)
		if !mine {
			let()
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			continue
		}
		if !held {
			l.owned.Add(1)
			l.takeStates(ctx, k) // before its batches are judged
			l.setAcquired(k, time.Now())
			held = true
		}
		err := l.pull(ctx, js, k, deliver)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.log.Warn("partition consumer stopped; starting it again", "partition", k, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// pull hands partition k's messages over until ctx is done, the partition
// goes to another replica (nil), or pulling fails.
func (l *Link) pull(ctx context.Context, js jetstream.JetStream, k int, deliver func(ingest.Message)) error {
	expiry := max(l.o.PinnedTTL/3, time.Second) // asked again well within pinned_ttl
	c, err := js.Consumer(ctx, l.o.Stream, ConsumerName(k))
	if err != nil {
		return err
	}
	it, err := c.Messages(jetstream.PullPriorityGroup(Group), jetstream.PullExpiry(expiry),
		jetstream.PullMaxMessages(min(l.o.MaxPending, 64)))
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next(jetstream.NextMaxWait(expiry))
		switch {
		case errors.Is(err, nats.ErrTimeout):
		case err != nil:
			return err
		default:
			deliver(&jsMsg{m: m, topic: Topic(m.Subject()), log: l.log})
		}
		if mine, _ := l.wants(k); !mine {
			l.release(ctx, js, k, it, deliver)
			return nil
		}
	}
}

// release stops pulling partition k, hands over what was delivered
// already, and unpins the partition so its new owner gets it at once.
func (l *Link) release(ctx context.Context, js jetstream.JetStream, k int, it jetstream.MessagesContext,
	deliver func(ingest.Message)) {
	it.Drain()
	for {
		m, err := it.Next()
		if err != nil {
			break
		}
		deliver(&jsMsg{m: m, topic: Topic(m.Subject()), log: l.log})
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, l.o.Stream)
	if err == nil {
		err = s.UnpinConsumer(cctx, ConsumerName(k), Group)
	}
	l.log.Info("partition handed to another replica", "partition", k, "unpinned", err == nil)
}

// Subject is an MQTT topic's NATS subject, as NATS's MQTT listener maps
// it: "/" → ".", "." inside a level → "//" (a gateway id may hold dots).
func Subject(topic string) string {
	levels := strings.Split(topic, "/")
	for i, lv := range levels {
		levels[i] = strings.ReplaceAll(lv, ".", "//")
	}
	return strings.Join(levels, ".")
}

// Topic is the MQTT topic of a subject: fieldwatch.v1.<gw>.<kind>, or a
// partitioned fw.p.<k>.<gw> (an up topic). A subject of neither shape
// gives a topic the intake refuses by name.
func Topic(subject string) string {
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		tokens[i] = strings.ReplaceAll(t, "//", ".")
	}
	if len(tokens) == 4 && tokens[0] == "fw" && tokens[1] == "p" {
		return telemetry.UpTopic(tokens[3])
	}
	return strings.Join(tokens, "/")
}

// jsMsg is a batch from a partition's consumer.
type jsMsg struct {
	m     jetstream.Msg
	topic string
	log   *slog.Logger
	once  sync.Once
}

func (j *jsMsg) Topic() string   { return j.topic }
func (j *jsMsg) Payload() []byte { return j.m.Data() }
func (j *jsMsg) Retained() bool  { return false }

// Finish acknowledges the message, or asks for it again shortly when it
// was not stored (from whichever replica then holds the partition).
func (j *jsMsg) Finish(ok bool) {
	j.once.Do(func() {
		var err error
		if ok {
			err = j.m.Ack()
		} else {
			err = j.m.NakWithDelay(time.Second)
		}
		if err != nil {
			// Not finished: the stream delivers it again after ack_wait,
			// and a replay is recognised by its commit record.
			j.log.Debug("cannot finish a JetStream message", "topic", j.topic, "ok", ok, "err", err)
		}
	})
}

// coreMsg is a state message from the core subscription.
type coreMsg struct{ m *nats.Msg }

func (c coreMsg) Topic() string   { return Topic(c.m.Subject) }
func (c coreMsg) Payload() []byte { return c.m.Data }
func (c coreMsg) Retained() bool  { return false }
