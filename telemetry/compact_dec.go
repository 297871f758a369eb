package telemetry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// DecodeCompact decodes a compact batch (codec 5) that arrived on gateway's
// topic, resolving its context through ctxs. def is the context version the
// batch defined, nil if it only referred to one: the cloud stores def with
// the batch before acknowledging it, and only then may later batches refer
// to it.
//
// Errors: ErrUnknownContext when the context (or the base of a definition)
// is unknown or belongs to another gateway, or the batch defines a known
// version differently, so the cloud should ask for a resync;
// ErrGatewayMismatch when a defining batch names another gateway;
// ErrMalformed for anything wrong in the bytes; anything else is a failure
// of ctxs, worth retrying.
func DecodeCompact(ctx context.Context, data []byte, gateway string, ctxs Contexts) (b *Batch, def *CompactContext, err error) {
	h, err := readCompactHeader(data)
	if err != nil {
		return nil, nil, err
	}
	b, r, id, version, kind, count := h.batch, h.r, h.id, h.version, h.kind, h.count
	var c *CompactContext
	var br *bitReader
	if kind == kindRefer {
		if c, err = lookup(ctx, ctxs, gateway, id, uint32(version)); err != nil {
			return nil, nil, err
		}
		br = &bitReader{b: r.b}
	} else {
		if def, br, err = readDefined(ctx, r, ctxs, gateway, id, uint32(version), kind); err != nil {
			return nil, nil, err
		}
		c = def
	}
	nev := 0
	if br.read(1, "events flag") == 1 {
		n := br.uvarint("event count")
		if br.err == nil && (n == 0 || n > count) {
			return nil, nil, malformed("%d events in a batch of %d", n, count)
		}
		nev = int(n)
	}
	if br.err != nil {
		return nil, nil, br.err
	}
	if nr := int(count) - nev; nr > 0 {
		if b.Readings, err = br.readCompactBody(c, nr); err != nil {
			return nil, nil, err
		}
	}
	if pad := br.pos % 8; pad != 0 && br.read(uint(8-pad), "padding") != 0 {
		return nil, nil, malformed("padding bits are not zero")
	}
	tail := &reader{b: br.tail()}
	if nev > 0 {
		if b.Events, err = decodeEvents(tail, nev); err != nil {
			return nil, nil, err
		}
	}
	if len(tail.b) != 0 {
		return nil, nil, malformed("%d bytes left after %d items", len(tail.b), count)
	}
	b.Gateway, b.Site, b.Stream = c.Gateway, c.Site, c.Stream
	if err := b.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, def, nil
}

// compactHeader is what precedes a compact batch's body.
type compactHeader struct {
	batch       *Batch // flags, FirstSeq and Committed filled in
	r           *reader
	id, version uint32
	kind        uint64
	count       uint64
}

func readCompactHeader(data []byte) (*compactHeader, error) {
	payload, err := openEnvelope(data)
	if err != nil {
		return nil, err
	}
	if c := Codec(data[3]); c != CodecCompact {
		return nil, malformed("codec %v is not compact; decode it with Decode", c)
	}
	r := &reader{b: payload[4:]}
	b := &Batch{}
	if data[2] == FormatVersionFlags {
		if err := b.setFlags(r.byte("flags")); r.err == nil && err != nil {
			return nil, err
		}
	}
	if r.err == nil && len(r.b) < 4 {
		r.err = malformed("context id: missing")
	}
	if r.err != nil {
		return nil, r.err
	}
	id := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	cv := r.uvarint("context version")
	b.FirstSeq = r.uvarint("first sequence")
	gap := r.uvarint("committed gap")
	count := r.uvarint("count")
	version, kind := cv>>2, cv&3
	switch {
	case r.err != nil:
		return nil, r.err
	case version == 0 || version > math.MaxUint32 || kind > kindScratch:
		return nil, malformed("context version %d kind %d", version, kind)
	case b.FirstSeq == 0 || gap > b.FirstSeq-1:
		return nil, malformed("first sequence %d, committed gap %d", b.FirstSeq, gap)
	}
	if err := checkCount(count); err != nil {
		return nil, err
	}
	b.Committed = b.FirstSeq - 1 - gap
	return &compactHeader{batch: b, r: r, id: id, version: uint32(version), kind: kind, count: count}, nil
}

