package influx

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestGrafanaDashboardQueries runs every Flux query of the shipped Grafana
// dashboards (panels and variables) against a real InfluxDB holding what
// this store writes, with Grafana's variables filled in. Each must run and
// return rows: a renamed tag or field breaks the dashboards here, not in a
// bureau's control room.
func TestGrafanaDashboardQueries(t *testing.T) {
	files, err := filepath.Glob("../../../../dashboards/grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	db := testenv.StartInfluxDB(t)
	s, err := Open(Config{URL: db.URL, Token: db.Token, Bucket: db.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().Add(-5 * time.Minute)
	var rs []telemetry.Reading
	for i, m := range []string{"soil_moisture", "soil_temperature", "soil_ec", "air_temperature", "air_humidity"} {
		for j := 0; j < 10; j++ {
			rs = append(rs, telemetry.Reading{Device: "dev-1", Metric: m, Value: float64(10 + i + j), Unit: "%",
				Time: now.Add(time.Duration(j) * time.Second)})
		}
	}
	rs = append(rs, telemetry.Reading{Device: "dev-2", Metric: "soil_moisture", Value: 130, Unit: "%", Time: now, Quality: telemetry.Bad})
	if err := s.Write(context.Background(), "gw1", "north", rs); err != nil {
		t.Fatal(err)
	}

	vars := strings.NewReplacer(
		"${bucket}", db.Bucket, "${station}", "gw1",
		"v.timeRangeStart", "-24h", "v.timeRangeStop", "now()", "v.windowPeriod", "1m")
	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	for _, file := range files {
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Query string `json:"query"`
				} `json:"targets"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Name, Type string
					Query      any `json:"query"`
				} `json:"list"`
			} `json:"templating"`
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &dash); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		queries := map[string]string{}
		for _, p := range dash.Panels {
			for i, tg := range p.Targets {
				queries[p.Title+"#"+string(rune('A'+i))] = tg.Query
			}
		}
		for _, v := range dash.Templating.List {
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				queries["variable "+v.Name] = q
			}
		}
		if len(queries) < 5 {
			t.Fatalf("%s: only %d queries found", file, len(queries))
		}
		for name, q := range queries {
			res, err := client.QueryAPI("").Query(context.Background(), vars.Replace(q))
			if err != nil {
				t.Errorf("%s: %s: %v\n%s", filepath.Base(file), name, err, vars.Replace(q))
				continue
			}
			rows := 0
			for res.Next() {
				rows++
				// A count of 0 or an empty value means the query matched
				// nothing it should have.
				if v, ok := res.Record().Values()["_value"]; ok && (v == nil || v == int64(0) || v == "") {
					t.Errorf("%s: %s: empty or zero value in %v", filepath.Base(file), name, res.Record().Values())
				}
			}
			if res.Err() != nil || rows == 0 {
				t.Errorf("%s: %s: %d rows, err %v\n%s", filepath.Base(file), name, rows, res.Err(), vars.Replace(q))
			}
			res.Close()
		}
	}
}
