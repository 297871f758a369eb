package command

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/gateway/internal/uplink"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// host records what the handler asks of the gateway.
type host struct {
	replies  []telemetry.CommandReply
	restarts int
	resends  [][2]uint64
}

func (h *host) Reply(p []byte) error {
	r, err := telemetry.DecodeReply(p)
	if err != nil {
		return err
	}
	h.replies = append(h.replies, r)
	return nil
}

func (h *host) Resend(_ context.Context, from, to uint64) (uplink.ResendResult, error) {
	h.resends = append(h.resends, [2]uint64{from, to})
	return uplink.ResendResult{From: from, To: to, Items: to - from + 1}, nil
}

func (h *host) Read(context.Context, string) ([]telemetry.Reading, error) {
	return []telemetry.Reading{{Device: "d", Metric: "t", Value: 20.5, Time: now}}, nil
}

func (h *host) Restart() { h.restarts++ }

func cmd(t *testing.T, priv ed25519.PrivateKey, c telemetry.Command) []byte {
	t.Helper()
	if c.Gateway == "" {
		c.Gateway = "gw1"
	}
	if c.Issued.IsZero() {
		c.Issued = now
	}
	if c.Expires.IsZero() {
		c.Expires = c.Issued.Add(time.Minute)
	}
	b, err := telemetry.EncodeCommand(telemetry.SignCommand(c, priv))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	trust := Trust{Gateway: "gw1", Keys: []ed25519.PublicKey{key(1).Public().(ed25519.PublicKey)}, Dir: dir}
	newHandler := func() (*Handler, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		h := New(slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
		h.now = func() time.Time { return now }
		h.SetTrust(trust)
		return h, reg
	}
	h, _ := newHandler()
	unsigned := cmd(t, key(1), telemetry.Command{ID: "u1", Kind: telemetry.CommandRestart})
	var m map[string]any
	json.Unmarshal(unsigned, &m)
	m["id"] = "u2" // the signature was for u1
	tampered, _ := json.Marshal(m)
	for _, tc := range []struct {
		name    string
		payload []byte
		result  string
		reason  string
	}{
		{"read", cmd(t, key(1), telemetry.Command{ID: "r1", Kind: telemetry.CommandRead, Device: "d"}), telemetry.ReplyOK, ""},
		{"resend", cmd(t, key(1), telemetry.Command{ID: "s1", Kind: telemetry.CommandResend, FromSeq: 3, ToSeq: 7}), telemetry.ReplyOK, ""},
		{"replayed", cmd(t, key(1), telemetry.Command{ID: "r1", Kind: telemetry.CommandRead, Device: "d"}), telemetry.ReplyRefused, telemetry.CmdReplayed},
		{"malformed", []byte(`{"id":"m1","kind":"restart"}`), telemetry.ReplyRefused, telemetry.CmdMalformed},
		{"other gateway", cmd(t, key(1), telemetry.Command{ID: "o1", Gateway: "gw2", Kind: telemetry.CommandRestart}), telemetry.ReplyRefused, telemetry.CmdOtherGateway},
		{"foreign key", cmd(t, key(2), telemetry.Command{ID: "f1", Kind: telemetry.CommandRestart}), telemetry.ReplyRefused, telemetry.CmdUnknownKey},
		{"bad signature", tampered, telemetry.ReplyRefused, telemetry.CmdBadSignature},
		{"expired", cmd(t, key(1), telemetry.Command{ID: "e1", Kind: telemetry.CommandRestart, Issued: now.Add(-2 * time.Minute)}), telemetry.ReplyRefused, telemetry.CmdExpired},
		{"future", cmd(t, key(1), telemetry.Command{ID: "n1", Kind: telemetry.CommandRestart, Issued: now.Add(time.Hour)}), telemetry.ReplyRefused, telemetry.CmdNotYetValid},
		{"restart", cmd(t, key(1), telemetry.Command{ID: "x1", Kind: telemetry.CommandRestart}), telemetry.ReplyOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hs host
			r, restart := h.handle(context.Background(), &hs, tc.payload)
			if r.Result != tc.result || r.Reason != tc.reason {
				t.Fatalf("reply %+v, want %s %s", r, tc.result, tc.reason)
			}
			if restart != (tc.name == "restart") {
				t.Errorf("restart = %v", restart)
			}
			if tc.name == "read" && (len(r.Readings) != 1 || r.Readings[0].Value != 20.5) {
				t.Errorf("read reply %+v", r)
			}
			if tc.name == "resend" && (len(hs.resends) != 1 || r.Items != 5) {
				t.Errorf("resend reply %+v, resends %v", r, hs.resends)
			}
			if r.ID == "" {
				t.Errorf("reply without the command's id: %+v", r)
			}
			if _, err := telemetry.EncodeReply(r); err != nil {
				t.Errorf("reply does not encode: %v", err)
			}
		})
	}
	if got := h.Counts()[telemetry.CmdReplayed]; got != 1 {
		t.Errorf("replayed counted %d times", got)
	}
	// A restarted gateway remembers what it took.
	h2, _ := newHandler()
	var hs host
	if r, _ := h2.handle(context.Background(), &hs, cmd(t, key(1), telemetry.Command{ID: "x1", Kind: telemetry.CommandRestart})); r.Reason != telemetry.CmdReplayed {
		t.Errorf("after a restart, the restart command again: %+v", r)
	}
	if n := testutil.ToFloat64(h2.results.WithLabelValues(telemetry.CommandRestart, telemetry.CmdReplayed)); n != 1 {
		t.Errorf("counter = %v", n)
	}
}
