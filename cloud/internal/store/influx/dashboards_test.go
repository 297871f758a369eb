package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const dashboardDir = "../../../../dashboards/grafana"

// dashboardCases are the shipped dashboards, each with the station its
// station variable is set to when its queries run, the stations that
// variable must list (exactly), and the total some count panels must give
// (the sum of their counts over all rows). Every dashboard file must be
// here, so that none ships untested.
var dashboardCases = []struct {
	file     string
	station  string           // what ${station} is set to; "*" is Grafana's All of a multi-value variable
	stations []string         // what the station variable lists
	counts   map[string]int64 // panel title → sum of its counts
}{
	{
		file: "fieldwatch-station.json", station: "farm-1", stations: []string{"farm-1"},
		counts: map[string]int64{
			"Stations reporting (last 15 min)":   4,
			"Bad readings at ${station} (range)": 1,
		},
	},
	{
		file: "fieldwatch-ocean-buoy.json", station: "buoy-1", stations: []string{"buoy-1"},
		counts: map[string]int64{"Drift events (range)": 2},
	},
	{file: "fieldwatch-water-quality.json", station: "pond-1", stations: []string{"pond-1"}},
	{file: "fieldwatch-environment.json", station: "air-1", stations: []string{"air-1"}},
	{
		file: "fieldwatch-events.json", station: "*", stations: []string{"air-1", "buoy-1", "farm-1", "pond-1"},
		counts: map[string]int64{
			"Events (range)":                      int64(len(testEvents())),
			"Events per station and kind (range)": int64(len(testEvents())),
			"Events per kind":                     int64(len(testEvents())),
			"Tag visits per reader (range)":       3,
		},
	},
}

// testStations are four stations and what their gateways send: the
// metric names are those of the firmware profiles (firmware-profiles/)
// that such stations carry. Each station's metric has one value, distinct
// from every other station's and metric's, so a mean, a last or a max a
// panel shows can be checked against what was written, and a value from
// the wrong station or metric is caught.
var testStations = []struct {
	gateway, site string
	devices       map[string][]string // device → metrics
}{
	{"farm-1", "north", map[string][]string{
		"soil-1": {"soil_moisture", "soil_temperature", "soil_ec", "soil_ph", "soil_nitrogen", "soil_phosphorus", "soil_potassium"},
		"wx-1":   {"air_temperature", "air_humidity", "rainfall", "wind_speed", "wind_direction"},
	}},
	{"buoy-1", "", map[string][]string{
		"buoy": {"wave_height", "wave_height_max", "wave_period", "wave_period_peak", "wave_direction",
			"water_temperature", "wind_speed", "wind_gust", "wind_direction", "wind_speed_relative", "air_pressure",
			"air_temperature", "dew_point", "air_humidity", "latitude", "longitude", "speed_over_ground"},
	}},
	{"pond-1", "fish-farm", map[string][]string{
		"do-1":   {"water_temperature", "dissolved_oxygen", "do_saturation"},
		"nh-1":   {"water_temperature", "water_ph", "ammonia_nitrogen", "potassium_ion"},
		"turb-1": {"turbidity"},
	}},
	{"air-1", "town", map[string][]string{
		"wx-2":  {"wind_speed", "wind_direction", "air_humidity", "air_temperature", "noise", "pm2_5", "pm10", "air_pressure", "illuminance", "solar_radiation", "rainfall"},
		"co2-1": {"co2", "air_temperature", "air_humidity"},
	}},
}

// testValues gives the value of each station's metric (the same on each of its
// devices): 0.5 + 100 × station + the metric's index in the sorted list of
// all metrics.
func testValues() map[string]map[string]float64 {
	metrics := map[string]bool{}
	for _, st := range testStations {
		for _, ms := range st.devices {
			for _, m := range ms {
				metrics[m] = true
			}
		}
	}
	names := make([]string, 0, len(metrics))
	for m := range metrics {
		names = append(names, m)
	}
	sort.Strings(names)
	out := map[string]map[string]float64{}
	for i, st := range testStations {
		out[st.gateway] = map[string]float64{}
		for j, m := range names {
			out[st.gateway][m] = 0.5 + float64(100*i+j)
		}
	}
	return out
}

