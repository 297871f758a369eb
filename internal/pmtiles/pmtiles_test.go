package pmtiles

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tile ids of the PMTiles v3 specification's Hilbert numbering, as the
// reference implementation (npm pmtiles 4.5.0, zxyToTileId) gives them.
func TestTileID(t *testing.T) {
	for _, c := range []struct {
		z    uint8
		x, y uint32
		want uint64
	}{
		{0, 0, 0, 0}, {1, 0, 0, 1}, {1, 0, 1, 2}, {1, 1, 1, 3}, {1, 1, 0, 4}, {2, 0, 0, 5},
		{3, 5, 2, 76}, {12, 3423, 1763, 19078479}, {20, 1000000, 543210, 1189171339683},
	} {
		if got := TileID(c.z, c.x, c.y); got != c.want {
			t.Errorf("TileID(%d, %d, %d) = %d, want %d", c.z, c.x, c.y, got, c.want)
		}
	}
}

// every tile of zooms 0..3, each with its own content "z/x/y".
func allTiles() map[uint64][]byte {
	tiles := map[uint64][]byte{}
	for z := uint8(0); z <= 3; z++ {
		for x := uint32(0); x < 1<<z; x++ {
			for y := uint32(0); y < 1<<z; y++ {
				tiles[TileID(z, x, y)] = fmt.Appendf(nil, "%d/%d/%d", z, x, y)
			}
		}
	}
	return tiles
}

func write(t *testing.T, tiles map[uint64][]byte, o WriteOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, tiles, o); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("FIELDWATCH_PMTILES_OUT"); dir != "" { // for a cross-check with the reference reader
		os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".pmtiles"), b.Bytes(), 0o644)
	}
	return b.Bytes()
}

// Every layout the reader must follow: plain and gzip directories, a root
// only and leaf directories, and runs of equal tiles.
func TestArchiveReadsEveryTile(t *testing.T) {
	for _, o := range []WriteOptions{
		{TileType: TilePNG, MaxZoom: 3},
		{TileType: TilePNG, MaxZoom: 3, Gzip: true},
		{TileType: TileJPEG, MaxZoom: 3, LeafSize: 7},
		{TileType: TileWebP, MaxZoom: 3, LeafSize: 7, Gzip: true},
	} {
		t.Run(fmt.Sprintf("gzip=%v,leaf=%d", o.Gzip, o.LeafSize), func(t *testing.T) {
			b := write(t, allTiles(), o)
			a, err := NewArchive(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			for z := uint8(0); z <= 3; z++ {
				for x := uint32(0); x < 1<<z; x++ {
					for y := uint32(0); y < 1<<z; y++ {
						got, err := a.Tile(z, x, y)
						if want := fmt.Sprintf("%d/%d/%d", z, x, y); err != nil || string(got) != want {
							t.Fatalf("tile %s: %q, %v", want, got, err)
						}
					}
				}
			}
			if _, err := a.Tile(4, 0, 0); !errors.Is(err, ErrNoTile) {
				t.Errorf("zoom 4: %v, want ErrNoTile", err)
			}
		})
	}
}

// Runs: equal consecutive tiles are one entry; a gap is no tile.
func TestArchiveRunsAndGaps(t *testing.T) {
	tiles := map[uint64][]byte{}
	for id := uint64(5); id < 21; id++ { // zoom 2, all the same
		tiles[id] = []byte("sea")
	}
	delete(tiles, TileID(2, 3, 3))
	tiles[TileID(2, 0, 0)] = []byte("land")
	b := write(t, tiles, WriteOptions{TileType: TilePNG, MinZoom: 2, MaxZoom: 2})
	a, err := NewArchive(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Header.TileEntries >= 15 || a.Header.TileContents != 2 {
		t.Errorf("header %+v: runs not used", a.Header)
	}
	for _, c := range []struct {
		x, y uint32
		want string
	}{{0, 0, "land"}, {1, 0, "sea"}, {3, 2, "sea"}, {3, 3, ""}} {
		got, err := a.Tile(2, c.x, c.y)
		if c.want == "" {
			if !errors.Is(err, ErrNoTile) {
				t.Errorf("2/%d/%d: %q %v, want none", c.x, c.y, got, err)
			}
		} else if string(got) != c.want || err != nil {
			t.Errorf("2/%d/%d: %q %v, want %q", c.x, c.y, got, err, c.want)
		}
	}
	if _, err := a.Tile(1, 0, 0); !errors.Is(err, ErrNoTile) {
		t.Errorf("below min zoom: %v", err)
	}
}

func TestHeaderRefuses(t *testing.T) {
	good := write(t, allTiles(), WriteOptions{TileType: TilePNG, MaxZoom: 3})
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(good[:HeaderLen])
		f(b)
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", good[:100], "shorter than a PMTiles header"},
		{"magic", edit(func(b []byte) { copy(b, "MBTiles") }), "is not a PMTiles file"},
		{"v2", edit(func(b []byte) { b[7] = 2 }), "version 2"},
		{"zoom", edit(func(b []byte) { b[101] = 31 }), "zooms 0..31"},
		{"offset", edit(func(b []byte) { b[15] = 0xff }), "beyond any file"},
	} {
		if _, err := ParseHeader(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		f    func(h *Header)
		want string
	}{
		{"vector", func(h *Header) { h.TileType = TileMVT }, "vector tiles (MVT)"},
		{"unknown type", func(h *Header) { h.TileType = 9 }, "unknown type 9"},
		{"brotli", func(h *Header) { h.InternalCompression = CompressionBrotli }, "brotli-compressed directories"},
		{"gzip tiles", func(h *Header) { h.TileCompression = CompressionGzip }, "gzip-compressed"},
	} {
		h, err := ParseHeader(good)
		if err != nil {
			t.Fatal(err)
		}
		c.f(&h)
		if err := h.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A root directory outside the file.
	b := bytes.Clone(good)
	b[16] = 0xff
	b[17] = 0xff
	if _, err := NewArchive(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("root outside the file: %v", err)
	}
}

// FuzzParseHeader: any 127 bytes either parse to a header whose sections
// fit in 2⁶² bytes or are refused; never a panic.
func FuzzParseHeader(f *testing.F) {
	var b bytes.Buffer
	Write(&b, allTiles(), WriteOptions{TileType: TilePNG, MaxZoom: 3})
	f.Add(b.Bytes()[:HeaderLen])
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			return
		}
		if string(data[:7]) != "PMTiles" || data[7] != 3 || h.MaxZoom > 30 || h.RootOffset > 1<<62 {
			t.Fatalf("accepted %x as %+v", data[:HeaderLen], h)
		}
	})
}

// FuzzArchive: an archive of any bytes opens or is refused, and any tile
// of it is read or refused, without a panic or a read past the file.
func FuzzArchive(f *testing.F) {
	for _, o := range []WriteOptions{{TileType: TilePNG, MaxZoom: 3}, {TileType: TilePNG, MaxZoom: 3, Gzip: true, LeafSize: 5}} {
		var b bytes.Buffer
		Write(&b, allTiles(), o)
		f.Add(b.Bytes(), uint8(2), uint32(1), uint32(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, z uint8, x, y uint32) {
		a, err := NewArchive(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		a.Tile(z%31, x, y)
	})
}
