package notify

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// The generic webhook signs timestamp + "." + body; a receiver with the
// right secret verifies it, one with a wrong secret does not, and a 4xx
// answer drops the message (counted) instead of blocking the queue.
func TestWebhookSignatureAndPermanentFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		secret   string // the receiver's
		wantSent bool
	}{
		{"right secret", "s3cret", true},
		{"wrong secret", "other", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t)
			s.check = func(r request) int {
				ts := r.header.Get(TimestampHeader)
				if !Verify([]byte(tc.secret), ts, r.body, r.header.Get(SignatureHeader)) {
					return http.StatusUnauthorized
				}
				return 0
			}
			cfg := testConfig(Receiver{Name: "ops", Webhook: &Webhook{URL: s.srv.URL, SecretFile: writeSecret(t, "s3cret")}})
			cfg.GroupWait = 0
			h := openNotifier(t, "", cfg, nil, nil, true)
			a := alert(fp(1), "DOLow", "pond1", "yellow", 3, StatusFiring, time.Now())
			h.update(t, a)
			eventually(t, "message delivered or dropped", 10*time.Second, func() bool {
				st := h.n.Status()[0]
				return st.Sent+st.Dropped == 1
			})
			st := h.n.Status()[0]
			if (st.Sent == 1) != tc.wantSent {
				t.Fatalf("status %+v; want sent %v", st, tc.wantSent)
			}
			if !tc.wantSent {
				if got := testutilValue(t, h, "fieldwatch_notify_dropped_total", "rejected", "ops"); got != 1 {
					t.Fatalf("dropped_total = %v; want 1", got)
				}
				return
			}
			r := s.got()[0]
			var e Event
			if err := json.Unmarshal(r.body, &e); err != nil {
				t.Fatal(err)
			}
			want := fp(1) + ":firing:3:3"
			if e.Key != want || r.header.Get(IdempotencyHeader) != want || e.Severity != "yellow" || e.Level != 3 ||
				e.Labels["site"] != "pond1" || !e.EndsAt.IsZero() {
				t.Fatalf("event %+v, key header %q; want key %s", e, r.header.Get(IdempotencyHeader), want)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"key":"x"}`)
	sig := Sign([]byte("k"), "1700000000", body)
	for _, tc := range []struct {
		name       string
		secret, ts string
		body       []byte
		sig        string
		want       bool
	}{
		{"good", "k", "1700000000", body, sig, true},
		{"wrong secret", "j", "1700000000", body, sig, false},
		{"other timestamp", "k", "1700000001", body, sig, false},
		{"changed body", "k", "1700000000", []byte(`{"key":"y"}`), sig, false},
		{"no prefix", "k", "1700000000", body, sig[len("sha256="):], false},
	} {
		if got := Verify([]byte(tc.secret), tc.ts, tc.body, tc.sig); got != tc.want {
			t.Errorf("%s: Verify = %v; want %v", tc.name, got, tc.want)
		}
	}
}
