package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/httpserver"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// benchServer is the API over a SQLite store holding n samples of
// gw1/soil-1/soil_moisture, step apart from t0, behind the cloud's own HTTP
// server (its Guard and its limits: WriteTimeout 60 s).
func benchServer(b *testing.B, n int, step time.Duration) *httptest.Server {
	b.Helper()
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "f.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	const batch = 50_000
	rs := make([]telemetry.Reading, 0, batch)
	for i := 0; i < n; i++ {
		rs = append(rs, telemetry.Reading{Device: "soil-1", Metric: "soil_moisture", Unit: "%",
			Value: 20 + float64(i%1000)/37, Time: t0.Add(time.Duration(i) * step)})
		if len(rs) == batch || i == n-1 {
			if err := st.Write(context.Background(), "gw1", "north", rs); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	a := New(st, registry.New(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpserver.New(mux, httpserver.Limits{}, slog.New(slog.DiscardHandler))
	srv.Start()
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkExport1M exports a million raw samples as CSV through the HTTP
// handler and counts the rows received. Target (issue 13): ≥ 200 000 rows/s.
func BenchmarkExport1M(b *testing.B) {
	const n = 1_000_000
	srv := benchServer(b, n, time.Second)
	url := srv.URL + "/api/v1/export?station=gw1&device=soil-1&metric=soil_moisture&from=" +
		t0.Format(time.RFC3339) + "&to=" + t0.Add(n*time.Second).Format(time.RFC3339)
	buf := make([]byte, 256<<10)
	var rows int64
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		lines := 0
		for {
			k, err := resp.Body.Read(buf)
			lines += bytes.Count(buf[:k], []byte{'\n'})
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || lines != n+1 {
			b.Fatalf("%d, %d lines; want %d rows and the header", resp.StatusCode, lines, n)
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkYearChart asks the series endpoint for a year of one-minute
// samples (525 600) in at most 1000 buckets (every=auto picks 12 h: 730).
// Target (issue 13): < 300 ms.
func BenchmarkYearChart(b *testing.B) {
	const n = 525_600
	srv := benchServer(b, n, time.Minute)
	url := srv.URL + "/api/v1/series?station=gw1&device=soil-1&metric=soil_moisture&from=" +
		t0.Format(time.RFC3339) + "&to=" + t0.Add(n*time.Minute).Format(time.RFC3339) + "&points=1000"
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		var sr SeriesResponse
		err = json.NewDecoder(resp.Body).Decode(&sr)
		resp.Body.Close()
		if err != nil || len(sr.Samples) < 500 || len(sr.Samples) > 1000 {
			b.Fatalf("%v, %d buckets", err, len(sr.Samples))
		}
		total := 0
		for _, s := range sr.Samples {
			total += s.Count
		}
		if total != n {
			b.Fatalf("buckets count %d samples, want %d", total, n)
		}
	}
}
