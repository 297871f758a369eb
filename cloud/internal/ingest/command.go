package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Remote commands (docs/fleet.md): the cloud publishes a signed command on
// the gateway's cmd topic (QoS 1, not retained) and hands the reply that
// comes back on the gateway's reply topic to whoever waits for it.

// waiters are the commands awaiting their reply, by gateway and id.
type waiters struct {
	mu sync.Mutex
	m  map[[2]string]chan telemetry.CommandReply
}

func (w *waiters) add(gw, id string) (chan telemetry.CommandReply, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := [2]string{gw, id}
	if w.m == nil {
		w.m = map[[2]string]chan telemetry.CommandReply{}
	}
	if _, ok := w.m[k]; ok {
		return nil, fmt.Errorf("command %s to %s is already waiting for its reply", id, gw)
	}
	ch := make(chan telemetry.CommandReply, 1)
	w.m[k] = ch
	return ch, nil
}

func (w *waiters) remove(gw, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, [2]string{gw, id})
}

// deliver hands r to its waiter; false when none waits.
func (w *waiters) deliver(gw string, r telemetry.CommandReply) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.m[[2]string{gw, r.ID}]
	if ok {
		select {
		case ch <- r:
		default: // a second reply to one command
		}
	}
	return ok
}

// SendCommand publishes a signed command to gateway gw and waits for its
// reply while ctx lasts. The command must decode and name gw; its
// signature is the gateway's to check.
func (in *Ingestor) SendCommand(ctx context.Context, gw string, cmd []byte) (telemetry.CommandReply, error) {
	c, err := telemetry.DecodeCommand(cmd)
	if err != nil {
		return telemetry.CommandReply{}, err
	}
	if c.Gateway != gw {
		return telemetry.CommandReply{}, fmt.Errorf("the command is addressed to %q, not %q", c.Gateway, gw)
	}
	if !in.Connected() {
		return telemetry.CommandReply{}, errors.New("not connected to the broker")
	}
	ch, err := in.replies.add(gw, c.ID)
	if err != nil {
		return telemetry.CommandReply{}, err
	}
	defer in.replies.remove(gw, c.ID)
	if in.o.Link != nil {
		// On NATS: a core message, which the gateway's MQTT subscription
		// receives (at QoS 0); the reply comes back to every replica.
		if err := in.o.Link.Publish(telemetry.CmdTopic(gw), cmd); err != nil {
			return telemetry.CommandReply{}, err
		}
	} else {
		tok := in.client.Publish(telemetry.CmdTopic(gw), 1, false, cmd)
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return telemetry.CommandReply{}, err
			}
		case <-ctx.Done():
			return telemetry.CommandReply{}, fmt.Errorf("the broker did not take the command: %w", ctx.Err())
		}
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return telemetry.CommandReply{}, fmt.Errorf("no reply from %s: %w", gw, ctx.Err())
	}
}

// onReply takes a reply from a gateway's reply topic (paho's goroutine).
func (in *Ingestor) onReply(_ mqtt.Client, msg mqtt.Message) {
	in.takeReply(msg.Topic(), msg.Payload())
}

// takeReply hands a reply to the command waiting for it here, if any.
func (in *Ingestor) takeReply(topic string, payload []byte) {
	gw, kind, err := telemetry.ParseTopic(topic)
	if err != nil || kind != "reply" {
		in.reject("topic", topic, "", fmt.Errorf("not a reply topic: %v", err))
		return
	}
	r, err := telemetry.DecodeReply(payload)
	if err != nil {
		in.reject("bad_reply", topic, gw, err)
		return
	}
	if r.Gateway != gw {
		in.reject("bad_reply", topic, gw, fmt.Errorf("a reply from %q on %s's topic", r.Gateway, gw))
		return
	}
	if !in.replies.deliver(gw, r) {
		in.log.Info("command reply nobody waits for (timed out, or another replica's)", "gateway", gw, "id", r.ID,
			"result", r.Result, "reason", r.Reason)
	}
}
