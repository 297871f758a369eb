package browser

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	neturl "net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The page's selectors, in one place: a redesign changes these. The page
// shows every station in a list (#station-list) and on a map, and one
// selected station's devices in #station.
const (
	// listJS is the station list: each entry's station, state badge and the
	// colour of its dot (as its marker's).
	listJS = `[...document.querySelectorAll("#station-list .station-pick")].map((b) => ({
  id: b.dataset.station, name: b.querySelector(".station-name").textContent.trim(), state: b.querySelector(".badge").textContent.trim(),
  status: [...b.querySelector(".dot").classList].find((c) => c !== "dot") || "",
  selected: b.classList.contains("selected") }))`
	// pickSel is station %q's entry in the list.
	pickSel = `#station-list .station-pick[data-station=%q]`
	// shownJS is the selected station as #station shows it: its id and
	// state, each device's id and metric buttons (metric, name, value
	// text); null before one is shown.
	shownJS = `(() => {
  const card = document.querySelector("#station article.station");
  if (!card) return null;
  return {
    id: card.dataset.station, name: card.querySelector("h2 .station-name").textContent.trim(),
    shownId: (card.querySelector("h2 .station-id") || {}).textContent || "",
    state: card.querySelector("h2 .badge").textContent.trim(),
    devices: [...card.querySelectorAll("tr")].filter((tr) => tr.querySelector(".device-id")).map((tr) => ({
      id: tr.querySelector(".device-id").textContent.trim(),
      values: [...tr.querySelectorAll(".metric")].map((b) => ({ metric: b.dataset.metric,
        name: b.querySelector(".name").textContent.trim(), value: b.querySelector(".value").textContent.trim() })),
    })),
  };
})()`
	// shownIsJS is truthy once #station shows station %q.
	shownIsJS = `(() => { const card = document.querySelector("#station article.station");
  return card !== null && card.dataset.station === %q; })()`
	// metricSel is the button of device %q's metric %q in #station.
	metricSel = `#station .metric[data-device=%q][data-metric=%q]`
	// markersJS is every station marker on the map (Leaflet's SVG circle
	// paths; map.js names the station and the meaning of the colour).
	markersJS = `[...document.querySelectorAll(".leaflet-overlay-pane path.station-marker")].map((m) => ({
  station: m.dataset.station, status: m.dataset.status, alert: m.dataset.alert,
  fill: m.getAttribute("fill"), stroke: m.getAttribute("stroke") }))`
	// markerSel is station %q's marker.
	markerSel = `.leaflet-overlay-pane path.station-marker[data-station=%q]`
	// markerStatusJS is truthy once station %q's marker has status %q.
	markerStatusJS = `(() => { const m = document.querySelector(".leaflet-overlay-pane path.station-marker[data-station=" + JSON.stringify(%q) + "]");
  return m !== null && m.dataset.status === %q; })()`
	// mapSettledJS is truthy once the map has stopped zooming: Leaflet
	// scales the marker layer during its zoom animation (after fitting the
	// stations in view) and draws the markers at their place only after.
	mapSettledJS = `(() => { const svg = document.querySelector(".leaflet-overlay-pane svg");
  return svg !== null && !svg.style.transform.includes("scale") && !document.querySelector("#map").classList.contains("leaflet-zoom-anim"); })()`
	// basemapJS is truthy once the coastline is drawn (a canvas layer).
	basemapJS = `document.querySelector(".leaflet-overlay-pane canvas") !== null`
	// alertsPanelJS is truthy once the early-warning panel has rendered.
	alertsPanelJS = `document.querySelector("#alerts h2") !== null`
	// alertRowJS finds the panel's row of the alert from rule %q (named in
	// the row's .rule line): its severity badge's text and classes, the
	// badge's background and the row's left border colours as computed, the
	// row's text and how many buttons it has; null if there is no such row.
	alertRowJS = `(() => {
  const row = [...document.querySelectorAll("#alerts .alert")].find((r) => {
    const rule = r.querySelector(".rule");
    return rule && rule.textContent.split(/[\s·]+/).includes(%q);
  });
  if (!row) return null;
  const sev = row.querySelector(".sev");
  return { text: row.textContent, sev: sev.textContent, sevClass: sev.className,
    badge: getComputedStyle(sev).backgroundColor, border: getComputedStyle(row).borderLeftColor,
    buttons: row.querySelectorAll("button").length };
})()`
	// chartJS is the chart panel: shown or not, its title, the values
	// each series drew (chart.js's data-values), its canvas, the legend's
	// series labels, and how many canvas pixels are the first series'
	// colour (#1f6f8b, chart.js's palette[0]): the line really drawn.
	chartJS = `(() => {
  const box = document.querySelector("#chart"), plot = document.querySelector("#chart-plot");
  const canvas = plot.querySelector("canvas");
  let line = 0;
  if (canvas && canvas.width > 0 && canvas.height > 0) {
    const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] > 200 && Math.abs(px[i] - 0x1f) + Math.abs(px[i + 1] - 0x6f) + Math.abs(px[i + 2] - 0x8b) < 40) line++;
    }
  }
  return { shown: !box.hidden && box.offsetParent !== null, title: document.querySelector("#chart-title").textContent,
    values: (plot.dataset.values || "").split(",").filter((x) => x !== "").map(Number),
    canvas: canvas !== null, line,
    legend: [...plot.querySelectorAll(".u-legend .u-series .u-label")].map((e) => e.textContent) };
})()`
	// exportJS fetches the chart panel's export link %q (CSV or JSON lines)
	// from the page (same origin, the page's own request) and returns the
	// link and the answer.
	exportJS = `(async () => {
  const a = document.querySelector(%q);
  const r = await fetch(a.href);
  return { href: a.getAttribute("href"), download: a.hasAttribute("download"), text: a.textContent.trim(),
    status: r.status, type: r.headers.get("Content-Type") || "", disposition: r.headers.get("Content-Disposition") || "",
    body: await r.text() };
})()`
	// mapTitleSel is the map's heading; langSel the language button %q.
	mapTitleSel = "#map-box h2"
	langSel     = `button[data-lang=%q]`
)

// Metric names the page shows, in each language (js/i18n.js).
var metricNames = map[string][2]string{
	"soil_moisture":    {"soil moisture", "土壤含水率"},
	"soil_temperature": {"soil temperature", "土壤温度"},
	"soil_ec":          {"soil EC", "土壤电导率"},
	"air_humidity":     {"air humidity", "空气湿度"},
	"air_temperature":  {"air temperature", "气温"},
}

// The map's marker colours (map.js, the page's alert colours in style.css).
var markerFill = map[string]string{
	"red": "#c0262d", "orange": "#e0661b", "yellow": "#d4a106", "blue": "#1f5fbf",
	"fine": "#1f9a7a", "offline": "#8a938e",
}

// severities, most severe first.
var severities = []string{"red", "orange", "yellow", "blue"}

