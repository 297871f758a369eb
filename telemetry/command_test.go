package telemetry

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

var cmdTime = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func signedCommand(t testing.TB, c Command) []byte {
	t.Helper()
	if c.ID == "" {
		c.ID = "c1"
	}
	if c.Gateway == "" {
		c.Gateway = "farm-1"
	}
	if c.Issued.IsZero() {
		c.Issued = cmdTime
	}
	if c.Expires.IsZero() {
		c.Expires = c.Issued.Add(time.Minute)
	}
	b, err := EncodeCommand(SignCommand(c, testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommandRoundTrip(t *testing.T) {
	trusted := []ed25519.PublicKey{testKey(1).Public().(ed25519.PublicKey)}
	for _, c := range []Command{
		{Kind: CommandRestart},
		{Kind: CommandResend, FromSeq: 5, ToSeq: 9},
		{Kind: CommandRead, Device: "soil-1"},
	} {
		t.Run(c.Kind, func(t *testing.T) {
			got, err := DecodeCommand(signedCommand(t, c))
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != c.Kind || got.FromSeq != c.FromSeq || got.ToSeq != c.ToSeq || got.Device != c.Device || got.ID != "c1" {
				t.Errorf("decoded %+v", got)
			}
			if err := got.Verify(trusted); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := got.Verify([]ed25519.PublicKey{testKey(2).Public().(ed25519.PublicKey)}); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("Verify with another key: %v", err)
			}
			for _, change := range []func(*Command){
				func(c *Command) { c.Gateway = "farm-2" },
				func(c *Command) { c.ID = "c2" },
				func(c *Command) { c.Expires = c.Expires.Add(time.Second) },
				func(c *Command) { c.Kind = CommandRestart; c.FromSeq, c.ToSeq, c.Device = 0, 0, "" },
			} {
				c2 := got
				change(&c2)
				if err := c2.Verify(trusted); !errors.Is(err, ErrBadSignature) && !(c2.Kind == got.Kind && c2 == got) {
					t.Errorf("a changed command verifies: %+v: %v", c2, err)
				}
			}
		})
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	good := string(signedCommand(t, Command{Kind: CommandResend, FromSeq: 1, ToSeq: 2}))
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not json", `{`, "command:"},
		{"unknown field", strings.Replace(good, `"format":1`, `"format":1,"x":1`, 1), "unknown field"},
		{"missing sig", strings.Replace(good, `"sig"`, `"sog"`, 1), "sig is missing"},
		{"trailing", good + `{}`, "after top-level value"},
		{"format", strings.Replace(good, `"format":1`, `"format":2`, 1), "format 2"},
		{"bad id", strings.Replace(good, `"id":"c1"`, `"id":"c 1"`, 1), "command id"},
		{"kind", strings.Replace(good, `"kind":"resend"`, `"kind":"format-disk"`, 1), "is not restart"},
		{"range", strings.Replace(good, `"to_seq":2`, `"to_seq":0`, 1), "to_seq ≥ from_seq"},
		{"expires", strings.Replace(good, `"expires":"2026-12-02T10:01:00Z"`, `"expires":"2026-12-02T11:00:00Z"`, 1), "not within"},
		{"sig", strings.Replace(good, `"sig":"`, `"sig":"x`, 1), "sig is not"},
		{"huge", `{"id":"` + strings.Repeat("a", MaxCommandBytes) + `"}`, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCommand([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if id := CommandID([]byte(strings.Replace(good, `"format":1`, `"format":2`, 1))); id != "c1" {
		t.Errorf("CommandID = %q", id)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	r := CommandReply{ID: "c1", Gateway: "farm-1", Kind: CommandRead, Time: cmdTime, Result: ReplyOK,
		Message: strings.Repeat("é", MaxReplyText), Readings: []ReplyReading{{Metric: "t", Value: 21.5, Unit: "°C", Time: cmdTime}}}
	b, err := EncodeReply(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeReply(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Readings[0].Value != 21.5 || len(got.Message) > MaxReplyText {
		t.Errorf("reply %+v", got)
	}
	for _, bad := range []string{`{}`, `{"id":"c1","gateway":"g","time":"2026-01-01T00:00:00Z","result":"maybe"}`,
		`{"id":"c1","gateway":"g","time":"2026-01-01T00:00:00Z","result":"ok","extra":1}`} {
		if _, err := DecodeReply([]byte(bad)); err == nil {
			t.Errorf("DecodeReply(%s) took it", bad)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(signedCommand(f, Command{Kind: CommandRead, Device: "d"}))
	f.Add(signedCommand(f, Command{Kind: CommandResend, FromSeq: 1, ToSeq: 3}))
	f.Add([]byte(`{}`))
	trusted := []ed25519.PublicKey{testKey(1).Public().(ed25519.PublicKey)}
	f.Fuzz(func(t *testing.T, data []byte) {
		CommandID(data)
		c, err := DecodeCommand(data)
		if err != nil {
			return
		}
		_ = c.Verify(trusted)
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("decoded command does not encode: %v", err)
		}
		c2, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if !bytes.Equal(c.SignedBytes(), c2.SignedBytes()) || c.Sig != c2.Sig || c.Key != c2.Key {
			t.Fatal("re-encoded command differs")
		}
	})
}
