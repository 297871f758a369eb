package notify

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkUpdate measures alerts per second through Update and delivery
// to an in-process HTTP receiver (alertmanager_api: one POST per change),
// each Update carrying one alert change.
func BenchmarkUpdate(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cfg := testConfig(Receiver{Name: "am", AlertmanagerAPI: &AlertmanagerAPI{URL: srv.URL, Resend: time.Hour}})
	h := openNotifier(b, "", cfg, nil, nil, true)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := alert(fmt.Sprintf("%016x", i%1000), "TempHigh", fmt.Sprintf("site%d", i%10), "orange", uint64(i/1000+1),
			StatusFiring, start)
		h.update(b, a)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if got.Load() < int64(b.N) {
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}
