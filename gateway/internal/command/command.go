// Package command is the gateway's side of remote commands (docs/fleet.md,
// Remote commands): it takes the signed commands the cloud publishes on
// the gateway's cmd topic, refuses what is malformed, addressed to another
// gateway, not signed by a trusted fleet key, expired or replayed, runs the
// rest (restart, resend a range, read a device) and answers each on the
// gateway's reply topic. Every command is logged and counted by result.
package command

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/gateway/internal/uplink"
	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Host is the running gateway, as the command handler sees it.
type Host interface {
	// Reply publishes a reply on the gateway's reply topic.
	Reply(payload []byte) error
	// Resend sends acknowledged items from … to again (uplink.Resend).
	Resend(ctx context.Context, from, to uint64) (uplink.ResendResult, error)
	// Read polls a device once and returns its readings.
	Read(ctx context.Context, device string) ([]telemetry.Reading, error)
	// Restart makes the gateway exit with ExitRestart (after the reply).
	Restart()
}

// Bounds of the commands' work.
const (
	// MaxSeen is how many command ids the gateway remembers to refuse a
	// replay (with their expiry, in fleet.dir/commands.json).
	MaxSeen = 256
	// MaxSkew is how far in the future a command's issued time may be on
	// the gateway's clock.
	MaxSkew = 5 * time.Minute
	// ReadTimeout bounds a read command's poll, ResendTimeout a resend.
	ReadTimeout   = 20 * time.Second
	ResendTimeout = 10 * time.Second
)

// Trust is what the handler checks commands against, from the config
// running (the local file's fleet section).
type Trust struct {
	Gateway string
	Keys    []ed25519.PublicKey
	// Dir is where the ids of the commands taken are kept
	// (fleet.dir/commands.json), so a restart does not forget them.
	Dir string
}

type seen struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// Handler takes remote commands. Offer hands it what arrives; Run runs
// them, one at a time.
type Handler struct {
	log     *slog.Logger
	results *prometheus.CounterVec
	in      chan []byte
	now     func() time.Time

	mu      sync.Mutex
	trust   Trust
	loaded  string // the Dir whose commands.json was read
	seen    []seen
	counts  map[string]uint64
	dropped prometheus.Counter
}

// New returns a handler whose metrics go on reg.
func New(log *slog.Logger, reg prometheus.Registerer) *Handler {
	h := &Handler{log: log.With("component", "command"), in: make(chan []byte, 8), now: time.Now, counts: map[string]uint64{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_gateway_commands_total",
			Help: "Remote commands by kind and result: ok, failed, or refused: malformed, other_gateway, unknown_key, bad_signature, expired, not_yet_valid, replayed."},
			[]string{"kind", "result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldwatch_gateway_commands_dropped_total",
			Help: "Remote commands dropped unread because eight were already waiting."})}
	reg.MustRegister(h.results, h.dropped)
	return h
}

// SetTrust sets what commands are checked against (at each config start).
func (h *Handler) SetTrust(t Trust) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trust = t
	if t.Dir != "" && h.loaded != t.Dir {
		h.loaded = t.Dir
		b, err := os.ReadFile(filepath.Join(t.Dir, "commands.json"))
		if err == nil {
			var s []seen
			if err := json.Unmarshal(b, &s); err != nil {
				h.log.Error("commands.json unreadable; ids of earlier commands forgotten", "err", err)
			}
			h.seen = append(s, h.seen...)
		}
	}
}

// Offer hands the handler a command from the cmd topic; it never blocks
// (beyond eight waiting, a command is dropped and counted; the operator's
// tool sees no reply).
func (h *Handler) Offer(payload []byte) {
	select {
	case h.in <- payload:
	default:
		h.dropped.Inc()
		h.log.Warn("remote command dropped: too many waiting")
	}
}

// Counts reports the commands handled by result, for /status.
func (h *Handler) Counts() map[string]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.counts)
}

// Run handles offered commands until ctx is done; host() is the gateway
// running at the time, nil between setups (a command is then refused as
// failed).
func (h *Handler) Run(ctx context.Context, host func() Host) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-h.in:
			hs := host()
			r, restart := h.handle(ctx, hs, p)
			h.reply(hs, r)
			if restart && hs != nil {
				hs.Restart()
			}
		}
	}
}

// refusal is a command not taken.
type refusal struct {
	reason string
	err    error
}

func (e *refusal) Error() string { return e.reason + ": " + e.err.Error() }

// handle checks and runs one command; restart says the gateway is to
// restart once the reply is out.
func (h *Handler) handle(ctx context.Context, host Host, payload []byte) (r telemetry.CommandReply, restart bool) {
	h.mu.Lock()
	t := h.trust
	h.mu.Unlock()
	r = telemetry.CommandReply{ID: telemetry.CommandID(payload), Gateway: t.Gateway}
	c, err := h.check(t, payload)
	r.Kind = c.Kind
	if err != nil {
		var ref *refusal
		errors.As(err, &ref)
		r.Result, r.Reason, r.Error = telemetry.ReplyRefused, ref.reason, ref.err.Error()
		h.count(c.Kind, ref.reason)
		h.log.Warn("remote command refused", "id", r.ID, "kind", c.Kind, "reason", ref.reason, "err", ref.err)
		return r, false
	}
	h.log.Info("remote command", "id", c.ID, "kind", c.Kind, "from_seq", c.FromSeq, "to_seq", c.ToSeq, "device", c.Device,
		"key", c.Key, "issued", c.Issued)
	if host == nil {
		err = errors.New("the gateway is between configurations; try again")
	} else {
		err = h.run(ctx, host, c, &r)
	}
	if err != nil {
		r.Result, r.Error = telemetry.ReplyFailed, err.Error()
		h.count(c.Kind, telemetry.ReplyFailed)
		h.log.Warn("remote command failed", "id", c.ID, "kind", c.Kind, "err", err)
		return r, false
	}
	r.Result = telemetry.ReplyOK
	h.count(c.Kind, telemetry.ReplyOK)
	return r, c.Kind == telemetry.CommandRestart
}

