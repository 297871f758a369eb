package notify

import (
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// gettableAlert is the part of Alertmanager's GET /api/v2/alerts we check.
type gettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
	GeneratorURL string `json:"generatorURL"`
}

// Alerts pushed to a real Alertmanager appear there with our labels, and
// disappear from its active alerts once resolved.
func TestAlertmanagerAPIPush(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	cfg := testConfig(Receiver{Name: "am", AlertmanagerAPI: &AlertmanagerAPI{URL: am.URL, Resend: 100 * time.Millisecond}})
	h := openNotifier(t, "", cfg, nil, nil, true)
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	a := alert(fp(1), "PondDissolvedOxygenLow", "pond1", "orange", 1, StatusFiring, start)
	h.update(t, a)

	find := func(active bool) *gettableAlert {
		var got []gettableAlert
		url := am.URL + "/api/v2/alerts"
		if active {
			url += "?active=true&silenced=false&inhibited=false&unprocessed=true"
		}
		if err := testenv.GetJSON(url, &got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i].Labels["alertname"] == "PondDissolvedOxygenLow" && got[i].Labels["site"] == "pond1" {
				return &got[i]
			}
		}
		return nil
	}
	eventually(t, "alert in Alertmanager", 15*time.Second, func() bool { return find(false) != nil })
	got := find(false)
	if got.Labels["severity"] != "orange" || got.Labels["level"] != "2" || got.Labels["rule"] != "r_PondDissolvedOxygenLow" ||
		got.Annotations["summary"] != a.Annotations["summary"] || !got.StartsAt.Equal(start) ||
		got.GeneratorURL != a.GeneratorURL || got.Status.State != "active" {
		t.Fatalf("Alertmanager has %+v", got)
	}
	// Re-sent while active (resend 100ms): Alertmanager keeps it.
	eventually(t, "resends", 15*time.Second, func() bool { return h.n.Status()[0].Sent >= 3 })

	r := a
	r.Seq, r.Status, r.EndsAt = 2, StatusResolved, time.Now().Add(-time.Second)
	h.update(t, r)
	eventually(t, "alert resolved in Alertmanager", 15*time.Second, func() bool {
		if find(true) != nil {
			return false
		}
		g := find(false)
		return g == nil || (!g.EndsAt.IsZero() && g.EndsAt.Before(time.Now()))
	})
	// Alertmanager may show the resolution before the sender has recorded
	// its delivery; wait for that, then no resend may be queued.
	eventually(t, "resolution delivered", 15*time.Second, func() bool { return h.n.Status()[0].Queue == 0 })
	h.n.tick(t.Context())
	if q := h.n.Status()[0].Queue; q != 0 {
		t.Fatalf("queue %d after the resolution; want no resends", q)
	}
}
