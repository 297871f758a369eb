// Package api is the cloud's JSON API under /api/v1: stations with their
// devices, health and latest values, and time ranges of one series. Bad
// requests get a 400 with a JSON error naming the parameter, and a counter.
// See docs/api.md.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/rollout"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// API serves /api/v1.
type API struct {
	store    store.Store
	registry *registry.Registry
	log      *slog.Logger
	now      func() time.Time
	alerts   *engine.Engine
	access   access
	loc      *time.Location // where statistics' days begin (stats.go)
	console  *Console
	// publishConfig publishes remote configs (fleet.go); nil: not offered.
	publishConfig ConfigPublisher
	// sendCommand sends remote commands (commands.go); nil: not offered.
	sendCommand CommandSender
	commands    commandLog
	// rollouts drives rollouts (rollouts.go); nil: not offered.
	rollouts *rollout.Engine
	// noRollouts says why rollouts are not offered ("" : not said).
	noRollouts string
	// publishRelease publishes release manifests, releases stores their
	// binaries (release.go); nil, "": not offered.
	publishRelease ReleasePublisher
	releases       string

	requests *prometheus.CounterVec
}

// New returns the API; its metrics are registered on reg.
func New(st store.Store, reg *registry.Registry, log *slog.Logger, mreg prometheus.Registerer) *API {
	a := &API{store: st, registry: reg, log: log, now: time.Now,
		access: access{anonymous: apitoken.Operator, failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldwatch_api_auth_failures_total",
			Help: "API requests refused for their token: no_token, malformed, unknown_token or role."}, []string{"reason"}),
			reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_api_token_reloads_total",
				Help: "Token file reloads (SIGHUP) by result: success or failure."}, []string{"result"})},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldwatch_api_requests_total",
			Help: "API requests by endpoint and status code."}, []string{"endpoint", "code"})}
	mreg.MustRegister(a.requests, a.access.failures, a.access.reloads)
	loc, err := time.LoadLocation(DefaultTimezone)
	if err != nil {
		panic("BUG: the embedded zone database lacks " + DefaultTimezone) // time/tzdata is linked in
	}
	a.loc = loc
	return a
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/stations", a.wrap("stations", a.stations))
	mux.HandleFunc("GET /api/v1/stations/{id}", a.wrap("station", a.station))
	a.registerFleet(mux)
	a.registerCommands(mux)
	a.registerReleases(mux)
	a.registerInventory(mux)
	a.registerRollouts(mux)
	mux.HandleFunc("GET /api/v1/devices", a.wrap("devices", a.devices))
	mux.HandleFunc("GET /api/v1/latest", a.wrap("latest", a.latest))
	mux.HandleFunc("GET /api/v1/series", a.wrap("series", a.series))
	mux.HandleFunc("GET /api/v1/events", a.wrap("events", a.events))
	mux.HandleFunc("GET /api/v1/thresholds", a.wrap("thresholds", a.thresholds))
	mux.HandleFunc("GET /api/v1/export", a.export)
	mux.HandleFunc("GET /api/v1/stats", a.stats)
	mux.HandleFunc("GET /api/v1/console", a.wrap("console", a.consoleInfo))
	a.registerAlerts(mux)
	mux.HandleFunc("/api/", a.wrap("unknown", func(*http.Request) (any, error) {
		return nil, &Error{Status: http.StatusNotFound, Msg: "no such API endpoint; see docs/api.md"}
	}))
}

// Error is an API error with its HTTP status.
type Error struct {
	Status int    `json:"-"`
	Param  string `json:"param,omitempty"`
	Msg    string `json:"error"`
}

func (e *Error) Error() string { return e.Msg }

func badParam(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Param: param, Msg: param + ": " + fmt.Sprintf(format, args...)}
}

// wrap serves a reading endpoint: the viewer role may call it.
func (a *API) wrap(endpoint string, h func(*http.Request) (any, error)) http.HandlerFunc {
	return a.guard(endpoint, apitoken.Viewer, h)
}