// testUnits are the metrics' units as the firmware profiles give them
// (the store writes no unit tag for "").
var testUnits = map[string]string{
	"soil_moisture": "%", "soil_temperature": "°C", "soil_ec": "µS/cm", "soil_nitrogen": "mg/kg",
	"soil_phosphorus": "mg/kg", "soil_potassium": "mg/kg", "air_temperature": "°C", "air_humidity": "%",
	"rainfall": "mm", "wind_speed": "m/s", "wind_direction": "°", "wave_height": "m", "wave_height_max": "m",
	"wave_period": "s", "wave_period_peak": "s", "wave_direction": "°", "water_temperature": "°C",
	"wind_gust": "m/s", "wind_speed_relative": "m/s", "air_pressure": "hPa", "dew_point": "°C", "latitude": "°",
	"longitude": "°", "speed_over_ground": "m/s", "dissolved_oxygen": "mg/L", "do_saturation": "%",
	"ammonia_nitrogen": "mg/L", "potassium_ion": "mg/L", "turbidity": "NTU", "noise": "dB", "pm2_5": "µg/m³",
	"pm10": "µg/m³", "illuminance": "lx", "solar_radiation": "W/m²", "co2": "ppm",
}

// badSoilMoisture is one bad reading of another probe at farm-1.
const badSoilMoisture = 130

type stationEvent struct {
	gateway, site string
	telemetry.Event
}

// testEvents are the events of the four stations: the kinds the gateways
// and the cloud make (telemetry.Event*), with their attributes and values.
func testEvents() []stationEvent {
	t0 := time.Now().Add(-4 * time.Minute).Truncate(time.Second)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	anchor := map[string]float64{"anchor_lat": 36.05, "anchor_lon": 120.45, "radius_m": 500}
	with := func(m map[string]float64, kv ...any) map[string]float64 {
		out := map[string]float64{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1].(float64)
		}
		return out
	}
	var es []stationEvent
	add := func(gw, site string, e telemetry.Event) { es = append(es, stationEvent{gw, site, e}) }
	add("buoy-1", "", telemetry.Event{Device: "buoy", Kind: telemetry.EventDrift, Time: at(10), Clock: telemetry.ClockGPS,
		Attrs: map[string]string{"state": "drifting"}, Values: with(anchor, "lat", 36.061, "lon", 120.452, "distance_m", 1233.4)})
	add("buoy-1", "", telemetry.Event{Device: "buoy", Kind: telemetry.EventDrift, Time: at(70), Clock: telemetry.ClockGPS,
		Attrs: map[string]string{"state": "returned"}, Values: with(anchor, "lat", 36.052, "lon", 120.451, "distance_m", 241.7)})
	for i, tag := range []string{"982000000000001", "982000000000002", "982000000000003"} {
		add("farm-1", "north", telemetry.Event{Device: "race", Kind: telemetry.EventTag, Key: tag, Time: at(20 + i), Clock: telemetry.ClockNTP,
			Attrs:  map[string]string{"tag_type": "fdx-b", "state": "gone"},
			Values: map[string]float64{"count": float64(5 + i), "duration_s": float64(2 + i)}})
	}
	add("farm-1", "north", telemetry.Event{Device: "soil-3", Kind: telemetry.EventQuarantine, Time: at(30), Clock: telemetry.ClockNTP,
		Attrs:  map[string]string{"state": "quarantined", "bus": "rs485-1", "error": "timeout"},
		Values: map[string]float64{"failures": 3, "backoff_s": 60}})
	add("farm-1", "north", telemetry.Event{Device: "farm-1", Kind: telemetry.EventGap, Key: "seq-1-42", Time: at(31), Clock: telemetry.ClockNTP,
		Attrs:  map[string]string{"reason": "buffer_full", "policy": "drop_oldest"},
		Values: map[string]float64{"count": 42, "span_s": 600, "from_seq": 1, "to_seq": 42}})
	add("farm-1", "north", telemetry.Event{Device: "farm-1", Kind: telemetry.EventBuffer, Time: at(32), Clock: telemetry.ClockNTP,
		Attrs:  map[string]string{"state": "high"},
		Values: map[string]float64{"fill": 0.85, "bytes": 850, "max_bytes": 1000}})
	add("farm-1", "north", telemetry.Event{Device: "farm-1", Kind: telemetry.EventClock, Time: at(33), Clock: telemetry.ClockNTP,
		Attrs:  map[string]string{"state": "synced", "source": "ntp"},
		Values: map[string]float64{"offset_s": 12.5}})
	add("pond-1", "fish-farm", telemetry.Event{Device: "do-1", Kind: telemetry.EventConnection, Time: at(40),
		Attrs: map[string]string{"state": "lost", "error": "connection refused"}})
	add("air-1", "town", telemetry.Event{Device: "air-1", Kind: telemetry.EventFuture, Key: "seq-7-9", Time: at(50),
		Attrs:  map[string]string{"reason": "clock_ahead"},
		Values: map[string]float64{"count": 3, "ahead_s": 7200, "max_future_s": 300}})
	return es
}

