package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/basemap"
	"github.com/fieldwatch/fieldwatch/internal/pmtiles"
)

// writeArchive writes a one-tile PMTiles archive of tile type tt.
func writeArchive(t *testing.T, dir string, tt uint8) string {
	t.Helper()
	var b bytes.Buffer
	if err := pmtiles.Write(&b, map[uint64][]byte{0: []byte("tile")}, pmtiles.WriteOptions{TileType: tt,
		Bounds: [4]float64{73, 18, 135, 54}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tiles.pmtiles")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBasemapConfig(t *testing.T) {
	dir := t.TempDir()
	raster := writeArchive(t, dir, pmtiles.TilePNG)
	vecDir := filepath.Join(dir, "v")
	os.Mkdir(vecDir, 0o755)
	vector := writeArchive(t, vecDir, pmtiles.TileMVT)
	notPM := filepath.Join(dir, "x.mbtiles")
	os.WriteFile(notPM, bytes.Repeat([]byte("SQLite format 3\x00"), 10), 0o644)
	loadCases(t, []fileCase{
		{"none", "console: {}\n", ""},
		{"xyz", "console:\n  basemap:\n    xyz: {url: \"https://tiles.example.org/{z}/{x}/{y}.png\", attribution: \"© Example\"}\n", ""},
		{"xyz subdomains gcj02", "console:\n  basemap:\n    coordinates: gcj02\n    xyz:\n      url: \"https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}\"\n      subdomains: [\"1\", \"2\"]\n      attribution: \"© AutoNavi GS(2021)6375号\"\n", ""},
		{"pmtiles", "console:\n  basemap:\n    pmtiles: {file: " + raster + ", attribution: \"© Bureau\"}\n", ""},
		{"no z", "console:\n  basemap:\n    xyz:\n      url: \"https://t.example.org/{x}/{y}.png\"\n      attribution: a\n", `c.yaml:4: console.basemap.xyz.url: "https://t.example.org/{x}/{y}.png" has no {z}`},
		{"ftp", "console:\n  basemap:\n    xyz:\n      url: \"ftp://t.example.org/{z}/{x}/{y}.png\"\n      attribution: a\n", `c.yaml:4: console.basemap.xyz.url: "ftp://t.example.org/{z}/{x}/{y}.png" is not an http(s) URL with a host`},
		{"relative", "console:\n  basemap:\n    xyz: {url: \"/{z}/{x}/{y}.png\", attribution: a}\n", "is not an http(s) URL with a host"},
		{"other placeholder", "console:\n  basemap:\n    xyz: {url: \"https://t.example.org/{z}/{x}/{y}{r}.png\", attribution: a}\n", "{r} is not a placeholder"},
		{"wildcard host", "console:\n  basemap:\n    xyz: {url: \"https://*.example.org/{z}/{x}/{y}.png\", attribution: a}\n", "cannot be named in a Content-Security-Policy"},
		{"s without subdomains", "console:\n  basemap:\n    xyz:\n      url: \"https://{s}.t.example.org/{z}/{x}/{y}.png\"\n      attribution: a\n", "c.yaml:3: console.basemap.xyz.subdomains: are required by {s}"},
		{"bad subdomain", "console:\n  basemap:\n    xyz:\n      url: \"https://{s}.t.example.org/{z}/{x}/{y}.png\"\n      subdomains: [a, \"b/c\"]\n      attribution: a\n", `c.yaml:5: console.basemap.xyz.subdomains[1]: "b/c" is not a host name label`},
		{"no attribution", "console:\n  basemap:\n    xyz:\n      url: \"https://t.example.org/{z}/{x}/{y}.png\"\n", "c.yaml:3: console.basemap.xyz.attribution: is required"},
		{"max_zoom", "console:\n  basemap:\n    xyz:\n      url: \"https://t.example.org/{z}/{x}/{y}.png\"\n      attribution: a\n      max_zoom: 25\n", "c.yaml:6: console.basemap.xyz.max_zoom: 25 is outside 1..22"},
		{"both", "console:\n  basemap:\n    xyz: {url: \"https://t.example.org/{z}/{x}/{y}.png\", attribution: a}\n    pmtiles: {file: " + raster + ", attribution: a}\n", "c.yaml:4: console.basemap.pmtiles: give xyz or pmtiles, not both"},
		{"gcj02 alone", "console:\n  basemap:\n    coordinates: gcj02\n", "c.yaml:3: console.basemap.coordinates: gcj02 is the datum of a tile source"},
		{"datum", "console:\n  basemap:\n    coordinates: bd09\n", `c.yaml:3: console.basemap.coordinates: "bd09" is not wgs84 or gcj02`},
		{"missing file", "console:\n  basemap:\n    pmtiles:\n      file: " + filepath.Join(dir, "nope.pmtiles") + "\n      attribution: a\n", "c.yaml:4: console.basemap.pmtiles.file: open " + filepath.Join(dir, "nope.pmtiles") + ": no such file"},
		{"not pmtiles", "console:\n  basemap:\n    pmtiles:\n      file: " + notPM + "\n      attribution: a\n", "c.yaml:4: console.basemap.pmtiles.file: " + notPM + ` is not a PMTiles file`},
		{"vector", "console:\n  basemap:\n    pmtiles:\n      file: " + vector + "\n      attribution: a\n", "c.yaml:4: console.basemap.pmtiles.file: " + vector + " holds vector tiles (MVT)"},
		{"typo", "console:\n  basemap:\n    xyz: {ulr: x}\n", `ulr: unknown field (did you mean "url"?)`},
	})
}

func TestBasemapPageAndOrigins(t *testing.T) {
	d := Default().Console.Basemap
	if p := d.Page(); p.Kind != "outline" || p.Coordinates != "wgs84" || d.ImageOrigins() != nil {
		t.Errorf("default: %+v %v", p, d.ImageOrigins())
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("console:\n  basemap:\n    coordinates: gcj02\n    xyz:\n      url: \"https://webrd0{s}.is.autonavi.com:8443/appmaptile?x={x}&y={y}&z={z}\"\n      subdomains: [\"1\", \"2\", \"3\"]\n      attribution: \"© AutoNavi\"\n"), 0o644)
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://webrd01.is.autonavi.com:8443", "https://webrd02.is.autonavi.com:8443", "https://webrd03.is.autonavi.com:8443"}
	if got := c.Console.Basemap.ImageOrigins(); !reflect.DeepEqual(got, want) {
		t.Errorf("origins %v, want %v", got, want)
	}
	if p := c.Console.Basemap.Page(); p.Kind != "xyz" || p.MaxZoom != 18 || p.Coordinates != "gcj02" || len(p.Subdomains) != 3 {
		t.Errorf("page %+v", p)
	}

	raster := writeArchive(t, t.TempDir(), pmtiles.TileWebP)
	os.WriteFile(path, []byte("console:\n  basemap:\n    pmtiles: {file: "+raster+", attribution: \"© Bureau GS(2024)1234号\"}\n"), 0o644)
	if c, err = LoadFile(path); err != nil {
		t.Fatal(err)
	}
	p := c.Console.Basemap.Page()
	if p.Kind != "pmtiles" || p.URL != basemap.TilePath || p.Attribution != "© Bureau GS(2024)1234号" ||
		!reflect.DeepEqual(p.Bounds, []float64{18, 73, 54, 135}) || c.Console.Basemap.ImageOrigins() != nil {
		t.Errorf("page %+v", p)
	}
}
