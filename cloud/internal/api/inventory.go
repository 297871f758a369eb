package api

import (
	"encoding/csv"

	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// maxLabelFilters bounds the label= parameters of one request.
const maxLabelFilters = telemetry.MaxLabels

// registerInventory adds the inventory's routes: every gateway's version,
// architecture, configuration, uptime, backlog, disk, clock and devices
// (docs/fleet.md#inventory), as JSON and as CSV.
func (a *API) registerInventory(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/inventory", a.wrap("inventory", a.inventory))
	mux.HandleFunc("GET /api/v1/inventory.csv", a.inventoryCSV)
}

// parseInventory reads ?label=key:value (repeatable, all must hold),
// ?site= and ?state=online|offline|unknown.
func parseInventory(q url.Values) (registry.InventoryFilter, error) {
	var f registry.InventoryFilter
	rest := maps.Clone(q)
	delete(rest, "label")
	if err := onlyParams(rest, "site", "state"); err != nil {
		return f, err
	}
	labels := q["label"]
	if len(labels) > maxLabelFilters {
		return f, badParam("label", "given %d times, at most %d", len(labels), maxLabelFilters)
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return f, badParam("label", "%q is not key:value (county:laoshan)", l)
		}
		if err := telemetry.CheckName("label", k); err != nil {
			return f, badParam("label", "%v", err)
		}
		if err := telemetry.CheckName("label "+k+" value", v); err != nil {
			return f, badParam("label", "%v", err)
		}
		if f.Labels == nil {
			f.Labels = map[string]string{}
		}
		if old, dup := f.Labels[k]; dup && old != v {
			return f, badParam("label", "%s given as %q and %q: a gateway has one", k, old, v)
		}
		f.Labels[k] = v
	}
	if f.Site = q.Get("site"); f.Site != "" {
		if err := telemetry.CheckName("site", f.Site); err != nil {
			return f, badParam("site", "%v", err)
		}
	}
	switch f.State = q.Get("state"); f.State {
	case "", registry.Online, registry.Offline, registry.Unknown:
	default:
		return f, badParam("state", "%q is not online, offline or unknown", f.State)
	}
	return f, nil
}

// InventoryResponse is GET /api/v1/inventory's answer.
type InventoryResponse struct {
	Gateways []registry.InventoryRow `json:"gateways"`
}

func (a *API) inventory(r *http.Request) (any, error) {
	f, err := parseInventory(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return InventoryResponse{Gateways: a.registry.Inventory(f)}, nil
}

// inventoryCSV is the inventory as a CSV download (RFC 4180, UTF-8 with a
// byte order mark, so that Excel on a Chinese Windows does not read it as
// GBK; decisions.md §42).
func (a *API) inventoryCSV(w http.ResponseWriter, r *http.Request) {
	const endpoint = "inventory_csv"
	ar := a.authorized(w, r, endpoint, apitoken.Viewer)
	if ar == nil {
		return
	}
	f, err := parseInventory(ar.URL.Query())
	if err != nil {
		a.respond(w, endpoint, nil, err)
		return
	}
	rows := a.registry.Inventory(f)
	name := "fieldwatch-inventory-" + a.now().In(a.loc).Format("20060102-1504") + ".csv"
	a.startDownload(w, endpoint, "text/csv; charset=utf-8", name)
	if err := writeInventoryCSV(w, rows, a.loc); err != nil {
		a.log.Info("inventory export not delivered", "err", err)
	}
}

// startDownload sends the headers of a download named name, and counts it.
func (a *API) startDownload(w http.ResponseWriter, endpoint, contentType, name string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	a.requests.WithLabelValues(endpoint, "200").Inc()
	w.WriteHeader(http.StatusOK)
}

// utf8BOM starts the inventory's CSV.
const utf8BOM = "\uFEFF"

// inventoryHeader is the CSV's header row.
var inventoryHeader = []string{"id", "name", "site", "site_name", "labels", "state", "stale", "last_seen", "version",
	"arch", "config_version", "config_source", "uptime_s", "started", "backlog", "buffer_bytes", "buffer_max_bytes",
	"buffer_use_%", "clock_quality", "clock_offset_s", "clock_max_error_s", "devices", "faulty_devices", "update"}

// writeInventoryCSV writes the rows, times in loc; labels as key:value
// separated by spaces, sorted, as ?label= takes them.
func writeInventoryCSV(w io.Writer, rows []registry.InventoryRow, loc *time.Location) error {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180
	if err := cw.Write(inventoryHeader); err != nil {
		return err
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(time.RFC3339)
	}
	f := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	}
	for _, row := range rows {
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(row.Labels)) {
			labels = append(labels, k+":"+row.Labels[k])
		}
		cfgVersion, uptime, use := "", "", ""
		if row.ConfigVersion != nil {
			cfgVersion = strconv.FormatUint(*row.ConfigVersion, 10)
		}
		if row.UptimeS != nil {
			uptime = strconv.FormatInt(*row.UptimeS, 10)
		}
		bytes, budget := "", ""
		if row.BufferMaxBytes > 0 {
			bytes, budget = strconv.FormatInt(row.BufferBytes, 10), strconv.FormatInt(row.BufferMaxBytes, 10)
			use = strconv.FormatFloat(100*float64(row.BufferBytes)/float64(row.BufferMaxBytes), 'f', 1, 64)
		}
		rec := []string{row.ID, cellText(row.Name), row.Site, cellText(row.SiteName), strings.Join(labels, " "), row.State,
			strconv.FormatBool(row.Stale), at(row.LastSeen), cellText(row.Version), row.Arch, cfgVersion, row.ConfigSource,
			uptime, at(row.Started), strconv.FormatUint(row.Backlog, 10), bytes, budget, use, row.ClockQuality,
			f(row.ClockOffsetS), f(row.ClockMaxErrorS), strconv.Itoa(row.Devices), strconv.Itoa(row.FaultyDevices), row.Update}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cellText keeps a free text (a display name) from being taken for a
// formula by a spreadsheet: one starting with = + - @ gets a leading '.
func cellText(s string) string {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}
