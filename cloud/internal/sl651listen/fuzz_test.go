package sl651listen

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// checkingSink validates what the listener hands the intake, as Submit does.
type checkingSink struct{ t *testing.T }

func (s checkingSink) Submit(_ context.Context, b *telemetry.Batch) (ingest.Submitted, error) {
	if err := b.Validate(); err != nil {
		s.t.Fatalf("the listener made an invalid batch: %v", err)
	}
	for _, r := range b.Readings {
		if r.Quality == telemetry.Good && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0)) {
			s.t.Fatalf("good reading without a value: %+v", r)
		}
	}
	return ingest.Stored, nil
}

// FuzzFrames feeds any byte stream through the frame reader and the
// listener's handling of each frame: no panic, every batch valid, and every
// frame either taken or refused and counted (never both, never neither).
func FuzzFrames(f *testing.F) {
	for _, s := range []string{
		"7E7E01001234567812342F0008020003591011155111036BCA",
		"7E7E010012345678123430002B020003591011154947F1F1001234567848F0F0591011154920190000052619000005392300000127381211150320FA",
		timed32,
		"7E7E05001122334403E833002B020026170718102202F1F1001122334448F0F01707181022201900004026190000403923000104903812110203F511",
		"7E7E05001122334403E8340068020033170718110014F1F1001122334448F0F01707181005F4600500000014FFFFFFFFFF0000F0F017071811002619000040F0F01707181005F5C0000C000C001C00310031FFFFFFFFFFFFFFFFFFFF00310031F0F0170718110039230001049020190000403812109903F502",
		"7E7E05001122334403E838002A020035170718110128F1F1001122334448F0F017071810050418000005F4600500000014FFFFFFFFFF000003E8AB",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Add([]byte("\x01050011223344" + "03E8320" + "04E" + "\x02" + "0034170718110016ST 0011223344 H TT 1707181100 PJ 4.0 PT 4.0 Z 10.490 VT 10.99 " + "\x03F6DF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		prom := prometheus.NewRegistry()
		l, err := New(Options{Config: config.SL651{Central: 5, Timezone: "Asia/Shanghai", Confirm: config.ConfirmESC,
			MaxConnections: 1, IdleTimeout: 1, Interval: 1, Stations: []config.SL651Station{
				{Address: "0011223344", Station: "hydro-1"}, {Address: "0012345678", Station: "hydro-2"}}},
			Sink: checkingSink{t}, Registry: registry.New(), Log: slog.New(slog.DiscardHandler), Reg: prom})
		if err != nil {
			t.Fatal(err)
		}
		// The centre takes frames addressed to any centre here, so the
		// published ones (centres 1 and 5) get past that check.
		rd := sl651.NewReader(bytes.NewReader(data))
		frames := 0
		for range 1000 {
			fr, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if sl651.Kind(err) == "" {
					t.Fatalf("reader error without a kind: %v", err)
				}
				continue
			}
			l.o.Config.Central = int(fr.Center)
			frames++
			reply, ok := l.frame(context.Background(), fr, "fuzz")
			if !ok && reply != nil {
				t.Fatal("a refused frame answered")
			}
			if ok && reply != nil {
				if _, err := sl651.Decode(reply); err != nil {
					t.Fatalf("confirmation does not decode: %v", err)
				}
			}
		}
		var taken, refused float64
		for _, fn := range []string{"2F", "30", "31", "32", "33", "34"} {
			taken += testutil.ToFloat64(l.m.frames.WithLabelValues(fn))
		}
		for _, k := range kinds {
			if k != sl651.KindGarbage && k != sl651.KindTruncated {
				refused += testutil.ToFloat64(l.ref.Vec().WithLabelValues(k))
			}
		}
		if int(taken+refused) != frames {
			t.Fatalf("%d whole frames, %v taken + %v refused", frames, taken, refused)
		}
	})
}
