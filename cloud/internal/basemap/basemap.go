// Package basemap is the console map's configured basemap: the description
// the page asks for (GET /api/v1/console) and the handler serving a PMTiles
// archive's tiles. See docs/console.md and docs/decisions.md ("Console
// basemap").
package basemap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/pmtiles"
)

// TilePath is where the cloud serves a configured PMTiles archive's tiles,
// as a Leaflet URL template.
const TilePath = "/basemap/tiles/{z}/{x}/{y}"

// Basemap is what the page is told about its basemap (GET /api/v1/console).
type Basemap struct {
	// Kind is "outline" (the shipped Natural Earth land, no configuration),
	// "xyz" (a tile server) or "pmtiles" (an archive the cloud serves).
	Kind string `json:"kind"`
	// URL is the Leaflet tile URL template ({s}, {z}, {x}, {y}); empty for
	// the outline.
	URL         string   `json:"url,omitempty"`
	Subdomains  []string `json:"subdomains,omitempty"`
	Attribution string   `json:"attribution,omitempty"`
	// MinZoom and MaxZoom are the zooms the source has tiles for; the map
	// zooms further by scaling MaxZoom's tiles.
	MinZoom int `json:"min_zoom"`
	MaxZoom int `json:"max_zoom"`
	// Bounds (south, west, north, east), when the source says: no tile is
	// asked for outside.
	Bounds []float64 `json:"bounds,omitempty"`
	// Coordinates is the datum of the tiles: "wgs84", or "gcj02" (Chinese
	// map providers), in which case the page shifts every position it
	// draws.
	Coordinates string `json:"coordinates"`
}

// Handler serves archive a's tiles at TilePath. A tile the archive does not
// hold is 204 (an empty square: the map stays quiet and the browser logs
// nothing), a coordinate that is not a tile 404. Tiles carry an ETag from
// their content and may be cached for an hour.
func Handler(a *pmtiles.Archive, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		z, ez := strconv.ParseUint(r.PathValue("z"), 10, 8)
		x, ex := strconv.ParseUint(r.PathValue("x"), 10, 32)
		y, ey := strconv.ParseUint(r.PathValue("y"), 10, 32)
		if ez != nil || ex != nil || ey != nil || z > 30 || x >= 1<<z || y >= 1<<z {
			http.NotFound(w, r)
			return
		}
		b, err := a.Tile(uint8(z), uint32(x), uint32(y))
		switch {
		case errors.Is(err, pmtiles.ErrNoTile):
			w.Header().Set("Cache-Control", "public, max-age=3600")
			w.WriteHeader(http.StatusNoContent)
			return
		case err != nil:
			log.Warn("basemap: cannot read a tile", "z", z, "x", x, "y", y, "err", err)
			http.Error(w, "cannot read the tile", http.StatusInternalServerError)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("Content-Type", a.Header.ContentType())
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}
