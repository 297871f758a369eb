// Package pmtiles reads PMTiles v3 archives, for the console's basemap: the
// cloud serves a configured raster archive's tiles at /basemap/tiles/z/x/y
// (cloud/internal/basemap; docs/console.md, docs/decisions.md "Console
// basemap").
//
// The reader implements the PMTiles v3 specification
// (github.com/protomaps/PMTiles, spec/v3/spec.md): a 127-byte header,
// directories of varint-coded entries keyed by Hilbert tile id, uncompressed
// or gzip-compressed; leaf directories; run lengths. It serves raster
// archives only (PNG, JPEG, WebP, AVIF) whose tiles are stored
// uncompressed, as raster archives are: a vector archive needs a style and
// a WebGL renderer the console does not have.
package pmtiles

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// HeaderLen is the length of a PMTiles v3 header.
const HeaderLen = 127

// Compression of directories and tiles (header bytes 97 and 98).
const (
	CompressionUnknown = 0
	CompressionNone    = 1
	CompressionGzip    = 2
	CompressionBrotli  = 3
	CompressionZstd    = 4
)

// Tile types (header byte 99).
const (
	TileUnknown = 0
	TileMVT     = 1
	TilePNG     = 2
	TileJPEG    = 3
	TileWebP    = 4
	TileAVIF    = 5
)

// Header is a PMTiles v3 header.
type Header struct {
	RootOffset, RootLength         uint64
	MetadataOffset, MetadataLength uint64
	LeafOffset, LeafLength         uint64
	DataOffset, DataLength         uint64
	AddressedTiles, TileEntries    uint64
	TileContents                   uint64
	Clustered                      bool
	InternalCompression            uint8
	TileCompression                uint8
	TileType                       uint8
	MinZoom, MaxZoom               uint8
	// Bounds in degrees (WGS84, or whatever the tiles use).
	MinLon, MinLat, MaxLon, MaxLat float64
	CenterZoom                     uint8
	CenterLon, CenterLat           float64
}

// ParseHeader decodes and checks the first HeaderLen bytes of a PMTiles
// file. It refuses anything but version 3, zooms above 30 and offsets or
// lengths that overflow.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, fmt.Errorf("is %d bytes, shorter than a PMTiles header (%d)", len(b), HeaderLen)
	}
	if string(b[:7]) != "PMTiles" {
		return h, errors.New(`is not a PMTiles file (it does not start with "PMTiles")`)
	}
	if b[7] != 3 {
		return h, fmt.Errorf("is PMTiles version %d; only version 3 is supported (convert it with `pmtiles convert`)", b[7])
	}
	u := func(at int) uint64 { return binary.LittleEndian.Uint64(b[at:]) }
	e7 := func(at int) float64 { return float64(int32(binary.LittleEndian.Uint32(b[at:]))) / 1e7 }
	h = Header{
		RootOffset: u(8), RootLength: u(16), MetadataOffset: u(24), MetadataLength: u(32),
		LeafOffset: u(40), LeafLength: u(48), DataOffset: u(56), DataLength: u(64),
		AddressedTiles: u(72), TileEntries: u(80), TileContents: u(88),
		Clustered: b[96] == 1, InternalCompression: b[97], TileCompression: b[98], TileType: b[99],
		MinZoom: b[100], MaxZoom: b[101],
		MinLon: e7(102), MinLat: e7(106), MaxLon: e7(110), MaxLat: e7(114),
		CenterZoom: b[118], CenterLon: e7(119), CenterLat: e7(123),
	}
	if h.MaxZoom > 30 || h.MinZoom > h.MaxZoom {
		return h, fmt.Errorf("has zooms %d..%d (at most 0..30)", h.MinZoom, h.MaxZoom)
	}
	for _, s := range [][2]uint64{{h.RootOffset, h.RootLength}, {h.MetadataOffset, h.MetadataLength},
		{h.LeafOffset, h.LeafLength}, {h.DataOffset, h.DataLength}} {
		if s[0] > 1<<62 || s[1] > 1<<62 {
			return h, errors.New("has a section offset or length beyond any file")
		}
	}
	return h, nil
}

