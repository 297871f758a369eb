package uplink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestResendFrom: a cloud restored from a backup answers a batch with
// resend_from; the uplink sends everything from there again out of what
// its buffer kept (keep_acked), or, keeping nothing, reports the
// sequences it no longer has with one not_kept gap event.
func TestResendFrom(t *testing.T) {
	m := testenv.StartMosquitto(t)
	for _, tc := range []struct {
		name string
		keep time.Duration
	}{{"kept", time.Hour}, {"not kept", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c, r := ackedUplink(t, m.URL, tc.keep)

			// The cloud loses everything after 100 and holds the next batch.
			c.mu.Lock()
			c.got = map[uint64]telemetry.Reading{}
			c.events = nil
			c.mu.Unlock()
			c.setPolicy(func(*telemetry.Batch) bool { return false })
			r.append(t, 10)
			testenv.Eventually(t, "the next batch", 30*time.Second, func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.held) > 0
			})
			c.setPolicy(func(*telemetry.Batch) bool { return true })
			c.mu.Lock()
			b := c.held[0]
			c.held = nil
			c.mu.Unlock()
			if b.Committed != 300 || b.FirstSeq != 301 {
				t.Fatalf("batch %d.. claims %d; want 301.. claiming 300", b.FirstSeq, b.Committed)
			}
			c.publish("gw1", telemetry.Ack{Stream: b.Stream, First: b.FirstSeq, Last: b.LastSeq(), Through: 100, ResendFrom: 101})

			if tc.keep > 0 {
				testenv.Eventually(t, "101 … 310 sent again", 30*time.Second, func() bool {
					c.mu.Lock()
					defer c.mu.Unlock()
					for seq := uint64(101); seq <= 310; seq++ {
						if _, ok := c.got[seq]; !ok {
							return false
						}
					}
					return true
				})
				if st := r.up.Status(); st.Rewound != 310-100 || st.NotKept != 0 {
					t.Fatalf("status %+v; want 210 rewound, none not kept", st)
				}
				return
			}
			testenv.Eventually(t, "the not_kept gap event", 30*time.Second, func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.events) > 0
			})
			c.mu.Lock()
			e := c.events[0]
			c.mu.Unlock()
			st := r.up.Status()
			if e.Kind != telemetry.EventGap || e.Attrs["reason"] != telemetry.GapNotKept || e.Values["from_seq"] != 101 ||
				e.Values["to_seq"] != float64(100+st.NotKept) || e.Values["count"] != float64(st.NotKept) || st.NotKept == 0 {
				t.Fatalf("gap event %+v with status %+v", e, st)
			}
		})
	}
}

// ackedUplink is a cloud and an uplink whose buffer keeps acknowledged
// items for keep, with 300 items sent and acknowledged.
func ackedUplink(t *testing.T, url string, keep time.Duration) (*cloud, *rig) {
	t.Helper()
	c := newCloud(t, url)
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), Fsync: buffer.FsyncOff, SegmentBytes: 4096, KeepAcked: keep})
	if err != nil {
		t.Fatal(err)
	}
	r := startUplinkOn(t, url, buf, nil)
	r.append(t, 300)
	testenv.Eventually(t, "300 acknowledged", 30*time.Second, func() bool { return buf.Acked() == 300 })
	return c, r
}

// TestResendCommand: a resend command's range is sent again from what the
// buffer keeps; a range no longer kept, or not yet acknowledged, is
// refused with a clear error and nothing sent.
func TestResendCommand(t *testing.T) {
	m := testenv.StartMosquitto(t)
	for _, tc := range []struct {
		name     string
		keep     time.Duration
		from, to uint64
		want     string // "" for done
	}{
		{"kept", time.Hour, 101, 200, ""},
		{"not kept", 0, 101, 200, "no longer kept"},
		{"not acknowledged", time.Hour, 250, 400, "not all acknowledged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, r := ackedUplink(t, m.URL, tc.keep)
			c.mu.Lock()
			c.got = map[uint64]telemetry.Reading{}
			c.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := r.up.Resend(ctx, tc.from, tc.to)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Resend = %+v, %v; want an error saying %q", res, err, tc.want)
				}
				if st := r.up.Status(); st.Rewound != 0 {
					t.Fatalf("a refused resend rewound %d items", st.Rewound)
				}
				return
			}
			if err != nil || res.Items != tc.to-tc.from+1 {
				t.Fatalf("Resend = %+v, %v", res, err)
			}
			testenv.Eventually(t, "the range sent again", 30*time.Second, func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				for seq := tc.from; seq <= tc.to; seq++ {
					if _, ok := c.got[seq]; !ok {
						return false
					}
				}
				return true
			})
		})
	}
}
