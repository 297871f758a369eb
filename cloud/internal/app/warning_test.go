package app

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// thresholdRule writes a rule file with one orange threshold on metric
// (over set, cleared under clear) and returns its path.
func thresholdRule(t *testing.T, metric string, set, clear float64) string {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(`rules:
  - id: %[1]s_high
    kind: threshold
    standard: "test"
    input: {metric: %[1]s}
    labels: {alertname: High}
    levels:
      - {severity: orange, op: ">", set: %[2]v, clear: %[3]v}
`, metric, set, clear)), 0o644); err != nil {
		t.Fatal(err)
	}
	return rules
}

// oneWarning checks that the cloud at httpAddr has one alert, firing, and
// one transition in station's history: what a frame sent three times must
// leave.
func oneWarning(t *testing.T, httpAddr, station string) {
	t.Helper()
	var alerts []struct{ Fingerprint, State string }
	if err := testenv.GetJSON("http://"+httpAddr+"/api/v1/alerts?state=all", &alerts); err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].State != "firing" {
		t.Fatalf("alerts %+v, want one firing", alerts)
	}
	var hist []struct{ From, To string }
	if err := testenv.GetJSON("http://"+httpAddr+"/api/v1/alerts/history?station="+station, &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].To != "firing" {
		t.Fatalf("history %+v, want one transition to firing", hist)
	}
}
