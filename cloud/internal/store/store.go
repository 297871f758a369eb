// Package store defines where the cloud keeps readings: the Store interface,
// with an InfluxDB implementation (store/influx) for production and an
// embedded SQLite one (store/sqlite) that needs no server. Both pass the same
// conformance suite (store/storetest).
//
// Writes are idempotent: the same series (gateway, site, device, metric,
// unit) and timestamp overwrite, so a replayed batch changes nothing.
package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Store keeps readings and answers the dashboard's and API's questions.
// Implementations are safe for concurrent use.
type Store interface {
	// Write stores readings of one gateway. It returns only when they are
	// durable in the store; an error means none or some were stored and
	// the caller must not acknowledge them.
	Write(ctx context.Context, gateway, site string, rs []telemetry.Reading) error
	// Latest returns the newest sample of every series measured since
	// `since`, of one gateway or, with gateway "", of all.
	Latest(ctx context.Context, gateway string, since time.Time) ([]Sample, error)
	// Series returns one series' samples in [q.From, q.To), oldest first.
	Series(ctx context.Context, q SeriesQuery) ([]Sample, error)
	// WriteEvents stores events of one gateway. An event with the identity
	// (gateway, device, kind, key, time) of a stored one replaces it.
	WriteEvents(ctx context.Context, gateway, site string, es []telemetry.Event) error
	// Events returns events in [q.From, q.To), newest first.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// WriteBatch stores a batch: its readings and events, the compact
	// context it defined (def, may be nil), and then the stream's commit
	// record c. The commit is written last, so it never claims what the
	// store does not hold; an error means the batch must not be
	// acknowledged. Each reading keeps its delay, stored minus its
	// acquisition time (stored is when the cloud writes the batch), for
	// the timeliness statistics; a reading written again takes the new
	// delay, as it takes the new value.
	WriteBatch(ctx context.Context, b *telemetry.Batch, def *telemetry.CompactContext, c Commit, stored time.Time) error
	// WriteGroup stores batches of any gateways at once (a group commit):
	// their readings and events, the contexts they defined, and then the
	// streams' commit records, each as WriteBatch promises; an error means
	// none of the group's batches may be acknowledged. A reading the store
	// cannot represent is left out and reported to g.Unwritable.
	WriteGroup(ctx context.Context, g *Group) error
	// Stats counts and summarises the series of one gateway in each
	// period of q (see StatsQuery).
	Stats(ctx context.Context, q StatsQuery) ([]SeriesStats, error)
	// Committed returns the commit record of a gateway's stream, or a zero
	// Commit when there is none.
	Committed(ctx context.Context, gateway, stream string) (Commit, error)
	// CompactContext returns a compact context a batch defined
	// (telemetry.Contexts); an error wrapping telemetry.ErrUnknownContext
	// when there is none.
	CompactContext(ctx context.Context, gateway string, id, version uint32) (*telemetry.CompactContext, error)
	// Close releases connections.
	Close() error
}

// Group is what one group commit writes.
type Group struct {
	Batches  []*telemetry.Batch
	Contexts []*telemetry.CompactContext // defined by the batches
	// Commits are the streams' records once the batches are stored: one
	// per stream, covering all of its batches in the group.
	Commits []StreamCommit
	// Stored is when the group is written: each reading's delay is
	// measured to it.
	Stored time.Time
	// Ready, when set, must be called once the readings, events and contexts are
	// durable and before the commit records are written (the cloud
	// acknowledges the batches then); an error from it fails the write,
	// and no commit record is written. The store does not use Batches
	// once it has called Ready (the caller may let them go).
	Ready func(context.Context) error

	mu         sync.Mutex
	unwritable map[*telemetry.Batch]Unwritable
}

// BatchGroup is the group of one batch (how WriteBatch writes).
func BatchGroup(b *telemetry.Batch, def *telemetry.CompactContext, c Commit, stored time.Time) *Group {
	g := &Group{Batches: []*telemetry.Batch{b}, Stored: stored,
		Commits: []StreamCommit{{Gateway: b.Gateway, Stream: b.Stream, Commit: c}}}
	if def != nil {
		g.Contexts = []*telemetry.CompactContext{def}
	}
	return g
}

// Representable reports whether a store can keep time t: both keep Unix
// nanoseconds in 64 bits (years 1678 to 2262).
func Representable(t time.Time) bool {
	return !t.Before(minTime) && !t.After(maxTime)
}

