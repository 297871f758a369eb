package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// CodecCompact is the columnar, delta-encoded, stateful codec for cellular
// and satellite links (docs/wire.md, "Codec 5"). Its batches are written by
// a CompactEncoder and read by DecodeCompact against the cloud's Contexts;
// Encode and Decode refuse it.
const CodecCompact Codec = 5

// SeriesDef is one series of a compact context's dictionary. Its values
// travel as integers m, meaning m × 10^−Exp.
type SeriesDef struct {
	Device, Metric, Unit string
	Exp                  int8
}

// CompactContext is what a gateway's compact encoder and the cloud share:
// the series dictionary and a reference value per series. It belongs to
// one gateway and one buffer stream and is identified by (Gateway, ID,
// Version). A version never changes once defined.
type CompactContext struct {
	Gateway, Site, Stream string
	ID, Version           uint32
	Series                []SeriesDef
	Ref                   []int64 // reference scaled value per series
	// Epoch is the Unix nanosecond time batch times are counted from.
	Epoch int64
}

// Limits of a compact context.
const (
	// MaxSeries bounds a context's dictionary.
	MaxSeries = 4096
	// MaxExp bounds SeriesDef.Exp: 10^Exp is an exact float64 (up to
	// 10^22), so m / 10^Exp is correctly rounded.
	MaxExp = 18
	// maxScaled bounds |m| (and |Ref|): every integer up to 2^53 is an
	// exact float64.
	maxScaled = 1 << 53
)

// ErrUnknownContext means the cloud does not know the context version a
// compact batch refers to (or knows it differently). The cloud answers with
// a resync request, and the gateway calls CompactEncoder.Reset and encodes
// its unacknowledged batches again.
var ErrUnknownContext = errors.New("unknown compact context")

// ErrGatewayMismatch means a batch names another gateway than the topic it
// arrived on.
var ErrGatewayMismatch = errors.New("batch from another gateway")

// Contexts is the cloud's memory of compact contexts: its store, usually with
// a cache in front. Implementations must be safe for concurrent use; the
// returned context must not be modified by anyone.
type Contexts interface {
	// CompactContext returns the context version, or an error wrapping
	// ErrUnknownContext when there is none (any other error is a failure
	// of the store, to be retried).
	CompactContext(ctx context.Context, gateway string, id, version uint32) (*CompactContext, error)
}

// MemoryContexts is a Contexts in memory, for tests and as a cache in front
// of a store. The zero value is ready; it is safe for concurrent use.
type MemoryContexts struct {
	mu sync.Mutex
	m  map[contextKey]*CompactContext
}

type contextKey struct {
	gateway     string
	id, version uint32
}

var _ Contexts = (*MemoryContexts)(nil)

// Put stores a copy of c, replacing any context with its gateway, ID and
// version.
func (m *MemoryContexts) Put(c *CompactContext) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[contextKey]*CompactContext)
	}
	m.m[contextKey{c.Gateway, c.ID, c.Version}] = c.Clone()
}

// Len is how many contexts m holds.
func (m *MemoryContexts) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// CompactContext implements Contexts.
func (m *MemoryContexts) CompactContext(_ context.Context, gateway string, id, version uint32) (*CompactContext, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.m[contextKey{gateway, id, version}]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: gateway %s context %08x version %d", ErrUnknownContext, gateway, id, version)
}

// Clone returns a deep copy of c.
func (c *CompactContext) Clone() *CompactContext {
	d := *c
	d.Series = slices.Clone(c.Series)
	d.Ref = slices.Clone(c.Ref)
	return &d
}

// Equal reports whether c and d are the same context version with the same
// content.
func (c *CompactContext) Equal(d *CompactContext) bool {
	return c.Gateway == d.Gateway && c.Site == d.Site && c.Stream == d.Stream && c.ID == d.ID &&
		c.Version == d.Version && c.Epoch == d.Epoch && slices.Equal(c.Series, d.Series) && slices.Equal(c.Ref, d.Ref)
}

// Validate checks that c can be used: names, bounds, one definition per
// series.
func (c *CompactContext) Validate() error {
	if err := checkOrigin(c.Gateway, c.Site, c.Stream); err != nil {
		return err
	}
	if c.Version == 0 {
		return errors.New("context version 0; versions start at 1")
	}
	if len(c.Series) > MaxSeries || len(c.Ref) != len(c.Series) {
		return fmt.Errorf("context has %d series and %d references (at most %d)", len(c.Series), len(c.Ref), MaxSeries)
	}
	seen := make(map[SeriesDef]bool, len(c.Series))
	for i, s := range c.Series {
		key := SeriesDef{Device: s.Device, Metric: s.Metric, Unit: s.Unit}
		if seen[key] {
			return fmt.Errorf("series %d (%s/%s %q) is defined twice", i, s.Device, s.Metric, s.Unit)
		}
		seen[key] = true
		if err := errors.Join(CheckName("device", s.Device), CheckName("metric", s.Metric), checkUnit(s.Unit)); err != nil {
			return fmt.Errorf("series %d: %w", i, err)
		}
		if s.Exp < 0 || s.Exp > MaxExp {
			return fmt.Errorf("series %d: exponent %d is outside 0…%d", i, s.Exp, MaxExp)
		}
		if c.Ref[i] < -maxScaled || c.Ref[i] > maxScaled {
			return fmt.Errorf("series %d: reference %d is outside ±2^53", i, c.Ref[i])
		}
	}
	return nil
}

// PeekCodec returns the codec of an encoded batch without decoding it, so
// an ingest can send codec 5 to DecodeCompact and the others to Decode.
func PeekCodec(data []byte) (Codec, error) {
	if len(data) < 4 {
		return 0, malformed("%d bytes is too short", len(data))
	}
	if data[0] != magic[0] || data[1] != magic[1] {
		return 0, malformed("does not start with \"FW\" (got % x)", data[:2])
	}
	if data[2] != FormatVersion && data[2] != FormatVersionFlags {
		return 0, malformed("format version %d is not supported", data[2])
	}
	return Codec(data[3]), nil
}

// pow10 holds the exact powers of ten up to MaxExp.
var pow10 = func() (p [MaxExp + 1]float64) {
	p[0] = 1
	for i := 1; i <= MaxExp; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// scaledValue is the value m × 10^−exp, as the decoder computes it: one
// correctly rounded division of two exact float64s (|m| ≤ 2^53, 10^exp ≤
// 10^18), hence the float64 nearest to the decimal, which is also what
// strconv.ParseFloat returns for it.
func scaledValue(m int64, exp int8) float64 {
	if exp == 0 {
		return float64(m)
	}
	return float64(m) / pow10[exp]
}

// scaled returns the integer m with scaledValue(m, exp) bit-identical to v,
// or false when there is none (NaN, ±Inf, −0, too many decimals, too
// large).
func scaled(v float64, exp int8) (int64, bool) {
	f := math.Round(v * pow10[exp])
	if !(f >= -maxScaled && f <= maxScaled) { // also refuses NaN
		return 0, false
	}
	m := int64(f)
	if math.Float64bits(scaledValue(m, exp)) != math.Float64bits(v) {
		return 0, false
	}
	return m, true
}
