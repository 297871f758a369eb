package ingest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestFutureItemsDropped: in one batch, a reading stamped in 2200, a tag
// event stamped a day ahead, a reading 5 minutes ahead (a fast clock,
// inside the default 10 minutes) and readings of the past. The batch is
// acknowledged as a whole (its full range), the two far-future items are
// neither stored nor in the registry's latest values, the rest is stored,
// and the drop is counted per gateway and reported by a stored "future"
// event. The margins are hours and minutes, not a race with the clock.
func TestFutureItemsDropped(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	r := startIngest(t, url, openSQLite(t))
	gw := newGateway(t, url, "gw1")
	now := time.Now().UTC().Truncate(time.Second)
	rd := func(v float64, at time.Time) telemetry.Reading {
		return telemetry.Reading{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: v, Time: at}
	}
	b := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 1, Readings: []telemetry.Reading{
		rd(10, now.Add(-2*time.Minute)),
		rd(2200, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)),
		rd(11, now.Add(-time.Minute)),
		rd(12, now.Add(5*time.Minute)),
	}, Events: []telemetry.Event{
		{Device: "gate", Kind: telemetry.EventTag, Key: "982000000000001", Time: now.Add(24 * time.Hour),
			Attrs: map[string]string{"state": "present"}, Values: map[string]float64{"count": 1}},
		{Device: "gate", Kind: telemetry.EventTag, Key: "982000000000002", Time: now,
			Attrs: map[string]string{"state": "present"}, Values: map[string]float64{"count": 1}},
	}}
	data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	gw.publish(t, telemetry.UpTopic("gw1"), data)
	testenv.Eventually(t, "the batch's ack", wait, func() bool { return len(gw.ackList()) == 1 })
	if a := gw.ackList()[0]; a.First != 1 || a.Last != 6 || a.Through != 6 {
		t.Fatalf("ack %+v; want the whole batch 1…6", a)
	}
	if n := testutil.ToFloat64(r.in.m.future); n != 2 {
		t.Fatalf("future items counted %v, want 2", n)
	}
	ctx := context.Background()
	got, err := r.store.Series(ctx, store.SeriesQuery{Gateway: "gw1", Device: "soil-1", Metric: "soil_moisture",
		From: now.Add(-time.Hour), To: time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var vs []float64
	for _, s := range got {
		vs = append(vs, *s.Value)
	}
	if fmt.Sprint(vs) != "[10 11 12]" {
		t.Fatalf("stored %v; want [10 11 12], without the reading of 2200", vs)
	}
	es, err := r.store.Events(ctx, store.EventQuery{Gateway: "gw1", From: now.Add(-time.Hour), To: now.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]store.Event{}
	for _, e := range es {
		kinds[e.Kind+"/"+e.Key] = e
	}
	if _, ok := kinds["tag/982000000000001"]; ok || len(kinds) != 2 {
		t.Fatalf("stored events %v; want the present tag and the future report, not the tag of tomorrow", es)
	}
	fe, ok := kinds["future/seq-1-6"]
	if !ok || fe.Device != "gw1" || fe.Values["count"] != 2 || fe.Values["max_future_s"] != 600 || fe.Values["ahead_s"] < 1e9 {
		t.Fatalf("future event %+v", fe)
	}
	st, _ := r.reg.Station("gw1")
	if st.FutureItems != 2 {
		t.Fatalf("station counts %d future items, want 2", st.FutureItems)
	}
	for _, d := range st.Devices {
		for _, s := range d.Latest {
			if s.Time.Year() > now.Year()+1 {
				t.Fatalf("latest value of %s pinned at %v", d.ID, s.Time)
			}
		}
	}
	// A replay of the batch is acknowledged again without counting again.
	gw.publish(t, telemetry.UpTopic("gw1"), data)
	testenv.Eventually(t, "the replay's ack", wait, func() bool { return len(gw.ackList()) == 2 })
	if n := testutil.ToFloat64(r.in.m.future); n != 2 {
		t.Fatalf("future items counted %v after a replay, want 2", n)
	}
	// A batch of nothing but the future is acknowledged too: only its report is stored.
	only := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 7, Committed: 6,
		Readings: []telemetry.Reading{rd(1, now.Add(time.Hour))}}
	data, err = telemetry.Encode(only, telemetry.CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	gw.publish(t, telemetry.UpTopic("gw1"), data)
	testenv.Eventually(t, "the third ack", wait, func() bool { return len(gw.ackList()) == 3 })
	if a := gw.ackList()[2]; a.First != 7 || a.Last != 7 || a.Through != 7 {
		t.Fatalf("ack %+v", a)
	}
	if n := testutil.ToFloat64(r.in.m.future); n != 3 {
		t.Fatalf("future items counted %v, want 3", n)
	}
}

// TestMaxFutureOption: the limit is the option's (ingest.max_future).
func TestMaxFutureOption(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	r := startIngest(t, url, openSQLite(t), func(o *Options) { o.MaxFuture = 2 * time.Hour })
	gw := newGateway(t, url, "gw1")
	now := time.Now().UTC()
	b := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 1, Readings: []telemetry.Reading{
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 1, Time: now.Add(time.Hour)},     // inside 2 h
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 2, Time: now.Add(3 * time.Hour)}, // past it
	}}
	data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	gw.publish(t, telemetry.UpTopic("gw1"), data)
	testenv.Eventually(t, "ack", wait, func() bool { return len(gw.ackList()) == 1 })
	if n := testutil.ToFloat64(r.in.m.future); n != 1 {
		t.Fatalf("future items counted %v, want 1", n)
	}
}