// guard serves endpoint to callers with role need or above, as JSON.
func (a *API) guard(endpoint string, need apitoken.Role, h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ar := a.authorized(w, r, endpoint, need); ar != nil {
			v, err := h(ar)
			a.respond(w, endpoint, v, err)
		}
	}
}

// authorized returns r as its caller's if the caller has role need or
// above; else it answers the refusal and returns nil.
func (a *API) authorized(w http.ResponseWriter, r *http.Request, endpoint string, need apitoken.Role) *http.Request {
	ar, aerr := a.access.authorize(r, need)
	if aerr != nil {
		if aerr.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fieldwatch"`)
		}
		a.respond(w, endpoint, nil, aerr)
		return nil
	}
	return ar
}

// respond writes v, or err as its status and JSON body, and counts it.
func (a *API) respond(w http.ResponseWriter, endpoint string, v any, err error) {
	status := http.StatusOK
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			a.log.Error("API request failed", "endpoint", endpoint, "err", err)
			ae = &Error{Status: http.StatusInternalServerError, Msg: "internal error; see the server log"}
			if errors.Is(err, context.DeadlineExceeded) {
				ae = &Error{Status: http.StatusGatewayTimeout, Msg: "the store did not answer in time"}
			}
		}
		status, v = ae.Status, ae
	}
	a.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *API) stations(*http.Request) (any, error) {
	return a.registry.Stations(), nil
}

func (a *API) station(r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := telemetry.CheckName("station", id); err != nil {
		return nil, badParam("id", "%v", err)
	}
	st, ok := a.registry.Station(id)
	if !ok {
		return nil, &Error{Status: http.StatusNotFound, Param: "id", Msg: fmt.Sprintf("no station %q", id)}
	}
	return st, nil
}

// selectStations returns the station named by ?station=, or all of them.
func (a *API) selectStations(r *http.Request) ([]registry.Station, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "station"); err != nil {
		return nil, err
	}
	id := q.Get("station")
	if id == "" {
		return a.registry.Stations(), nil
	}
	if err := telemetry.CheckName("station", id); err != nil {
		return nil, badParam("station", "%v", err)
	}
	st, ok := a.registry.Station(id)
	if !ok {
		return nil, &Error{Status: http.StatusNotFound, Param: "station", Msg: fmt.Sprintf("no station %q", id)}
	}
	return []registry.Station{st}, nil
}

// StationDevice is a device with the station it belongs to.
type StationDevice struct {
	Station string `json:"station"`
	registry.Device
}

// devices lists every device, of one station or of all.
func (a *API) devices(r *http.Request) (any, error) {
	stations, err := a.selectStations(r)
	if err != nil {
		return nil, err
	}
	out := []StationDevice{}
	for _, st := range stations {
		for _, d := range st.Devices {
			out = append(out, StationDevice{Station: st.ID, Device: d})
		}
	}
	return out, nil
}

// latest lists the newest sample of every series, from the registry.
func (a *API) latest(r *http.Request) (any, error) {
	stations, err := a.selectStations(r)
	if err != nil {
		return nil, err
	}
	out := []store.Sample{}
	for _, st := range stations {
		for _, d := range st.Devices {
			out = append(out, d.Latest...)
		}
	}
	return out, nil
}

// SeriesResponse is what /api/v1/series returns.
type SeriesResponse struct {
	Station string         `json:"station"`
	Device  string         `json:"device"`
	Metric  string         `json:"metric"`
	From    time.Time      `json:"from"`
	To      time.Time      `json:"to"`
	Every   string         `json:"every,omitempty"`
	Samples []store.Sample `json:"samples"`
}

// maxBuckets bounds the buckets an aggregated series request may ask for.
const maxBuckets = 10_000