type pageStation struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`    // the heading's name: the display name, else the id
	ShownID string       `json:"shownId"` // the id beside a display name
	State   string       `json:"state"`
	Devices []pageDevice `json:"devices"`
}

type pageDevice struct {
	ID     string `json:"id"`
	Values []struct {
		Metric string `json:"metric"`
		Name   string `json:"name"`
		Value  string `json:"value"`
	} `json:"values"`
}

type listEntry struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	State    string `json:"state"`
	Status   string `json:"status"`
	Selected bool   `json:"selected"`
}

type marker struct {
	Station string `json:"station"`
	Status  string `json:"status"`
	Alert   string `json:"alert"`
	Fill    string `json:"fill"`
	Stroke  string `json:"stroke"`
}

type alertRow struct {
	Text     string `json:"text"`
	Sev      string `json:"sev"`
	SevClass string `json:"sevClass"`
	Badge    string `json:"badge"`
	Border   string `json:"border"`
	Buttons  int    `json:"buttons"`
}

type chartState struct {
	Shown  bool      `json:"shown"`
	Title  string    `json:"title"`
	Values []float64 `json:"values"`
	Canvas bool      `json:"canvas"`
	Line   int       `json:"line"`
	Legend []string  `json:"legend"`
}

// TestHarnessCatchesConsoleErrors proves the error collection the other
// tests rely on: a console.error, an uncaught exception, a script the
// Content-Security-Policy refuses and a failed request, on the real cloud's
// page with its real headers, are each caught. Without this a test "with no
// console errors" could pass because nothing was listening.
func TestHarnessCatchesConsoleErrors(t *testing.T) {
	url, _ := StartCloud(t)
	p := OpenPage(t, url, 1280, 900)
	p.WaitVisible(t, "#map", waitLong)
	Eval[bool](t, p, `(() => {
  console.error("harness check: console.error");
  setTimeout(() => { throw new Error("harness check: uncaught"); });
  const s = document.createElement("script");
  s.textContent = "window.inlineRan = true"; // refused: script-src 'self'
  document.body.append(s);
  fetch("/static/no-such-file.js");
  return true;
})()`)
	want := map[string]func(m Message) bool{
		"console.error": func(m Message) bool {
			return m.Kind == "console" && strings.Contains(m.Text, "harness check: console.error")
		},
		"exception": func(m Message) bool {
			return m.Kind == "exception" && strings.Contains(m.Text, "harness check: uncaught")
		},
		"CSP violation":  func(m Message) bool { return m.Kind == "log" && strings.Contains(m.Text, "Content Security Policy") },
		"failed request": func(m Message) bool { return m.Kind == "log" && strings.Contains(m.URL, "no-such-file.js") },
	}
	var errs []Message
	testenv.Eventually(t, "four kinds of error caught", waitShort, func() bool {
		errs = append(errs, p.TakeErrors()...)
		for _, match := range want {
			if !slices.ContainsFunc(errs, match) {
				return false
			}
		}
		return true
	})
	if ran := Eval[bool](t, p, `window.inlineRan === true`); ran {
		t.Fatal("the inline script ran: the page has no Content-Security-Policy")
	}
	for _, m := range errs {
		t.Logf("caught %s", m)
	}
}

// TestConsoleShowsEveryStation opens the console on a cloud with two
// stations: it loads and refreshes with no console error, exception or CSP
// violation, and shows every station the cloud's API knows — in the list,
// with its state, and on the map, one marker each — and, selecting each in
// turn from the list, every one of its devices.
func TestConsoleShowsEveryStation(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	api, err := s.Stations()
	if err != nil {
		t.Fatal(err)
	}
	p.WaitJS(t, "every station in the list", fmt.Sprintf(`document.querySelectorAll("#station-list .station-pick").length === %d`, len(api)), waitLong)
	p.WaitJS(t, "every station on the map", fmt.Sprintf(`document.querySelectorAll(".leaflet-overlay-pane path.station-marker").length === %d`, len(api)), waitLong)
	list := Eval[[]listEntry](t, p, listJS)
	markers := Eval[[]marker](t, p, markersJS)
	if len(list) != len(api) || len(markers) != len(api) {
		t.Fatalf("the API has %d stations; the list shows %d (%+v), the map %d (%+v)", len(api), len(list), list, len(markers), markers)
	}
	for _, a := range api {
		i := slices.IndexFunc(list, func(x listEntry) bool { return x.ID == a.ID })
		if i < 0 {
			t.Fatalf("station %s (from the API) is not in the list: %+v", a.ID, list)
		}
		if list[i].State != a.State {
			t.Errorf("station %s: the list says %q, the API %q", a.ID, list[i].State, a.State)
		}
		// Stations are called by their display names (Chinese in the
		// gateway's config), by their ids where they have none.
		if want := displayName(api, a.ID); list[i].Name != want {
			t.Errorf("station %s: the list calls it %q, want %q", a.ID, list[i].Name, want)
		}
		if !slices.ContainsFunc(markers, func(m marker) bool { return m.Station == a.ID }) {
			t.Errorf("station %s (from the API) has no marker on the map: %+v", a.ID, markers)
		}

		got := selectStation(t, p, a.ID)
		if got.State != a.State {
			t.Errorf("station %s: the page says %q, the API %q", a.ID, got.State, a.State)
		}
		wantID := ""
		if a.Name != "" {
			wantID = a.ID
		}
		if got.Name != displayName(api, a.ID) || got.ShownID != wantID {
			t.Errorf("station %s (API name %q): the heading says %q, id %q", a.ID, a.Name, got.Name, got.ShownID)
		}
		var want, have []string
		for _, d := range a.Devices {
			want = append(want, d.ID)
		}
		for _, d := range got.Devices {
			have = append(have, d.ID)
		}
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(want, have) {
			t.Errorf("station %s: the page shows devices %v, the API %v", a.ID, have, want)
		}
	}
	// One more refresh (every 5 s) with no error either.
	first := Eval[string](t, p, `document.querySelector("#updated").textContent`)
	p.WaitJS(t, "the page refreshed", fmt.Sprintf(`(t => t !== "" && t !== %q)(document.querySelector("#updated").textContent)`, first), waitLong)
}

// displayName is what the page should call station id: the API's name,
// else the id.
func displayName(api []apiStation, id string) string {
	for _, a := range api {
		if a.ID == id && a.Name != "" {
			return a.Name
		}
	}
	return id
}

// selectStation clicks station id's entry in the list, waits until
// #station shows it (and the list marks it selected), and returns it.
func selectStation(t *testing.T, p *Page, id string) pageStation {
	t.Helper()
	p.Click(t, fmt.Sprintf(pickSel, id))
	p.WaitJS(t, "#station shows "+id, fmt.Sprintf(shownIsJS, id), waitLong)
	p.WaitJS(t, "the list marks "+id+" selected", fmt.Sprintf(`document.querySelector(%q).classList.contains("selected")`, fmt.Sprintf(pickSel, id)), waitShort)
	return shownStation(t, p)
}

func shownStation(t *testing.T, p *Page) pageStation {
	t.Helper()
	st := Eval[*pageStation](t, p, shownJS)
	if st == nil {
		t.Fatal("#station shows no station")
	}
	return *st
}

// TestLatestValuesEqualAPI checks every latest value on the page against
// the same cloud's API, and the API's against what the simulated sensors
// hold: selecting each station from the list, the number and unit each
// metric button shows are the API's, under the metric's name.
func TestLatestValuesEqualAPI(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	// What the simulated sensors hold, as the profiles scale it.
	served := map[string]float64{
		"soil-east/soil_moisture": 31.2, "soil-east/soil_temperature": 14.8, "soil-east/soil_ec": 412,
		"soil-west/soil_moisture": 27.9, "soil-west/soil_temperature": 15.3, "soil-west/soil_ec": 388,
		"soil-orchard/soil_moisture": 35.6, "soil-orchard/soil_temperature": 13.1, "soil-orchard/soil_ec": 1250,
		"air-mast/air_humidity": 62.5, "air-mast/air_temperature": 21.4,
	}
	api, err := s.Stations()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, st := range api {
		for _, d := range st.Devices {
			for _, l := range d.Latest {
				key := d.ID + "/" + l.Metric
				if want, ok := served[key]; !ok || l.Value == nil || *l.Value != want {
					t.Fatalf("API latest %s = %v, the sensor holds %v", key, l.Value, want)
				}
				n++
			}
		}
	}
	if n != len(served) {
		t.Fatalf("the API has %d latest values, the sensors %d", n, len(served))
	}

	// The page shows the API's values (it may need a refresh to show all).
	p.WaitJS(t, "the station list", fmt.Sprintf(`document.querySelectorAll("#station-list .station-pick").length === %d`, len(api)), waitLong)
	for _, st := range api {
		selectStation(t, p, st.ID)
		var diff string
		testenv.Eventually(t, "the page shows "+st.ID+"'s latest values as the API does", waitLong, func() bool {
			diff = compareLatest(st, shownStation(t, p), 0)
			return diff == ""
		})
	}
	t.Logf("%d latest values on the page equal the API's and the sensors'", n)
}

// number is the leading number of a value's text, and the rest its unit.
var number = regexp.MustCompile(`^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*(.*?)\s*$`)

// compareLatest lists every latest value of the API's station st that the
// page's shown station does not show exactly: the same number and unit,
// under the metric's name in language lang (0 English, 1 Chinese).
func compareLatest(st apiStation, shown pageStation, lang int) string {
	if shown.ID != st.ID {
		return fmt.Sprintf("the page shows station %s, not %s", shown.ID, st.ID)
	}
	var out []string
	for _, d := range st.Devices {
		j := slices.IndexFunc(shown.Devices, func(x pageDevice) bool { return x.ID == d.ID })
		if j < 0 {
			out = append(out, "device "+st.ID+"/"+d.ID+" missing")
			continue
		}
		type value struct{ name, text string }
		byMetric := map[string]value{}
		for _, v := range shown.Devices[j].Values {
			byMetric[v.Metric] = value{v.Name, v.Value}
		}
		for _, l := range d.Latest {
			v, ok := byMetric[l.Metric]
			m := number.FindStringSubmatch(v.text)
			if !ok || m == nil {
				out = append(out, fmt.Sprintf("%s/%s %s: shown %q, API %v %s", st.ID, d.ID, l.Metric, v.text, *l.Value, l.Unit))
				continue
			}
			x, _ := strconv.ParseFloat(m[1], 64)
			if x != *l.Value || m[2] != l.Unit {
				out = append(out, fmt.Sprintf("%s/%s %s: shown %q, API %v %s", st.ID, d.ID, l.Metric, v.text, *l.Value, l.Unit))
			}
			if names, ok := metricNames[l.Metric]; !ok || v.name != names[lang] {
				out = append(out, fmt.Sprintf("%s/%s %s: named %q, want %q", st.ID, d.ID, l.Metric, v.name, names[lang]))
			}
		}
		if len(byMetric) != len(d.Latest) {
			out = append(out, fmt.Sprintf("%s/%s: %d values shown, the API has %d", st.ID, d.ID, len(byMetric), len(d.Latest)))
		}
	}
	return strings.Join(out, "\n")
}

// heatRule is the agriculture pack's high-temperature rule: the 24-hour
// maximum air temperature at or above 37 °C is orange, 40 °C red, with no
// `for:` (it fires on the reading). The cloud runs it by default.
const heatRule = "agri_heat_max24h"

// raiseHeatAlert warms the simulated air sensor to 38.5 °C, waits until the
// cloud's API has the orange alert firing and the page's early-warning
// panel shows it, and returns the API's alert and the page's row.
func raiseHeatAlert(t *testing.T, s *Stack, p *Page) (apiAlert, alertRow) {
	t.Helper()
	s.Air.Set(airTemperature, 38.5, 10)
	var a apiAlert
	testenv.Eventually(t, "the API has "+heatRule+" firing", waitLong, func() bool {
		all, err := s.Alerts()
		if err != nil {
			return false
		}
		i := slices.IndexFunc(all, func(x apiAlert) bool { return x.Rule == heatRule && x.State == "firing" })
		if i >= 0 {
			a = all[i]
		}
		return i >= 0
	})
	raw := p.WaitJS(t, "the panel shows "+heatRule, fmt.Sprintf(alertRowJS, heatRule), waitLong)
	var row alertRow
	if err := json.Unmarshal(raw, &row); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return a, row
}

// expectedMarker is what a station's marker must show by the API: its
// fill status (grey "offline" when the station is offline, else the colour
// of its most severe firing alert, "fine" without one) and that alert's
// colour ("" without one).
func expectedMarker(st apiStation, alerts []apiAlert) (status, worst string) {
	for _, a := range alerts {
		if a.State != "firing" || a.Labels["gateway_id"] != st.ID {
			continue
		}
		if i := slices.Index(severities, a.Severity); i >= 0 && (worst == "" || i < slices.Index(severities, worst)) {
			worst = a.Severity
		}
	}
	switch {
	case st.State == "offline":
		return "offline", worst
	case worst != "":
		return worst, worst
	}
	return "fine", ""
}

// compareMarkers lists how the map and the list differ from the API: one
// marker per station, filled with the colour the API's state and alerts
// call for (and ringed with the alert's colour when the station is offline
// with one), the list's dot the same.
func compareMarkers(api []apiStation, alerts []apiAlert, markers []marker, list []listEntry) string {
	var out []string
	if len(markers) != len(api) {
		out = append(out, fmt.Sprintf("%d markers for %d stations", len(markers), len(api)))
	}
	for _, st := range api {
		status, worst := expectedMarker(st, alerts)
		i := slices.IndexFunc(markers, func(m marker) bool { return m.Station == st.ID })
		if i < 0 {
			out = append(out, st.ID+": no marker")
			continue
		}
		m := markers[i]
		if m.Status != status || m.Fill != markerFill[status] || m.Alert != worst {
			out = append(out, fmt.Sprintf("%s: marker %+v; the API's state %s and alerts call for %s (fill %s), worst alert %q",
				st.ID, m, st.State, status, markerFill[status], worst))
		}
		if status == "offline" && worst != "" && m.Stroke != markerFill[worst] {
			out = append(out, fmt.Sprintf("%s: offline with a %s alert, ringed %s", st.ID, worst, m.Stroke))
		}
		j := slices.IndexFunc(list, func(e listEntry) bool { return e.ID == st.ID })
		if j < 0 || list[j].Status != status {
			out = append(out, fmt.Sprintf("%s: the list's dot is not %s: %+v", st.ID, status, list))
		}
	}
	return strings.Join(out, "\n")
}

// markersMatchAPI waits until the map's markers and the list's dots say
// what the API says (the page reads both every 5 s).
func markersMatchAPI(t *testing.T, s *Stack, p *Page) ([]apiStation, []apiAlert, []marker) {
	t.Helper()
	var (
		api    []apiStation
		alerts []apiAlert
		ms     []marker
		diff   string
	)
	defer func() {
		if t.Failed() && diff != "" {
			t.Logf("the map differs from the API:\n%s", diff)
		}
	}()
	testenv.Eventually(t, "the map's colours are the API's", waitLong, func() bool {
		var err error
		if api, err = s.Stations(); err != nil {
			diff = err.Error()
			return false
		}
		if alerts, err = s.Alerts(); err != nil {
			diff = err.Error()
			return false
		}
		ms = Eval[[]marker](t, p, markersJS)
		diff = compareMarkers(api, alerts, ms, Eval[[]listEntry](t, p, listJS))
		return diff == ""
	})
	return api, alerts, ms
}

// TestMapMarkersMatchAPI: the map has one marker per station, each filled
// with the colour of the station's worst firing alert by the API (teal
// when none fires), and a station whose gateway stops turns grey, as the
// API's "offline" calls for (ringed with its alert's colour if one fires);
// the list's dots agree.
func TestMapMarkersMatchAPI(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	p.WaitJS(t, "two markers", `document.querySelectorAll(".leaflet-overlay-pane path.station-marker").length === 2`, waitLong)
	_, _, ms := markersMatchAPI(t, s, p)
	for _, m := range ms {
		if m.Status == "offline" {
			t.Fatalf("station %s is offline before any gateway stopped: %+v", m.Station, ms)
		}
	}

	s.StopGateway(t, "orchard-south")
	testenv.Eventually(t, "the API has orchard-south offline", waitLong, func() bool {
		api, err := s.Stations()
		if err != nil {
			return false
		}
		i := slices.IndexFunc(api, func(x apiStation) bool { return x.ID == "orchard-south" })
		return i >= 0 && api[i].State == "offline"
	})
	p.WaitJS(t, "orchard-south's marker grey", fmt.Sprintf(markerStatusJS, "orchard-south", "offline"), waitLong)
	_, _, ms = markersMatchAPI(t, s, p)
	i := slices.IndexFunc(ms, func(m marker) bool { return m.Station == "orchard-south" })
	if ms[i].Fill != markerFill["offline"] {
		t.Errorf("orchard-south offline, its marker filled %s, want grey %s", ms[i].Fill, markerFill["offline"])
	}
	if j := slices.IndexFunc(ms, func(m marker) bool { return m.Station == "farm-north" }); ms[j].Status == "offline" {
		t.Errorf("farm-north still runs, its marker says offline: %+v", ms[j])
	}
	t.Logf("markers: %+v", ms)
}

// TestEarlyWarningShowsSeverityColour warms a simulated air sensor past the
// agriculture pack's high-temperature threshold (37 °C, orange). The
// early-warning panel, which had no such alert, shows it with the API's
// severity, in orange (badge and the row's edge), with the API's summary;
// and farm-north's marker on the map, not orange or red before, turns
// orange.
func TestEarlyWarningShowsSeverityColour(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	p.WaitJS(t, "the early-warning panel", alertsPanelJS, waitLong)
	p.WaitJS(t, "two markers", `document.querySelectorAll(".leaflet-overlay-pane path.station-marker").length === 2`, waitLong)
	if row := Eval[*alertRow](t, p, fmt.Sprintf(alertRowJS, heatRule)); row != nil {
		t.Fatalf("the panel shows %s before the sensor warmed: %+v", heatRule, *row)
	}
	_, _, ms := markersMatchAPI(t, s, p)
	if i := slices.IndexFunc(ms, func(m marker) bool { return m.Station == "farm-north" }); ms[i].Status == "orange" || ms[i].Status == "red" {
		t.Fatalf("farm-north's marker is %s before the sensor warmed: %+v", ms[i].Status, ms[i])
	}

	a, row := raiseHeatAlert(t, s, p)
	if a.Severity != "orange" {
		t.Fatalf("the API's %s alert at 38.5 °C is %q, want orange: %+v", heatRule, a.Severity, a)
	}
	if row.Sev != a.Severity || !slices.Contains(strings.Fields(row.SevClass), a.Severity) {
		t.Errorf("the panel's badge says %q (class %q), the API %q", row.Sev, row.SevClass, a.Severity)
	}
	hue, sat, err := hueOf(row.Badge)
	if err != nil {
		t.Fatal(err)
	}
	// China's warning orange (#e0661b, hue 23°): clearly not the red (357°)
	// nor the yellow (45°) nor the blue (216°) of the other levels.
	if hue < 12 || hue > 38 || sat < 0.5 {
		t.Errorf("the orange badge is %s (hue %.0f°, saturation %.2f): not orange", row.Badge, hue, sat)
	}
	if row.Border != row.Badge {
		t.Errorf("the row's edge is %s, its badge %s", row.Border, row.Badge)
	}
	if sum := a.Annotations["summary"]; sum == "" || !strings.Contains(row.Text, sum) {
		t.Errorf("the row %q does not show the API's summary %q", row.Text, sum)
	}
	if !strings.Contains(row.Text, "38.5") {
		t.Errorf("the row %q does not show the reading 38.5", row.Text)
	}
	// The warnings are grouped under the station's and site's display
	// names (the gateway's config gives them in Chinese).
	group := Eval[string](t, p, fmt.Sprintf(`(r => r && r.closest(".alert-group").querySelector("h3").textContent)([...document.querySelectorAll("#alerts .alert")].find((r) => r.querySelector(".rule").textContent.split(/[\s·]+/).includes(%q)))`, heatRule))
	if !strings.Contains(group, "北区农场 1 号站") || !strings.Contains(group, "北区农场") || strings.Contains(group, "farm-north") {
		t.Errorf("the warning's group is titled %q, want the station's and site's names", group)
	}

	// The map: farm-north's marker turns orange.
	p.WaitJS(t, "farm-north's marker orange", fmt.Sprintf(markerStatusJS, "farm-north", "orange"), waitLong)
	_, _, ms = markersMatchAPI(t, s, p)
	m := ms[slices.IndexFunc(ms, func(m marker) bool { return m.Station == "farm-north" })]
	if hue, sat, err := hueOf(hexToRGB(m.Fill)); err != nil || hue < 12 || hue > 38 || sat < 0.5 {
		t.Errorf("farm-north's marker is filled %s (hue %.0f°, saturation %.2f, %v): not orange", m.Fill, hue, sat, err)
	}

	// In Chinese the row names the rule's standard in Chinese, as the API
	// gives it, not the English source line.
	std, stdCN := a.Annotations["standard"], a.Annotations["standard_cn"]
	if std == "" || stdCN == "" {
		t.Fatalf("the API's alert has standard %q, standard_cn %q", std, stdCN)
	}
	p.Click(t, fmt.Sprintf(langSel, "zh"))
	p.WaitJS(t, "the row in Chinese with the Chinese standard", fmt.Sprintf(`(r => r !== null && r.text.includes(%q))(%s)`, stdCN, fmt.Sprintf(alertRowJS, heatRule)), waitLong)
	if row := Eval[*alertRow](t, p, fmt.Sprintf(alertRowJS, heatRule)); row == nil || strings.Contains(row.Text, std) {
		t.Errorf("the Chinese row still shows the English standard %q: %+v", std, row)
	}

	// The station's alert history: the firing step with the value and its
	// unit, the level crossed and the rule, as the API's alert says them.
	selectStation(t, p, "farm-north")
	p.Click(t, "#station details summary")
	type step struct{ Value, Threshold string }
	js := fmt.Sprintf(`[...document.querySelectorAll("#station tr.history-row[data-rule='%s'][data-to='firing']")].map((r) =>
  ({ value: r.querySelector(".value").textContent, threshold: r.querySelector(".threshold").textContent }))`, heatRule)
	p.WaitJS(t, "the firing step in the station's history", js+`.length > 0`, waitLong)
	got := Eval[[]step](t, p, js)
	if want := (step{a.Annotations["value_text"], a.Annotations["threshold"]}); got[0] != want || want.Threshold == "" {
		t.Errorf("the history's firing step shows %+v, the alert %+v", got[0], want)
	}
}

// hexToRGB turns "#e0661b" into "rgb(224, 102, 27)" for hueOf.
func hexToRGB(hex string) string {
	var r, g, b int
	if _, err := fmt.Sscanf(hex, "#%02x%02x%02x", &r, &g, &b); err != nil {
		return hex
	}
	return fmt.Sprintf("rgb(%d, %d, %d)", r, g, b)
}

// hueOf parses a computed colour "rgb(r, g, b)" into its HSL hue (degrees)
// and saturation.
func hueOf(css string) (hue, sat float64, err error) {
	var r, g, b float64
	if _, err := fmt.Sscanf(css, "rgb(%g, %g, %g)", &r, &g, &b); err != nil {
		return 0, 0, fmt.Errorf("colour %q: %v", css, err)
	}
	r, g, b = r/255, g/255, b/255
	hi, lo := math.Max(r, math.Max(g, b)), math.Min(r, math.Min(g, b))
	d := hi - lo
	if d == 0 {
		return 0, 0, nil
	}
	switch hi {
	case r:
		hue = math.Mod((g-b)/d, 6)
	case g:
		hue = (b-r)/d + 2
	default:
		hue = (r-g)/d + 4
	}
	hue *= 60
	if hue < 0 {
		hue += 360
	}
	l := (hi + lo) / 2
	sat = d / (1 - math.Abs(2*l-1))
	return hue, sat, nil
}

// TestChartOpensFromMap: a link with #station=ID selects that station; a
// click on another station's marker on the map selects it instead; a click
// on one of its values opens the chart: the panel shows, its title names
// the station and device, the legend the metric and unit, uPlot has drawn
// the series' line on its canvas from a non-empty answer of the API.
func TestChartOpensFromMap(t *testing.T) {
	s := StartStack(t)
	api, err := s.Stations()
	if err != nil {
		t.Fatal(err)
	}
	// The station the page would not select by itself (it takes the first).
	linked := api[len(api)-1].ID
	other := api[0].ID
	p := OpenPage(t, s.URL+"#station="+linked, 1280, 900)
	p.WaitJS(t, "#station shows "+linked+" from the link", fmt.Sprintf(shownIsJS, linked), waitLong)
	if other == linked {
		t.Fatal("one station only")
	}

	p.WaitJS(t, "the map settled", mapSettledJS, waitLong)
	p.Click(t, fmt.Sprintf(markerSel, other))
	p.WaitJS(t, "#station shows "+other+" after a click on its marker", fmt.Sprintf(shownIsJS, other), waitLong)
	if h := Eval[string](t, p, `location.hash`); h != "#station="+other {
		t.Errorf("after selecting %s the address ends %q", other, h)
	}

	// farm-north's air temperature, or the first value of the station.
	dev, metric := "air-mast", "air_temperature"
	if other != "farm-north" {
		a := api[0]
		dev, metric = a.Devices[0].ID, a.Devices[0].Latest[0].Metric
	}
	if !Eval[bool](t, p, `document.querySelector("#chart").hidden`) {
		t.Fatal("the chart shows before a value was clicked")
	}
	p.Click(t, fmt.Sprintf(metricSel, dev, metric))
	p.WaitVisible(t, "#chart-plot canvas", waitLong)
	raw := p.WaitJS(t, "the chart's line drawn", chartJS+`.line > 0 ? `+chartJS+` : null`, waitLong)
	var c chartState
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if !c.Shown || !c.Canvas {
		t.Errorf("chart panel %+v: not shown with a canvas", c)
	}
	if want := displayName(api, other) + " / " + dev; c.Title != want {
		t.Errorf("chart title %q, want %q", c.Title, want)
	}
	if len(c.Values) != 1 || c.Values[0] < 1 {
		t.Errorf("the chart drew %v values per series, want one series with at least one", c.Values)
	}
	if want := metricNames[metric][0]; !slices.ContainsFunc(c.Legend, func(l string) bool { return strings.HasPrefix(l, want) }) {
		t.Errorf("the legend %q does not name %q", c.Legend, want)
	}
	if h := Eval[string](t, p, `location.hash`); h != fmt.Sprintf("#chart=%s/%s/%s", other, dev, metric) {
		t.Errorf("with the chart open the address ends %q", h)
	}
	t.Logf("chart %+v", c)
}

// openChart selects station st, clicks its device dev's metric and waits
// for the chart's line.
func openChart(t *testing.T, p *Page, st, dev, metric string) {
	t.Helper()
	selectStation(t, p, st)
	p.Click(t, fmt.Sprintf(metricSel, dev, metric))
	p.WaitVisible(t, "#chart-plot canvas", waitLong)
	p.WaitJS(t, "the chart's line drawn", chartJS+`.line > 0`, waitLong)
}

// TestExportEqualsStore: the chart panel's CSV link (chart.js builds it for
// the chart's station, device and range), fetched from the page, is a CSV
// download whose every row equals a raw sample of GET /api/v1/series for
// the same series and range — same time, same float, same unit — and that
// holds every sample the store had up to its last row, each the value the
// sensor served.
func TestExportEqualsStore(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	openChart(t, p, "farm-north", "soil-east", "soil_moisture")
	type answer struct {
		Href, Text, Type, Disposition, Body string
		Download                            bool
		Status                              int
	}
	got := EvalAsync[answer](t, p, fmt.Sprintf(exportJS, "#chart-export"))
	if got.Status != 200 || !strings.HasPrefix(got.Type, "text/csv") || !got.Download ||
		!strings.Contains(got.Disposition, "attachment") || !strings.HasSuffix(got.Disposition, `.csv"`) {
		t.Fatalf("the export link %q (download %v) answered %d %q %q", got.Href, got.Download, got.Status, got.Type, got.Disposition)
	}
	u, err := neturl.Parse(got.Href)
	if err != nil || u.Path != "/api/v1/export" {
		t.Fatalf("export link %q", got.Href)
	}
	q := u.Query()
	if q.Get("station") != "farm-north" || q.Get("device") != "soil-east" || q.Get("format") != "csv" || q.Get("from") == "" || q.Get("to") == "" {
		t.Fatalf("export link %q: not the chart's station, device and range as CSV", got.Href)
	}

	rows, err := csv.NewReader(strings.NewReader(got.Body)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("export: %v\n%.500s", err, got.Body)
	}
	if want := []string{"time", "station", "device", "metric", "value", "unit"}; !slices.Equal(rows[0], want) {
		t.Fatalf("export header %q, want %q", rows[0], want)
	}
	type sample struct {
		time  time.Time
		value float64
		unit  string
	}
	exported := map[string][]sample{}
	for _, r := range rows[1:] {
		tm, err := time.Parse(time.RFC3339Nano, r[0])
		v, err2 := strconv.ParseFloat(r[4], 64)
		if err != nil || err2 != nil || r[1] != "farm-north" || r[2] != "soil-east" {
			t.Fatalf("export row %q: %v %v", r, err, err2)
		}
		exported[r[3]] = append(exported[r[3]], sample{tm, v, r[5]})
	}
	served := map[string]float64{"soil_moisture": 31.2, "soil_temperature": 14.8, "soil_ec": 412}
	if len(exported) != len(served) {
		t.Errorf("the export has metrics %v, the device %v", slices.Sorted(maps.Keys(exported)), slices.Sorted(maps.Keys(served)))
	}
	total := 0
	for metric, want := range served {
		ex := exported[metric]
		if len(ex) == 0 {
			t.Errorf("%s: not exported", metric)
			continue
		}
		// The store's raw samples of the same series and range, read after
		// the export: readings arrive every second, so compare up to the
		// export's last row (a series arrives in time order).
		var series struct {
			Samples []struct {
				Time  time.Time `json:"time"`
				Value *float64  `json:"value"`
				Unit  string    `json:"unit"`
			} `json:"samples"`
		}
		sq := neturl.Values{"station": {"farm-north"}, "device": {"soil-east"}, "metric": {metric}, "from": {q.Get("from")}, "to": {q.Get("to")}}
		if err := testenv.GetJSON(s.URL+"api/v1/series?"+sq.Encode(), &series); err != nil {
			t.Fatal(err)
		}
		last := ex[len(ex)-1].time
		var store []sample
		for _, x := range series.Samples {
			if x.Time.After(last) {
				break
			}
			if x.Value == nil {
				t.Fatalf("%s: a sample without a value at %s", metric, x.Time)
			}
			store = append(store, sample{x.Time, *x.Value, x.Unit})
		}
		if len(store) != len(ex) {
			t.Errorf("%s: the export has %d rows up to %s, the store %d samples", metric, len(ex), last, len(store))
			continue
		}
		for i := range ex {
			if !ex[i].time.Equal(store[i].time) || ex[i].value != store[i].value || ex[i].unit != store[i].unit {
				t.Errorf("%s row %d: exported %+v, stored %+v", metric, i, ex[i], store[i])
			}
			if ex[i].value != want {
				t.Errorf("%s row %d: exported %v, the sensor served %v", metric, i, ex[i].value, want)
			}
		}
		total += len(ex)
	}
	t.Logf("the page's export link %s: %d rows, each equal to the store's", got.Href, total)

	// The JSON lines link: the same station, device and range, and the same
	// rows as the CSV (up to the CSV's last: readings kept arriving).
	jl := EvalAsync[answer](t, p, fmt.Sprintf(exportJS, "#chart-export-jsonl"))
	if jl.Status != 200 || jl.Type != "application/x-ndjson" || !jl.Download || !strings.HasSuffix(jl.Disposition, `.jsonl"`) {
		t.Fatalf("the JSON lines link %q (download %v) answered %d %q %q", jl.Href, jl.Download, jl.Status, jl.Type, jl.Disposition)
	}
	ju, err := neturl.Parse(jl.Href)
	if err != nil || ju.Path != "/api/v1/export" || ju.Query().Get("format") != "jsonl" {
		t.Fatalf("JSON lines link %q", jl.Href)
	}
	for _, k := range []string{"station", "device", "from", "to"} {
		if ju.Query().Get(k) != q.Get(k) {
			t.Errorf("JSON lines link %s=%q, the CSV link's %q", k, ju.Query().Get(k), q.Get(k))
		}
	}
	lines := map[string][]sample{}
	dec := json.NewDecoder(strings.NewReader(jl.Body))
	for dec.More() {
		var r struct {
			Time                    time.Time
			Station, Device, Metric string
			Value                   *float64
			Unit                    string
		}
		if err := dec.Decode(&r); err != nil || r.Value == nil || r.Station != "farm-north" || r.Device != "soil-east" {
			t.Fatalf("JSON line %+v: %v", r, err)
		}
		lines[r.Metric] = append(lines[r.Metric], sample{r.Time, *r.Value, r.Unit})
	}
	for metric, ex := range exported {
		jx := lines[metric]
		if len(jx) < len(ex) {
			t.Errorf("%s: %d JSON lines, %d CSV rows", metric, len(jx), len(ex))
			continue
		}
		for i := range ex {
			if !jx[i].time.Equal(ex[i].time) || jx[i].value != ex[i].value || jx[i].unit != ex[i].unit {
				t.Errorf("%s row %d: JSON line %+v, CSV %+v", metric, i, jx[i], ex[i])
			}
		}
	}
}

