package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/fieldwatch/fieldwatch/cloud/internal/basemap"
	"github.com/fieldwatch/fieldwatch/internal/pmtiles"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Console is the bureau console the cloud serves.
type Console struct {
	// Basemap is what the map is drawn on: with none configured, the
	// Natural Earth land outline shipped in the binary (docs/console.md).
	Basemap Basemap `yaml:"basemap"`
}

// Basemap is a tile source for the console's map: an XYZ tile server or a
// local PMTiles archive (raster), not both.
type Basemap struct {
	XYZ     *XYZ     `yaml:"xyz"`
	PMTiles *PMTiles `yaml:"pmtiles"`
	// Coordinates is the datum the tiles are drawn in: wgs84 (default), or
	// gcj02 for Chinese map providers (AutoNavi, Tencent), whose tiles are
	// offset; the console then converts every position it draws.
	Coordinates string `yaml:"coordinates"`

	// Header is the PMTiles archive's header, read by Check.
	Header *pmtiles.Header `yaml:"-"`
}

// XYZ is a tile server: URL is a template with {z}, {x}, {y} and, with
// Subdomains, {s}.
type XYZ struct {
	URL         string   `yaml:"url"`
	Subdomains  []string `yaml:"subdomains"`
	Attribution string   `yaml:"attribution"`
	MinZoom     int      `yaml:"min_zoom"`
	MaxZoom     int      `yaml:"max_zoom"` // 0: 18
}

// PMTiles is a raster PMTiles v3 archive the cloud serves.
type PMTiles struct {
	File        string `yaml:"file"`
	Attribution string `yaml:"attribution"`
}

// Coordinate datums of a basemap.
const (
	WGS84 = "wgs84"
	GCJ02 = "gcj02"
)

// xyzPlaceholder finds the template's placeholders.
var (
	xyzPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)
	subdomainRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

func (b *Basemap) validate(r *yamlconf.Report) {
	const p = "console.basemap"
	switch b.Coordinates {
	case "", WGS84:
	case GCJ02:
		if b.XYZ == nil && b.PMTiles == nil {
			r.Errorf(p+".coordinates", "gcj02 is the datum of a tile source; configure xyz or pmtiles (the shipped outline is WGS84)")
		}
	default:
		r.Errorf(p+".coordinates", "%q is not wgs84 or gcj02", b.Coordinates)
	}
	if b.XYZ != nil && b.PMTiles != nil {
		r.Errorf(p+".pmtiles", "give xyz or pmtiles, not both")
	}
	if x := b.XYZ; x != nil {
		x.validate(r, p+".xyz")
	}
	if m := b.PMTiles; m != nil {
		if m.File == "" {
			r.Errorf(p+".pmtiles.file", "is required: the path of a raster PMTiles v3 archive")
		}
		if strings.TrimSpace(m.Attribution) == "" {
			r.Errorf(p+".pmtiles.attribution", "is required: the tiles' source and licence (in China also the map's 审图号)")
		}
	}
}