// PeekCompact reads a compact batch's context ID and sequence range without
// its context: what a cloud that cannot resolve the context puts in its
// resync request.
func PeekCompact(data []byte) (id uint32, first, last uint64, err error) {
	h, err := readCompactHeader(data)
	if err != nil {
		return 0, 0, 0, err
	}
	return h.id, h.batch.FirstSeq, h.batch.FirstSeq + h.count - 1, nil
}

// lookup returns a context version of gateway's.
func lookup(ctx context.Context, ctxs Contexts, gateway string, id, version uint32) (*CompactContext, error) {
	c, err := ctxs.CompactContext(ctx, gateway, id, version)
	if err != nil {
		return nil, fmt.Errorf("compact context %08x version %d of %s: %w", id, version, gateway, err)
	}
	if c.Gateway != gateway || c.ID != id || c.Version != version {
		return nil, fmt.Errorf("%w: context %08x version %d belongs to %s, not %s", ErrUnknownContext, id, version, c.Gateway, gateway)
	}
	return c, nil
}

// readDefined reads a definition: the version the batch defines.
func readDefined(ctx context.Context, r *reader, ctxs Contexts, gateway string, id, version uint32, kind uint64) (*CompactContext, *bitReader, error) {
	c := &CompactContext{Gateway: r.string("gateway"), Site: r.string("site"), Stream: r.string("stream"), ID: id, Version: version}
	var base *CompactContext
	var bv uint64
	if kind == kindDefine {
		bv = r.uvarint("base version")
	}
	switch {
	case r.err != nil:
		return nil, nil, r.err
	case c.Gateway != gateway:
		return nil, nil, fmt.Errorf("%w: the batch defines a context of gateway %q but arrived on %q's topic", ErrGatewayMismatch, c.Gateway, gateway)
	case kind == kindDefine && (bv == 0 || bv >= uint64(version)):
		return nil, nil, malformed("version %d defined relative to version %d", version, bv)
	}
	if kind == kindDefine {
		var err error
		if base, err = lookup(ctx, ctxs, gateway, id, uint32(bv)); err != nil {
			return nil, nil, err
		}
		if base.Site != c.Site || base.Stream != c.Stream {
			return nil, nil, malformed("version %d of site %q stream %q is based on one of site %q stream %q", version, c.Site, c.Stream, base.Site, base.Stream)
		}
	}
	br, err := readDefinition(r, c, base)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: context version %d: %v", ErrMalformed, version, err)
	}
	// Defining a version again is harmless; defining it differently is not.
	known, err := ctxs.CompactContext(ctx, gateway, id, version)
	switch {
	case err == nil && !known.Equal(c):
		return nil, nil, fmt.Errorf("%w: context %08x version %d is known with other content", ErrUnknownContext, id, version)
	case err != nil && !errors.Is(err, ErrUnknownContext):
		return nil, nil, fmt.Errorf("compact context %08x version %d of %s: %w", id, version, gateway, err)
	}
	return c, br, nil
}

// DecodeAny decodes a batch of any codec that gateway sent: a compact one
// against the contexts in ctxs, returning the context it defines (to be
// stored before the batch is acknowledged), any other with Decode.
func DecodeAny(ctx context.Context, data []byte, gateway string, ctxs Contexts) (*Batch, *CompactContext, error) {
	codec, err := PeekCodec(data)
	if err != nil {
		return nil, nil, err
	}
	if codec != CodecCompact {
		b, err := Decode(data)
		return b, nil, err
	}
	return DecodeCompact(ctx, data, gateway, ctxs)
}