// TestLanguageSwitch: 中文 turns the page Chinese — <html lang="zh-CN">, the
// map's title 站点地图, the warnings' title, the station's state and every
// metric under its Chinese name with the API's value — and a reload keeps
// it (localStorage); EN turns it back, and a reload keeps English.
func TestLanguageSwitch(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	api, err := s.Stations()
	if err != nil {
		t.Fatal(err)
	}
	first := api[0]
	p.WaitJS(t, "the station shown", fmt.Sprintf(shownIsJS, first.ID), waitLong)
	type labels struct {
		Lang, MapTitle, AlertsTitle, Saved string
		Pressed                            string
	}
	const labelsJS = `({ lang: document.documentElement.lang, mapTitle: document.querySelector("#map-box h2").textContent,
  alertsTitle: (document.querySelector("#alerts h2") || {}).textContent || "", saved: localStorage.getItem("fieldwatch-lang") || "",
  pressed: (document.querySelector("[data-lang][aria-pressed=true]") || {}).textContent || "" })`
	check := func(when string, want labels, lang int) {
		t.Helper()
		p.WaitJS(t, when+": the page in "+want.Lang, fmt.Sprintf(`document.documentElement.lang === %q && document.querySelector(%q).textContent === %q && document.querySelector("#alerts h2") !== null`,
			want.Lang, mapTitleSel, want.MapTitle), waitLong)
		if got := Eval[labels](t, p, labelsJS); got != want {
			t.Errorf("%s: %+v, want %+v", when, got, want)
		}
		var diff string
		testenv.Eventually(t, when+": the station's values named in "+want.Lang, waitLong, func() bool {
			diff = compareLatest(first, shownStation(t, p), lang)
			return diff == ""
		})
		st := shownStation(t, p)
		if wantState := map[int]string{0: "online", 1: "在线"}[lang]; st.State != wantState {
			t.Errorf("%s: the station's state reads %q, want %q", when, st.State, wantState)
		}
	}
	zh := labels{Lang: "zh-CN", MapTitle: "站点地图", AlertsTitle: "预警信息", Saved: "zh", Pressed: "中文"}
	en := labels{Lang: "en", MapTitle: "Stations", AlertsTitle: "Early warnings", Saved: "en", Pressed: "EN"}

	p.Click(t, fmt.Sprintf(langSel, "zh"))
	check("after 中文", zh, 1)
	p.Reload(t)
	check("after a reload", zh, 1)
	p.Click(t, fmt.Sprintf(langSel, "en"))
	check("after EN", en, 0)
	p.Reload(t)
	check("after another reload", en, 0)
}

