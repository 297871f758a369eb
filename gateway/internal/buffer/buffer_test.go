package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

// readings makes n readings whose values are their index plus base, so a
// test can tell exactly which ones it got back.
func readings(base, n int) []telemetry.Reading {
	rs := make([]telemetry.Reading, n)
	for i := range rs {
		v := base + i
		rs[i] = telemetry.Reading{Device: "dev", Metric: fmt.Sprintf("m%d", v%3), Value: float64(v), Unit: "%",
			Time: t0.Add(time.Duration(v) * time.Second), Clock: telemetry.ClockNTP}
	}
	return rs
}

func open(t *testing.T, dir string, mod func(*Options)) *Buffer {
	t.Helper()
	o := Options{Dir: dir, Fsync: FsyncOff, SegmentBytes: 1 << 20, MaxBytes: 1 << 30}
	if mod != nil {
		mod(&o)
	}
	b, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// appendN appends total readings in records of per readings, values 0..total-1.
func appendN(t *testing.T, b *Buffer, total, per int) {
	t.Helper()
	for i := 0; i < total; i += per {
		if _, err := b.Append(readings(i, min(per, total-i))); err != nil {
			t.Fatal(err)
		}
	}
}

// drain reads everything from seq from in chunks of limit and returns the
// values and the first sequence.
func drain(t *testing.T, b *Buffer, from uint64, limit int) (uint64, []float64) {
	t.Helper()
	var vals []float64
	var first uint64
	for i := 0; i < 1_000_000; i++ {
		c, err := b.Read(from, limit)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() == 0 {
			return first, vals
		}
		if len(c.Events) != 0 {
			t.Fatalf("events in a readings-only buffer")
		}
		if first == 0 {
			first = c.First
		}
		for _, r := range c.Readings {
			vals = append(vals, r.Value)
		}
		from = c.First + uint64(c.Len())
	}
	t.Fatal("drain did not finish")
	return 0, nil
}

func wantRange(t *testing.T, vals []float64, from, to int) {
	t.Helper()
	if len(vals) != to-from+1 {
		t.Fatalf("got %d readings, want %d (%d..%d)", len(vals), to-from+1, from, to)
	}
	for i, v := range vals {
		if v != float64(from+i) {
			t.Fatalf("reading %d = %v, want %d", i, v, from+i)
		}
	}
}

func TestAppendReadTrim(t *testing.T) {
	for _, limit := range []int{1, 4, 7, 1000} {
		t.Run(fmt.Sprint("limit", limit), func(t *testing.T) {
			b := open(t, t.TempDir(), func(o *Options) { o.SegmentBytes = 300 })
			appendN(t, b, 100, 5)
			if s := b.Stats(); s.Readings != 100 || s.Segments < 3 {
				t.Fatalf("stats %+v: want 100 readings over several segments", s)
			}
			first, vals := drain(t, b, 1, limit)
			if first != 1 {
				t.Fatalf("first seq %d", first)
			}
			wantRange(t, vals, 0, 99)
			// Reading again from the middle (a resend) gives the same data.
			_, vals = drain(t, b, 43, limit)
			wantRange(t, vals, 42, 99)
			if err := b.Trim(60); err != nil {
				t.Fatal(err)
			}
			first, vals = drain(t, b, 1, limit)
			if first != 61 {
				t.Fatalf("after trim first seq %d, want 61", first)
			}
			wantRange(t, vals, 60, 99)
			if s := b.Stats(); s.Readings != 40 || s.Trimmed != 60 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestReopenKeepsStreamAndAcks(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, func(o *Options) { o.SegmentBytes = 256 })
	appendN(t, b, 50, 3)
	if err := b.Trim(20); err != nil {
		t.Fatal(err)
	}
	stream := b.Stream()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := open(t, dir, func(o *Options) { o.SegmentBytes = 256 })
	if b2.Stream() != stream {
		t.Fatalf("stream changed: %s → %s", stream, b2.Stream())
	}
	if b2.Acked() != 20 || b2.Next() != 51 {
		t.Fatalf("acked %d next %d, want 20 and 51", b2.Acked(), b2.Next())
	}
	first, vals := drain(t, b2, 1, 10)
	if first != 21 {
		t.Fatalf("first %d", first)
	}
	wantRange(t, vals, 20, 49)
	appendN(t, b2, 5, 5)
	if seq := b2.Next(); seq != 56 {
		t.Fatalf("sequence did not continue: next %d", seq)
	}
	// Trimming everything leaves an empty buffer that keeps counting.
	if err := b2.Trim(55); err != nil {
		t.Fatal(err)
	}
	if s := b2.Stats(); s.Readings != 0 || s.Segments != 1 || s.Bytes != 0 {
		t.Fatalf("stats after full trim %+v", s)
	}
	b2.Close()
	b3 := open(t, dir, nil)
	if b3.Next() != 56 || b3.Stats().Readings != 0 {
		t.Fatalf("after reopen next %d readings %d", b3.Next(), b3.Stats().Readings)
	}
	if _, err := b3.Append(readings(0, 1)); err != nil {
		t.Fatal(err)
	}
	if first, _ := drain(t, b3, 1, 10); first != 56 {
		t.Fatalf("new reading got seq %d, want 56", first)
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// TestCrashAtEveryByte cuts the last segment at every possible length, as a
// power cut during a write would, and checks that Open keeps exactly the
// whole records before the cut.
func TestCrashAtEveryByte(t *testing.T) {
	src := t.TempDir()
	b := open(t, src, nil)
	var ends []int64 // file size after each record
	for i := 0; i < 6; i++ {
		if _, err := b.Append(readings(i*2, 2)); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, b.Stats().Bytes)
	}
	b.Close()
	seg := segments(t, src)[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut <= len(data); cut++ {
		dir := t.TempDir()
		for _, f := range []string{"stream"} {
			d, _ := os.ReadFile(filepath.Join(src, f))
			os.WriteFile(filepath.Join(dir, f), d, 0o640)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(seg)), data[:cut], 0o640)
		whole := 0
		for _, e := range ends {
			if e <= int64(cut) {
				whole++
			}
		}
		b := open(t, dir, nil)
		_, vals := drain(t, b, 1, 100)
		if len(vals) != 2*whole {
			t.Fatalf("cut at %d: recovered %d readings, want %d", cut, len(vals), 2*whole)
		}
		var wantTrunc int64
		if whole > 0 {
			wantTrunc = int64(cut) - ends[whole-1]
		} else {
			wantTrunc = int64(cut)
		}
		if got := b.Stats().TruncatedBytes; got != wantTrunc {
			t.Fatalf("cut at %d: truncated %d bytes, want %d", cut, got, wantTrunc)
		}
		// Appending after recovery continues the sequence.
		if _, err := b.Append(readings(100, 1)); err != nil {
			t.Fatal(err)
		}
		if b.Next() != uint64(2*whole+2) {
			t.Fatalf("cut at %d: next %d", cut, b.Next())
		}
		b.Close()
	}
}

func TestCorruptRecordIsCut(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	appendN(t, b, 30, 3)
	b.Close()
	seg := segments(t, dir)[0]
	data, _ := os.ReadFile(seg)
	data[len(data)/2] ^= 0xFF // flip a byte in the middle record
	os.WriteFile(seg, data, 0o640)
	b2 := open(t, dir, nil)
	_, vals := drain(t, b2, 1, 100)
	if len(vals) == 0 || len(vals) >= 30 || len(vals)%3 != 0 {
		t.Fatalf("kept %d readings; want the whole records before the damage", len(vals))
	}
	wantRange(t, vals, 0, len(vals)-1)
	if b2.Stats().TruncatedBytes == 0 {
		t.Fatal("truncation not reported")
	}
}

// items reads every item from seq 1: the sequences held, the readings'
// values and the events.
func items(t *testing.T, b *Buffer) (held map[uint64]bool, vals []float64, events []telemetry.Event) {
	t.Helper()
	held = map[uint64]bool{}
	for from := uint64(1); ; {
		c, err := b.Read(from, 37)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() == 0 {
			return held, vals, events
		}
		for i := range c.Len() {
			held[c.First+uint64(i)] = true
		}
		for _, r := range c.Readings {
			vals = append(vals, r.Value)
		}
		events = append(events, c.Events...)
		from = c.First + uint64(c.Len())
	}
}

// ofKind returns the events of one kind.
func ofKind(es []telemetry.Event, kind string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range es {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestDropOldestRecordsGaps fills a small buffer far past its budget: the
// oldest segments go, and every sequence ever appended is either still
// held or inside the range of a gap event that is, whose count and time
// span are exact.
func TestDropOldestRecordsGaps(t *testing.T) {
	dir := t.TempDir()
	mod := func(o *Options) { o.SegmentBytes = 2000; o.MaxBytes = 10000; o.GapDevice = "farm-north" }
	b := open(t, dir, mod)
	appendN(t, b, 3000, 2)
	s := b.Stats()
	if s.Bytes > 10000+2000 || s.Gaps == 0 {
		t.Fatalf("stats %+v: over budget, or no gap recorded", s)
	}
	if s.Appended != 3000+s.Gaps+s.LevelEvents || s.LevelEvents != 1 || !s.High {
		t.Fatalf("stats %+v: appended must be the readings, the gap events and one buffer event (high)", s)
	}
	held, vals, all := items(t, b)
	events, levels := ofKind(all, telemetry.EventGap), ofKind(all, telemetry.EventBuffer)
	var gapCount float64
	for _, e := range events {
		gapCount += e.Values["count"]
	}
	// The buffer event is an item like the readings: held, or dropped and
	// counted in a gap.
	if uint64(len(vals)+len(levels))+s.Dropped != 3000+s.LevelEvents || gapCount != float64(s.Dropped) {
		t.Fatalf("%d readings and %d buffer events held + %d dropped != 3000 + %d, or the held gaps count %v",
			len(vals), len(levels), s.Dropped, s.LevelEvents, gapCount)
	}
	covered := map[uint64]int{}
	for seq := range held {
		covered[seq]++
	}
	for _, e := range events {
		if e.Kind != telemetry.EventGap || e.Device != "farm-north" || e.Attrs["policy"] != OverflowDropOldest ||
			e.Attrs["reason"] != "buffer_full" {
			t.Fatalf("event %+v", e)
		}
		from, to := uint64(e.Values["from_seq"]), uint64(e.Values["to_seq"])
		// The range runs from the first to the last sequence dropped; it
		// may also hold gap records whose counts this one took over, and
		// items trimmed between drops, so only the count is exact.
		if e.Values["count"] > float64(to-from+1) || e.Values["count"] < 1 || e.Key != fmt.Sprintf("seq-%d-%d", from, to) {
			t.Fatalf("gap %+v: count does not fit its range", e)
		}
		for seq := from; seq <= to; seq++ {
			covered[seq]++
		}
		// Reading i (seq i+1) was taken at t0 + i s, so the first dropped
		// reading dates the gap (unless the range starts with a gap event).
		if want := t0.Add(time.Duration(from-1) * time.Second); !e.Time.Equal(want) && e.Values["span_s"] > 0 {
			if e.Time.After(want) {
				t.Errorf("gap from seq %d dated %v, after its first reading at %v", from, e.Time, want)
			}
		}
	}
	for seq := uint64(1); seq < b.Next(); seq++ {
		if covered[seq] == 0 {
			t.Fatalf("seq %d is neither held nor inside a held gap's range", seq)
		}
	}
	// The drop survives a restart: the dropped readings do not come back.
	b.Close()
	b2 := open(t, dir, mod)
	_, vals2, all2 := items(t, b2)
	if events2 := ofKind(all2, telemetry.EventGap); len(vals2) != len(vals) || len(events2) != len(events) {
		t.Fatalf("after reopen %d readings and %d gaps, before %d and %d", len(vals2), len(events2), len(vals), len(events))
	}
}

// TestDropNewestRefusesAndRecords: under drop_newest a full buffer refuses
// new items with ErrFull, counts them, and once the uplink trims records
// one gap event with their exact count and time span — also across a
// restart in between.
func TestDropNewestRefusesAndRecords(t *testing.T) {
	dir := t.TempDir()
	mod := func(o *Options) {
		o.SegmentBytes = 1000
		o.MaxBytes = 3000
		o.Overflow = OverflowDropNewest
		o.GapDevice = "farm-north"
	}
	b := open(t, dir, mod)
	i, refused := 0, 0
	var firstRefused int
	for ; i < 1000; i += 2 {
		_, err := b.Append(readings(i, 2))
		if errors.Is(err, ErrFull) {
			if refused == 0 {
				firstRefused = i
			}
			refused += 2
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if refused > 0 {
			t.Fatalf("reading %d accepted after refusals began", i)
		}
	}
	s := b.Stats()
	if refused == 0 || s.Refused != uint64(refused) || s.Dropped != uint64(refused) || s.Bytes > 3000 {
		t.Fatalf("refused %d; stats %+v", refused, s)
	}
	held := b.Next() - 1
	b.Close() // a restart before the uplink catches up

	b2 := open(t, dir, mod)
	if err := b2.Trim(held); err != nil {
		t.Fatal(err)
	}
	_, _, all := items(t, b2)
	events := ofKind(all, telemetry.EventGap)
	if len(events) != 1 {
		t.Fatalf("events %+v; want one gap", all)
	}
	e := events[0]
	first, last := t0.Add(time.Duration(firstRefused)*time.Second), t0.Add(999*time.Second)
	if e.Values["count"] != float64(refused) || !e.Time.Equal(first) || e.Values["span_s"] != last.Sub(first).Seconds() ||
		e.Attrs["policy"] != OverflowDropNewest || e.Device != "farm-north" {
		t.Fatalf("gap %+v; want %d items from %v to %v", e, refused, first, last)
	}
	if _, err := b2.Append(readings(0, 1)); err != nil {
		t.Fatalf("append after the trim: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, pendingFile)); !os.IsNotExist(err) {
		t.Fatalf("pending file still there: %v", err)
	}
}

// TestGroupCommit: appends that arrive while a sync runs share the next
// one.
func TestGroupCommit(t *testing.T) {
	b := open(t, t.TempDir(), func(o *Options) { o.Fsync = FsyncAlways })
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b.syncHook = func() {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
	}
	errs := make(chan error, 3)
	go func() { _, err := b.Append(readings(0, 1)); errs <- err }()
	<-entered // the first append's sync is held
	for i := 1; i <= 2; i++ {
		go func() { _, err := b.Append(readings(i, 1)); errs <- err }()
	}
	testenvEventually(t, func() bool { return b.Next() == 4 }) // both written, waiting
	b.syncHook = nil
	close(release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := b.Stats(); s.Syncs != 1 {
		t.Fatalf("%d syncs for 3 appends that arrived together, want 1", s.Syncs)
	}
}

// TestFsyncInterval: the background syncer syncs what was appended.
func TestFsyncInterval(t *testing.T) {
	b := open(t, t.TempDir(), func(o *Options) { o.Fsync = FsyncInterval; o.SyncEvery = 20 * time.Millisecond })
	appendN(t, b, 10, 2)
	testenvEventually(t, func() bool { return b.Stats().Syncs >= 1 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReadHandsOutOnlyDurableItems: whatever the fsync policy, an item
// leaves the buffer (to be sent, acknowledged and trimmed) only once it is
// on disk; Read syncs what it needs, once.
func TestReadHandsOutOnlyDurableItems(t *testing.T) {
	for _, policy := range []string{FsyncOff, FsyncInterval} {
		b := open(t, t.TempDir(), func(o *Options) { o.Fsync = policy; o.SyncEvery = time.Hour })
		synced := 0
		b.syncHook = func() { synced++ }
		appendN(t, b, 10, 2)
		if synced != 0 || b.durable.Load() != 1 {
			t.Fatalf("%s: %d syncs, durable below %d after appends", policy, synced, b.durable.Load())
		}
		if _, vals := drain(t, b, 1, 100); len(vals) != 10 {
			t.Fatalf("%s: read %d items, want 10", policy, len(vals))
		}
		if synced != 1 || b.durable.Load() != 11 {
			t.Fatalf("%s: read after %d syncs, durable below %d; want 1 sync, 11", policy, synced, b.durable.Load())
		}
		if _, vals := drain(t, b, 1, 100); len(vals) != 10 || synced != 1 {
			t.Fatalf("%s: read again: %d items after %d syncs; want 10 without another", policy, len(vals), synced)
		}
		b.Close()
	}
}

// TestAckMarkIsLazy: the trim mark is written at most every AckMarkEvery;
// after a crash the items trimmed since come back (and are sent again),
// and Close writes it.
func TestAckMarkIsLazy(t *testing.T) {
	dir := t.TempDir()
	mod := func(o *Options) { o.AckMarkEvery = time.Hour }
	b := open(t, dir, mod)
	appendN(t, b, 30, 3)
	b.Trim(10) // the first trim writes the mark
	b.Trim(20) // within the hour: not written
	crash := t.TempDir()
	for _, f := range []string{"stream", "acked"} {
		data, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(crash, f), data, 0o640)
	}
	for _, seg := range segments(t, dir) {
		data, _ := os.ReadFile(seg)
		os.WriteFile(filepath.Join(crash, filepath.Base(seg)), data, 0o640)
	}
	if got := open(t, crash, mod).Acked(); got != 10 {
		t.Fatalf("after a crash acked %d, want the written mark 10", got)
	}
	b.Close()
	if got := open(t, dir, mod).Acked(); got != 20 {
		t.Fatalf("after Close acked %d, want 20", got)
	}
}

// crashCopy copies what a crash would leave of dir (its files as they are,
// the buffer not closed) to a new directory.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	crash := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crash, e.Name()), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return crash
}

// TestSequencesNeverReused: with the mark lazy, a crash after trims must
// not hand out again a sequence the cloud has acknowledged — it would take
// the new items for replays and drop them. The found-by-the-fault-test
// case: everything acknowledged, the only segment replaced by an empty one.
func TestSequencesNeverReused(t *testing.T) {
	mod := func(o *Options) { o.AckMarkEvery = time.Hour; o.SegmentBytes = 4096 }
	tests := []struct {
		name           string
		appended, trim uint64
	}{
		{"everything acknowledged", 30, 30},
		{"whole segments acknowledged", 600, 500},
		{"part of the tail acknowledged", 30, 20},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		b := open(t, dir, mod)
		appendN(t, b, int(tc.appended), 3)
		b.Trim(5) // writes the mark; later trims within the hour do not
		b.Trim(tc.trim)
		next := b.Next()
		r := open(t, crashCopy(t, dir), mod)
		if r.Next() != next {
			t.Errorf("%s: after a crash the next sequence is %d, want %d", tc.name, r.Next(), next)
		}
		if r.Acked() > tc.trim || r.Acked() < 5 {
			t.Errorf("%s: after a crash acked %d, want 5..%d", tc.name, r.Acked(), tc.trim)
		}
		if got := r.Stats().Readings; got != next-1-r.Acked() {
			t.Errorf("%s: %d items held after the crash, want %d", tc.name, got, next-1-r.Acked())
		}
		b.Close()
	}
}

// testenvEventually polls cond for up to 10 s.
func testenvEventually(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

func TestNotify(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	ch := b.Notify()
	select {
	case <-ch:
		t.Fatal("notified before any append")
	default:
	}
	appendN(t, b, 1, 1)
	select {
	case <-ch:
	default:
		t.Fatal("append did not notify")
	}
}

func TestClosed(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	b.Close()
	if _, err := b.Append(readings(0, 1)); err != ErrClosed {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := b.Read(1, 1); err != ErrClosed {
		t.Fatalf("Read after Close: %v", err)
	}
}

func TestBadStreamFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "stream"), []byte("bad stream/id\n"), 0o640)
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("opened with a damaged stream id")
	}
}

// TestEventsShareTheSequence appends readings and events alternately and
// reads them back in every chunk size, across a reopen: the sequences are
// contiguous and every item comes back once.
func TestEventsShareTheSequence(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, func(o *Options) { o.SegmentBytes = 400 })
	ev := func(i int) telemetry.Event {
		return telemetry.Event{Device: "reader", Kind: telemetry.EventTag, Key: fmt.Sprintf("tag%d", i),
			Time: t0.Add(time.Duration(i) * time.Second), Attrs: map[string]string{"state": "present"},
			Values: map[string]float64{"count": float64(i)}}
	}
	for i := 0; i < 20; i++ {
		if _, err := b.Append(readings(i*10, 3)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AppendEvents([]telemetry.Event{ev(i), ev(100 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(b *Buffer) {
		for _, limit := range []int{1, 2, 4, 5, 7, 1000} {
			var readings, events int
			next := uint64(1)
			for from := uint64(1); ; {
				c, err := b.Read(from, limit)
				if err != nil {
					t.Fatal(err)
				}
				if c.Len() == 0 {
					break
				}
				if c.First != next || c.Len() > limit {
					t.Fatalf("limit %d: chunk at %d of %d items, expected at %d", limit, c.First, c.Len(), next)
				}
				for _, e := range c.Events {
					if e.Values["count"] < 0 || e.Kind != telemetry.EventTag {
						t.Fatalf("event %+v", e)
					}
				}
				readings += len(c.Readings)
				events += len(c.Events)
				next = c.First + uint64(c.Len())
				from = next
			}
			if readings != 60 || events != 40 {
				t.Fatalf("limit %d: %d readings and %d events, want 60 and 40", limit, readings, events)
			}
		}
	}
	check(b)
	b.Close()
	check(open(t, dir, func(o *Options) { o.SegmentBytes = 400 }))
}