// TestGrafanaDashboardQueries runs every Flux query of the shipped Grafana
// dashboards (panels and variables) against a real InfluxDB 1.8 holding
// what this store writes for soil, buoy, water-quality and air stations and
// their events, with Grafana's variables filled in, and with the bucket
// variable in both of its forms: "db/autogen" (InfluxDB 1.8) and "db" (the
// plain name, as a 2.x bucket is written; 1.8 takes it as the database's
// default retention policy). Each query must run and return rows; every
// number it returns must be one that was written (or, for the counts named
// in dashboardCases, their total): a renamed tag, field or metric, a query
// that mixes stations or devices, breaks the dashboards here, not in a
// bureau's control room.
func TestGrafanaDashboardQueries(t *testing.T) {
	db := testenv.StartInfluxDB(t)
	s, err := Open(Config{URL: db.URL, Token: db.Token, Bucket: db.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	values := testValues()
	now := time.Now().Add(-5 * time.Minute)
	for _, st := range testStations {
		var rs []telemetry.Reading
		for dev, ms := range st.devices {
			for _, m := range ms {
				for j := 0; j < 10; j++ {
					rs = append(rs, telemetry.Reading{Device: dev, Metric: m, Value: values[st.gateway][m], Unit: testUnits[m],
						Time: now.Add(time.Duration(j) * time.Second), Clock: telemetry.ClockNTP})
				}
			}
		}
		if st.gateway == "farm-1" {
			rs = append(rs, telemetry.Reading{Device: "soil-2", Metric: "soil_moisture", Value: badSoilMoisture, Unit: "%",
				Time: now, Quality: telemetry.Bad})
		}
		if err := s.Write(ctx, st.gateway, st.site, rs); err != nil {
			t.Fatal(err)
		}
	}
	eventValues := map[string]map[float64]bool{}
	for _, e := range testEvents() {
		if err := s.WriteEvents(ctx, e.gateway, e.site, []telemetry.Event{e.Event}); err != nil {
			t.Fatal(err)
		}
		for k, v := range e.Values {
			if eventValues[k] == nil {
				eventValues[k] = map[float64]bool{}
			}
			eventValues[k][v] = true
		}
	}
	values["farm-1"]["soil_moisture_bad"] = badSoilMoisture

	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	dbName, _, _ := strings.Cut(db.Bucket, "/")
	checkCasesCoverFiles(t)
	for _, bucket := range []string{db.Bucket, dbName} {
		t.Run("bucket="+bucket, func(t *testing.T) {
			for _, dc := range dashboardCases {
				t.Run(dc.file, func(t *testing.T) {
					dash := readDashboard(t, dc.file)
					station := regexp.QuoteMeta(dc.station)
					if dc.station == "*" { // Grafana's All: every value, regex-escaped, as (a|b|c)
						quoted := make([]string, len(dc.stations))
						for i, s := range dc.stations {
							quoted[i] = regexp.QuoteMeta(s)
						}
						station = "(" + strings.Join(quoted, "|") + ")"
					}
					vars := strings.NewReplacer(
						"${bucket}", bucket, "${station}", dc.station, "${station:regex}", station,
						"v.timeRangeStart", "-24h", "v.timeRangeStop", "now()", "v.windowPeriod", "1m")
					run := func(name, q string) []map[string]any {
						q = vars.Replace(q)
						res, err := client.QueryAPI("").Query(ctx, q)
						if err != nil {
							t.Errorf("%s: %v\n%s", name, err, q)
							return nil
						}
						defer res.Close()
						var rows []map[string]any
						for res.Next() {
							rows = append(rows, res.Record().Values())
						}
						if res.Err() != nil || len(rows) == 0 {
							t.Errorf("%s: %d rows, err %v\n%s", name, len(rows), res.Err(), q)
						}
						return rows
					}
					for _, v := range dash.Templating.List {
						if v.Type != "query" {
							continue
						}
						var got []string
						for _, r := range run("variable "+v.Name, v.Query.(string)) {
							got = append(got, fmt.Sprint(r["_value"]))
						}
						sort.Strings(got)
						if v.Name == "station" && strings.Join(got, " ") != strings.Join(dc.stations, " ") {
							t.Errorf("variable station lists %q, want %q", got, dc.stations)
						}
					}
					panels := 0
					for _, p := range dash.allPanels() {
						for i, tg := range p.Targets {
							panels++
							name := fmt.Sprintf("panel %q #%c", p.Title, 'A'+i)
							rows := run(name, tg.Query)
							checked := 0
							var count int64
							for _, r := range rows {
								n, err := checkRow(r, tg.Query, values[dc.station], eventValues)
								checked += n
								if err != nil {
									t.Errorf("%s: %v in %v", name, err, r)
								}
								for _, col := range []string{"_value", "events", "visits"} {
									if c, ok := r[col].(int64); ok {
										count += c
										if c <= 0 { // a count of 0 matched nothing it should have
											t.Errorf("%s: %s is %d in %v", name, col, c, r)
										}
									}
								}
							}
							if want, ok := dc.counts[p.Title]; ok {
								if count != want {
									t.Errorf("%s: counts add up to %d, want %d", name, count, want)
								}
								checked++
							}
							if len(rows) > 0 && checked == 0 {
								t.Errorf("%s: no value of its %d rows could be checked against what was written: %v", name, len(rows), rows[0])
							}
						}
					}
					if panels < 5 {
						t.Errorf("only %d panel queries", panels)
					}
				})
			}
		})
	}
}

var (
	measurementRE = regexp.MustCompile(`r\._measurement == "(\w+)"`)
	fieldRE       = regexp.MustCompile(`r\._field == "(\w+)"`)
)

// checkRow checks every number of a query's row against what was written:
// a metric's value (in _value, in a pivoted "value" column, or in a column
// named after the metric) must be that station's value of that metric, an
// event's value one written under that name. It returns how many numbers
// it checked.
func checkRow(r map[string]any, query string, values map[string]float64, eventValues map[string]map[float64]bool) (int, error) {
	// What _value is: the row's measurement and field, or the only ones the
	// query asks for.
	only := func(re *regexp.Regexp) string {
		names := map[string]bool{}
		for _, m := range re.FindAllStringSubmatch(query, -1) {
			names[m[1]] = true
		}
		if len(names) == 1 {
			for n := range names {
				return n
			}
		}
		return ""
	}
	measurement, _ := r["_measurement"].(string)
	if measurement == "" {
		measurement = only(measurementRE)
	}
	field, _ := r["_field"].(string)
	if field == "" {
		field = only(fieldRE)
	}
	n := 0
	check := func(col, name string, v float64) error {
		n++
		if name == "event" {
			if !eventValues[field][v] {
				return fmt.Errorf("%s %v is not a value of an event's %q", col, v, field)
			}
			return nil
		}
		if want, ok := values[name]; ok && v == want {
			return nil
		}
		if name == "soil_moisture" && v == values["soil_moisture_bad"] {
			return nil
		}
		return fmt.Errorf("%s %v is not the %s written (%v)", col, v, name, values[name])
	}
	for col, x := range r {
		v, ok := x.(float64)
		if !ok {
			continue
		}
		var err error
		switch {
		case (col == "_value" || col == "value") && measurement != "":
			err = check(col, measurement, v)
		case values[col] != 0:
			err = check(col, col, v)
		case eventValues[col] != nil:
			n++
			if !eventValues[col][v] {
				err = fmt.Errorf("%s %v is not a value of an event's %q", col, v, col)
			}
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestGrafanaDashboardsStructure checks what makes the dashboards work in
// any bureau's Grafana without editing: provisioning style (no __inputs),
// unique and stable uids, every panel and query on the ${datasource}
// variable, every Flux query on the ${bucket} variable (never a bucket
// name), the bucket a visible textbox defaulting to "fieldwatch" whose
// description tells the 1.8 form, and every ${variable} used defined.
func TestGrafanaDashboardsStructure(t *testing.T) {
	checkCasesCoverFiles(t)
	uids := map[string]string{}
	varRE := regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)
	for _, dc := range dashboardCases {
		t.Run(dc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dashboardDir, dc.file))
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := json.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			if _, ok := raw["__inputs"]; ok {
				t.Error("has __inputs: provisioned dashboards take the datasource from the variable")
			}
			dash := readDashboard(t, dc.file)
			if dash.UID == "" || len(dash.UID) > 40 {
				t.Errorf("uid %q: want 1 to 40 characters", dash.UID)
			}
			if other, ok := uids[dash.UID]; ok {
				t.Errorf("uid %q also in %s", dash.UID, other)
			}
			uids[dash.UID] = dc.file
			if dash.SchemaVersion < 39 {
				t.Errorf("schemaVersion %d, want ≥ 39", dash.SchemaVersion)
			}
			defined := map[string]templateVar{}
			for _, v := range dash.Templating.List {
				defined[v.Name] = v
			}
			if v := defined["datasource"]; v.Type != "datasource" || v.Query != "influxdb" {
				t.Errorf("variable datasource: type %q query %v, want a datasource variable of type influxdb", v.Type, v.Query)
			}
			if v := defined["bucket"]; v.Type != "textbox" || v.Query != "fieldwatch" || v.Hide != 0 ||
				!strings.Contains(v.Description, "fieldwatch/autogen") || !strings.Contains(v.Description, "2.x") {
				t.Errorf("variable bucket: %+v; want a visible textbox, default fieldwatch, that explains 1.8's db/autogen and 2.x", v)
			}
			for _, v := range dash.Templating.List {
				if v.Type == "query" {
					if v.Datasource.UID != "${datasource}" {
						t.Errorf("variable %s: datasource %+v, want ${datasource}", v.Name, v.Datasource)
					}
					checkBucket(t, "variable "+v.Name, v.Query.(string))
				}
			}
			ids := map[int]bool{}
			for _, p := range dash.allPanels() {
				if ids[p.ID] {
					t.Errorf("panel id %d twice", p.ID)
				}
				ids[p.ID] = true
				if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
					t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
				}
				if p.Type == "row" || p.Type == "text" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				if p.Datasource.UID != "${datasource}" || p.Datasource.Type != "influxdb" {
					t.Errorf("panel %q: datasource %+v, want influxdb ${datasource}", p.Title, p.Datasource)
				}
				for _, tg := range p.Targets {
					if tg.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q target %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
					}
					checkBucket(t, fmt.Sprintf("panel %q", p.Title), tg.Query)
				}
			}
			for _, m := range varRE.FindAllStringSubmatch(string(data), -1) {
				name := m[1] + m[2] + m[3]
				if _, ok := defined[name]; !ok && !strings.HasPrefix(name, "__") {
					t.Errorf("%s uses variable %q, which it does not define", dc.file, m[0])
				}
			}
		})
	}
}