// measureJS measures the page's width against the window's, naming the
// first elements that stick out.
const measureJS = `(() => {
  const w = window.innerWidth;
  const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > w + 0.5)
    .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= w + 0.5 || e.parentElement === document.body)
    .slice(0, 8).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") +
      " right " + Math.round(e.getBoundingClientRect().right));
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth: w, wide };
})()`

// TestPhoneWidthHasNoSideScroll opens the console at a phone's 390 px with
// a station selected, an early warning showing and the chart open: nothing
// may be wider than the window (no sideways scrolling).
func TestPhoneWidthHasNoSideScroll(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 390, 844)
	p.WaitJS(t, "the station list", `document.querySelectorAll("#station-list .station-pick").length === 2`, waitLong)
	raiseHeatAlert(t, s, p)
	openChart(t, p, "farm-north", "air-mast", "air_temperature")
	EvalAsync[bool](t, p, settledJS)
	type measure struct {
		ScrollWidth int      `json:"scrollWidth"`
		InnerWidth  int      `json:"innerWidth"`
		Wide        []string `json:"wide"`
	}
	m := Eval[measure](t, p, measureJS)
	if m.InnerWidth != 390 {
		t.Fatalf("window.innerWidth %d, want 390", m.InnerWidth)
	}
	if m.ScrollWidth > m.InnerWidth {
		t.Errorf("at 390 px the page scrolls sideways: document.documentElement.scrollWidth %d > window.innerWidth %d; too wide: %s",
			m.ScrollWidth, m.InnerWidth, strings.Join(m.Wide, ", "))
	}
}