var minTime, maxTime = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// StreamCommit is a gateway stream's commit record.
type StreamCommit struct {
	Gateway, Stream string
	Commit          Commit
}

// Unwritable is what a store left out of a batch: how many readings, and
// why the first was.
type Unwritable struct {
	Count int
	First error
}

// Unwritable records a reading of b the store could not represent (its
// time outside the store's range, say). Safe for concurrent use.
func (g *Group) Unwritable(b *telemetry.Batch, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unwritable == nil {
		g.unwritable = map[*telemetry.Batch]Unwritable{}
	}
	u := g.unwritable[b]
	if u.Count == 0 {
		u.First = err
	}
	u.Count++
	g.unwritable[b] = u
}

// Left says what the store left out of b.
func (g *Group) Left(b *telemetry.Batch) Unwritable {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.unwritable[b]
}

// Commit is what the cloud has stored of one gateway stream: every
// sequence up to Through, and the ranges Above it (sorted, disjoint, not
// touching Through). It lets a replayed batch be acknowledged again
// without being written or evaluated twice, across restarts and replicas.
type Commit struct {
	Through uint64
	Above   []Span
}

// Span is a range of sequences, both ends included.
type Span struct{ First, Last uint64 }

// MaxSpans bounds the ranges a commit record keeps above Through; the
// oldest are forgotten first (a forgotten range is only stored again if
// replayed, which is harmless).
const MaxSpans = 256

// Covers reports whether every sequence of first … last is committed.
func (c Commit) Covers(first, last uint64) bool {
	if last <= c.Through {
		return true
	}
	for _, s := range c.Above {
		if s.First <= max(first, c.Through+1) && last <= s.Last {
			return true
		}
	}
	return false
}

// With returns c with first … last added, and everything up to known (what
// the gateway says it had acknowledged) too.
func (c Commit) With(known, first, last uint64) Commit {
	out := Commit{Through: max(c.Through, known)}
	spans := make([]Span, 0, len(c.Above)+1)
	for _, s := range append(c.Above, Span{first, last}) {
		if s.Last > out.Through {
			spans = append(spans, Span{max(s.First, out.Through+1), s.Last})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].First < spans[j].First })
	for _, s := range spans {
		switch {
		case s.First <= out.Through+1:
			out.Through = max(out.Through, s.Last)
		case len(out.Above) > 0 && s.First <= out.Above[len(out.Above)-1].Last+1:
			last := &out.Above[len(out.Above)-1]
			last.Last = max(last.Last, s.Last)
		default:
			out.Above = append(out.Above, s)
		}
	}
	if len(out.Above) > MaxSpans {
		out.Above = out.Above[len(out.Above)-MaxSpans:]
	}
	return out
}

// String writes the ranges above Through as "a-b,c-d" (how stores keep them).
func (c Commit) String() string {
	var sb strings.Builder
	for i, s := range c.Above {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatUint(s.First, 10))
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(s.Last, 10))
	}
	return sb.String()
}