// Check reports why the console cannot serve an archive with header h, or
// nil.
func (h Header) Check() error {
	switch h.TileType {
	case TilePNG, TileJPEG, TileWebP, TileAVIF:
	case TileMVT:
		return errors.New("holds vector tiles (MVT); the console draws raster tiles only (PNG, JPEG, WebP): " +
			"render the archive to raster tiles, or serve the vector tiles with a map server and configure its raster XYZ URL")
	default:
		return fmt.Errorf("holds tiles of unknown type %d; the console draws PNG, JPEG, WebP or AVIF tiles", h.TileType)
	}
	if h.InternalCompression != CompressionNone && h.InternalCompression != CompressionGzip {
		return fmt.Errorf("has %s-compressed directories; the cloud reads uncompressed or gzip ones "+
			"(`pmtiles convert` writes gzip)", compressionName(h.InternalCompression))
	}
	if h.TileCompression != CompressionNone && h.TileCompression != CompressionUnknown {
		return fmt.Errorf("stores its raster tiles %s-compressed; raster tiles must be stored as they are",
			compressionName(h.TileCompression))
	}
	if h.RootLength == 0 {
		return errors.New("has an empty root directory")
	}
	return nil
}

func compressionName(c uint8) string {
	switch c {
	case CompressionNone:
		return "un"
	case CompressionGzip:
		return "gzip"
	case CompressionBrotli:
		return "brotli"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("unknown (%d)", c)
}

// ReadHeader reads and checks the header of the PMTiles file at path.
func ReadHeader(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	b := make([]byte, HeaderLen)
	if n, err := io.ReadFull(f, b); err != nil {
		return Header{}, fmt.Errorf("%s is %d bytes, shorter than a PMTiles header (%d)", path, n, HeaderLen)
	}
	h, err := ParseHeader(b)
	if err != nil {
		return h, fmt.Errorf("%s %w", path, err)
	}
	return h, nil
}

// TileID is the PMTiles tile id of z/x/y: the tiles of lower zooms, then
// the position of x, y along the Hilbert curve of zoom z.
func TileID(z uint8, x, y uint32) uint64 {
	id := ((uint64(1) << (2 * uint(z))) - 1) / 3 // 4⁰ + … + 4^(z-1)
	n := uint32(1) << z
	for s := n / 2; s > 0; s /= 2 {
		var rx, ry uint32
		if x&s != 0 {
			rx = 1
		}
		if y&s != 0 {
			ry = 1
		}
		id += uint64(s) * uint64(s) * uint64((3*rx)^ry)
		if ry == 0 {
			if rx == 1 {
				x, y = n-1-x, n-1-y
			}
			x, y = y, x
		}
	}
	return id
}

// Entry is one directory entry: RunLength tiles from TileID with the same
// content at Offset (in the tile data), or, with RunLength 0, a leaf
// directory at Offset (in the leaf directories).
type Entry struct {
	TileID    uint64
	Offset    uint64
	Length    uint32
	RunLength uint32
}

// maxEntries bounds one directory (a real root holds at most a few
// thousand; leaves are made of at most a few tens of thousands).
const maxEntries = 1 << 20

// ParseDirectory decodes an uncompressed directory.
func ParseDirectory(b []byte) ([]Entry, error) {
	r := bytes.NewReader(b)
	next := func() (uint64, error) { return binary.ReadUvarint(r) }
	n, err := next()
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if n > maxEntries || n > uint64(len(b)) { // every entry takes at least 4 bytes
		return nil, fmt.Errorf("directory: %d entries in %d bytes", n, len(b))
	}
	es := make([]Entry, n)
	var id uint64
	for i := range es {
		d, err := next()
		if err != nil {
			return nil, fmt.Errorf("directory: tile id %d: %w", i, err)
		}
		if id+d < id {
			return nil, errors.New("directory: tile ids overflow")
		}
		id += d
		es[i].TileID = id
	}
	for i := range es {
		v, err := next()
		if err != nil || v > 1<<32-1 {
			return nil, fmt.Errorf("directory: run length %d: bad (%v)", i, err)
		}
		es[i].RunLength = uint32(v)
	}
	for i := range es {
		v, err := next()
		if err != nil || v > 1<<32-1 {
			return nil, fmt.Errorf("directory: length %d: bad (%v)", i, err)
		}
		es[i].Length = uint32(v)
	}
	for i := range es {
		v, err := next()
		if err != nil {
			return nil, fmt.Errorf("directory: offset %d: %w", i, err)
		}
		if v == 0 && i > 0 {
			es[i].Offset = es[i-1].Offset + uint64(es[i-1].Length)
		} else {
			if v == 0 {
				return nil, errors.New("directory: the first entry has no offset")
			}
			es[i].Offset = v - 1
		}
	}
	return es, nil
}

// find returns the entry that holds id: the last with TileID ≤ id, if it
// is a leaf or its run covers id.
func find(es []Entry, id uint64) (Entry, bool) {
	lo, hi := 0, len(es) // the first entry with TileID > id is at lo
	for lo < hi {
		m := (lo + hi) / 2
		if es[m].TileID <= id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return Entry{}, false
	}
	e := es[lo-1]
	if e.RunLength == 0 || id-e.TileID < uint64(e.RunLength) {
		return e, true
	}
	return Entry{}, false
}

// Archive is an open PMTiles v3 file the console can serve.
type Archive struct {
	Header Header
	f      io.ReaderAt
	size   int64
	root   []Entry

	mu     sync.Mutex
	leaves map[uint64][]Entry // by offset; cleared when it holds maxLeaves
}

// maxLeaves bounds the leaf directories kept decoded.
const maxLeaves = 64

// maxDirectory bounds a directory's stored length.
const maxDirectory = 16 << 20

// Open opens the PMTiles file at path: reads and checks its header and
// root directory.
func Open(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	a, err := NewArchive(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s %w", path, err)
	}
	return a, nil
}

// NewArchive reads an archive of size bytes from r.
func NewArchive(r io.ReaderAt, size int64) (*Archive, error) {
	b := make([]byte, HeaderLen)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("is shorter than a PMTiles header: %w", err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if err := h.Check(); err != nil {
		return nil, err
	}
	a := &Archive{Header: h, f: r, size: size, leaves: map[uint64][]Entry{}}
	if a.root, err = a.directory(h.RootOffset, h.RootLength); err != nil {
		return nil, fmt.Errorf("root %w", err)
	}
	return a, nil
}

// Close closes the file if the archive was opened by Open.
func (a *Archive) Close() error {
	if c, ok := a.f.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// read returns length bytes at off, checked against the file's size.
func (a *Archive) read(off, length uint64, limit uint64) ([]byte, error) {
	if length > limit || off > uint64(a.size) || length > uint64(a.size)-off {
		return nil, fmt.Errorf("section %d+%d lies outside the %d-byte file", off, length, a.size)
	}
	b := make([]byte, length)
	if _, err := a.f.ReadAt(b, int64(off)); err != nil {
		return nil, err
	}
	return b, nil
}

func (a *Archive) directory(off, length uint64) ([]Entry, error) {
	b, err := a.read(off, length, maxDirectory)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if a.Header.InternalCompression == CompressionGzip {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
		b, err = io.ReadAll(io.LimitReader(zr, 4*maxDirectory+1))
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
		if len(b) > 4*maxDirectory {
			return nil, errors.New("directory: larger than 64 MiB uncompressed")
		}
	}
	return ParseDirectory(b)
}

// ErrNoTile is Tile's error for a tile the archive does not hold.
var ErrNoTile = errors.New("no such tile")

// Tile returns the content of tile z/x/y, or ErrNoTile.
func (a *Archive) Tile(z uint8, x, y uint32) ([]byte, error) {
	if z < a.Header.MinZoom || z > a.Header.MaxZoom || x >= 1<<z || y >= 1<<z {
		return nil, ErrNoTile
	}
	id := TileID(z, x, y)
	dir := a.root
	for depth := 0; depth < 4; depth++ {
		e, ok := find(dir, id)
		if !ok {
			return nil, ErrNoTile
		}
		if e.RunLength > 0 {
			if e.Offset > 1<<62 {
				return nil, ErrNoTile
			}
			return a.read(a.Header.DataOffset+e.Offset, uint64(e.Length), 64<<20)
		}
		var err error
		if dir, err = a.leaf(e); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("leaf directories nested deeper than 3 levels")
}

func (a *Archive) leaf(e Entry) ([]Entry, error) {
	a.mu.Lock()
	dir, ok := a.leaves[e.Offset]
	a.mu.Unlock()
	if ok {
		return dir, nil
	}
	if e.Offset > 1<<62 {
		return nil, errors.New("leaf directory offset out of range")
	}
	dir, err := a.directory(a.Header.LeafOffset+e.Offset, uint64(e.Length))
	if err != nil {
		return nil, fmt.Errorf("leaf %w", err)
	}
	a.mu.Lock()
	if len(a.leaves) >= maxLeaves {
		clear(a.leaves)
	}
	a.leaves[e.Offset] = dir
	a.mu.Unlock()
	return dir, nil
}

// ContentType is the media type of the archive's tiles.
func (h Header) ContentType() string {
	switch h.TileType {
	case TilePNG:
		return "image/png"
	case TileJPEG:
		return "image/jpeg"
	case TileWebP:
		return "image/webp"
	case TileAVIF:
		return "image/avif"
	}
	return "application/octet-stream"
}