// TestKiosk: /?kiosk=1 shows the map with every station's marker and the
// early warnings (an orange one appears, without buttons), and hides the
// station list, the station, the chart and the footer.
func TestKiosk(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL+"?kiosk=1", 1920, 1080)
	p.WaitVisible(t, "#map", waitLong)
	p.WaitJS(t, "two markers", `document.querySelectorAll(".leaflet-overlay-pane path.station-marker").length === 2`, waitLong)
	p.WaitVisible(t, "#alerts h2", waitLong)
	_, row := raiseHeatAlert(t, s, p)
	if row.Buttons != 0 {
		t.Errorf("the kiosk's warning row has %d buttons: %q", row.Buttons, row.Text)
	}
	p.WaitJS(t, "farm-north's marker orange", fmt.Sprintf(markerStatusJS, "farm-north", "orange"), waitLong)
	type shown struct {
		Map, Alerts, List, Station, Chart, Footer bool
	}
	got := Eval[shown](t, p, `(() => {
  const on = (sel) => { const e = document.querySelector(sel); return e !== null && getComputedStyle(e).display !== "none" && e.getBoundingClientRect().height > 0; };
  return { map: on("#map"), alerts: on("#alerts"), list: on("#station-list"), station: on("#station"), chart: on("#chart"), footer: on("footer") };
})()`)
	if want := (shown{Map: true, Alerts: true}); got != want {
		t.Errorf("the kiosk shows %+v, want %+v (map and warnings only)", got, want)
	}
	// A wall screen has no one to scroll it: the page fits the screen, and
	// the map fills what the header and legend leave.
	type fit struct{ ScrollW, ScrollH, W, H, MapH int }
	for _, size := range [][2]int{{1920, 1080}, {3840, 2160}} {
		p.SetViewport(t, size[0], size[1])
		// Reading the sizes lays the page out for the new viewport first.
		f := Eval[fit](t, p, `(() => ({ scrollW: document.documentElement.scrollWidth, scrollH: document.documentElement.scrollHeight,
  w: innerWidth, h: innerHeight, mapH: Math.round(document.querySelector("#map").getBoundingClientRect().height) }))()`)
		if f.ScrollW > f.W || f.ScrollH > f.H {
			t.Errorf("at %dx%d the kiosk page is %dx%d: it scrolls", size[0], size[1], f.ScrollW, f.ScrollH)
		}
		if f.MapH < f.H*3/5 {
			t.Errorf("at %dx%d the map is %d px high, want at least 3/5 of the screen", size[0], size[1], f.MapH)
		}
		t.Logf("kiosk at %dx%d (inner %dx%d): page %dx%d, map %d px high", size[0], size[1], f.W, f.H, f.ScrollW, f.ScrollH, f.MapH)
	}
}