func (h *Handler) count(kind, result string) {
	if kind == "" {
		kind = "unknown"
	}
	h.results.WithLabelValues(kind, result).Inc()
	h.mu.Lock()
	h.counts[result]++
	h.mu.Unlock()
}

// check refuses what is not to be run, in order: form, address,
// signature, time, replay. A command that passes is remembered.
func (h *Handler) check(t Trust, payload []byte) (telemetry.Command, error) {
	c, err := telemetry.DecodeCommand(payload)
	if err != nil {
		return telemetry.Command{}, &refusal{telemetry.CmdMalformed, err}
	}
	if c.Gateway != t.Gateway {
		return c, &refusal{telemetry.CmdOtherGateway, fmt.Errorf("addressed to gateway %q, this is %q", c.Gateway, t.Gateway)}
	}
	if err := c.Verify(t.Keys); err != nil {
		reason := telemetry.CmdBadSignature
		if errors.Is(err, telemetry.ErrUnknownKey) {
			reason = telemetry.CmdUnknownKey
		}
		return c, &refusal{reason, fmt.Errorf("%w (key %s)", err, c.Key)}
	}
	now := h.now()
	if !now.Before(c.Expires) {
		return c, &refusal{telemetry.CmdExpired, fmt.Errorf("expired at %s; the gateway's clock says %s",
			c.Expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	if c.Issued.After(now.Add(MaxSkew)) {
		return c, &refusal{telemetry.CmdNotYetValid, fmt.Errorf("issued at %s, more than %v ahead of the gateway's clock (%s)",
			c.Issued.Format(time.RFC3339), MaxSkew, now.UTC().Format(time.RFC3339))}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.seen[:0]
	for _, s := range h.seen {
		if s.ID == c.ID {
			return c, &refusal{telemetry.CmdReplayed, fmt.Errorf("command %s was taken before", c.ID)}
		}
		if now.Before(s.Expires) {
			kept = append(kept, s) // an expired id needs no remembering: its command is refused as expired
		}
	}
	h.seen = append(kept, seen{ID: c.ID, Expires: c.Expires})
	if n := len(h.seen); n > MaxSeen {
		h.seen = h.seen[n-MaxSeen:]
	}
	if t.Dir != "" {
		// Written before the command runs, so a restart cannot run it twice.
		b, _ := json.Marshal(h.seen)
		if err := os.MkdirAll(t.Dir, 0o700); err != nil {
			h.log.Error("cannot keep the ids of remote commands", "err", err)
		} else if err := atomicfile.Write(filepath.Join(t.Dir, "commands.json"), b, 0o600); err != nil {
			h.log.Error("cannot keep the ids of remote commands", "err", err)
		}
	}
	return c, nil
}

// run carries out a checked command, filling in r.
func (h *Handler) run(ctx context.Context, host Host, c telemetry.Command, r *telemetry.CommandReply) error {
	switch c.Kind {
	case telemetry.CommandRestart:
		r.Message = "the gateway restarts now (exit status " + fmt.Sprint(ExitRestart) + ", started again by systemd)"
	case telemetry.CommandResend:
		ctx, cancel := context.WithTimeout(ctx, ResendTimeout)
		defer cancel()
		res, err := host.Resend(ctx, c.FromSeq, c.ToSeq)
		if err != nil {
			return err
		}
		r.From, r.To, r.Items = res.From, res.To, res.Items
		r.Message = fmt.Sprintf("sending items %d … %d again (and what was acknowledged after them)", res.From, res.To)
	case telemetry.CommandRead:
		ctx, cancel := context.WithTimeout(ctx, ReadTimeout)
		defer cancel()
		rs, err := host.Read(ctx, c.Device)
		if err != nil {
			return err
		}
		for _, x := range rs {
			r.Readings = append(r.Readings, telemetry.ReplyReading{Metric: x.Metric, Value: x.Value, Unit: x.Unit,
				Quality: x.Quality.String(), Time: x.Time.UTC()})
		}
		r.Message = fmt.Sprintf("%s: %d readings", c.Device, len(rs))
	}
	return nil
}

// reply publishes r; it cannot be sent when the link is down (the
// operator's tool then sees no reply, and the log has it).
func (h *Handler) reply(host Host, r telemetry.CommandReply) {
	r.Time = h.now().UTC()
	b, err := telemetry.EncodeReply(r)
	if err != nil {
		h.log.Error("cannot encode a command's reply", "id", r.ID, "err", err)
		return
	}
	if host == nil {
		return
	}
	if err := host.Reply(b); err != nil {
		h.log.Warn("cannot send a command's reply", "id", r.ID, "err", err)
	}
}

// ExitRestart is the gateway's exit status after a restart command: not
// 0 (which systemd's Restart=on-failure would leave stopped) nor a
// failure's 1; deploy/systemd's Restart=always starts it again.
const ExitRestart = 75