// ParseCommit reads a commit record a store kept.
func ParseCommit(through uint64, above string) (Commit, error) {
	c := Commit{Through: through}
	if above == "" {
		return c, nil
	}
	for _, part := range strings.Split(above, ",") {
		a, b, ok := strings.Cut(part, "-")
		first, err1 := strconv.ParseUint(a, 10, 64)
		last, err2 := strconv.ParseUint(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || last < first || first <= through {
			return Commit{}, fmt.Errorf("commit range %q is damaged", part)
		}
		c.Above = append(c.Above, Span{first, last})
	}
	return c, nil
}

// Sample is a stored reading with the gateway and site it came from.
type Sample struct {
	Gateway string            `json:"gateway"`
	Site    string            `json:"site,omitempty"`
	Device  string            `json:"device"`
	Metric  string            `json:"metric"`
	Unit    string            `json:"unit,omitempty"`
	Time    time.Time         `json:"time"`
	Value   *float64          `json:"value"` // nil when the reading had no finite value
	Quality telemetry.Quality `json:"quality"`
	// Min, Max and Count describe a bucket of an aggregated series
	// (SeriesQuery.Every): Value is then the mean of the bucket's Count
	// finite values, Min and Max their extremes. A raw sample has none.
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	Count int      `json:"count,omitempty"`
}

// SeriesQuery selects a time range of one series.
type SeriesQuery struct {
	Gateway, Device, Metric string
	From, To                time.Time
	// Every, when positive, aggregates the series into buckets of this
	// width, aligned to the Unix epoch: one sample per bucket holding at
	// least one finite value, its time the bucket start, its Value the mean,
	// Min, Max and Count those of the finite values, its quality the worst
	// of every reading in it.
	Every time.Duration
	// Limit bounds the samples returned (the oldest are kept).
	Limit int
}

// MaxSeriesSamples bounds what one Series call may return.
const MaxSeriesSamples = 100_000

// Event is a stored event with the gateway and site it came from.
type Event struct {
	Gateway string             `json:"gateway"`
	Site    string             `json:"site,omitempty"`
	Device  string             `json:"device"`
	Kind    string             `json:"kind"`
	Key     string             `json:"key,omitempty"`
	Time    time.Time          `json:"time"`
	Attrs   map[string]string  `json:"attrs,omitempty"`
	Values  map[string]float64 `json:"values,omitempty"`
}

// EventQuery selects events; empty fields match everything.
type EventQuery struct {
	Gateway, Device, Kind, Key string
	From, To                   time.Time
	Limit                      int // at most this many, newest first (default and cap MaxEvents)
}

// MaxEvents bounds what one Events call may return.
const MaxEvents = 10_000

// StatsQuery selects the series of one gateway (of one device and one
// metric when they are set) and cuts [Bounds[0], Bounds[last]) into
// periods at Bounds, which rise strictly.
type StatsQuery struct {
	Gateway, Device, Metric string
	Bounds                  []time.Time
}

// MaxStatsPeriods bounds the periods of one Stats call.
const MaxStatsPeriods = 1000

// Check refuses a query a store cannot answer.
func (q StatsQuery) Check() error {
	if len(q.Bounds) < 2 || len(q.Bounds) > MaxStatsPeriods+1 {
		return fmt.Errorf("stats: %d bounds, want 2 … %d", len(q.Bounds), MaxStatsPeriods+1)
	}
	for i := 1; i < len(q.Bounds); i++ {
		if !q.Bounds[i-1].Before(q.Bounds[i]) {
			return fmt.Errorf("stats: bounds do not rise at %d", i)
		}
	}
	return nil
}

// SeriesStats is what a store knows of one series (device, metric, unit)
// in each period of a StatsQuery: every series of the gateway with a
// reading before the query's end, with a PeriodStats per period (zero
// where it has no reading).
type SeriesStats struct {
	Device string `json:"device"`
	Metric string `json:"metric"`
	Unit   string `json:"unit,omitempty"`
	// First is the series' earliest stored reading, ever.
	First   time.Time     `json:"first"`
	Periods []PeriodStats `json:"periods"`
}

// PeriodStats counts and summarises one series in one period.
type PeriodStats struct {
	// Received counts stored readings, of any quality; Good those of good
	// quality.
	Received int64 `json:"received"`
	Good     int64 `json:"good"`
	// Values counts the good readings with a finite value; Min, Mean and
	// Max are theirs (nil without any).
	Values int64    `json:"values"`
	Min    *float64 `json:"min,omitempty"`
	Mean   *float64 `json:"mean,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// Delays counts the readings whose delay is known (written by
	// WriteBatch); DelayMean and DelayMax are in seconds.
	Delays    int64    `json:"delays"`
	DelayMean *float64 `json:"delay_mean,omitempty"`
	DelayMax  *float64 `json:"delay_max,omitempty"`
}

// Merge adds o (the same series and period, kept under another site) to p.
func (p *PeriodStats) Merge(o PeriodStats) {
	mean := func(a *float64, na int64, b *float64, nb int64) *float64 {
		switch {
		case b == nil:
			return a
		case a == nil:
			return b
		}
		v := (*a*float64(na) + *b*float64(nb)) / float64(na+nb)
		return &v
	}
	pick := func(a, b *float64, less bool) *float64 {
		if a == nil || (b != nil && (*b < *a) == less) {
			return b
		}
		return a
	}
	p.Mean = mean(p.Mean, p.Values, o.Mean, o.Values)
	p.DelayMean = mean(p.DelayMean, p.Delays, o.DelayMean, o.Delays)
	p.Min, p.Max, p.DelayMax = pick(p.Min, o.Min, true), pick(p.Max, o.Max, false), pick(p.DelayMax, o.DelayMax, false)
	p.Received += o.Received
	p.Good += o.Good
	p.Values += o.Values
	p.Delays += o.Delays
}
