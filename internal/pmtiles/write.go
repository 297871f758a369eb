package pmtiles

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"math"
	"slices"
)

// WriteOptions describe an archive Write makes.
type WriteOptions struct {
	TileType         uint8
	MinZoom, MaxZoom uint8
	// Bounds: min lon, min lat, max lon, max lat.
	Bounds [4]float64
	// Gzip compresses the directories.
	Gzip bool
	// LeafSize, when positive, puts the entries in leaf directories of at
	// most this many entries (the root then points to them).
	LeafSize int
}

// Write writes a PMTiles v3 archive of tiles (content by tile id) to w:
// tiles of equal content are stored once, consecutive ones as one run. It
// exists for the tests (the browser tests make a small raster archive) and
// for trying a configuration; real basemaps come from tile tools.
func Write(w io.Writer, tiles map[uint64][]byte, o WriteOptions) error {
	ids := make([]uint64, 0, len(tiles))
	for id := range tiles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var data bytes.Buffer
	at := map[string]uint64{}
	var es []Entry
	for _, id := range ids {
		c := tiles[id]
		if n := len(es); n > 0 && es[n-1].TileID+uint64(es[n-1].RunLength) == id && bytes.Equal(tiles[es[n-1].TileID], c) {
			es[n-1].RunLength++
			continue
		}
		off, ok := at[string(c)]
		if !ok {
			off = uint64(data.Len())
			at[string(c)] = off
			data.Write(c)
		}
		es = append(es, Entry{TileID: id, Offset: off, Length: uint32(len(c)), RunLength: 1})
	}
	pack := func(es []Entry) []byte {
		b := EncodeDirectory(es)
		if !o.Gzip {
			return b
		}
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		return z.Bytes()
	}
	root, leaves := es, []byte(nil)
	if o.LeafSize > 0 && len(es) > o.LeafSize {
		root = nil
		for i := 0; i < len(es); i += o.LeafSize {
			leaf := pack(es[i:min(i+o.LeafSize, len(es))])
			root = append(root, Entry{TileID: es[i].TileID, Offset: uint64(len(leaves)), Length: uint32(len(leaf))})
			leaves = append(leaves, leaf...)
		}
	}
	rootBytes := pack(root)
	meta := []byte("{}")
	if o.Gzip { // metadata is compressed as the directories are
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write([]byte("{}"))
		zw.Close()
		meta = z.Bytes()
	}
	h := make([]byte, HeaderLen)
	copy(h, "PMTiles")
	h[7] = 3
	put := func(at int, v uint64) { binary.LittleEndian.PutUint64(h[at:], v) }
	e7 := func(at int, v float64) { binary.LittleEndian.PutUint32(h[at:], uint32(int32(math.Round(v*1e7)))) }
	off := uint64(HeaderLen)
	put(8, off)
	put(16, uint64(len(rootBytes)))
	off += uint64(len(rootBytes))
	put(24, off)
	put(32, uint64(len(meta)))
	off += uint64(len(meta))
	put(40, off)
	put(48, uint64(len(leaves)))
	off += uint64(len(leaves))
	put(56, off)
	put(64, uint64(data.Len()))
	put(72, uint64(len(tiles)))
	put(80, uint64(len(es)))
	put(88, uint64(len(at)))
	h[96] = 1 // clustered: tiles in tile id order
	h[97] = CompressionNone
	if o.Gzip {
		h[97] = CompressionGzip
	}
	h[98] = CompressionNone
	h[99] = o.TileType
	h[100], h[101] = o.MinZoom, o.MaxZoom
	e7(102, o.Bounds[0])
	e7(106, o.Bounds[1])
	e7(110, o.Bounds[2])
	e7(114, o.Bounds[3])
	h[118] = o.MinZoom
	e7(119, (o.Bounds[0]+o.Bounds[2])/2)
	e7(123, (o.Bounds[1]+o.Bounds[3])/2)
	for _, b := range [][]byte{h, rootBytes, meta, leaves, data.Bytes()} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// EncodeDirectory encodes entries (sorted by tile id) as an uncompressed
// directory.
func EncodeDirectory(es []Entry) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(es)))
	var last uint64
	for _, e := range es {
		b = binary.AppendUvarint(b, e.TileID-last)
		last = e.TileID
	}
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(e.RunLength))
	}
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(e.Length))
	}
	for i, e := range es {
		if i > 0 && e.Offset == es[i-1].Offset+uint64(es[i-1].Length) {
			b = binary.AppendUvarint(b, 0)
		} else {
			b = binary.AppendUvarint(b, e.Offset+1)
		}
	}
	return b
}
