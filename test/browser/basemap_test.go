package browser

// The console's configured basemaps (docs/console.md): XYZ tiles from a
// tile server, a PMTiles archive served by the cloud, and GCJ-02 positions
// for tiles drawn in China's offset datum.

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fieldwatch/fieldwatch/internal/pmtiles"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// pngTile is a 256 × 256 PNG of one colour.
func pngTile(t *testing.T, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// cloudConfig writes a cloud config file and returns the arguments that
// make the cloud read it.
func cloudConfig(t *testing.T, body string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cloud.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"-c", path}
}

// tilesJS are the basemap's tile images: their URL, whether done (loaded or
// failed) and loaded, their
// natural width and the colour of their centre pixel (drawn on a canvas;
// a cross-origin image taints it, then the colour is "").
const tilesJS = `[...document.querySelectorAll("#map img.leaflet-tile")].map((img) => {
  let rgb = "";
  if (img.complete && img.naturalWidth > 0) {
    try {
      const c = document.createElement("canvas"); c.width = c.height = 1;
      const g = c.getContext("2d"); g.drawImage(img, 128, 128, 1, 1, 0, 0, 1, 1);
      rgb = [...g.getImageData(0, 0, 1, 1).data.slice(0, 3)].join(",");
    } catch (e) { rgb = ""; }
  }
  return { src: img.src, complete: img.complete, loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth, rgb };
})`

type pageTile struct {
	Src              string
	Complete, Loaded bool
	Width            int
	RGB              string
}

// attributionJS is the map's attribution line.
const attributionJS = `document.querySelector("#map .leaflet-control-attribution").textContent`