func (x *XYZ) validate(r *yamlconf.Report, p string) {
	if strings.TrimSpace(x.Attribution) == "" {
		r.Errorf(p+".attribution", "is required: the tiles' source and licence (in China also the map's 审图号)")
	}
	if x.MinZoom < 0 || x.MinZoom > 22 {
		r.Errorf(p+".min_zoom", "%d is outside 0..22", x.MinZoom)
	}
	if x.MaxZoom != 0 && (x.MaxZoom < 1 || x.MaxZoom > 22 || x.MaxZoom < x.MinZoom) {
		r.Errorf(p+".max_zoom", "%d is outside %d..22", x.MaxZoom, max(1, x.MinZoom))
	}
	for i, s := range x.Subdomains {
		if !subdomainRE.MatchString(s) {
			r.Errorf(yamlconf.Join(p, "subdomains", i), "%q is not a host name label (letters, digits, -)", s)
		}
	}
	if x.URL == "" {
		r.Errorf(p+".url", "is required: a tile URL such as https://tiles.example.org/{z}/{x}/{y}.png")
		return
	}
	seen := map[string]bool{}
	for _, ph := range xyzPlaceholder.FindAllString(x.URL, -1) {
		switch ph {
		case "{z}", "{x}", "{y}", "{s}":
			seen[ph] = true
		default:
			r.Errorf(p+".url", "%s is not a placeholder the console fills ({z}, {x}, {y}, {s})", ph)
		}
	}
	for _, ph := range []string{"{z}", "{x}", "{y}"} {
		if !seen[ph] {
			r.Errorf(p+".url", "%q has no %s", x.URL, ph)
		}
	}
	if seen["{s}"] != (len(x.Subdomains) > 0) {
		if seen["{s}"] {
			r.Errorf(p+".subdomains", "are required by {s} in the URL")
		} else {
			r.Errorf(p+".subdomains", "are given but the URL has no {s}")
		}
	}
	if _, err := x.Origins(); err != nil {
		r.Errorf(p+".url", "%v", err)
	}
}

// Origins are the scheme://host[:port] the tiles come from, one per
// subdomain: what the page's Content-Security-Policy lets images load from.
func (x *XYZ) Origins() ([]string, error) {
	subs := x.Subdomains
	if len(subs) == 0 {
		subs = []string{""}
	}
	var out []string
	for _, s := range subs {
		raw := strings.NewReplacer("{s}", s, "{z}", "0", "{x}", "0", "{y}", "0").Replace(x.URL)
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("%q is not an http(s) URL with a host", x.URL)
		}
		if strings.ContainsAny(u.Host, "*;' ") {
			return nil, fmt.Errorf("%q: host %q cannot be named in a Content-Security-Policy", x.URL, u.Host)
		}
		o := u.Scheme + "://" + strings.ToLower(u.Host)
		if !contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// load reads the PMTiles archive's header.
func (b *Basemap) load(r *yamlconf.Report) {
	b.Header = nil
	if b.PMTiles == nil || b.PMTiles.File == "" {
		return
	}
	h, err := pmtiles.ReadHeader(b.PMTiles.File)
	if err == nil {
		err = h.Check()
		if err != nil {
			err = fmt.Errorf("%s %w", b.PMTiles.File, err)
		}
	}
	if err != nil {
		r.Errorf("console.basemap.pmtiles.file", "%v", err)
		return
	}
	b.Header = &h
}

// ImageOrigins are the origins other than the cloud's own that the page
// loads images from: the XYZ tile server's, or none.
func (b *Basemap) ImageOrigins() []string {
	if b.XYZ == nil {
		return nil
	}
	o, _ := b.XYZ.Origins() // checked by Validate
	return o
}

// Page is the basemap as the page is told it.
func (b *Basemap) Page() basemap.Basemap {
	out := basemap.Basemap{Kind: "outline", MaxZoom: 16, Coordinates: WGS84}
	if b.Coordinates != "" {
		out.Coordinates = b.Coordinates
	}
	switch {
	case b.XYZ != nil:
		x := b.XYZ
		out.Kind, out.URL, out.Subdomains, out.Attribution, out.MinZoom = "xyz", x.URL, x.Subdomains, x.Attribution, x.MinZoom
		out.MaxZoom = x.MaxZoom
		if out.MaxZoom == 0 {
			out.MaxZoom = 18
		}
	case b.PMTiles != nil && b.Header != nil:
		h := b.Header
		out.Kind, out.URL, out.Attribution = "pmtiles", basemap.TilePath, b.PMTiles.Attribution
		out.MinZoom, out.MaxZoom = int(h.MinZoom), int(h.MaxZoom)
		if h.MaxLon > h.MinLon && h.MaxLat > h.MinLat {
			out.Bounds = []float64{h.MinLat, h.MinLon, h.MaxLat, h.MaxLon}
		}
	}
	return out
}