// TestScreenshots takes full-page screenshots of the console, with both
// stations, an orange early warning and farm-north's air temperature
// charted: at 1280×900, at a phone's 390×844, in Chinese at 1280×900, and
// the kiosk at 1920×1080 — into docs/img/console-*.png with
// FIELDWATCH_SCREENSHOTS=1 (`make screenshots`), else into the test's
// temporary directory. Each is a PNG as wide as its viewport and at least as
// tall.
func TestScreenshots(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	p.WaitJS(t, "the station list", `document.querySelectorAll("#station-list .station-pick").length === 2`, waitLong)
	p.WaitJS(t, "the coastline", basemapJS, waitLong)
	raiseHeatAlert(t, s, p)
	p.WaitJS(t, "farm-north's marker orange", fmt.Sprintf(markerStatusJS, "farm-north", "orange"), waitLong)
	openChart(t, p, "farm-north", "air-mast", "air_temperature")
	shot := func(name string, w, h int) {
		t.Helper()
		EvalAsync[bool](t, p, settledJS)
		p.WaitJS(t, "the map settled", mapSettledJS, waitLong)
		path := p.Screenshot(t, name)
		pw, ph := pngSize(t, path)
		if pw != w || ph < h {
			t.Errorf("%s is %d×%d, want %d wide and at least %d tall", path, pw, ph, w, h)
		}
	}
	for _, v := range []struct{ w, h int }{{1280, 900}, {390, 844}} {
		p.SetViewport(t, v.w, v.h)
		p.WaitJS(t, "the chart resized", `(() => { const c = document.querySelector("#chart-plot canvas"); return c !== null && c.getBoundingClientRect().right <= window.innerWidth; })()`, waitShort)
		shot(fmt.Sprintf("console-%dx%d", v.w, v.h), v.w, v.h)
	}
	p.SetViewport(t, 1280, 900)
	p.Click(t, fmt.Sprintf(langSel, "zh"))
	p.WaitJS(t, "the page in Chinese", fmt.Sprintf(`document.documentElement.lang === "zh-CN" && document.querySelector(%q).textContent === "站点地图" && document.querySelector("#chart-plot canvas") !== null`, mapTitleSel), waitLong)
	p.WaitJS(t, "the chart redrawn", chartJS+`.line > 0`, waitLong)
	// The header's time is written at the next refresh (every 5 s).
	p.WaitJS(t, "the refresh time in Chinese", `document.querySelector("#updated").textContent.startsWith("更新于")`, waitLong)
	shot("console-zh-1280x900", 1280, 900)
	p.Click(t, fmt.Sprintf(langSel, "en"))

	p.SetViewport(t, 1920, 1080)
	p.Navigate(t, s.URL+"?kiosk=1")
	p.WaitJS(t, "the kiosk's markers", `document.querySelectorAll(".leaflet-overlay-pane path.station-marker").length === 2`, waitLong)
	p.WaitJS(t, "the coastline", basemapJS, waitLong)
	p.WaitJS(t, "the warning", fmt.Sprintf(alertRowJS, heatRule), waitLong)
	p.WaitJS(t, "farm-north's marker orange", fmt.Sprintf(markerStatusJS, "farm-north", "orange"), waitLong)
	shot("console-kiosk-1920x1080", 1920, 1080)
}

// pngSize reads a PNG's width and height from its IHDR chunk.
func pngSize(t *testing.T, path string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || !bytes.Equal(b[:8], []byte("\x89PNG\r\n\x1a\n")) || string(b[12:16]) != "IHDR" {
		t.Fatalf("%s is not a PNG", path)
	}
	return int(binary.BigEndian.Uint32(b[16:20])), int(binary.BigEndian.Uint32(b[20:24]))
}

