package api

import (
	"net/http"

	"github.com/fieldwatch/fieldwatch/cloud/internal/basemap"
)

// Console is what the console page learns from the cloud's configuration
// (GET /api/v1/console): its map's basemap.
type Console struct {
	Basemap basemap.Basemap `json:"basemap"`
}

// WithConsole sets what GET /api/v1/console answers; without it, the
// shipped outline.
func (a *API) WithConsole(c Console) *API {
	a.console = &c
	return a
}

func (a *API) consoleInfo(*http.Request) (any, error) {
	if a.console == nil {
		return Console{Basemap: basemap.Basemap{Kind: "outline", MaxZoom: 16, Coordinates: "wgs84"}}, nil
	}
	return a.console, nil
}