// TestBasemapPMTiles: a raster PMTiles archive (made here: zooms 0 to 2, one
// colour per tile, tile 2/2/1 left out) configured in the cloud is drawn
// from /basemap/tiles/…: the browser asks the cloud for tiles, each tile
// the archive holds loads and shows its colour, the one it lacks (204) is
// empty without a console error, the attribution is the configured one (as
// text), and the shipped outline is not loaded.
func TestBasemapPMTiles(t *testing.T) {
	const missing = "2/2/1" // in view at the page's first view (China at zoom 4)
	colours := map[string]color.RGBA{}
	tiles := map[uint64][]byte{}
	for z := uint8(0); z <= 2; z++ {
		for x := uint32(0); x < 1<<z; x++ {
			for y := uint32(0); y < 1<<z; y++ {
				zxy := fmt.Sprintf("%d/%d/%d", z, x, y)
				if zxy == missing {
					continue
				}
				c := color.RGBA{R: 40 + uint8(z)*70, G: 60 + uint8(x)*50, B: 90 + uint8(y)*50, A: 255}
				colours[zxy] = c
				tiles[pmtiles.TileID(z, x, y)] = pngTile(t, c)
			}
		}
	}
	var ar bytes.Buffer
	if err := pmtiles.Write(&ar, tiles, pmtiles.WriteOptions{TileType: pmtiles.TilePNG, MaxZoom: 2, Gzip: true,
		Bounds: [4]float64{-180, -85, 180, 85}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "basemap.pmtiles")
	if err := os.WriteFile(file, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url, _ := StartCloud(t, cloudConfig(t, fmt.Sprintf("console:\n  basemap:\n    pmtiles:\n      file: %s\n      attribution: \"© Test bureau <b>GS(2099)0001号</b>\"\n", file))...)
	p := OpenPage(t, url, 1280, 900)
	p.WaitJS(t, "the map on PMTiles", `document.querySelector("#map").dataset.basemap === "pmtiles"`, waitLong)
	got := p.WaitJS(t, "tile images loaded, the missing one answered", `(() => { const ts = `+tilesJS+`;
  return ts.some((x) => x.loaded) && ts.some((x) => x.src.endsWith("/`+missing+`") && x.complete) && ts.every((x) => x.complete) && ts; })()`, waitLong)
	t.Logf("tiles: %s", got)
	for _, tl := range Eval[[]pageTile](t, p, tilesJS) {
		i := strings.Index(tl.Src, "/basemap/tiles/")
		if i < 0 || !strings.HasPrefix(tl.Src, url) {
			t.Errorf("tile %s not from the cloud's /basemap/tiles/", tl.Src)
			continue
		}
		zxy := tl.Src[i+len("/basemap/tiles/"):]
		if zxy == missing {
			if tl.Loaded {
				t.Errorf("tile %s is not in the archive but drew %+v", zxy, tl)
			}
			continue
		}
		c, ok := colours[zxy]
		if !ok {
			t.Errorf("tile %s: not in the archive", tl.Src)
			continue
		}
		if want := fmt.Sprintf("%d,%d,%d", c.R, c.G, c.B); !tl.Loaded || tl.Width != 256 || tl.RGB != want {
			t.Errorf("tile %s: %+v, want loaded, width 256 and colour %q", zxy, tl, want)
		}
	}
	// What the browser asked for: tiles from the cloud, not the outline.
	asked := Eval[[]string](t, p, `performance.getEntriesByType("resource").map((e) => e.name)`)
	var tileReqs int
	for _, u := range asked {
		if strings.Contains(u, "/basemap/tiles/") {
			tileReqs++
		}
		if strings.Contains(u, "land-50m") {
			t.Errorf("the outline was loaded too: %s", u)
		}
	}
	if tileReqs == 0 {
		t.Errorf("no tile requested from the cloud: %v", asked)
	}
	// Shown as written: text, not HTML.
	if a := Eval[string](t, p, attributionJS); !strings.Contains(a, "© Test bureau <b>GS(2099)0001号</b>") || strings.Contains(a, "Natural Earth") {
		t.Errorf("attribution %q", a)
	}
}

// gcjPairs are published WGS-84 → GCJ-02 pairs (lat, lon → lat, lon) from
// independent open implementations' tests and documentation: wandergis/
// coordtransform's README (Beijing), a Python test (40 N 116 E), a Rust
// CLI's test (near Shanghai) and an R package's test (Tiananmen).
var gcjPairs = [][4]float64{
	{39.915, 116.404, 39.91640428150164, 116.41024449916938},
	{40.0, 116.0, 40.001213650174, 116.006141221789},
	{30.6107779, 121.0917077, 30.608604331756705, 121.09626935575027},
	{39.90734, 116.39089, 39.90874107, 116.39713094},
}

// TestGCJ02Conversion evaluates the console's js/gcj02.js in the browser:
// the published pairs within 1e-6° (0.1 m), and positions outside China
// left as they are.
func TestGCJ02Conversion(t *testing.T) {
	url, _ := StartCloud(t)
	p := OpenPage(t, url, 800, 600)
	type result struct {
		In, Out []float64
	}
	var in [][2]float64
	for _, c := range gcjPairs {
		in = append(in, [2]float64{c[0], c[1]})
	}
	outside := [][2]float64{{51.5007, -0.1246}, {0, 0}, {-33.8568, 151.2153}, {40.6892, -74.0445}, {60.0845, 23.5391}, {-45, 170}}
	in = append(in, outside...)
	js := fmt.Sprintf(`import("/static/js/gcj02.js").then((m) => %s.map(([lat, lon]) => ({ in: [lat, lon], out: m.wgs84ToGcj02(lat, lon) })))`, jsonOf(t, in))
	got := EvalAsync[[]result](t, p, js)
	if len(got) != len(in) {
		t.Fatalf("%d results for %d positions", len(got), len(in))
	}
	for i, c := range gcjPairs {
		if math.Abs(got[i].Out[0]-c[2]) > 1e-6 || math.Abs(got[i].Out[1]-c[3]) > 1e-6 {
			t.Errorf("%v,%v → %v, published %v,%v", c[0], c[1], got[i].Out, c[2], c[3])
		}
	}
	for i, o := range outside {
		if r := got[len(gcjPairs)+i]; r.Out[0] != o[0] || r.Out[1] != o[1] {
			t.Errorf("outside China %v → %v, want it unchanged", o, r.Out)
		}
	}
}

// TestBasemapXYZWithGCJ02: an XYZ tile server (a local one, counting what it
// is asked) configured with coordinates: gcj02: the page loads its tiles
// (the Content-Security-Policy lets exactly its origin in: any violation
// fails the test), shows its attribution, and draws each station at its
// GCJ-02 position — hundreds of metres from the WGS-84 one in
// Heilongjiang.
func TestBasemapXYZWithGCJ02(t *testing.T) {
	tile := pngTile(t, color.RGBA{R: 200, G: 220, B: 180, A: 255})
	var mu sync.Mutex
	asked := map[string]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path]++
		mu.Unlock()
		var z, x, y int
		if n, _ := fmt.Sscanf(r.URL.Path, "/tiles/%d/%d/%d.png", &z, &x, &y); n != 3 {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(tile)
	}))
	t.Cleanup(ts.Close)
	s := StartStack(t, cloudConfig(t, fmt.Sprintf(`console:
  basemap:
    coordinates: gcj02
    xyz:
      url: "%s/tiles/{z}/{x}/{y}.png"
      attribution: "© Test tiles, GS(2099)0002号"
      max_zoom: 15
`, ts.URL))...)
	p := OpenPage(t, s.URL, 1280, 900)
	p.WaitJS(t, "the map on XYZ tiles in GCJ-02", `(() => { const d = document.querySelector("#map").dataset;
  return d.basemap === "xyz" && d.coordinates === "gcj02"; })()`, waitLong)
	p.WaitJS(t, "tile images loaded", `(() => { const ts = `+tilesJS+`; return ts.length > 0 && ts.every((x) => x.loaded); })()`, waitLong)
	for _, tl := range Eval[[]pageTile](t, p, tilesJS) {
		if !strings.HasPrefix(tl.Src, ts.URL+"/tiles/") || tl.Width != 256 {
			t.Errorf("tile %+v", tl)
		}
	}
	mu.Lock()
	n := 0
	for path, k := range asked {
		if strings.HasPrefix(path, "/tiles/") {
			n += k
		}
	}
	mu.Unlock()
	if n == 0 {
		t.Errorf("the tile server was asked nothing: %v", asked)
	}
	t.Logf("tile requests: %d", n)
	if a := Eval[string](t, p, attributionJS); !strings.Contains(a, "© Test tiles, GS(2099)0002号") || strings.Contains(a, "Natural Earth") {
		t.Errorf("attribution %q", a)
	}

	// Each station is drawn where gcj02.js puts its WGS-84 location: about
	// 300–700 m away in Heilongjiang.
	p.WaitJS(t, "the markers", `document.querySelectorAll(".leaflet-overlay-pane path.station-marker[data-drawn]").length === 2`, waitLong)
	var locs []struct {
		ID       string `json:"id"`
		Location struct {
			Lat float64 `json:"lat"`
			Lon float64 `json:"lon"`
		} `json:"location"`
	}
	if err := testenv.GetJSON(s.URL+"api/v1/stations", &locs); err != nil {
		t.Fatal(err)
	}
	for _, l := range locs {
		drawn := Eval[string](t, p, fmt.Sprintf(`document.querySelector(%q).dataset.drawn`, fmt.Sprintf(markerSel, l.ID)))
		want := EvalAsync[[]float64](t, p, fmt.Sprintf(`import("/static/js/gcj02.js").then((m) => m.wgs84ToGcj02(%v, %v))`, l.Location.Lat, l.Location.Lon))
		var lat, lon float64
		if _, err := fmt.Sscanf(drawn, "%g,%g", &lat, &lon); err != nil {
			t.Fatalf("%s drawn at %q: %v", l.ID, drawn, err)
		}
		if lat != want[0] || lon != want[1] {
			t.Errorf("%s drawn at %v,%v, want GCJ-02 %v", l.ID, lat, lon, want)
		}
		if d := metres(l.Location.Lat, l.Location.Lon, lat, lon); d < 300 || d > 700 {
			t.Errorf("%s shifted %.0f m from its WGS-84 position, want 300–700 m", l.ID, d)
		}
	}
}

// metres between two positions (haversine).
func metres(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371000.0
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprint(&b, "[")
	for i, x := range v.([][2]float64) {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "[%v,%v]", x[0], x[1])
	}
	b.WriteString("]")
	return b.String()
}