// TestTooLargeRefused: a compact batch claiming 100 000 readings (the
// audit's bomb: its count is refused before its body is read) and a rows
// batch one item over the limit are refused as too_large and not
// acknowledged; a batch at the limit is stored and acknowledged.
func TestTooLargeRefused(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	r := startIngest(t, url, openSQLite(t))
	gw := newGateway(t, url, "gw1")
	enc := telemetry.NewCompactEncoder("gw1", "north", "s1")
	define := &telemetry.Batch{Gateway: "gw1", Site: "north", Stream: "s1", FirstSeq: 1, Readings: []telemetry.Reading{
		{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 30, Time: t0}}}
	data, sent, err := enc.Encode(define)
	if err != nil {
		t.Fatal(err)
	}
	gw.publish(t, telemetry.UpTopic("gw1"), data)
	testenv.Eventually(t, "the definition's ack", wait, func() bool { return len(gw.ackList()) == 1 })
	enc.Confirm(sent)
	define.FirstSeq, define.Committed = 2, 1
	refer, _, err := enc.Encode(define)
	if err != nil {
		t.Fatal(err)
	}
	// FW, version, codec 5, context id, then one-byte uvarints: version<<2,
	// first_seq 2, gap 0, count 1 at offset 11.
	if refer[3] != byte(telemetry.CodecCompact) || refer[8] != 1<<2 || refer[9] != 2 || refer[11] != 1 {
		t.Fatalf("unexpected compact header % x", refer[:12])
	}
	bomb := append(append(append([]byte{}, refer[:11]...), binary.AppendUvarint(nil, 100_000)...), refer[12:len(refer)-4]...)
	bomb = binary.BigEndian.AppendUint32(bomb, crc32.Checksum(bomb, crc32.MakeTable(crc32.Castagnoli)))
	gw.publish(t, telemetry.UpTopic("gw1"), bomb)
	gw.publish(t, telemetry.UpTopic("gw1"), overCount(t))
	testenv.Eventually(t, "both refused", wait, func() bool {
		return testutil.ToFloat64(r.in.m.rejected.WithLabelValues("too_large")) == 2
	})
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 2, telemetry.MaxReadings))
	testenv.Eventually(t, "the batch at the limit acked", wait, func() bool { return len(gw.ackList()) == 2 })
	if a := gw.ackList()[1]; a.First != 2 || a.Last != uint64(1+telemetry.MaxReadings) {
		t.Fatalf("ack %+v; the refused batches were acknowledged?", a)
	}
	if n := testutil.ToFloat64(r.in.m.rejected.WithLabelValues("malformed")); n != 0 {
		t.Fatalf("%v batches counted malformed; too large ones belong to too_large", n)
	}
}

// overCount is a rows batch (codec 1) of gw1 whose header claims one item
// more than the limit.
func overCount(t *testing.T) []byte {
	one, err := telemetry.Encode(&telemetry.Batch{Gateway: "gw1", Stream: "s1", FirstSeq: 2, Committed: 1,
		Readings: []telemetry.Reading{{Device: "soil-1", Metric: "soil_moisture", Unit: "%", Value: 1, Time: t0}}},
		telemetry.CodecRows)
	if err != nil {
		t.Fatal(err)
	}
	// FW 01 01, "gw1", "" (site), "s1", first 2, committed 1, count 1 at offset 14.
	if one[12] != 2 || one[13] != 1 || one[14] != 1 {
		t.Fatalf("unexpected rows header % x", one[:15])
	}
	out := append(append(append([]byte{}, one[:14]...), binary.AppendUvarint(nil, telemetry.MaxReadings+1)...), one[15:len(one)-4]...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}

// TestStateDevicesBounded: a state message naming more devices than the
// registry keeps per gateway is observed up to the bound; the rest are
// counted in fieldwatch_ingest_devices_refused_total.
func TestStateDevicesBounded(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	r := startIngest(t, url, openSQLite(t))
	gw := newGateway(t, url, "gw1")
	s := telemetry.State{State: telemetry.StateOnline}
	for i := range registry.DefaultMaxDevices + 6 {
		s.Devices = append(s.Devices, telemetry.DeviceState{ID: fmt.Sprintf("d%d", i)})
	}
	data, err := telemetry.EncodeState(s)
	if err != nil {
		t.Fatal(err)
	}
	gw.publish(t, telemetry.StateTopic("gw1"), data)
	testenv.Eventually(t, "the state observed", wait, func() bool {
		return testutil.ToFloat64(r.in.m.states.WithLabelValues("online")) == 1
	})
	if n := testutil.ToFloat64(r.in.m.devicesRefused); n != 6 {
		t.Fatalf("refused devices counted %v, want 6", n)
	}
	if st, _ := r.reg.Station("gw1"); len(st.Devices) != registry.DefaultMaxDevices {
		t.Fatalf("%d devices tracked", len(st.Devices))
	}
}