// TestChartThresholdsAndBand: farm-north's air temperature chart draws the
// thresholds GET /api/v1/thresholds gives for that series — the heat rule's
// orange line at 37 °C in the page's orange, titled in the page's language
// — and, the 1 h range being 5 s buckets of a sensor read every second,
// the min–max band of each bucket behind the mean line, wider than a line
// once the temperature moves within a bucket.
func TestChartThresholdsAndBand(t *testing.T) {
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	openChart(t, p, "farm-north", "air-mast", "air_temperature")

	raw := p.WaitJS(t, "the chart's threshold lines", `(() => { const d = document.querySelector("#chart-plot").dataset.thresholds;
  return d && JSON.parse(d).length ? { lines: JSON.parse(d), lang: document.documentElement.lang } : null; })()`, waitLong)
	var got struct {
		Lines []struct {
			Metric, Rule, Severity, Op, Color, Title string
			Value                                    float64
		}
		Lang string
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	resp, err := http.Get(s.URL + "api/v1/thresholds?station=farm-north&device=air-mast&metric=air_temperature")
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Thresholds []struct {
			Rule, Severity, Op, Name string
			Value                    float64
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Lines) != len(api.Thresholds) {
		t.Fatalf("the chart drew %d threshold lines %+v, the API gives %d %+v", len(got.Lines), got.Lines, len(api.Thresholds), api.Thresholds)
	}
	heat := false
	for i, l := range got.Lines {
		a := api.Thresholds[i]
		if l.Rule != a.Rule || l.Severity != a.Severity || l.Op != a.Op || l.Value != a.Value || l.Metric != "air_temperature" ||
			l.Color != markerFill[l.Severity] {
			t.Errorf("line %d %+v, the API says %+v (colour %s)", i, l, a, markerFill[a.Severity])
		}
		if l.Rule == "agri_heat_max24h" && l.Severity == "orange" && l.Value == 37 && l.Color == "#e0661b" {
			heat = true
			if want := "High temperature, 24-hour maximum"; got.Lang != "zh-CN" && l.Title != want {
				t.Errorf("the orange line is titled %q, want %q", l.Title, want)
			}
			if want := "高温预警(监测)"; got.Lang == "zh-CN" && l.Title != want {
				t.Errorf("the orange line is titled %q, want %q", l.Title, want)
			}
		}
	}
	if !heat {
		t.Errorf("no orange line at 37 from agri_heat_max24h in %+v", got.Lines)
	}
	// The orange line is on the canvas (the y range takes 37 and 40 in).
	orange := Eval[int](t, p, `(() => { const c = document.querySelector("#chart-plot canvas");
  const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 200 && Math.abs(px[i] - 0xe0) + Math.abs(px[i + 1] - 0x66) + Math.abs(px[i + 2] - 0x1b) < 40) n++;
  return n; })()`)
	if orange < 100 {
		t.Errorf("%d orange pixels on the chart, want a line", orange)
	}

	// Move the temperature within buckets: the band gets a height.
	for i, v := range []float64{22.0, 24.5, 21.0, 25.0} {
		s.Air.Set(airTemperature, v, 10)
		if i < 3 {
			time.Sleep(1500 * time.Millisecond)
		}
	}
	band := p.WaitJS(t, "the min–max band drawn with a height", `(() => { const d = document.querySelector("#chart-plot").dataset;
  return Number(d.bandspread) > 0 ? { band: Number(d.band), spread: Number(d.bandspread), values: d.values } : null; })()`, waitLong)
	t.Logf("band %s", band)
}

// trackJS is the map's buoy track (a Leaflet SVG path; map.js names the
// station, the device, how many points it has and the range it asked
// for); null when none is drawn.
const trackJS = `(() => { const p = document.querySelector(".leaflet-overlay-pane path.station-track");
  return p && { station: p.dataset.station, device: p.dataset.device, points: +p.dataset.points, from: p.dataset.from, to: p.dataset.to }; })()`

// mooringJS is the mooring circle drawn with the track: what it stands for
// (map.js's data attributes), its size on screen and whether it lies inside
// the map's box; null when none.
const mooringJS = `(() => { const p = document.querySelector(".leaflet-overlay-pane path.mooring-circle");
  if (!p) return null;
  const r = p.getBoundingClientRect(), m = document.querySelector("#map").getBoundingClientRect();
  return { station: p.dataset.station, radius: +p.dataset.radius, anchor: p.dataset.anchor, source: p.dataset.source,
    state: p.dataset.state, width: r.width, inside: r.left >= m.left && r.right <= m.right && r.top >= m.top && r.bottom <= m.bottom }; })()`

// clustersJS is every cluster marker: the stations it groups.
const clustersJS = `[...document.querySelectorAll(".leaflet-marker-pane .station-cluster")].map((c) => c.dataset.stations)`

type pageTrack struct {
	Station, Device, From, To string
	Points                    int
}

type pageMooring struct {
	Station, Anchor, Source, State string
	Radius, Width                  float64
	Inside                         bool
}

// TestBuoyTrackAndMooring adds a buoy station that reports latitude and
// longitude and later drifts off its mooring. Picked before any drift, the
// map draws its mooring circle from the gateway's state (anchor and radius
// as configured) and fits the view to it and the track, so the 100 m circle
// is large and whole on screen; the track has as many points as the API's
// bucketed latitude/longitude series over the same range (one per bucket
// holding both); once the buoy drifts the circle turns to drifting.
func TestBuoyTrackAndMooring(t *testing.T) {
	s := StartStack(t)
	const lat, lon = 45.78, 126.67
	buoy := s.StartBuoy(t, "buoy-songhua", lat, lon, time.Hour)
	p := OpenPage(t, s.URL, 1280, 900)
	p.WaitJS(t, "the buoy in the list", fmt.Sprintf(`document.querySelector(%q) !== null`, fmt.Sprintf(pickSel, "buoy-songhua")), waitLong)
	selectStation(t, p, "buoy-songhua")
	p.WaitJS(t, "the mooring circle before any drift", mooringJS+` !== null`, waitLong)
	// Fitted to the picked buoy once its track is drawn: the circle is whole
	// and large on screen (at the stations' overview zoom it is about 2 px
	// across).
	p.WaitJS(t, "the map fitted to the buoy's circle", `(() => { const c = `+mooringJS+`; return c && c.inside && c.width >= 100; })()`, waitLong)
	p.WaitJS(t, "the map settled", mapSettledJS, waitLong)
	c := Eval[pageMooring](t, p, mooringJS)
	if c.Station != "buoy-songhua" || c.Radius != 100 || c.Anchor != fmt.Sprintf("%v,%v", lat, lon) || c.Source != "state" || c.State != "" {
		t.Errorf("mooring circle %+v, want anchor %v,%v radius 100 from the gateway's state, no drift", c, lat, lon)
	}
	if st, err := s.Stations(); err != nil {
		t.Fatal(err)
	} else {
		for _, x := range st {
			if x.ID == "buoy-songhua" && len(x.Events) > 0 {
				t.Fatalf("the buoy has events already (%s): the circle may not be from its state", x.Events[0])
			}
		}
	}
	p.WaitVisible(t, `#map-track button[data-range="1h"]`, waitLong)
	p.Click(t, `#map-track button[data-range="1h"]`)
	// Let the buoy drift and report for a while, then fall silent so the
	// series stop growing.
	buoy.Drift()
	testenv.Eventually(t, "a drift event in the API", waitLong, func() bool {
		st, err := s.Stations()
		if err != nil {
			return false
		}
		for _, x := range st {
			if x.ID == "buoy-songhua" {
				return len(x.Events) > 0
			}
		}
		return false
	})
	time.Sleep(12 * time.Second)
	buoy.Talk(false)
	time.Sleep(3 * time.Second) // what it said is stored
	silent := time.Now()

	count := func(tr pageTrack) (int, error) {
		got := map[string]map[string]bool{}
		for _, m := range []string{"latitude", "longitude"} {
			var out struct {
				Samples []struct {
					Time  string   `json:"time"`
					Value *float64 `json:"value"`
				} `json:"samples"`
			}
			q := neturl.Values{"station": {tr.Station}, "device": {tr.Device}, "metric": {m}, "from": {tr.From}, "to": {tr.To}, "every": {"auto"}}
			if err := testenv.GetJSON(s.URL+"api/v1/series?"+q.Encode(), &out); err != nil {
				return 0, err
			}
			got[m] = map[string]bool{}
			for _, x := range out.Samples {
				if x.Value != nil {
					got[m][x.Time] = true
				}
			}
		}
		n := 0
		for k := range got["latitude"] {
			if got["longitude"][k] {
				n++
			}
		}
		return n, nil
	}
	// The page asks again every 5 s at this range; once it has asked after
	// the buoy fell silent, its count is the API's over the same range.
	var last string
	for deadline := time.Now().Add(waitLong); ; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("the track never matched the API: %s", last)
		}
		tr := Eval[*pageTrack](t, p, trackJS)
		if tr == nil {
			last = "no track drawn"
			continue
		}
		n, err := count(*tr)
		last = fmt.Sprintf("page %+v, API %d points (%v)", *tr, n, err)
		if err == nil && tr.Station == "buoy-songhua" && tr.Points >= 2 && tr.Points == n &&
			mustTime(t, tr.To).Sub(mustTime(t, tr.From)) == time.Hour && mustTime(t, tr.To).After(silent) {
			t.Logf("track: %s", last)
			break
		}
	}
	p.WaitJS(t, "the mooring circle drifting", mooringJS+`?.state === "drifting"`, waitLong)
	c = Eval[pageMooring](t, p, mooringJS)
	if c.Station != "buoy-songhua" || c.Radius != 100 || c.Anchor != fmt.Sprintf("%v,%v", lat, lon) {
		t.Errorf("mooring circle %+v, want anchor %v,%v radius 100", c, lat, lon)
	}
	// Another station has no track.
	selectStation(t, p, "orchard-south")
	p.WaitJS(t, "no track for a station without a position", `document.querySelector(".leaflet-overlay-pane path.station-track") === null && document.querySelector("#map-track").hidden`, waitLong)
}