func (a *API) series(r *http.Request) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "station", "device", "metric", "from", "to", "every", "points", "limit"); err != nil {
		return nil, err
	}
	sq := store.SeriesQuery{Gateway: q.Get("station"), Device: q.Get("device"), Metric: q.Get("metric")}
	for param, v := range map[string]string{"station": sq.Gateway, "device": sq.Device, "metric": sq.Metric} {
		if err := telemetry.CheckName(param, v); err != nil {
			return nil, badParam(param, "%v", err)
		}
	}
	now := a.now()
	var err error
	if sq.To, err = parseTime(q.Get("to"), now, now); err != nil {
		return nil, badParam("to", "%v", err)
	}
	if sq.From, err = parseTime(q.Get("from"), sq.To.Add(-24*time.Hour), now); err != nil {
		return nil, badParam("from", "%v", err)
	}
	if !sq.From.Before(sq.To) {
		return nil, badParam("from", "must be before to (%s)", sq.To.Format(time.RFC3339))
	}
	if sq.Every, err = parseEvery(q.Get("every"), q.Get("points"), sq.From, sq.To, maxBuckets); err != nil {
		return nil, err
	}
	if v := q.Get("limit"); v != "" {
		if sq.Limit, err = strconv.Atoi(v); err != nil || sq.Limit < 1 || sq.Limit > store.MaxSeriesSamples {
			return nil, badParam("limit", "%q is not 1..%d", v, store.MaxSeriesSamples)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	samples, err := a.store.Series(ctx, sq)
	if err != nil {
		return nil, err
	}
	if samples == nil {
		samples = []store.Sample{}
	}
	resp := &SeriesResponse{Station: sq.Gateway, Device: sq.Device, Metric: sq.Metric, From: sq.From, To: sq.To, Samples: samples}
	if sq.Every > 0 {
		resp.Every = sq.Every.String()
	}
	return resp, nil
}

// events lists stored events, newest first.
func (a *API) events(r *http.Request) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "station", "device", "kind", "key", "from", "to", "limit"); err != nil {
		return nil, err
	}
	eq := store.EventQuery{Gateway: q.Get("station"), Device: q.Get("device"), Kind: q.Get("kind"), Key: q.Get("key"), Limit: 100}
	for param, v := range map[string]string{"station": eq.Gateway, "device": eq.Device, "kind": eq.Kind} {
		if v == "" {
			continue
		}
		if err := telemetry.CheckName(param, v); err != nil {
			return nil, badParam(param, "%v", err)
		}
	}
	if len(eq.Key) > telemetry.MaxEventKey {
		return nil, badParam("key", "longer than %d bytes", telemetry.MaxEventKey)
	}
	now := a.now()
	var err error
	if eq.To, err = parseTime(q.Get("to"), now, now); err != nil {
		return nil, badParam("to", "%v", err)
	}
	if eq.From, err = parseTime(q.Get("from"), eq.To.Add(-24*time.Hour), now); err != nil {
		return nil, badParam("from", "%v", err)
	}
	if !eq.From.Before(eq.To) {
		return nil, badParam("from", "must be before to (%s)", eq.To.Format(time.RFC3339))
	}
	if v := q.Get("limit"); v != "" {
		if eq.Limit, err = strconv.Atoi(v); err != nil || eq.Limit < 1 || eq.Limit > store.MaxEvents {
			return nil, badParam("limit", "%q is not 1..%d", v, store.MaxEvents)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	es, err := a.store.Events(ctx, eq)
	if err != nil {
		return nil, err
	}
	if es == nil {
		es = []store.Event{}
	}
	return es, nil
}

// parseTime accepts RFC 3339, a Unix time in seconds, or a duration before
// now such as "-6h", from 1970 to 2200 (the stores keep Unix nanoseconds);
// empty gives def.
func parseTime(v string, def, now time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := parseTimeAny(v, now)
	if err == nil && (t.Year() < 1970 || t.Year() >= 2200) {
		return time.Time{}, fmt.Errorf("%q is outside 1970 … 2200", v)
	}
	return t, err
}

func parseTimeAny(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d < 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, Unix seconds, or a negative duration such as -6h", v)
}

func onlyParams(q map[string][]string, allowed ...string) error {
	for k, vs := range q {
		if k == "" {
			return &Error{Status: http.StatusBadRequest, Msg: "a parameter has no name (a stray & or =)"}
		}
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return badParam(k, "unknown parameter (allowed: %v)", allowed)
		}
		if len(vs) > 1 {
			return badParam(k, "given %d times", len(vs))
		}
	}
	return nil
}
