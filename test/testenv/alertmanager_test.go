package testenv

import "testing"

func TestAlertmanagerServesAPI(t *testing.T) {
	am := StartAlertmanager(t)
	var status struct {
		VersionInfo map[string]string `json:"versionInfo"`
		Cluster     struct {
			Status string `json:"status"`
		} `json:"cluster"`
	}
	if err := GetJSON(am.URL+"/api/v2/status", &status); err != nil {
		t.Fatal(err)
	}
	if status.VersionInfo["version"] == "" {
		t.Fatalf("no version in /api/v2/status: %+v", status)
	}
	if status.Cluster.Status != "disabled" {
		t.Fatalf("cluster status %q; want disabled", status.Cluster.Status)
	}
}
