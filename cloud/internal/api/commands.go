package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// CommandSender publishes a signed command to a gateway and waits for its
// reply while ctx lasts (ingest.Ingestor.SendCommand).
type CommandSender func(ctx context.Context, gateway string, cmd []byte) (telemetry.CommandReply, error)

// ErrCommandsUnsupported is what a CommandSender returns when this cloud
// cannot carry commands (answered 501).
var ErrCommandsUnsupported = errors.New("remote commands are not supported by this cloud's link")

// CommandWait bounds how long POST …/commands waits for the gateway's
// reply (less when the command expires sooner).
const CommandWait = 30 * time.Second

// MaxCommandHistory is how many commands the cloud remembers, all
// gateways together, in memory (lost at a restart; the log keeps them).
const MaxCommandHistory = 500

// WithCommandSender enables POST and GET /api/v1/stations/{id}/commands.
func (a *API) WithCommandSender(s CommandSender) *API {
	a.sendCommand = s
	return a
}

func (a *API) registerCommands(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/stations/{id}/commands", a.guard("station_commands", apitoken.Operator, a.postCommand))
	mux.HandleFunc("GET /api/v1/stations/{id}/commands", a.guard("station_commands", apitoken.Operator, a.getCommands))
}

// CommandRecord is a command sent and what came of it: the answer of POST
// …/commands and an entry of GET …/commands.
type CommandRecord struct {
	ID      string    `json:"id"`
	Gateway string    `json:"gateway"`
	Kind    string    `json:"kind"`
	FromSeq uint64    `json:"from_seq,omitempty"`
	ToSeq   uint64    `json:"to_seq,omitempty"`
	Device  string    `json:"device,omitempty"`
	Key     string    `json:"key"`
	By      string    `json:"by"` // the API token's name
	Sent    time.Time `json:"sent"`
	// Reply is the gateway's answer; Error why there is none (no reply in
	// time, the broker unreachable).
	Reply *telemetry.CommandReply `json:"reply,omitempty"`
	Error string                  `json:"error,omitempty"`
}

// commandLog is the recent commands, oldest first.
type commandLog struct {
	mu  sync.Mutex
	all []CommandRecord
}

func (l *commandLog) add(r CommandRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, r)
	if n := len(l.all); n > MaxCommandHistory {
		l.all = append([]CommandRecord(nil), l.all[n-MaxCommandHistory:]...)
	}
}

func (l *commandLog) of(gw string) []CommandRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []CommandRecord{}
	for i := len(l.all) - 1; i >= 0; i-- { // newest first
		if l.all[i].Gateway == gw {
			out = append(out, l.all[i])
		}
	}
	return out
}

// postCommand takes a signed command (fieldwatch-cloud fleet command),
// publishes it to its gateway, waits for the reply and returns it. The
// cloud checks its form, address and expiry, not its signature (it holds
// no key; the gateway does). Audited: the command and its outcome are
// logged with the token's name.
func (a *API) postCommand(r *http.Request) (any, error) {
	if a.sendCommand == nil {
		return nil, &Error{Status: http.StatusNotImplemented, Msg: "remote commands are not available on this cloud"}
	}
	id := r.PathValue("id")
	if err := telemetry.CheckName("gateway", id); err != nil {
		return nil, badParam("id", "%v", err)
	}
	body, err := readBody(r, telemetry.MaxCommandBytes)
	if err != nil {
		return nil, err
	}
	c, err := telemetry.DecodeCommand(body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Msg: "body: " + err.Error()}
	}
	if c.Gateway != id {
		return nil, badParam("id", "the command is addressed to %q", c.Gateway)
	}
	now := time.Now()
	if !now.Before(c.Expires) {
		return nil, &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("body: the command expired at %s", c.Expires.Format(time.RFC3339))}
	}
	rec := CommandRecord{ID: c.ID, Gateway: id, Kind: c.Kind, FromSeq: c.FromSeq, ToSeq: c.ToSeq, Device: c.Device,
		Key: c.Key, By: caller(r).Name, Sent: now.UTC()}
	a.log.Info("remote command sent", "gateway", id, "id", c.ID, "kind", c.Kind, "from_seq", c.FromSeq, "to_seq", c.ToSeq,
		"device", c.Device, "key", c.Key, "by", rec.By)
	ctx, cancel := context.WithTimeout(r.Context(), min(CommandWait, c.Expires.Sub(now)))
	defer cancel()
	reply, err := a.sendCommand(ctx, id, body)
	if err != nil {
		rec.Error = err.Error()
		a.commands.add(rec)
		a.log.Warn("remote command: no reply", "gateway", id, "id", c.ID, "kind", c.Kind, "by", rec.By, "err", err)
		switch {
		case errors.Is(err, ErrCommandsUnsupported):
			return nil, &Error{Status: http.StatusNotImplemented, Msg: err.Error()}
		case errors.Is(err, context.DeadlineExceeded):
			return nil, &Error{Status: http.StatusGatewayTimeout, Msg: err.Error()}
		}
		return nil, &Error{Status: http.StatusServiceUnavailable, Msg: "cannot send: " + err.Error()}
	}
	rec.Reply = &reply
	a.commands.add(rec)
	a.log.Info("remote command reply", "gateway", id, "id", c.ID, "kind", c.Kind, "result", reply.Result,
		"reason", reply.Reason, "error", reply.Error, "message", reply.Message, "by", rec.By)
	return rec, nil
}

// getCommands lists the commands sent to a gateway since the cloud
// started, newest first.
func (a *API) getCommands(r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := telemetry.CheckName("gateway", id); err != nil {
		return nil, badParam("id", "%v", err)
	}
	return a.commands.of(id), nil
}
