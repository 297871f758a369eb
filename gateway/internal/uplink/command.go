package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Remote commands (gateway/internal/command, docs/fleet.md): the uplink
// subscribes to the gateway's cmd topic, publishes the replies on its
// reply topic, and sends a range of acknowledged items again on request,
// through the rewind of resend.go.

// subscribeCommands subscribes to the gateway's cmd topic (QoS 1; not
// retained, so nothing arrives from before the connection). A broker whose
// ACL predates remote commands refuses it: logged, the link stays.
func (u *Uplink) subscribeCommands() {
	u.subscribeOptional(telemetry.CmdTopic(u.o.Gateway), u.o.OnCommand, "remote commands")
}

// PublishReply publishes a command's reply on the gateway's reply topic
// (QoS 1, not retained) and waits until the broker has taken it, at most
// 10 s.
func (u *Uplink) PublishReply(payload []byte) error {
	if !u.Connected() {
		return errors.New("not connected to the broker")
	}
	tok := u.conn.client.Publish(telemetry.ReplyTopic(u.o.Gateway), 1, false, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("the broker did not take the reply within 10s")
	}
	return tok.Error()
}

// ResendResult is what a resend command did.
type ResendResult struct {
	From, To uint64 // the items sent again
	Items    uint64
}

// ErrNotKept refuses a resend of items the buffer no longer holds.
var ErrNotKept = errors.New("no longer kept")

type resendRequest struct {
	from, to uint64
	done     chan resendReply
}

type resendReply struct {
	res ResendResult
	err error
}

// Resend sends the acknowledged items from … to again (a resend command),
// from what the buffer keeps (buffer.keep_acked); the cloud recognises
// them and stores nothing twice. A range that reaches below the oldest
// item kept is refused (ErrNotKept), one beyond the items acknowledged
// too (they are being sent anyway). It runs on Run's goroutine, which
// owns what is in flight, and waits for it while ctx lasts.
func (u *Uplink) Resend(ctx context.Context, from, to uint64) (ResendResult, error) {
	req := resendRequest{from: from, to: to, done: make(chan resendReply, 1)}
	select {
	case u.resends <- req:
	case <-ctx.Done():
		return ResendResult{}, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		return ResendResult{}, ctx.Err()
	}
}

// resendRange serves Resend on Run's goroutine. The cursor goes back to
// from: everything from there to the cursor is sent again (what follows
// to is acknowledged at once by the cloud, which has it).
func (u *Uplink) resendRange(from, to uint64) (ResendResult, error) {
	oldest, acked := u.o.Buffer.Kept()
	switch {
	case from < oldest:
		return ResendResult{}, fmt.Errorf("items %d … %d: %w; the buffer keeps %d … %d (buffer.keep_acked)", from, to,
			ErrNotKept, oldest, acked)
	case to > acked:
		return ResendResult{}, fmt.Errorf("items %d … %d are not all acknowledged (the cloud confirmed up to %d); "+
			"what is not is being sent anyway", from, to, acked)
	}
	got, missing, err := u.o.Buffer.Rewind(from)
	if err != nil {
		return ResendResult{}, err
	}
	if missing > 0 || got != from {
		return ResendResult{}, fmt.Errorf("items from %d: %w (the buffer now starts at %d)", from, ErrNotKept, got)
	}
	u.m.resend.rewinds.Inc()
	u.rewound.Add(acked + 1 - from)
	u.log.Warn("resending acknowledged items on a remote command", "from_seq", from, "to_seq", to, "rewound_to_seq", acked)
	u.acked = nil
	u.restart("resend command")
	return ResendResult{From: from, To: to, Items: to + 1 - from}, nil
}