// checkBucket fails a query that reads anything but the ${bucket} variable.
func checkBucket(t *testing.T, name, q string) {
	t.Helper()
	if n, m := strings.Count(q, "from("), strings.Count(q, `from(bucket: "${bucket}")`); n == 0 || n != m {
		t.Errorf("%s: %d from() of which %d on ${bucket}:\n%s", name, n, m, q)
	}
}

// checkCasesCoverFiles fails when a dashboard file has no case, or a case
// no file.
func checkCasesCoverFiles(t *testing.T) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	var got, want []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	for _, dc := range dashboardCases {
		want = append(want, dc.file)
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("dashboards %q, test cases for %q: every dashboard needs a case in dashboardCases", got, want)
	}
}

type datasourceRef struct{ Type, UID string }

type templateVar struct {
	Name, Type, Description string
	Hide                    int
	Query                   any
	Datasource              datasourceRef
}

type panel struct {
	ID         int
	Type       string
	Title      string
	Datasource datasourceRef
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		RefID      string
		Query      string
		Datasource datasourceRef
	}
	Panels []panel // a collapsed row's
}

type dashboard struct {
	UID           string
	Title         string
	SchemaVersion int
	Panels        []panel
	Templating    struct{ List []templateVar }
}

// allPanels are the dashboard's panels, those in collapsed rows too.
func (d *dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

func readDashboard(t *testing.T, file string) *dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dashboardDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &d
}