// TestStationsCluster: two stations 3 km apart are one marker (with their
// count) when zoomed out, clicking it zooms in until they are two.
func TestStationsCluster(t *testing.T) {
	s := StartStack(t)
	s.StartBuoy(t, "buoy-songhua", 45.78, 126.67, time.Hour) // 3.4 km from farm-north
	p := OpenPage(t, s.URL, 1280, 900)
	p.WaitJS(t, "the buoy known to the page", fmt.Sprintf(`document.querySelector(%q) !== null`, fmt.Sprintf(pickSel, "buoy-songhua")), waitLong)
	// Zoom out until the two share a marker.
	testenv.Eventually(t, "farm-north and the buoy clustered", waitLong, func() bool {
		for _, c := range Eval[[]string](t, p, clustersJS) {
			if strings.Contains(c, "buoy-songhua") && strings.Contains(c, "farm-north") {
				return true
			}
		}
		Eval[bool](t, p, `(b => { if (b && !b.classList.contains("leaflet-disabled")) b.click(); return true; })(document.querySelector(".leaflet-control-zoom-out"))`)
		return false
	})
	for _, m := range Eval[[]marker](t, p, markersJS) {
		if m.Station == "buoy-songhua" || m.Station == "farm-north" {
			t.Errorf("station %s clustered but still has its own marker", m.Station)
		}
	}
	count := Eval[string](t, p, `[...document.querySelectorAll(".station-cluster")].find((c) => c.dataset.stations.includes("buoy-songhua")).textContent`)
	if count != "2" && count != "3" {
		t.Errorf("cluster shows %q, want its count", count)
	}
	// Each click on the group zooms in; a few come to the zoom where the two
	// are apart.
	for i := 0; ; i++ {
		if i == 6 {
			t.Fatalf("still clustered after %d clicks: %v", i, Eval[[]string](t, p, clustersJS))
		}
		p.Click(t, `.station-cluster[data-stations*="buoy-songhua"]`)
		time.Sleep(time.Second) // the zoom animation
		if Eval[bool](t, p, `(() => { const ids = [...document.querySelectorAll(".leaflet-overlay-pane path.station-marker")].map((m) => m.dataset.station);
  return ids.includes("buoy-songhua") && ids.includes("farm-north") && !document.querySelector(".station-cluster[data-stations*='buoy-songhua']"); })()`) {
			break
		}
	}
}

// TestChartEventTicks: a buoy's drift event is a tick on its chart's time
// axis, at the event's time, with what happened in its title; the ticks are
// the API's events of the chart's device and range.
func TestChartEventTicks(t *testing.T) {
	s := StartStack(t)
	s.StartBuoy(t, "buoy-songhua", 36.06, 120.38, 2*time.Second)
	type event struct {
		Kind  string    `json:"kind"`
		Time  time.Time `json:"time"`
		Attrs struct {
			State string `json:"state"`
		} `json:"attrs"`
	}
	var drift event
	testenv.Eventually(t, "the buoy's drift event in the API", waitLong, func() bool {
		var out []event
		q := neturl.Values{"station": {"buoy-songhua"}, "device": {"buoy"}, "from": {time.Now().Add(-time.Hour).Format(time.RFC3339)}}
		if err := testenv.GetJSON(s.URL+"api/v1/events?"+q.Encode(), &out); err != nil {
			return false
		}
		for _, e := range out {
			if e.Kind == "drift" {
				drift = e
				return true
			}
		}
		return false
	})
	p := OpenPage(t, s.URL, 1280, 900)
	openChart(t, p, "buoy-songhua", "buoy", "latitude")
	p.WaitJS(t, "a drift tick on the chart", `document.querySelector("#chart-plot .ev-mark.drift") !== null`, waitLong)
	// The ticks and the range they were drawn for, read together.
	type tick struct {
		Left, Width float64
		Title       string
	}
	type shown struct {
		Ticks  []tick
		Href   string
		Events string
	}
	got := Eval[shown](t, p, `(() => {
  const over = document.querySelector("#chart-plot .u-over");
  return { ticks: [...over.querySelectorAll(".ev-mark")].map((m) => ({ left: parseFloat(m.style.left), width: over.clientWidth, title: m.title })),
    href: document.querySelector("#chart-export").getAttribute("href"), events: document.querySelector("#chart-plot").dataset.events };
})()`)
	u, err := neturl.Parse(got.Href)
	if err != nil {
		t.Fatal(err)
	}
	from, to := mustTime(t, u.Query().Get("from")), mustTime(t, u.Query().Get("to"))
	var api []event
	q := neturl.Values{"station": {"buoy-songhua"}, "device": {"buoy"}, "from": {u.Query().Get("from")}, "to": {u.Query().Get("to")}}
	if err := testenv.GetJSON(s.URL+"api/v1/events?"+q.Encode(), &api); err != nil {
		t.Fatal(err)
	}
	if len(got.Ticks) != len(api) || got.Events != strconv.Itoa(len(api)) {
		t.Fatalf("the chart has %d ticks (%s events), the API %d events in %s – %s", len(got.Ticks), got.Events, len(api), from, to)
	}
	// Where the drift tick sits: its share of the axis is its time's share
	// of the range (within 1 %: the range moves by a bucket between loads).
	want := float64(drift.Time.Sub(from)) / float64(to.Sub(from))
	found := false
	for _, tk := range got.Ticks {
		if !strings.HasPrefix(tk.Title, "drift") || tk.Width <= 0 {
			continue
		}
		found = true
		if share := tk.Left / tk.Width; math.Abs(share-want) > 0.01 {
			t.Errorf("the drift tick is at %.3f of the axis, its time %s at %.3f", share, drift.Time, want)
		}
	}
	if !found {
		t.Errorf("no tick titled drift among %+v", got.Ticks)
	}
}

// TestPositionsKeepTheirDecimals: a buoy's latitude and longitude cards
// show five decimals (about a metre), not the two a temperature gets, which
// would move a buoy moored at 45.78 N by kilometres.
func TestPositionsKeepTheirDecimals(t *testing.T) {
	s := StartStack(t)
	const lat, lon = 45.781234, 126.671234
	s.StartBuoy(t, "buoy-songhua", lat, lon, time.Hour)
	p := OpenPage(t, s.URL, 1280, 900)
	p.WaitJS(t, "the buoy in the list", fmt.Sprintf(`document.querySelector(%q) !== null`, fmt.Sprintf(pickSel, "buoy-songhua")), waitLong)
	selectStation(t, p, "buoy-songhua")
	want := map[string]float64{"latitude": lat, "longitude": lon}
	var shown map[string]string
	testenv.Eventually(t, "the buoy's position on its station card", waitLong, func() bool {
		shown = map[string]string{}
		for _, d := range shownStation(t, p).Devices {
			for _, v := range d.Values {
				if _, ok := want[v.Metric]; ok {
					shown[v.Metric] = v.Value
				}
			}
		}
		return len(shown) == len(want)
	})
	decimals := regexp.MustCompile(`^(-?[0-9]+\.[0-9]{5})\b`)
	for m, text := range shown {
		g := decimals.FindStringSubmatch(text)
		if g == nil {
			t.Errorf("%s shown as %q, want five decimals", m, text)
			continue
		}
		// Moored: the simulated fix stays within a few metres of the anchor.
		if x, _ := strconv.ParseFloat(g[1], 64); math.Abs(x-want[m]) > 1e-3 {
			t.Errorf("%s shown as %q, the buoy is moored at %v", m, text, want[m])
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	x, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
